//! What the master and an agent say to each other (swarm.md §4.2–§4.8, §5.5): the agent's
//! request bodies, its status snapshot, and the heartbeat with its lifecycle deltas.
//!
//! Requests to the agent are strict (unknown fields refused, 422). The heartbeat the
//! master receives is read leniently where the original is: each decky of the snapshot
//! and each lifecycle delta is checked on its own and a bad one skipped, so one odd entry
//! does not cost the worker its liveness.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DeckyConfig, DecnetConfig, Mode};

/// Longest `error` text of a lifecycle delta, in characters.
pub const MAX_DELTA_ERROR: usize = 2000;

/// `POST /deploy` of the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The deckies this host runs (its shard), on the master's idea of the network.
    pub config: DecnetConfig,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
    /// Rebuild the decky image.
    #[serde(default)]
    pub no_cache: bool,
}

/// `POST /teardown` of the agent: one decky, or the whole host when `None`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownRequest {
    /// The decky to remove.
    #[serde(default)]
    pub decky_id: Option<String>,
}

/// `POST /mutate` of the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutateRequest {
    /// The decky.
    pub decky_id: String,
    /// Its new services.
    pub services: Vec<String>,
    /// Validate only.
    #[serde(default)]
    pub dry_run: bool,
}

/// How one decky runs on its worker (`runtime[name]` of the snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeckyRuntime {
    /// Every service's container runs.
    pub running: bool,
    /// Service → Docker's state word, or `absent`.
    pub services: BTreeMap<String, String>,
}

/// `GET /status` of the agent, also the `status` of every heartbeat (swarm.md §4.4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentStatus {
    /// A fleet is deployed on the worker.
    pub deployed: bool,
    /// Its mode, when deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Where its compose file is, if one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_path: Option<String>,
    /// The deployed deckies.
    pub deckies: Vec<DeckyConfig>,
    /// How each runs; empty when Docker did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<BTreeMap<String, DeckyRuntime>>,
}

/// The outcome of an operation an agent ran in the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleDelta {
    /// The decky.
    pub decky_name: String,
    /// `deploy` or `mutate`.
    pub operation: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed (at most [`MAX_DELTA_ERROR`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

impl LifecycleDelta {
    /// A finished `operation` of `decky`: succeeded, or failed with `error` (clipped).
    pub fn finished(decky: &str, operation: &str, error: Option<&str>) -> Self {
        Self {
            decky_name: decky.to_owned(),
            operation: operation.to_owned(),
            status: if error.is_some() {
                "failed"
            } else {
                "succeeded"
            }
            .to_owned(),
            error: error.map(|e| e.chars().take(MAX_DELTA_ERROR).collect()),
            completed_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
        }
    }
}

/// `POST /swarm/heartbeat` body, as the agent sends it.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat<'a> {
    /// The worker's host id (from its enrolment).
    pub host_uuid: &'a str,
    /// The build that runs.
    pub agent_version: &'a str,
    /// The status snapshot.
    pub status: &'a AgentStatus,
    /// Outcomes of finished operations (one-off pushes only).
    #[serde(skip_serializing_if = "<[LifecycleDelta]>::is_empty")]
    pub lifecycle: &'a [LifecycleDelta],
}

/// `POST /swarm/heartbeat` body, as the master reads it (lenient where §5.5 is).
#[derive(Debug, Clone, Deserialize)]
pub struct HeartbeatIn {
    /// The claimed host id.
    pub host_uuid: String,
    /// The agent's build (not stored).
    #[serde(default)]
    pub agent_version: Option<String>,
    /// The status snapshot, checked entry by entry.
    pub status: StatusIn,
    /// The topology block (not used by decnet yet).
    #[serde(default)]
    pub topology: Option<serde_json::Value>,
    /// Lifecycle deltas, each checked on its own.
    #[serde(default)]
    pub lifecycle: Vec<serde_json::Value>,
}

/// The snapshot inside a heartbeat, before each decky is checked.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusIn {
    /// A fleet is deployed on the worker.
    #[serde(default)]
    pub deployed: bool,
    /// The deployed deckies, each parsed as a [`DeckyConfig`] by the handler.
    #[serde(default)]
    pub deckies: Vec<serde_json::Value>,
    /// Runtime by decky name.
    #[serde(default)]
    pub runtime: Option<BTreeMap<String, serde_json::Value>>,
}

impl StatusIn {
    /// Whether `decky` runs, per the runtime map (absent: no).
    pub fn running(&self, decky: &str) -> bool {
        self.runtime
            .as_ref()
            .and_then(|r| r.get(decky))
            .and_then(|d| d.get("running"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}
