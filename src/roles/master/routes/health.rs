//! `GET /health` (engine.md §7.3): 200 when healthy or degraded, 503 when unhealthy.
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::roles::master::auth::Viewer;
use crate::roles::master::error::{ApiError, Detail};
use crate::roles::master::health::{Component, overall};
use crate::roles::master::state::AppState;

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    /// Every component by name.
    pub components: BTreeMap<&'static str, Component>,
}

/// The state of the master's components.
#[utoipa::path(get, path = "/api/v1/health", tag = "system",
    security(("bearer" = [])),
    responses((status = 200, body = HealthReport),
        (status = 503, body = HealthReport, description = "a critical component fails"),
        (status = 401, body = Detail), (status = 403, body = Detail)))]
pub async fn health(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<(StatusCode, Json<HealthReport>), ApiError> {
    let components = state.health.components(&state.db).await;
    let status = overall(&components);
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, Json(HealthReport { status, components })))
}
