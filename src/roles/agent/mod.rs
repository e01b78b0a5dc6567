//! `decnet agent`: the worker's mTLS API the master drives (swarm.md §4), its heartbeat
//! to the swarm controller (§4.8) and, in the same process, the collector and forwarder
//! that carry its deckies' logs to the master.
//!
//! Layout: [`gate`] admits the master identity only (spec/README: stricter than the
//! original, which let any CA-signed certificate drive an agent); [`api`] holds the
//! routes and their bodies; [`ops`] runs deploy, mutate and teardown through the engine
//! under one lock; [`relocal`] moves a swarm fleet onto this host's LAN; [`snapshot`]
//! builds the status the API and every heartbeat carry; [`heartbeat`] sends it;
//! [`reaper`] removes the install on self-destruct.
//!
//! "No Docker on boot" (§4.1): starting the agent never touches Docker. The engine is
//! dialled on the first request that needs it and then kept, so an agent started before
//! its Docker engine works once the engine is up. Long operations answer 202 and report
//! through one lifecycle heartbeat (settled disagreement swarm #10).
mod api;
mod gate;
mod heartbeat;
mod ops;
mod reaper;
mod relocal;
mod snapshot;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, OnceCell};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::Engine;
use crate::engine::plan::Driver;
use crate::https::{self, ServeOptions};
use crate::pki::{self, Bundle};
use crate::roles::{collector, forwarder};
use crate::tls;

pub use heartbeat::HeartbeatConfig;
pub use reaper::{DEFAULT_UNITS, ReaperConfig};
pub use relocal::{RelocaliseError, relocalise};
pub use snapshot::runtime_map;

/// Largest request body the agent reads (a fleet of a few thousand deckies fits).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// File stem of the worker bundle in the agent directory (`worker.crt`, `worker.key`).
pub const BUNDLE_STEM: &str = "worker";
/// How long background operations may finish after shutdown before they are left.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the agent could not start.
#[derive(Debug, Error)]
pub enum Error {
    /// The worker bundle is missing or unreadable.
    #[error("worker bundle in {dir}: {source}")]
    Bundle {
        /// The agent directory.
        dir: PathBuf,
        /// Why.
        source: pki::Error,
    },
    /// A pin file of the bundle is unreadable.
    #[error("{0}")]
    Pin(pki::Error),
    /// The bundle does not make a TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] tls::Error),
    /// The API address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What the agent's API and heartbeat need ([`serve`]).
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The agent directory: the worker bundle, `master.fingerprint`, `swarmctl.fingerprint`.
    pub agent_dir: PathBuf,
    /// The state directory holding `decnet-state.json` (`DECNET_HOME`).
    pub home: PathBuf,
    /// The Docker endpoint (`DOCKER_HOST`), `None` for the local socket.
    pub docker_host: Option<String>,
    /// The static binary decky images hold (`None`: this executable).
    pub decky_binary: Option<PathBuf>,
    /// Host directory of captured files (`DECNET_ARTIFACTS_ROOT`).
    pub artifacts_root: PathBuf,
    /// How deckies attach unless the fleet asks for IPvlan (MACVLAN by default).
    pub driver: Driver,
    /// The heartbeat to the swarm controller; `None` when the host is not enrolled.
    pub heartbeat: Option<HeartbeatConfig>,
    /// What self-destruct removes.
    pub reaper: ReaperConfig,
}

impl AgentSettings {
    /// The settings of `config` with the agent directory `agent_dir` (flag or
    /// `DECNET_AGENT_DIR`): heartbeat when both host id and master host are known.
    pub fn from_config(config: &crate::config::Config, agent_dir: PathBuf) -> Self {
        let heartbeat = match (&config.host_uuid, &config.heartbeat_master_host) {
            (Some(uuid), Some(host)) => {
                let mut beat = HeartbeatConfig::new(
                    uuid.clone(),
                    host.clone(),
                    config.ports.swarmctl,
                    config.verify_hostname,
                );
                beat.interval = config.heartbeat_interval;
                Some(beat)
            }
            _ => None,
        };
        let reaper =
            ReaperConfig::defaults(&agent_dir, &config.home, config.install_root.as_deref());
        Self {
            agent_dir,
            home: config.home.clone(),
            docker_host: config.docker_host.clone(),
            decky_binary: config.decky_binary.clone(),
            artifacts_root: config.artifacts_root.clone(),
            driver: Driver::Macvlan,
            heartbeat,
            reaper,
        }
    }
}

/// What `decnet agent` runs ([`run`]): the API settings, its address, and the log
/// shipping composed into the same process.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The API's settings.
    pub settings: AgentSettings,
    /// Where the API listens (`0.0.0.0:8765` by default).
    pub bind: SocketAddr,
    /// The collector (decky containers → the local log), unless `--no-collector`.
    pub collector: Option<collector::Settings>,
    /// The forwarder (the local log → the master), unless `--no-forwarder` or no master.
    pub forwarder: Option<forwarder::ForwarderConfig>,
}

