//! Enrolment in one line (swarm.md §6.4): an admin asks for a bundle, the master answers
//! with `curl -fsSL <url> | sudo sh`, and the new worker fetches its script, its one-shot
//! payload ([`payload`]) and the `decnet` binary with nothing but the token in the URL.
//!
//! Decisions:
//! - Tokens, script and payload live in memory ([`tokens`]), never in files: the payload
//!   carries the worker's private key. A restart forgets them (enrol again).
//! - The binary served is the one the decky image is built from (the static build), its
//!   SHA-256 written into the script, which refuses anything else.
//! - The payload download records the TCP peer as the host's address (a proxy in front
//!   records itself; `X-Forwarded-For` is not trusted, as in the original).
pub mod create;
pub mod payload;
pub mod script;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::{ApiError, Segment};
use super::state::AppState;
pub use tokens::Tokens;

/// The 404 of an unknown, used or expired token.
pub const GONE: &str = "bundle not found or expired";

/// The enrolment state of the master: live tokens, the served binary's checksum, the
/// ports a new worker is told, the creation limit.
#[derive(Debug)]
pub struct Enrollment {
    /// Live tokens.
    pub tokens: Tokens,
    /// `POST /swarm/enroll-bundle`: 10 per minute and client address.
    pub limit: super::limiter::Limiter,
    /// The API's own port (URLs when the request names none), set once it is bound.
    pub api_port: std::sync::atomic::AtomicU16,
    /// The agent port a new worker listens on.
    pub agent_port: u16,
    /// The controller's port (heartbeats).
    pub swarmctl_port: u16,
    /// The log listener's port.
    pub syslog_port: u16,
    checksum: Mutex<Option<(PathBuf, std::time::SystemTime, u64, String)>>,
}

impl Enrollment {
    /// The enrolment state for `ports`; rate limited when `limits`.
    pub fn new(ports: &crate::config::Ports, limits: bool) -> Self {
        Self {
            tokens: Tokens::default(),
            limit: super::limiter::Limiter::new(10, std::time::Duration::from_secs(60), limits),
            api_port: std::sync::atomic::AtomicU16::new(ports.api),
            agent_port: ports.agent,
            swarmctl_port: ports.swarmctl,
            syslog_port: ports.syslog,
            checksum: Mutex::new(None),
        }
    }

    /// The SHA-256 (hex) of the binary at `path`, cached while its size and mtime stay.
    pub fn checksum(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        let stamp = (meta.modified()?, meta.len());
        {
            let cached = self.checksum.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((p, m, l, sum)) = cached.as_ref()
                && p == path
                && (*m, *l) == stamp
            {
                return Ok(sum.clone());
            }
        }
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        let sum = hex::encode(hasher.finalize());
        *self.checksum.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((path.to_path_buf(), stamp.0, stamp.1, sum.clone()));
        Ok(sum)
    }
}

/// The binary a new worker installs: the decky image's static binary, else this one.
pub fn served_binary(state: &AppState) -> std::io::Result<PathBuf> {
    match &state.fleet.options.decky_binary {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

fn typed(body: impl Into<Body>, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /swarm/enroll-bundle/{token}.sh` and `…/{token}.tgz` (no auth: the token is the
/// capability).
pub async fn download(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Segment(file): Segment<String>,
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound(GONE.into());
    if let Some(token) = file.strip_suffix(".sh") {
        let script = state.enrollment.tokens.script(token).ok_or_else(gone)?;
        return Ok(typed(script, "text/x-shellscript"));
    }
    let token = file.strip_suffix(".tgz").ok_or_else(gone)?;
    let (host_uuid, payload) = state
        .enrollment
        .tokens
        .take_payload(token)
        .ok_or_else(gone)?;
    let address = peer.ip().to_canonical().to_string();
    let (uuid, addr) = (host_uuid.clone(), address.clone());
    match state
        .db
        .write(move |s| s.set_host_address(&uuid, &addr))
        .await
    {
        Ok(true) => tracing::info!(host = %host_uuid, %address, "enrolment bundle fetched"),
        Ok(false) => return Err(gone()),
        Err(e) => tracing::error!(error = ?e, "recording an enrolled worker's address"),
    }
    Ok(typed(payload, "application/gzip"))
}

/// `GET /swarm/enroll-bundle/{token}/decnet`: the binary, while the token lives.
pub async fn binary(
    State(state): State<AppState>,
    Segment(token): Segment<String>,
) -> Result<Response, ApiError> {
    if !state.enrollment.tokens.is_live(&token) {
        return Err(ApiError::NotFound(GONE.into()));
    }
    let path = served_binary(&state).map_err(|e| ApiError::Internal(e.to_string()))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .len();
    let mut r = typed(
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
        "application/octet-stream",
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(r.into_response())
}
