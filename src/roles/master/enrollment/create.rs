//! `POST /api/v1/swarm/enroll-bundle` (admin; swarm.md §6.4): enrols a worker that has no
//! address yet and answers with the one line that installs it.
//!
//! All or nothing: the host row and its bundle exist only if the token, the script and
//! the payload were made; any later failure decommissions the half-enrolled host again.
use std::net::Ipv6Addr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::payload::{self, HostIni};
use super::script::Script;
use super::tokens::{Grant, TOKEN_TTL, new_token};
use super::{Enrollment, served_binary};
use crate::roles::master::auth::Admin;
use crate::roles::master::error::{ApiError, Body};
use crate::roles::master::state::AppState;
use crate::roles::master::swarm::enroll::{EnrollSpec, enroll_host};
use crate::roles::master::swarm::hosts::decommission;

/// `POST /swarm/enroll-bundle` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleRequest {
    /// The address the new worker reaches the master at (1–253 characters).
    pub master_host: String,
    /// The worker's name (`^[a-z0-9][a-z0-9-]{0,62}$`).
    pub agent_name: String,
    /// Also issue the worker's updater identity.
    #[serde(default = "yes")]
    pub with_updater: bool,
    /// Deploy with IPvlan on this worker.
    #[serde(default)]
    pub use_ipvlan: bool,
    /// A `services.ini` to install on the worker.
    #[serde(default)]
    pub services_ini: Option<String>,
}

fn yes() -> bool {
    true
}

/// `POST /swarm/enroll-bundle` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleCreated {
    /// The one-time token (also in the URLs).
    pub token: String,
    /// What to run on the new worker.
    pub command: String,
    /// When the token stops working (RFC 3339).
    pub expires_at: String,
    /// The enrolled host.
    pub host_uuid: String,
}

/// Largest `services_ini` accepted.
const MAX_SERVICES_INI: usize = 32 * 1024;

/// The agent name rule of the bundle flow.
fn valid_agent_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// `master_host` as it goes into a URL: a host name or IPv4 address as is, an IPv6
/// address in brackets; `None` when it is neither.
fn url_host(host: &str) -> Option<String> {
    if let Ok(v6) = host.trim_matches(['[', ']']).parse::<Ipv6Addr>() {
        return Some(format!("[{v6}]"));
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        && !host.starts_with(['-', '.']);
    ok.then(|| host.to_owned())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Creates a one-line enrolment (201).
#[utoipa::path(post, path = "/api/v1/swarm/enroll-bundle", tag = "swarm",
    request_body = BundleRequest, security(("bearer" = [])),
    responses((status = 201, body = BundleCreated), (status = 409), (status = 422), (status = 429)))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Body(req): Body<BundleRequest>,
) -> Result<(StatusCode, Json<BundleCreated>), ApiError> {
    state
        .enrollment
        .limit
        .hit(&peer.ip().to_canonical().to_string())
        .map_err(|wait| {
            ApiError::TooMany("Too many enrolment bundles; try again later.".into(), wait)
        })?;
    if !valid_agent_name(&req.agent_name) {
        return Err(ApiError::Unprocessable(
            "agent_name: use 1 to 63 characters from a-z, 0-9 and '-', starting with a letter or digit"
                .into(),
        ));
    }
    let host = url_host(req.master_host.trim()).ok_or_else(|| {
        ApiError::Unprocessable(
            "master_host: a host name or IP address (1 to 253 characters)".into(),
        )
    })?;
    if req
        .services_ini
        .as_ref()
        .is_some_and(|s| s.len() > MAX_SERVICES_INI)
    {
        return Err(ApiError::Unprocessable(format!(
            "services_ini: at most {MAX_SERVICES_INI} bytes"
        )));
    }
    // The URLs keep the port the admin reached this API on (the worker reaches it the
    // same way), with the master's address as the worker knows it.
    let port = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or_else(|| {
            state
                .enrollment
                .api_port
                .load(std::sync::atomic::Ordering::Relaxed)
        });
    let base = format!("http://{host}:{port}/api/v1/swarm/enroll-bundle");

    let enrolled = enroll_host(
        &state,
        EnrollSpec {
            name: req.agent_name.clone(),
            address: String::new(),
            agent_port: state.enrollment.agent_port,
            sans: Vec::new(),
            notes: Some("enrolled via UI bundle".into()),
            updater: req.with_updater,
            use_ipvlan: req.use_ipvlan,
        },
    )
    .await?;
    let uuid = enrolled.host.uuid.clone();
    match prepare(&state, &req, &host, &base, &enrolled).await {
        Ok(created) => Ok((StatusCode::CREATED, Json(created))),
        Err(e) => {
            if let Err(undo) = decommission(&state, &uuid).await {
                tracing::error!(host = %uuid, error = ?undo, "undoing a failed bundle enrolment");
            }
            Err(e)
        }
    }
}