/// The agent's shared state: settings, TLS, the engine handle, the fleet lock.
#[derive(Debug, Clone)]
pub struct AgentState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AgentSettings,
    tls: Arc<rustls::ServerConfig>,
    engine: OnceCell<Engine>,
    /// Held by every operation that changes the fleet, so two never interleave.
    lock: Mutex<()>,
    /// Background deploys and mutations, awaited (bounded) at shutdown.
    tasks: TaskTracker,
    heartbeat: Option<heartbeat::Heartbeater>,
    /// Cancelled at shutdown: a deploy in progress is undone by the engine.
    shutdown: CancellationToken,
}

impl AgentState {
    /// Loads the worker bundle of `settings.agent_dir` and prepares the TLS server and
    /// the heartbeat client (pinned to `swarmctl.fingerprint` when the bundle has one).
    pub fn new(settings: AgentSettings) -> Result<Self, Error> {
        let bundle = load_bundle(&settings.agent_dir)?;
        let tls = tls::server_config(&bundle)?;
        let heartbeat = match &settings.heartbeat {
            Some(hb) => Some(heartbeat::Heartbeater::new(
                &bundle,
                &settings.agent_dir,
                hb,
            )?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                tls,
                engine: OnceCell::new(),
                lock: Mutex::new(()),
                tasks: TaskTracker::new(),
                heartbeat,
                shutdown: CancellationToken::new(),
            }),
        })
    }

    fn settings(&self) -> &AgentSettings {
        &self.inner.settings
    }

    /// The Docker engine, dialled on first use and kept.
    async fn engine(&self) -> Result<Engine, crate::engine::Error> {
        self.inner
            .engine
            .get_or_try_init(|| Engine::connect(self.inner.settings.docker_host.as_deref()))
            .await
            .cloned()
    }

    fn state_path(&self) -> PathBuf {
        crate::engine::state::path_in(&self.inner.settings.home)
    }
}

/// Whether the agent directory `dir` holds a complete worker bundle.
pub fn has_bundle(dir: &std::path::Path) -> bool {
    Bundle::exists(dir, BUNDLE_STEM)
}

fn load_bundle(dir: &std::path::Path) -> Result<Bundle, Error> {
    Bundle::load(dir, BUNDLE_STEM).map_err(|source| Error::Bundle {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Serves the agent API on `listener` (mTLS, master identity only) and runs the
/// heartbeat, until `shutdown`; then lets background operations finish (bounded).
pub async fn serve(listener: TcpListener, state: AgentState, shutdown: CancellationToken) {
    let beats = state.inner.heartbeat.is_some().then(|| {
        let (state, stop) = (state.clone(), shutdown.clone());
        tokio::spawn(async move { heartbeat::run(&state, stop).await })
    });
    let app = api::router(state.clone());
    let acceptor = TlsAcceptor::from(state.inner.tls.clone());
    https::serve(
        listener,
        Some(acceptor),
        app,
        shutdown.clone(),
        ServeOptions::default(),
    )
    .await;
    state.inner.shutdown.cancel();
    state.inner.tasks.close();
    if tokio::time::timeout(STOP_GRACE, state.inner.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("agent operations still running after {STOP_GRACE:?}; leaving them");
    }
    if let Some(b) = beats {
        let _ = b.await;
    }
}

/// Runs `decnet agent`: binds the API, starts the collector and forwarder when
/// configured, and serves until `shutdown`.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), Error> {
    let state = AgentState::new(config.settings.clone())?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| Error::Bind {
            addr: config.bind,
            source,
        })?;
    tracing::info!(addr = %config.bind, "agent API listening (mTLS, master identity only)");
    let tasks = TaskTracker::new();
    if let Some(settings) = config.collector {
        let (docker, stop) = (config.settings.docker_host.clone(), shutdown.clone());
        tasks.spawn(async move {
            // The collector is the one part that needs Docker from the start; without it
            // the API still serves and the operator sees why logs do not flow.
            match Engine::connect(docker.as_deref()).await {
                Ok(engine) => {
                    if let Err(e) = collector::serve(engine, settings, None, stop).await {
                        tracing::error!(error = %e, "collector stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "collector not started"),
            }
        });
    }
    if let Some(fwd) = config.forwarder {
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = forwarder::run(fwd, stop).await {
                tracing::error!(error = %e, "forwarder stopped");
            }
        });
    }
    tasks.close();
    serve(listener, state, shutdown).await;
    if tokio::time::timeout(STOP_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("log shipping still running after {STOP_GRACE:?}; leaving it");
    }
    Ok(())
}
