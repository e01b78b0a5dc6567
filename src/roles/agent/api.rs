//! The agent's routes (swarm.md §4.2), their bodies and their error answers.
//!
//! Every answer that is not a success is `{"detail": …}`. Malformed bodies are 422 with
//! serde's message, which names the field (`unknown field `x``, `missing field
//! `config``); an unreadable body over [`super::MAX_BODY`] is 413. Unknown paths are 404
//! — but only for the master: the gate runs before routing.
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{AgentState, gate, ops, reaper, snapshot};
use crate::model::swarm::{DeployRequest, MutateRequest, TeardownRequest};

/// The 404/failed-delta text when the worker has no fleet.
pub const NO_DEPLOYMENT: &str = "no active deployment on this worker";

/// The 404/failed-delta text of a decky the worker does not run.
pub fn unknown_decky(id: &str) -> String {
    format!("decky '{id}' not found in worker state")
}

/// A `{"detail": text}` answer with `status`.
pub fn detail(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": text.into() }))).into_response()
}

/// The agent's router: every route behind the master gate, bodies bounded.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/deploy", post(deploy))
        .route("/teardown", post(teardown))
        .route("/mutate", post(mutate))
        .route("/self-destruct", post(self_destruct))
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::require_master,
        ))
        .layer(DefaultBodyLimit::max(super::MAX_BODY))
        .with_state(state)
}

/// A JSON body whose rejection is a `{"detail"}` 422 naming the field.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            } else {
                detail(StatusCode::BAD_REQUEST, e.body_text())
            }
        })?;
        // An empty body is an empty object, so `POST /teardown` without one tears
        // down the whole host as the original's optional body does.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Self)
            .map_err(|e| detail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    }
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn status(State(state): State<AgentState>) -> Response {
    axum::Json(snapshot::take(&state).await).into_response()
}

async fn deploy(State(state): State<AgentState>, Body(req): Body<DeployRequest>) -> Response {
    if let Err(e) = req.config.validate() {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    }
    let names: Vec<String> = req.config.deckies.iter().map(|d| d.name.clone()).collect();
    ops::start_deploy(&state, req);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "deckies": names})),
    )
        .into_response()
}

async fn teardown(State(state): State<AgentState>, Body(req): Body<TeardownRequest>) -> Response {
    match ops::teardown(&state, req.decky_id.clone()).await {
        Ok(()) => {
            axum::Json(json!({"status": "torn_down", "decky_id": req.decky_id})).into_response()
        }
        Err(why) => detail(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}

async fn mutate(State(state): State<AgentState>, Body(req): Body<MutateRequest>) -> Response {
    if req.dry_run {
        return match ops::check_mutate(&state, &req) {
            Ok(()) => axum::Json(json!({
                "status": "dry_run",
                "decky_id": req.decky_id,
                "services": req.services,
            }))
            .into_response(),
            Err(ops::Refused::NotFound(why)) => detail(StatusCode::NOT_FOUND, why),
            Err(ops::Refused::Invalid(why)) => detail(StatusCode::UNPROCESSABLE_ENTITY, why),
            Err(ops::Refused::Failed(why)) => detail(StatusCode::INTERNAL_SERVER_ERROR, why),
        };
    }
    let (decky_id, services) = (req.decky_id.clone(), req.services.clone());
    ops::start_mutate(&state, req);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "decky_id": decky_id, "services": services})),
    )
        .into_response()
}

async fn self_destruct(State(state): State<AgentState>) -> Response {
    match reaper::schedule(&state) {
        Ok(()) => axum::Json(json!({"status": "self_destruct_scheduled"})).into_response(),
        Err(why) => detail(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}
