//! The handlers: the controller's router (swarm.md §5.3) and the dashboard's
//! `/api/v1/swarm/*` (§6.1).
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::super::MAX_BODY;
use super::super::auth::Admin;
use super::super::error::{self, ApiError, Params, Segment};
use super::super::state::AppState;
use super::dto::{
    Checked, DeckiesQuery, DeployBody, EnrollRequest, EnrolledBundle, HostHealth, HostResult,
    HostTeardownBody, HostView, HostsQuery, Results, ShardView, TeardownBody, TeardownQueued,
};
use super::gate::Operator;
use super::{dispatch, enroll, heartbeat, hosts};

/// Largest heartbeat or deploy body: a worker's snapshot or a fleet of a few thousand
/// deckies (each DeckyConfig with its service settings is about a kilobyte).
pub const MAX_SWARM_BODY: usize = 4 * 1024 * 1024;

/// `{"status":"ok","role":"swarm-controller"}`: no auth, no I/O.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "role": "swarm-controller"}))
}

async fn enroll_route(
    State(state): State<AppState>,
    _: Operator,
    Checked(req): Checked<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrolledBundle>), ApiError> {
    let done = enroll::enroll(&state, req).await?;
    Ok((StatusCode::CREATED, Json(done.bundle)))
}

async fn list_hosts(
    State(state): State<AppState>,
    _: Operator,
    Params(q): Params<HostsQuery>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    Ok(Json(hosts::list(&state, q.host_status).await?))
}

async fn get_host(
    State(state): State<AppState>,
    _: Operator,
    Segment(uuid): Segment<String>,
) -> Result<Json<HostView>, ApiError> {
    Ok(Json(hosts::host(&state, &uuid).await?.into()))
}

async fn delete_host(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    _: Operator,
    Segment(uuid): Segment<String>,
) -> Result<StatusCode, ApiError> {
    let limit = &state.swarm.delete_limit;
    limit
        .hit(&addr.ip().to_string())
        .map_err(|retry| ApiError::TooMany(limit.describe(), retry))?;
    hosts::decommission(&state, &uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deploy(
    State(state): State<AppState>,
    _: Operator,
    Checked(body): Checked<DeployBody>,
) -> Result<Json<Results<HostResult>>, ApiError> {
    Ok(Json(Results {
        results: dispatch::deploy(&state, body).await?,
    }))
}

async fn teardown(
    State(state): State<AppState>,
    _: Operator,
    Checked(body): Checked<TeardownBody>,
) -> Result<Json<Results<HostResult>>, ApiError> {
    Ok(Json(Results {
        results: dispatch::teardown(&state, body.host_uuid, body.decky_id).await?,
    }))
}

async fn deckies(
    State(state): State<AppState>,
    _: Operator,
    Params(q): Params<DeckiesQuery>,
) -> Result<Json<Vec<ShardView>>, ApiError> {
    Ok(Json(hosts::deckies(&state, q.host_uuid, q.state).await?))
}

async fn check(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<Results<HostHealth>>, ApiError> {
    Ok(Json(Results {
        results: hosts::check(&state).await?,
    }))
}

/// The controller's router over `state`.
pub fn controller(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/swarm/health", get(health))
        .route("/swarm/enroll", post(enroll_route))
        .route("/swarm/hosts", get(list_hosts))
        .route("/swarm/hosts/{uuid}", get(get_host).delete(delete_host))
        .route(
            "/swarm/deploy",
            post(deploy).layer(DefaultBodyLimit::max(MAX_SWARM_BODY)),
        )
        .route("/swarm/teardown", post(teardown))
        .route("/swarm/deckies", get(deckies))
        .route("/swarm/check", post(check))
        .route(
            "/swarm/heartbeat",
            post(heartbeat::heartbeat).layer(DefaultBodyLimit::max(MAX_SWARM_BODY)),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn api_hosts(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<HostsQuery>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    Ok(Json(hosts::list_probed(&state, q.host_status).await?))
}

async fn api_delete_host(
    State(state): State<AppState>,
    _: Admin,
    Segment(uuid): Segment<String>,
) -> Result<StatusCode, ApiError> {
    hosts::decommission(&state, &uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_deckies(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<DeckiesQuery>,
) -> Result<Json<Vec<ShardView>>, ApiError> {
    let mut views = hosts::deckies(&state, q.host_uuid, q.state).await?;
    hosts::fill_ips_from_fleet(&state, &mut views).await;
    Ok(Json(views))
}

async fn api_host_teardown(
    State(state): State<AppState>,
    _: Admin,
    Segment(uuid): Segment<String>,
    Checked(body): Checked<HostTeardownBody>,
) -> Result<(StatusCode, Json<TeardownQueued>), ApiError> {
    let queued = dispatch::teardown_background(&state, &uuid, body.decky_id).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// The `/api/v1/swarm` routes.
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/hosts", get(api_hosts))
        .route("/hosts/{uuid}", delete(api_delete_host))
        .route("/hosts/{uuid}/teardown", post(api_host_teardown))
        .route("/deckies", get(api_deckies))
}
