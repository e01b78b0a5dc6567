//! The one host as a swarm of one: the swarm controller on loopback mTLS, this host
//! enrolled as worker [`LOCAL_WORKER`] with the forwarder's bundle, and a real agent in
//! this process that the master drives and that heartbeats to the controller, pinned
//! both ways, exactly as a remote worker does.
//!
//! What differs from a remote worker, on purpose: the agent's self-destruct tears the
//! fleet down but deletes nothing (this host's state directory is the master's too), and
//! the controller stays on loopback.
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::first_run::LOCAL_WORKER;
use super::{Error, component};
use crate::config::Config;
use crate::pki::{self, Bundle};
use crate::roles::agent::{self, AgentSettings, AgentState, HeartbeatConfig, ReaperConfig};
use crate::roles::master::{AppState, new_uuid, swarm};
use crate::store::SwarmHost;
use crate::store::swarm_status::{ENROLLED, now_text};

/// This host's row in the swarm, created (or re-pinned after a re-issued bundle) now.
async fn enrol(state: &AppState, config: &Config, agent_port: u16) -> Result<SwarmHost, Error> {
    let dir = config.agent_dir.clone();
    let bundle = tokio::task::spawn_blocking(move || Bundle::load(&dir, agent::BUNDLE_STEM))
        .await
        .map_err(|e| component("local agent", e))??;
    let fingerprint = bundle.fingerprint().to_string();
    let found = state
        .db
        .read(|r| r.host_by_name(LOCAL_WORKER))
        .await
        .map_err(|e| component("local agent", format!("{e:?}")))?;
    if let Some(h) = found {
        if h.client_cert_fingerprint == fingerprint && h.agent_port == agent_port {
            state.swarm.registry.insert(&h);
            return Ok(h);
        }
        let uuid = h.uuid.clone();
        state
            .db
            .write(move |s| s.delete_host(&uuid))
            .await
            .map_err(|e| component("local agent", format!("{e:?}")))?;
    }
    let host = SwarmHost {
        uuid: new_uuid(),
        name: LOCAL_WORKER.to_owned(),
        address: "127.0.0.1".into(),
        agent_port,
        status: ENROLLED.into(),
        last_heartbeat: None,
        client_cert_fingerprint: fingerprint,
        updater_cert_fingerprint: None,
        cert_bundle_path: config.agent_dir.display().to_string(),
        enrolled_at: now_text(),
        notes: Some("this host (decnet up)".into()),
        use_ipvlan: false,
    };
    let row = host.clone();
    state
        .db
        .write(move |s| s.add_host(&row))
        .await
        .map_err(|e| component("local agent", format!("{e:?}")))?;
    state.swarm.registry.insert(&host);
    Ok(host)
}

/// Starts the controller on `ctl` and the local agent on `agent_tcp`; returns their
/// addresses once both are serving.
pub async fn start(
    state: &AppState,
    config: &Config,
    ctl: TcpListener,
    agent_tcp: TcpListener,
    shutdown: &CancellationToken,
) -> Result<(std::net::SocketAddr, std::net::SocketAddr), Error> {
    let ctl_addr = ctl
        .local_addr()
        .map_err(|e| component("swarm controller", e))?;
    let agent_addr = agent_tcp
        .local_addr()
        .map_err(|e| component("local agent", e))?;
    let acceptor = state
        .swarm
        .controller_tls(&[])
        .map_err(|e| component("swarm controller", e))?;
    if let Some(pin) = state.swarm.controller_pin() {
        pki::write_swarmctl_pin(&config.agent_dir, &pin)?;
    }
    let host = enrol(state, config, agent_addr.port()).await?;
    tokio::spawn(swarm::serve_controller(
        ctl,
        state.clone(),
        Some(acceptor),
        shutdown.child_token(),
    ));
    let mut settings = AgentSettings::from_config(config, config.agent_dir.clone());
    settings.driver = crate::engine::plan::Driver::Bridge;
    let mut beat = HeartbeatConfig::new(
        host.uuid.clone(),
        "127.0.0.1".into(),
        ctl_addr.port(),
        false,
    );
    beat.interval = config.heartbeat_interval;
    settings.heartbeat = Some(beat);
    settings.reaper = ReaperConfig {
        paths: Vec::<PathBuf>::new(),
        units: Vec::new(),
    };
    let agent_state = AgentState::new(settings).map_err(|e| component("local agent", e))?;
    tokio::spawn(agent::serve(agent_tcp, agent_state, shutdown.child_token()));
    Ok((ctl_addr, agent_addr))
}
