//! The fleet routes (engine.md §7.2) that read or change deployed deckies: `/deckies`,
//! mutate, mutation interval, removal; and `/system/deployment-mode`. Deploying and its
//! lifecycle polling are in [`super::deploy`].
//!
//! `/deckies` never shows secrets: each decky's seed is left out and secret persona
//! values (passwords, keys) are masked, as in `decnet deploy --dry-run`.
use std::net::Ipv4Addr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::valid_interval;
use crate::catalog;
use crate::engine::off_task;
use crate::engine::state::{self, State as FleetState};
use crate::engine::teardown::{self, Target};
use crate::model::{DeckyConfig, ServiceConfig, rng};
use crate::roles::master::auth::{Admin, Viewer};
use crate::roles::master::error::{ApiError, Body, Detail, Segment};
use crate::roles::master::fleet::NO_DOCKER;
use crate::roles::master::fleet::ops::{self, MutateJob};
use crate::roles::master::state::AppState;
use crate::roles::master::{Message, new_uuid};

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

/// `GET /system/deployment-mode` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentMode {
    /// `unihost` or `swarm`.
    pub mode: &'static str,
    /// `master` or `agent`.
    pub role: &'static str,
    /// Enrolled swarm hosts.
    pub swarm_host_count: u32,
}

/// The deployed fleet, read off the runtime.
pub(crate) async fn load_fleet(state: &AppState) -> Result<Option<FleetState>, ApiError> {
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
        .write(move |s| s.create_lifecycle("mutate", None, &row))
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
pub async fn deployment_mode(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<DeploymentMode>, ApiError> {
    let hosts = state.db.read(|r| r.hosts(None)).await?;
    let count = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
    Ok(Json(DeploymentMode {
        mode: if count > 0 { "swarm" } else { "unihost" },
        role: "master",
        swarm_host_count: count,
    }))
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
