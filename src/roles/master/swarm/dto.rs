//! The controller's request and answer shapes (swarm.md §5.3), and the JSON body
//! extractor whose 422 names the offending field.
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::error::ApiError;
use crate::model::{DeckyConfig, DecnetConfig};
use crate::store::{Shard, SwarmHost};

/// Longest host name.
pub const MAX_NAME: usize = 64;
/// Longest address or SAN.
pub const MAX_ADDRESS: usize = 253;
/// Most SANs one enrolment may ask for.
pub const MAX_SANS: usize = 64;
/// Longest notes text.
pub const MAX_NOTES: usize = 4096;

/// A JSON body; malformed or invalid → 422 whose detail names the field (its path).
#[derive(Debug)]
pub struct Checked<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Checked<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Unprocessable(
                "body: Content-Type must be application/json".into(),
            )),
            Err(e) => Err(ApiError::Unprocessable(format!("body: {}", e.body_text()))),
        }
    }
}

fn unprocessable(field: &str, why: &str) -> ApiError {
    ApiError::Unprocessable(format!("{field}: {why}"))
}

/// Whether `s` matches `^[A-Za-z0-9][A-Za-z0-9<extra>]*$`.
fn pattern(s: &str, extra: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Checks a host name (`^[A-Za-z0-9][A-Za-z0-9._\-]*$`, 1–64).
pub fn check_name(field: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_NAME || !pattern(s, "._-") {
        return Err(unprocessable(
            field,
            "must be 1-64 characters matching ^[A-Za-z0-9][A-Za-z0-9._\\-]*$",
        ));
    }
    Ok(())
}

/// Checks an address or SAN (`^[A-Za-z0-9][A-Za-z0-9._:\-]*$`, 1–253).
pub fn check_address(field: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_ADDRESS || !pattern(s, "._:-") {
        return Err(unprocessable(
            field,
            "must be 1-253 characters matching ^[A-Za-z0-9][A-Za-z0-9._:\\-]*$",
        ));
    }
    Ok(())
}

fn default_agent_port() -> u16 {
    8765
}

/// `POST /swarm/enroll` body (SwarmEnrollRequest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// Host name, also the certificate CN.
    pub name: String,
    /// How the master reaches the agent.
    pub address: String,
    /// The agent's port.
    #[serde(default = "default_agent_port")]
    pub agent_port: u16,
    /// Extra SANs of the agent certificate.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Operator's notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Also issue an updater identity.
    #[serde(default)]
    pub issue_updater_bundle: bool,
}

impl EnrollRequest {
    /// Checks the field patterns; the 422 names the first bad field.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        check_address("address", &self.address)?;
        if self.agent_port == 0 {
            return Err(unprocessable("agent_port", "must be between 1 and 65535"));
        }
        if self.sans.len() > MAX_SANS {
            return Err(unprocessable("sans", "at most 64 entries"));
        }
        for (i, san) in self.sans.iter().enumerate() {
            check_address(&format!("sans[{i}]"), san)?;
        }
        if self.notes.as_ref().is_some_and(|n| n.len() > MAX_NOTES) {
            return Err(unprocessable("notes", "at most 4096 bytes"));
        }
        Ok(())
    }
}

/// The updater part of an enrolled bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdaterBundle {
    /// Pin of the updater certificate.
    pub fingerprint: String,
    /// The updater certificate.
    pub updater_cert_pem: String,
    /// Its private key (returned once).
    pub updater_key_pem: String,
}

/// `POST /swarm/enroll` answer (SwarmEnrolledBundle); private keys are returned once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolledBundle {
    /// The new host's id.
    pub host_uuid: String,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its agent port.
    pub agent_port: u16,
    /// Pin of the agent certificate.
    pub fingerprint: String,
    /// The decnet CA certificate.
    pub ca_cert_pem: String,
    /// The agent certificate.
    pub worker_cert_pem: String,
    /// Its private key.
    pub worker_key_pem: String,
    /// The updater identity, when asked for.
    pub updater: Option<UpdaterBundle>,
    /// Pin of the master identity (the log listener), for `master.fingerprint`.
    pub master_fingerprint: String,
    /// Pin of the controller's TLS certificate, for `swarmctl.fingerprint` (`None` when
    /// the controller serves plain HTTP).
    pub swarmctl_fingerprint: Option<String>,
}

/// A host as the API shows it (SwarmHostView; no bundle path).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    /// Id.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Agent port.
    pub agent_port: u16,
    /// `enrolled`, `active` or `unreachable`.
    pub status: String,
    /// Last heartbeat or successful probe.
    pub last_heartbeat: Option<String>,
    /// Agent certificate pin.
    pub client_cert_fingerprint: String,
    /// Updater certificate pin.
    pub updater_cert_fingerprint: Option<String>,
    /// Enrolment time.
    pub enrolled_at: String,
    /// Notes.
    pub notes: Option<String>,
    /// IPvlan on this host.
    pub use_ipvlan: bool,
    /// The build its agent last reported (since this master started).
    pub agent_version: Option<String>,
}

