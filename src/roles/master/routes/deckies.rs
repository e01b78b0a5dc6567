//! The fleet routes (engine.md §1.10, §7.2): `/deckies`, deploy from an INI, lifecycle
//! polling, mutate, mutation interval, removal; and `/system/deployment-mode`.
//!
//! Decisions:
//! - A deploy is additive unless `replace_fleet` is true (the original's HEAD default);
//!   every check that needs no Docker (INI, network, collisions, the deployment limit)
//!   answers before the 202, so a client learns of a bad INI at once; only Docker's own
//!   work runs in the background ([`super::super::fleet::ops`]).
//! - The network comes from the deployed fleet when there is one (the INI's `net`/`gw`
//!   override it), else from the INI's `[general]`, else from the host.
//! - `/deckies` never shows secrets: each decky's seed is left out and secret persona
//!   values (passwords, keys) are masked, as in `decnet deploy --dry-run`.
use std::net::Ipv4Addr;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::{deployment_limit, valid_interval};
use crate::catalog;
use crate::engine::plan::Names;
use crate::engine::state::{self, State as FleetState};
use crate::engine::teardown::{self, Target};
use crate::ini;
use crate::model::build::{self, IniOptions};
use crate::model::detect::{HostNetwork, NetworkHints, resolve_network};
use crate::model::{DeckyConfig, DecnetConfig, Mode, ServiceConfig, rng};
use crate::roles::master::auth::{Admin, Viewer};
use crate::roles::master::error::{ApiError, Body, Detail, Segment};
use crate::roles::master::fleet::ops::{self, DeployJob, MutateJob};
use crate::roles::master::fleet::{NO_DOCKER, off_task};
use crate::roles::master::state::AppState;
use crate::roles::master::{Message, new_uuid};
use crate::store::Lifecycle;

/// Most ids one lifecycle poll may ask for.
pub const MAX_IDS: usize = 200;
/// What a masked secret shows.
const MASK: &str = "********";

/// A decky as `/deckies` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeckyView {
    /// Name.
    pub name: String,
    /// LAN address.
    #[schema(value_type = String)]
    pub ip: Ipv4Addr,
    /// Services.
    pub services: Vec<String>,
    /// Distro slug.
    pub distro: String,
    /// Base image (metadata).
    pub base_image: String,
    /// Service build base (metadata).
    pub build_base: String,
    /// Hostname.
    pub hostname: String,
    /// Archetype slug.
    pub archetype: Option<String>,
    /// Persona overrides, secrets masked.
    #[schema(value_type = Object)]
    pub service_config: ServiceConfig,
    /// OS family.
    pub nmap_os: String,
    /// Minutes between rotations.
    pub mutate_interval: Option<u32>,
    /// Last service change, seconds since the epoch.
    pub last_mutated: f64,
    /// Last login attempt seen, seconds since the epoch.
    pub last_login_attempt: f64,
    /// Swarm host, `None` on this host.
    pub host_uuid: Option<String>,
}

impl From<&DeckyConfig> for DeckyView {
    fn from(d: &DeckyConfig) -> Self {
        let mut service_config = d.service_config.clone();
        for (svc, keys) in &mut service_config {
            let Ok(service) = catalog::service(svc) else {
                continue;
            };
            for (key, value) in keys.iter_mut() {
                if service.persona_key(key).is_some_and(|k| k.secret) {
                    *value = MASK.to_owned();
                }
            }
        }
        Self {
            name: d.name.clone(),
            ip: d.ip,
            services: d.services.clone(),
            distro: d.distro.clone(),
            base_image: d.base_image.clone(),
            build_base: d.build_base.clone(),
            hostname: d.hostname.clone(),
            archetype: d.archetype.clone(),
            service_config,
            nmap_os: d.nmap_os.clone(),
            mutate_interval: d.mutate_interval,
            last_mutated: d.last_mutated,
            last_login_attempt: d.last_login_attempt,
            host_uuid: d.host_uuid.clone(),
        }
    }
}

/// `POST /deckies/deploy` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The INI deployment file (engine.md §1.2).
    pub ini_content: String,
    /// Replace the fleet with exactly the INI's deckies (default: add them).
    #[serde(default)]
    pub replace_fleet: bool,
}

