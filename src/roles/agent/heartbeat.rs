//! The heartbeat to the swarm controller (swarm.md §4.8): `POST /swarm/heartbeat` with
//! the status snapshot, at once and then every [`HeartbeatConfig::interval`], plus a
//! one-off push with the lifecycle deltas when a background operation ends.
//!
//! The controller is checked beyond the CA: its certificate must be the `swarmctl`
//! identity and, when the bundle holds `swarmctl.fingerprint`, exactly that
//! certificate, so a heartbeat (which carries the fleet's layout) never reaches an
//! impostor holding some other decnet certificate. The agent proves itself with its
//! worker certificate, which the controller compares with the enrolled pin (§5.5).
//! 204 is accepted (200 too, for a push); anything else is logged with ≤ 200 characters
//! of the body and the loop goes on: an operator may re-enrol mid-session.
use std::path::Path;
use std::time::Duration;

use http::Method;
use tokio_util::sync::CancellationToken;

use super::{AgentState, Error, snapshot};
use crate::https::{Client, Timeouts};
use crate::model::swarm::{Heartbeat, LifecycleDelta};
use crate::pki::{self, Bundle, SWARMCTL_CN};
use crate::text::cap_str;
use crate::tls::{self, ClientOptions};

/// The controller's heartbeat route.
pub const PATH: &str = "/swarm/heartbeat";
/// The interval of §4.8.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Where heartbeats go and how often.
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    /// This worker's enrolled host id.
    pub host_uuid: String,
    /// The controller's host (`DECNET_MASTER_HOST`).
    pub master_host: String,
    /// The controller's port (`DECNET_SWARMCTL_PORT`, 8770).
    pub port: u16,
    /// Time between beats (30 s; tests use less).
    pub interval: Duration,
    /// Also check the controller's name against its certificate.
    pub verify_hostname: bool,
}

impl HeartbeatConfig {
    /// Beats every 30 s to `master_host:port` as `host_uuid`.
    pub fn new(host_uuid: String, master_host: String, port: u16, verify_hostname: bool) -> Self {
        Self {
            host_uuid,
            master_host,
            port,
            interval: DEFAULT_INTERVAL,
            verify_hostname,
        }
    }
}

/// The heartbeat's client and identity.
#[derive(Debug)]
pub struct Heartbeater {
    client: Client,
    host_uuid: String,
    interval: Duration,
}

impl Heartbeater {
    /// A client presenting `bundle` to the controller of `config`, pinned to the
    /// bundle's `swarmctl.fingerprint` in `agent_dir` when there is one.
    pub fn new(bundle: &Bundle, agent_dir: &Path, config: &HeartbeatConfig) -> Result<Self, Error> {
        let pin = pki::read_swarmctl_pin(agent_dir).map_err(Error::Pin)?;
        let tls = tls::client_config(
            bundle,
            &ClientOptions {
                identity: Some(SWARMCTL_CN.to_owned()),
                pin,
                verify_hostname: config.verify_hostname,
            },
        )?;
        Ok(Self {
            client: Client::new(tls, config.master_host.clone(), config.port),
            host_uuid: config.host_uuid.clone(),
            interval: config.interval,
        })
    }
}

/// Sends one beat with a fresh snapshot and `lifecycle`; whether it was accepted.
async fn beat(state: &AgentState, hb: &Heartbeater, lifecycle: &[LifecycleDelta]) -> bool {
    let status = snapshot::take(state).await;
    let body = Heartbeat {
        host_uuid: &hb.host_uuid,
        agent_version: crate::VERSION,
        status: &status,
        lifecycle,
    };
    match hb
        .client
        .json(Method::POST, PATH, &body, Timeouts::HEARTBEAT)
        .await
    {
        Ok(r)
            if r.status.as_u16() == 204 || (!lifecycle.is_empty() && r.status.as_u16() == 200) =>
        {
            true
        }
        Ok(r) => {
            let text = String::from_utf8_lossy(&r.body);
            tracing::warn!(status = %r.status, body = %cap_str(&text, 200), "heartbeat not accepted");
            false
        }
        Err(e) if e.is_wrong_peer() => {
            tracing::error!(error = %e, "heartbeat refused: the controller is not the pinned swarmctl identity");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat failed; retrying next tick");
            false
        }
    }
}

/// Beats until `stop`: the first at once, then every interval.
pub async fn run(state: &AgentState, stop: CancellationToken) {
    let Some(hb) = state.inner.heartbeat.as_ref() else {
        return;
    };
    loop {
        tokio::select! {
            _ = beat(state, hb, &[]) => {}
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(hb.interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Pushes `deltas` at once (failures are logged: the master's stale-row sweep is the
/// backstop). Nothing when the host is not enrolled or there is nothing to say.
pub async fn push(state: &AgentState, deltas: &[LifecycleDelta]) {
    if let (Some(hb), false) = (state.inner.heartbeat.as_ref(), deltas.is_empty()) {
        beat(state, hb, deltas).await;
    }
}
