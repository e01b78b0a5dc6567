//! `GET /config` and the two settings it shows (engine.md §7.2), kept in the store's
//! `state` table under `config_limits` and `config_globals`.
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::UserInfo;
use crate::roles::master::Message;
use crate::roles::master::auth::{Admin, Viewer};
use crate::roles::master::error::{ApiError, Body, Detail};
use crate::roles::master::state::AppState;
use crate::store::Role;

/// `state` key of the deployment limit.
const LIMITS: &str = "config_limits";
/// `state` key of the global mutation interval.
const GLOBALS: &str = "config_globals";
/// Deckies per deployment unless set.
const DEFAULT_LIMIT: u32 = 10;
/// Mutation interval unless set.
const DEFAULT_INTERVAL: &str = "30m";

/// What `/config` shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigView {
    /// The caller's role.
    pub role: &'static str,
    /// Most deckies one deployment may create.
    pub deployment_limit: u32,
    /// How often deckies mutate unless set per decky (`<n><m|d|M|y|Y>`).
    pub global_mutation_interval: String,
    /// Every account (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserInfo>>,
    /// Whether developer mode is on (admins only, in developer mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_mode: Option<bool>,
}

/// `PUT /config/deployment-limit` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// 1..500.
    pub deployment_limit: i64,
}

/// `PUT /config/global-mutation-interval` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalRequest {
    /// `<n><m|d|M|y|Y>` with n ≥ 1.
    pub global_mutation_interval: String,
}

/// Whether `v` is `<n><m|d|M|y|Y>` with `n` a positive integer without leading zeros.
pub fn valid_interval(v: &str) -> bool {
    let Some(unit) = v.chars().last() else {
        return false;
    };
    let digits = &v[..v.len() - unit.len_utf8()];
    matches!(unit, 'm' | 'd' | 'M' | 'y' | 'Y')
        && !digits.is_empty()
        && digits.len() <= 9
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The two settings as stored (cached 5 s, forgotten on every write of either).
#[derive(Debug, Clone)]
pub struct Settings {
    deployment_limit: u32,
    global_mutation_interval: String,
}

/// The settings from their `state` rows, defaults for what is unset or unreadable.
fn settings(limits: Option<String>, globals: Option<String>) -> Settings {
    let read = |text: Option<String>, key: &str| {
        text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get(key).cloned())
    };
    Settings {
        deployment_limit: read(limits, "deployment_limit")
            .and_then(|v| v.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_LIMIT),
        global_mutation_interval: read(globals, "global_mutation_interval")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_INTERVAL.to_owned()),
    }
}

/// The stored settings, through their 5 s cache.
async fn stored(state: &AppState) -> Result<Settings, ApiError> {
    let db = &state.db;
    state
        .caches
        .config
        .get_or_load(|| async move {
            let (limits, globals) = db
                .read(|r| Ok((r.state(LIMITS)?, r.state(GLOBALS)?)))
                .await?;
            Ok::<_, ApiError>(settings(limits, globals))
        })
        .await
}

/// The deployment limit in force: most deckies the fleet may hold after a deploy.
pub async fn deployment_limit(state: &AppState) -> Result<u32, ApiError> {
    Ok(stored(state).await?.deployment_limit)
}

/// The settings, and the accounts for an admin.
#[utoipa::path(get, path = "/api/v1/config", tag = "config",
    security(("bearer" = [])),
    responses((status = 200, body = ConfigView), (status = 401, body = Detail),
        (status = 403, body = Detail)))]
pub async fn get_config(
    State(state): State<AppState>,
    Viewer(session): Viewer,
) -> Result<Json<ConfigView>, ApiError> {
    let admin = session.user.role == Role::Admin;
    let stored = stored(&state).await?;
    let users = if admin {
        Some(state.auth.users(&state.db).await?)
    } else {
        None
    };
    Ok(Json(ConfigView {
        role: session.user.role.as_str(),
        deployment_limit: stored.deployment_limit,
        global_mutation_interval: stored.global_mutation_interval,
        users: users.map(|u| u.iter().map(UserInfo::from).collect()),
        developer_mode: (admin && state.settings.developer).then_some(true),
    }))
}

/// Sets the deployment limit.
#[utoipa::path(put, path = "/api/v1/config/deployment-limit", tag = "config",
    request_body = LimitRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail)))]
pub async fn put_limit(
    State(state): State<AppState>,
    _: Admin,
    Body(req): Body<LimitRequest>,
) -> Result<Json<Message>, ApiError> {
    if !(1..=500).contains(&req.deployment_limit) {
        return Err(ApiError::invalid());
    }
    let value = serde_json::json!({ "deployment_limit": req.deployment_limit }).to_string();
    state.db.write(move |s| s.put_state(LIMITS, &value)).await?;
    state.caches.config.invalidate();
    Ok(Json(Message::new("Deployment limit updated")))
}

/// Sets the global mutation interval.
#[utoipa::path(put, path = "/api/v1/config/global-mutation-interval", tag = "config",
    request_body = IntervalRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail)))]
pub async fn put_interval(
    State(state): State<AppState>,
    _: Admin,
    Body(req): Body<IntervalRequest>,
) -> Result<Json<Message>, ApiError> {
    if !valid_interval(&req.global_mutation_interval) {
        return Err(ApiError::invalid());
    }
    let value =
        serde_json::json!({ "global_mutation_interval": req.global_mutation_interval }).to_string();
    state
        .db
        .write(move |s| s.put_state(GLOBALS, &value))
        .await?;
    state.caches.config.invalidate();
    Ok(Json(Message::new("Global mutation interval updated")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn intervals_follow_the_spec_pattern() {
        for ok in ["1m", "30m", "2d", "6M", "1y", "10Y"] {
            assert!(super::valid_interval(ok), "{ok}");
        }
        for bad in ["", "m", "0m", "05m", "1h", "1.5d", "-1m", "1mm", "٣m"] {
            assert!(!super::valid_interval(bad), "{bad}");
        }
    }
}