/// `POST /deckies/deploy` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployAccepted {
    /// What was accepted and how to follow it.
    pub message: String,
    /// `unihost` (or `swarm`, once the swarm lands).
    pub mode: &'static str,
    /// One row per decky being deployed.
    pub lifecycle_ids: Vec<String>,
}

/// `POST /deckies/{name}/mutate` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MutateAccepted {
    /// The operation's row.
    pub lifecycle_ids: Vec<String>,
}

/// `PUT /deckies/{name}/mutate-interval` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalRequest {
    /// `<n><m|d|M|y|Y>`, or null for none.
    pub mutate_interval: Option<String>,
}

/// A lifecycle row.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleRow {
    /// Id.
    pub id: String,
    /// Decky.
    pub decky_name: String,
    /// Swarm host.
    pub host_uuid: Option<String>,
    /// `deploy` or `mutate`.
    pub operation: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Accepted at (UTC).
    pub started_at: String,
    /// Last change (UTC).
    pub updated_at: String,
    /// Finished at (UTC).
    pub completed_at: Option<String>,
}

impl From<Lifecycle> for LifecycleRow {
    fn from(l: Lifecycle) -> Self {
        Self {
            id: l.id,
            decky_name: l.decky_name,
            host_uuid: l.host_uuid,
            operation: l.operation,
            status: l.status,
            error: l.error,
            started_at: l.started_at,
            updated_at: l.updated_at,
            completed_at: l.completed_at,
        }
    }
}

/// `GET /deckies/lifecycle` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleRows {
    /// The rows found, in the order asked.
    pub rows: Vec<LifecycleRow>,
}

/// `GET /system/deployment-mode` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentMode {
    /// `unihost` or `swarm`.
    pub mode: &'static str,
    /// `master` or `agent`.
    pub role: &'static str,
    /// Active swarm hosts.
    pub swarm_host_count: u32,
}

/// The deployed fleet, read off the runtime.
async fn load_fleet(state: &AppState) -> Result<Option<FleetState>, ApiError> {
    let path = state::path_in(&state.settings.home);
    tokio::task::spawn_blocking(move || state::load(&path))
        .await
        .map_err(|e| ApiError::Internal(format!("state task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("fleet state: {e}")))
}

/// A decky name as the routes accept it: `^[a-z0-9-]{1,64}$`, else 422.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(ApiError::invalid()) }
}

/// The fleet and decky `name` in it, or the spec's 404s.
async fn find(state: &AppState, name: &str) -> Result<(FleetState, DeckyConfig), ApiError> {
    let fleet = load_fleet(state)
        .await?
        .ok_or_else(|| ApiError::NotFound("No active deployment".into()))?;
    let decky = fleet
        .config
        .deckies
        .iter()
        .find(|d| d.name == name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("Decky {name} not found")))?;
    Ok((fleet, decky))
}

/// The deployed deckies (cached 5 s).
#[utoipa::path(get, path = "/api/v1/deckies", tag = "deckies",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DeckyView>), (status = 401, body = Detail),
        (status = 403, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<Vec<DeckyView>>, ApiError> {
    let s = &state;
    let views = state
        .caches
        .deckies
        .get_or_load(|| async move {
            let fleet = load_fleet(s).await?;
            Ok::<_, ApiError>(fleet.map_or_else(Vec::new, |f| {
                f.config.deckies.iter().map(DeckyView::from).collect()
            }))
        })
        .await?;
    Ok(Json(views))
}

/// The 409 of an INI the parser refused (engine.md §7.5 texts).
fn ini_conflict(e: &ini::Error) -> ApiError {
    ApiError::Conflict(match e {
        ini::Error::Empty => "Configuration conflict: INI content is empty.".into(),
        ini::Error::Syntax(_) => {
            "Configuration conflict: INI syntax or characters are invalid.".into()
        }
        ini::Error::NoSections | ini::Error::NoDeckies => {
            "Invalid INI config structure: No decky sections found.".into()
        }
        other => other.to_string(),
    })
}

/// Deploys the deckies of an INI in the background (202; poll `/deckies/lifecycle`).
#[utoipa::path(post, path = "/api/v1/deckies/deploy", tag = "deckies",
    request_body = DeployRequest,
    security(("bearer" = [])),
    responses((status = 202, body = DeployAccepted), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 409, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 503, body = Detail)))]
