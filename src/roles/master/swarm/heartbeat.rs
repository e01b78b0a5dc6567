//! `POST /swarm/heartbeat` (swarm.md §5.5): a worker proves who it is by its client
//! certificate's pin, then reports liveness, finished operations and its deckies.
//!
//! The common beat touches no database: the [`super::registry::Registry`] answers the
//! identity check and queues the heartbeat time; shards are queued only when the report
//! changed. Lifecycle deltas (rare: one per finished operation) are written at once, so a
//! client polling the operation sees the outcome as soon as the worker reported it.
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;

use super::super::error::ApiError;
use super::super::state::AppState;
use super::dto::Checked;
use super::registry::{Refusal, digest};
use crate::bus::{publish_safely, topics};
use crate::https::Peer;
use crate::model::DeckyConfig;
use crate::model::swarm::{HeartbeatIn, LifecycleDelta, MAX_DELTA_ERROR};
use crate::store::swarm_status::now_text;
use crate::store::{LifecycleStatus, Shard};

/// The 404 text.
pub const UNKNOWN_HOST: &str = "unknown host";
/// The 403 text without a client certificate.
pub const NO_PEER_CERT: &str = "peer cert unavailable";
/// The 403 text for another certificate than the enrolled one.
pub const PIN_MISMATCH: &str = "cert fingerprint mismatch";

/// Handles one heartbeat; 204 on success.
pub async fn heartbeat(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    Checked(beat): Checked<HeartbeatIn>,
) -> Result<StatusCode, ApiError> {
    let registry = &state.swarm.registry;
    registry.ensure_loaded(&state.db).await?;
    let presented = peer
        .as_ref()
        .and_then(|Extension(p)| p.identity.as_ref())
        .map(|id| &id.fingerprint);
    registry
        .beat(&beat.host_uuid, presented)
        .map_err(|r| match r {
            Refusal::Unknown => ApiError::NotFound(UNKNOWN_HOST.into()),
            Refusal::NoCert => ApiError::Forbidden(NO_PEER_CERT),
            Refusal::Mismatch => ApiError::Forbidden(PIN_MISMATCH),
        })?;
    if let Some(v) = &beat.agent_version {
        registry.set_version(&beat.host_uuid, v);
    }
    if !beat.lifecycle.is_empty() {
        apply_deltas(&state, &beat).await;
    }
    if beat.status.deployed {
        queue_shards(&state, &beat);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A delta's status word, if it is one a worker may report.
fn status_of(word: &str) -> Option<LifecycleStatus> {
    match word {
        "running" => Some(LifecycleStatus::Running),
        "succeeded" => Some(LifecycleStatus::Succeeded),
        "failed" => Some(LifecycleStatus::Failed),
        _ => None,
    }
}

/// An RFC 3339 time as the store writes times; `None` when absent or unparsable.
fn completed_at(text: Option<&str>) -> Option<String> {
    let t =
        time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()?;
    Some(crate::store::sql_micros(t))
}

async fn apply_deltas(state: &AppState, beat: &HeartbeatIn) {
    let mut rows = Vec::new();
    for raw in &beat.lifecycle {
        let Ok(d) = serde_json::from_value::<LifecycleDelta>(raw.clone()) else {
            tracing::warn!(host = %beat.host_uuid, "malformed lifecycle delta skipped");
            continue;
        };
        let Some(status) = status_of(&d.status) else {
            tracing::warn!(host = %beat.host_uuid, status = %d.status, "lifecycle delta with an unknown status skipped");
            continue;
        };
        let error = d
            .error
            .as_deref()
            .map(|e| e.chars().take(MAX_DELTA_ERROR).collect::<String>());
        let at = completed_at(d.completed_at.as_deref());
        rows.push((d.decky_name, d.operation, status, error, at));
    }
    if rows.is_empty() {
        return;
    }
    let host = beat.host_uuid.clone();
    let wrote = state
        .db
        .write(move |s| {
            let mut moved = Vec::new();
            for (decky, op, status, error, at) in rows {
                match s.report_lifecycle(&decky, &op, &host, status, error.as_deref(), at.as_deref())? {
                    Some(id) => moved.push((id, decky, op, status, error)),
                    None => {
                        tracing::info!(%decky, operation = %op, "no open operation for a worker's report (stale duplicate)");
                    }
                }
            }
            Ok(moved)
        })
        .await;
    match wrote {
        Ok(moved) => {
            for (id, decky, op, status, error) in moved {
                let Ok(topic) = topics::decky_lifecycle(&decky) else {
                    continue;
                };
                let mut event = serde_json::json!({"lifecycle_id": id, "operation": op, "status": status.as_str()});
                if let Some(e) = error {
                    event["error"] = e.into();
                }
                publish_safely(Some(state.swarm.bus()), &topic, &event, "decky.lifecycle");
            }
        }
        Err(e) => tracing::warn!(error = ?e, "recording lifecycle deltas failed"),
    }
}

fn queue_shards(state: &AppState, beat: &HeartbeatIn) {
    let deckies = serde_json::to_vec(&beat.status.deckies).unwrap_or_default();
    let running: Vec<u8> = beat
        .status
        .deckies
        .iter()
        .map(|d| {
            let name = d
                .get("name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            u8::from(beat.status.running(name))
        })
        .collect();
    let hash = digest(&[&deckies, &running]);
    if !state.swarm.registry.shards_changed(&beat.host_uuid, hash) {
        return;
    }
    let now = now_text();
    let mut shards = Vec::new();
    for raw in &beat.status.deckies {
        let decky = match serde_json::from_value::<DeckyConfig>(raw.clone()) {
            Ok(d) if d.validate().is_ok() => d,
            _ => {
                tracing::warn!(host = %beat.host_uuid, "invalid decky in a heartbeat skipped");
                continue;
            }
        };
        let state_word = if beat.status.running(&decky.name) {
            "running"
        } else {
            "degraded"
        };
        shards.push(Shard {
            decky_name: decky.name.clone(),
            host_uuid: beat.host_uuid.clone(),
            services: serde_json::to_string(&decky.services).unwrap_or_else(|_| "[]".into()),
            decky_config: serde_json::to_string(&decky).ok(),
            decky_ip: Some(decky.ip.to_string()),
            state: state_word.into(),
            last_error: None,
            last_seen: Some(now.clone()),
            updated_at: String::new(),
        });
    }
    state.swarm.registry.queue_shards(shards);
}