impl From<SwarmHost> for HostView {
    fn from(h: SwarmHost) -> Self {
        Self {
            uuid: h.uuid,
            name: h.name,
            address: h.address,
            agent_port: h.agent_port,
            status: h.status,
            last_heartbeat: h.last_heartbeat,
            client_cert_fingerprint: h.client_cert_fingerprint,
            updater_cert_fingerprint: h.updater_cert_fingerprint,
            enrolled_at: h.enrolled_at,
            notes: h.notes,
            use_ipvlan: h.use_ipvlan,
            agent_version: None,
        }
    }
}

/// One host's outcome of a dispatch (SwarmHostResult).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostResult {
    /// The host.
    pub host_uuid: String,
    /// Its name.
    pub host_name: String,
    /// The agent accepted.
    pub ok: bool,
    /// The agent's body on success, the error text on failure.
    pub detail: serde_json::Value,
}

/// One host's probe (SwarmHostHealth).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostHealth {
    /// The host.
    pub host_uuid: String,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// It answered.
    pub reachable: bool,
    /// Its `/health` body, or `probe failed`.
    pub detail: serde_json::Value,
}

/// `{"results": […]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results<T> {
    /// One entry per host.
    pub results: Vec<T>,
}

/// `POST /swarm/deploy` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// The whole fleet, every decky with its `host_uuid`.
    pub config: DecnetConfig,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
    /// Rebuild images.
    #[serde(default)]
    pub no_cache: bool,
}

/// `POST /swarm/teardown` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownBody {
    /// One host (default: every host).
    #[serde(default)]
    pub host_uuid: Option<String>,
    /// One decky (default: all of them).
    #[serde(default)]
    pub decky_id: Option<String>,
}

/// `POST /api/v1/swarm/hosts/{uuid}/teardown` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTeardownBody {
    /// One decky (default: all of the host's).
    #[serde(default)]
    pub decky_id: Option<String>,
}

/// `POST /api/v1/swarm/hosts/{uuid}/teardown` answer (202).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeardownQueued {
    /// The host.
    pub host_uuid: String,
    /// Its name.
    pub host_name: String,
    /// The decky, if one.
    pub decky_id: Option<String>,
    /// Always true.
    pub accepted: bool,
    /// `teardown queued`.
    pub detail: String,
}

/// `?host_status=` of the host lists.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostsQuery {
    /// Exact status filter.
    #[serde(default)]
    pub host_status: Option<String>,
}

/// `?host_uuid=&state=` of the decky lists.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeckiesQuery {
    /// One host only.
    #[serde(default)]
    pub host_uuid: Option<String>,
    /// Exact state filter.
    #[serde(default)]
    pub state: Option<String>,
}

/// A shard joined with its host and flattened from its config snapshot (DeckyShardView).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardView {
    /// The decky.
    pub decky_name: String,
    /// Its address.
    pub decky_ip: Option<String>,
    /// Its host.
    pub host_uuid: String,
    /// The host's name (`<unknown>` without a host row).
    pub host_name: String,
    /// The host's address (`""` without a host row).
    pub host_address: String,
    /// The host's status (`unknown` without a host row).
    pub host_status: String,
    /// Its services.
    pub services: Vec<String>,
    /// `pending`, `running`, `degraded`, `failed`, `tearing_down`, `teardown_failed`.
    pub state: String,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Legacy, never written.
    pub compose_hash: Option<String>,
    /// Last change.
    pub updated_at: String,
    /// From the snapshot.
    pub hostname: Option<String>,
    /// From the snapshot.
    pub distro: Option<String>,
    /// From the snapshot.
    pub archetype: Option<String>,
    /// From the snapshot.
    pub service_config: serde_json::Value,
    /// From the snapshot.
    pub mutate_interval: Option<u32>,
    /// From the snapshot.
    pub last_mutated: f64,
    /// Last heartbeat that reported it.
    pub last_seen: Option<String>,
}

impl ShardView {
    /// `shard` on `host` (if the row exists), with the §5.4 fallbacks.
    pub fn new(shard: Shard, host: Option<&SwarmHost>) -> Self {
        let snap: Option<DeckyConfig> = shard
            .decky_config
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        let services = serde_json::from_str(&shard.services).unwrap_or_default();
        let decky_ip = shard
            .decky_ip
            .filter(|ip| !ip.is_empty())
            .or_else(|| snap.as_ref().map(|s| s.ip.to_string()));
        Self {
            decky_name: shard.decky_name,
            decky_ip,
            host_uuid: shard.host_uuid,
            host_name: host.map_or_else(|| "<unknown>".into(), |h| h.name.clone()),
            host_address: host.map(|h| h.address.clone()).unwrap_or_default(),
            host_status: host.map_or_else(|| "unknown".into(), |h| h.status.clone()),
            services,
            state: shard.state,
            last_error: shard.last_error,
            compose_hash: None,
            updated_at: shard.updated_at,
            hostname: snap.as_ref().map(|s| s.hostname.clone()),
            distro: snap.as_ref().map(|s| s.distro.clone()),
            archetype: snap.as_ref().and_then(|s| s.archetype.clone()),
            service_config: snap
                .as_ref()
                .and_then(|s| serde_json::to_value(&s.service_config).ok())
                .unwrap_or_else(|| serde_json::json!({})),
            mutate_interval: snap.as_ref().and_then(|s| s.mutate_interval),
            last_mutated: snap.as_ref().map_or(0.0, |s| s.last_mutated),
            last_seen: shard.last_seen,
        }
    }
}