pub async fn deploy(
    State(state): State<AppState>,
    _: Admin,
    Body(req): Body<DeployRequest>,
) -> Result<(StatusCode, Json<DeployAccepted>), ApiError> {
    if req.ini_content.trim().is_empty() {
        return Err(ini_conflict(&ini::Error::Empty));
    }
    let parsed = ini::parse(&req.ini_content).map_err(|e| ini_conflict(&e))?;
    let previous = load_fleet(&state).await?;
    let additive = previous.as_ref().filter(|_| !req.replace_fleet);
    if let Some(prev) = additive {
        for spec in &parsed.deckies {
            if prev.config.deckies.iter().any(|d| d.name == spec.name) {
                return Err(ApiError::Conflict(format!(
                    "decky '{}' already exists; submit with replace_fleet=true to overwrite the fleet",
                    spec.name
                )));
            }
            if let Some(ip) = spec.ip
                && prev.config.deckies.iter().any(|d| d.ip == ip)
            {
                return Err(ApiError::Conflict(format!(
                    "IP {ip} is already in use by an existing decky"
                )));
            }
        }
    }
    let stored = previous.as_ref().map(|p| NetworkHints {
        interface: Some(p.config.interface.clone()),
        subnet: Some(p.config.subnet),
        gateway: Some(p.config.gateway),
    });
    let ini_hints = parsed.network_hints();
    let (flags, fallback) = match stored {
        // The INI's `net`/`gw` win over the stored network, which wins over detection.
        Some(s) => (
            NetworkHints {
                interface: ini_hints.interface.clone().or(s.interface),
                subnet: ini_hints.subnet.or(s.subnet),
                gateway: ini_hints.gateway.or(s.gateway),
            },
            ini_hints,
        ),
        None => (NetworkHints::default(), ini_hints),
    };
    let network = resolve_network(&flags, &fallback, &HostNetwork::read()).map_err(|e| {
        ApiError::Conflict(format!(
            "Network configuration conflict: {e}. Add a [general] section with interface=, \
             net=, and gw= to the INI."
        ))
    })?;
    if let Some(p) = &previous {
        let c = &p.config;
        if (c.interface.as_str(), c.subnet, c.gateway)
            != (network.interface.as_str(), network.subnet, network.gateway)
        {
            return Err(ApiError::Conflict(format!(
                "Network configuration conflict: the deployed fleet uses {} via {} (gateway {}), \
                 the INI asks for {} via {} (gateway {}); remove the fleet first",
                c.subnet,
                c.interface,
                c.gateway,
                network.subnet,
                network.interface,
                network.gateway
            )));
        }
    }
    let opts = IniOptions {
        cli_mutate_interval: None,
        existing_ips: additive
            .map(|p| p.config.deckies.iter().map(|d| d.ip).collect())
            .unwrap_or_default(),
        seed: rng::fresh_seed(),
        now: ops::now_secs(),
    };
    let deckies =
        build::from_ini(&parsed, &network, &opts).map_err(|e| ApiError::Conflict(e.to_string()))?;
    let total = deckies.len() + additive.map_or(0, |p| p.config.deckies.len());
    let limit = deployment_limit(&state).await?;
    if total > limit as usize {
        return Err(ApiError::Conflict(format!(
            "Deployment would result in {total} deckies, exceeding the configured limit of {limit}"
        )));
    }
    let fleet = DecnetConfig::new(Mode::Unihost, &network, deckies)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    if state.fleet.engine.is_none() {
        return Err(ApiError::Unavailable(NO_DOCKER));
    }
    let (driver, names) = match &previous {
        Some(p) => (p.driver, p.names.clone()),
        None => (
            state.fleet.options.driver,
            Names::for_network(&state.fleet.options.network_name),
        ),
    };
    let rows: Vec<(String, String)> = fleet
        .deckies
        .iter()
        .map(|d| (new_uuid(), d.name.clone()))
        .collect();
    let r = rows.clone();
    state
        .db
        .write(move |s| s.create_lifecycle("deploy", &r))
        .await?;
    let ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
    let n = ids.len();
    let query = ids
        .iter()
        .map(|id| format!("ids={id}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut fleet = fleet;
    fleet.ipvlan = driver == crate::engine::plan::Driver::Ipvlan;
    ops::start_deploy(
        &state,
        DeployJob {
            fleet,
            custom: parsed.custom_services,
            driver,
            names,
            host_ip: network.host_ip,
            replace: req.replace_fleet,
            ids: ids.clone(),
        },
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(DeployAccepted {
            message: format!(
                "Deploy accepted ({n} decky/ies, mode=unihost). Poll /deckies/lifecycle?{query} for completion."
            ),
            mode: "unihost",
            lifecycle_ids: ids,
        }),
    ))
}

/// Percent-decodes a query component (`+` is a space); `None` when not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The states of background decky operations: `?ids=<id>&ids=<id>…` (1..200).
#[utoipa::path(get, path = "/api/v1/deckies/lifecycle", tag = "deckies",
    params(("ids" = Vec<String>, Query, description = "1..200 lifecycle ids, repeated")),
    security(("bearer" = [])),
    responses((status = 200, body = LifecycleRows), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn lifecycle(
    State(state): State<AppState>,
    _: Viewer,
    RawQuery(query): RawQuery,
) -> Result<Json<LifecycleRows>, ApiError> {
    let mut ids = Vec::new();
    for pair in query.as_deref().unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key).as_deref() != Some("ids") {
            continue;
        }
        let id = decode(value).ok_or_else(ApiError::schema)?;
        if id.is_empty() || id.len() > 64 {
            return Err(ApiError::invalid());
        }
        ids.push(id);
        if ids.len() > MAX_IDS {
            return Err(ApiError::invalid());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::invalid());
    }
    let rows = state.db.read(move |r| r.lifecycle(&ids)).await?;
    Ok(Json(LifecycleRows {
        rows: rows.into_iter().map(LifecycleRow::from).collect(),
    }))
}

