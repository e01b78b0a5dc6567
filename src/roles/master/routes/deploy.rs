//! `POST /deckies/deploy` and `GET /deckies/lifecycle` (engine.md §1.10).
//!
//! Decisions:
//! - A deploy is additive unless `replace_fleet` is true (the original's HEAD default);
//!   every check that needs no Docker (INI, network, collisions, the deployment limit)
//!   answers before the 202, so a client learns of a bad INI at once; only Docker's own
//!   work runs in the background ([`super::super::fleet::ops`]).
//! - The network comes from the deployed fleet when there is one (the INI's `net`/`gw`
//!   override it), else from the INI's `[general]`, else from the host.
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::deployment_limit;
use super::deckies::load_fleet;
use crate::engine::plan::Names;
use crate::ini;
use crate::model::build::{self, IniOptions};
use crate::model::detect::{HostNetwork, NetworkHints, resolve_network};
use crate::model::{DecnetConfig, Mode, rng};
use crate::roles::master::auth::{Admin, Viewer};
use crate::roles::master::error::{ApiError, Body, Detail};
use crate::roles::master::fleet::NO_DOCKER;
use crate::roles::master::fleet::ops::{self, DeployJob};
use crate::roles::master::new_uuid;
use crate::roles::master::state::AppState;
use crate::store::Lifecycle;

/// Most ids one lifecycle poll may ask for.
pub const MAX_IDS: usize = 200;
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
        .write(move |s| s.create_lifecycle("deploy", None, &r))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parts_are_percent_decoded() {
        assert_eq!(decode("a%2Db+c").as_deref(), Some("a-b c"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%"), Some("%".into()));
        assert_eq!(decode("%ff"), None);
    }
}