/// Builds the payload, the script and the token of an enrolled host.
async fn prepare(
    state: &AppState,
    req: &BundleRequest,
    host: &str,
    base: &str,
    enrolled: &crate::roles::master::swarm::enroll::Enrolled,
) -> Result<BundleCreated, ApiError> {
    let e: &Enrollment = &state.enrollment;
    let binary = served_binary(state).map_err(|e| ApiError::Internal(e.to_string()))?;
    let st = state.clone();
    let sum = tokio::task::spawn_blocking(move || st.enrollment.checksum(&binary))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("the binary to serve: {e}")))?;
    let ini = HostIni {
        host_uuid: &enrolled.host.uuid,
        master_host: host.trim_matches(['[', ']']),
        swarmctl_port: e.swarmctl_port,
        syslog_port: e.syslog_port,
        agent_port: enrolled.host.agent_port,
        ipvlan: req.use_ipvlan,
    };
    let entries = payload::entries(
        &enrolled.dir,
        &ini,
        crate::units::WORKER,
        req.services_ini.as_deref(),
    )
    .map_err(|e| ApiError::Internal(format!("the worker payload: {e}")))?;
    let tgz = payload::tgz(&entries).map_err(|e| ApiError::Internal(e.to_string()))?;
    let token = new_token();
    let now = time::OffsetDateTime::now_utc();
    let expires = now + TOKEN_TTL;
    let script = Script {
        agent_name: &req.agent_name,
        master_host: host,
        base_url: base,
        token: &token,
        binary_sha256: &sum,
        version: crate::VERSION,
        generated_at: &rfc3339(now),
        expires_at: &rfc3339(expires),
    }
    .render()
    .ok_or_else(|| ApiError::Unprocessable("master_host: not usable in a shell command".into()))?;
    let grant = Grant {
        host_uuid: enrolled.host.uuid.clone(),
        script: script.into(),
        payload: Some(tgz.into()),
        expires: tokio::time::Instant::now() + TOKEN_TTL,
    };
    if !e.tokens.insert(token.clone(), grant) {
        return Err(ApiError::TooMany(
            "Too many enrolments are waiting for their worker; try again in a few minutes.".into(),
            60,
        ));
    }
    Ok(BundleCreated {
        command: format!("curl -fsSL {base}/{token}.sh | sudo sh"),
        token,
        expires_at: rfc3339(expires),
        host_uuid: enrolled.host.uuid.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosts_are_checked_before_anything_is_issued() {
        for ok in ["w1", "worker-2", "0a"] {
            assert!(valid_agent_name(ok), "{ok}");
        }
        for bad in ["", "-w", "W1", "w_1", &"a".repeat(64), "w 1"] {
            assert!(!valid_agent_name(bad), "{bad}");
        }
        assert_eq!(url_host("203.0.113.1").as_deref(), Some("203.0.113.1"));
        assert_eq!(url_host("master.lan").as_deref(), Some("master.lan"));
        assert_eq!(url_host("::1").as_deref(), Some("[::1]"));
        for bad in ["", "a b", "x;rm", "-x", "a/b", "$(id)"] {
            assert!(url_host(bad).is_none(), "{bad}");
        }
    }
}