/// Re-rolls a decky's services from its archetype and redeploys it (202).
#[utoipa::path(post, path = "/api/v1/deckies/{name}/mutate", tag = "deckies",
    params(("name" = String, Path, description = "decky name")),
    security(("bearer" = [])),
    responses((status = 202, body = MutateAccepted), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail),
        (status = 422, body = Detail), (status = 503, body = Detail)))]
pub async fn mutate(
    State(state): State<AppState>,
    _: Admin,
    Segment(name): Segment<String>,
) -> Result<(StatusCode, Json<MutateAccepted>), ApiError> {
    check_name(&name)?;
    let (_, decky) = find(&state, &name).await?;
    let pool: Vec<String> = decky
        .archetype
        .as_deref()
        .and_then(|a| catalog::archetype(a).ok())
        .map(|a| a.services.iter().map(|s| (*s).to_owned()).collect())
        .unwrap_or_default();
    if pool.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No services available to mutate {name}"
        )));
    }
    if state.fleet.engine.is_none() {
        return Err(ApiError::Unavailable(NO_DOCKER));
    }
    let services = reroll(&pool, &decky.services, rng::fresh_seed());
    let id = new_uuid();
    let row = vec![(id.clone(), name.clone())];
    state
        .db
        .write(move |s| s.create_lifecycle("mutate", &row))
        .await?;
    ops::start_mutate(
        &state,
        MutateJob {
            name,
            services,
            id: id.clone(),
        },
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(MutateAccepted {
            lifecycle_ids: vec![id],
        }),
    ))
}

/// A non-empty random subset of `pool`, other than `current` when the pool allows.
fn reroll(pool: &[String], current: &[String], seed: u64) -> Vec<String> {
    let mut rng = rng::Rng::new(seed);
    let mut pick = Vec::new();
    for _ in 0..8 {
        let k = rng.between(1, pool.len());
        pick = rng.sample(pool, k);
        pick.sort();
        let mut now = current.to_vec();
        now.sort();
        if pick != now {
            break;
        }
    }
    pick
}

/// `<n><m|d|M|y|Y>` in minutes; `None` when invalid or too large.
fn minutes(text: &str) -> Option<u32> {
    if !valid_interval(text) {
        return None;
    }
    let unit = text.chars().last()?;
    let n: u32 = text[..text.len() - 1].parse().ok()?;
    let per = match unit {
        'm' => 1,
        'd' => 1440,
        'M' => 43_200,
        _ => 525_600,
    };
    n.checked_mul(per)
}

/// Sets (or clears) a decky's automatic mutation interval.
#[utoipa::path(put, path = "/api/v1/deckies/{name}/mutate-interval", tag = "deckies",
    params(("name" = String, Path, description = "decky name")),
    request_body = IntervalRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 404, body = Detail), (status = 422, body = Detail)))]
pub async fn mutate_interval(
    State(state): State<AppState>,
    _: Admin,
    Segment(name): Segment<String>,
    Body(req): Body<IntervalRequest>,
) -> Result<Json<Message>, ApiError> {
    check_name(&name)?;
    let interval = match req.mutate_interval.as_deref() {
        None => None,
        Some(text) => Some(minutes(text).ok_or_else(ApiError::invalid)?),
    };
    let _held = state.fleet.lock.lock().await;
    let (mut fleet, _) = find(&state, &name).await?;
    for d in fleet.config.deckies.iter_mut().filter(|d| d.name == name) {
        d.mutate_interval = interval;
    }
    let path = state::path_in(&state.settings.home);
    tokio::task::spawn_blocking(move || state::save(&path, &fleet))
        .await
        .map_err(|e| ApiError::Internal(format!("state task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("fleet state: {e}")))?;
    state.fleet_changed().await;
    Ok(Json(Message::new("Mutation interval updated")))
}

/// Removes a decky: its containers, and its entry in the state file (204).
#[utoipa::path(delete, path = "/api/v1/deckies/{name}", tag = "deckies",
    params(("name" = String, Path, description = "decky name")),
    security(("bearer" = [])),
    responses((status = 204, description = "removed"), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail),
        (status = 422, body = Detail), (status = 503, body = Detail)))]
pub async fn remove(
    State(state): State<AppState>,
    _: Admin,
    Segment(name): Segment<String>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    find(&state, &name).await?;
    let engine = state
        .fleet
        .engine
        .clone()
        .ok_or(ApiError::Unavailable(NO_DOCKER))?;
    let _held = state.fleet.lock.lock().await;
    let path = state::path_in(&state.settings.home);
    let target = Target::Decky(name.clone());
    let done = off_task(move || async move { teardown::teardown(&engine, &path, &target).await })
        .await
        .ok_or_else(|| ApiError::Internal("teardown panicked".into()))?;
    state.fleet_changed().await;
    match done {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(crate::engine::Error::NoDeployment) => {
            Err(ApiError::NotFound("No active deployment".into()))
        }
        Err(crate::engine::Error::UnknownDecky { .. }) => {
            Err(ApiError::NotFound(format!("Decky {name} not found")))
        }
        Err(e) => Err(ApiError::Internal(format!("teardown: {e}"))),
    }
}

/// Single host or swarm (a single host until the swarm lands).
#[utoipa::path(get, path = "/api/v1/system/deployment-mode", tag = "deckies",
    security(("bearer" = [])),
    responses((status = 200, body = DeploymentMode), (status = 401, body = Detail),
        (status = 403, body = Detail)))]
pub async fn deployment_mode(_: Viewer) -> Json<DeploymentMode> {
    Json(DeploymentMode {
        mode: "unihost",
        role: "master",
        swarm_host_count: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_route_pattern() {
        assert!(check_name("web-01").is_ok());
        for bad in ["", "Web", "a_b", "a.b", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_become_minutes() {
        assert_eq!(minutes("30m"), Some(30));
        assert_eq!(minutes("2d"), Some(2880));
        assert_eq!(minutes("1M"), Some(43_200));
        assert_eq!(minutes("1Y"), Some(525_600));
        assert_eq!(minutes("999999999Y"), None);
        assert_eq!(minutes("1h"), None);
    }

    #[test]
    fn query_parts_are_percent_decoded() {
        assert_eq!(decode("a%2Db+c").as_deref(), Some("a-b c"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%"), Some("%".into()));
        assert_eq!(decode("%ff"), None);
    }

    #[test]
    fn a_reroll_changes_the_services_when_it_can() {
        let pool: Vec<String> = ["ssh", "http", "ftp"].map(String::from).to_vec();
        for seed in 0..20 {
            let pick = reroll(&pool, &["ssh".into()], seed);
            assert!(!pick.is_empty() && pick.iter().all(|s| pool.contains(s)));
            assert_ne!(pick, ["ssh"]);
        }
        assert_eq!(reroll(&pool[..1], &["ssh".into()], 1), ["ssh"]);
    }
}
