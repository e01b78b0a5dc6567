//! The master's swarm controller (swarm.md §5, §6.1, §7): enrolment, heartbeats,
//! host management and sharded dispatch to worker agents.
//!
//! `decnet master` serves the controller beside the API, in the same process and over the
//! same store and [`AppState`], on `127.0.0.1:8770` by default: plain HTTP on loopback, or
//! mutual TLS with the `swarmctl` certificate (`--tls`, required off loopback and for
//! heartbeats, which prove their host by the client certificate's pin). The dashboard's
//! `/api/v1/swarm/*` routes run the same operations in-process ([`api_routes`]).
//!
//! Modules:
//! - [`client`]: [`client::AgentClient`], the pinned calls to one agent.
//! - [`registry`]: the in-memory hosts that answer heartbeats, and the batched writes.
//! - [`gate`]: the operator routes' admin-JWT + transport check.
//! - [`dto`]: request and answer shapes, the 422 body extractor.
//! - [`enroll`], [`heartbeat`], [`hosts`], [`dispatch`]: the operations.
//! - [`routes`]: the handlers of both routers.
pub mod client;
pub mod dispatch;
pub mod dto;
pub mod enroll;
pub mod gate;
pub mod heartbeat;
pub mod hosts;
pub mod registry;
pub mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limiter::Limiter;
use super::state::AppState;
use crate::bus::{Bus, NullBus};
use crate::config::BusConfig;
use crate::pki::{Bundle, Fingerprint, Layout};
use crate::store::SwarmHost;
use client::{AgentClient, AgentError};

/// Where and how the controller is served by `decnet master`.
#[derive(Debug, Clone)]
pub struct ControllerBind {
    /// Bind address.
    pub addr: SocketAddr,
    /// Mutual TLS with the `swarmctl` certificate (else plain HTTP, loopback only).
    pub tls: bool,
    /// Names and addresses the `swarmctl` certificate must carry besides loopback.
    pub sans: Vec<String>,
}

/// How the controller behaves.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// The PKI directory (CA, master identity, worker bundles).
    pub pki_dir: PathBuf,
    /// Also check agents' host names against their certificates.
    pub verify_hostname: bool,
    /// Silence after which an active host is marked unreachable (3 beats: 90 s).
    pub beat_window: Duration,
    /// How often heartbeat writes are committed.
    pub flush_every: Duration,
    /// The controller `decnet master` serves (`None`: not served).
    pub controller: Option<ControllerBind>,
}

impl SwarmOptions {
    /// The defaults for state directory `home` (PKI in `<home>/pki`, no controller).
    pub fn for_home(home: &std::path::Path) -> Self {
        Self {
            pki_dir: home.join("pki"),
            verify_hostname: false,
            beat_window: Duration::from_secs(90),
            flush_every: Duration::from_secs(1),
            controller: None,
        }
    }
}

/// The controller's shared state (a field of [`AppState`]).
#[derive(Debug)]
pub struct Swarm {
    /// Behaviour.
    pub options: SwarmOptions,
    /// The hosts heartbeats are checked against, and their pending writes.
    pub registry: registry::Registry,
    /// `DELETE /swarm/hosts/{uuid}`: 20 per minute and client address.
    pub delete_limit: Limiter,
    /// Background teardowns (drained at shutdown; tests may wait on it).
    pub tasks: TaskTracker,
    /// One enrolment at a time: two of the same name would overwrite each other's bundle
    /// files before one of them loses the insert.
    pub enrolling: tokio::sync::Mutex<()>,
    master: Mutex<Option<Bundle>>,
    controller_pin: RwLock<Option<Fingerprint>>,
    bus_config: Option<BusConfig>,
    bus: OnceLock<Arc<dyn Bus>>,
}

impl Swarm {
    /// A controller state with `options`, publishing on `bus`; rate limits only when
    /// `limits`.
    pub fn new(options: SwarmOptions, bus: Option<BusConfig>, limits: bool) -> Self {
        Self {
            options,
            registry: registry::Registry::default(),
            delete_limit: Limiter::new(20, Duration::from_secs(60), limits),
            tasks: TaskTracker::new(),
            enrolling: tokio::sync::Mutex::new(()),
            master: Mutex::new(None),
            controller_pin: RwLock::new(None),
            bus_config: bus,
            bus: OnceLock::new(),
        }
    }

    /// The bus lifecycle events go to, connected on first use (inside the runtime).
    pub fn bus(&self) -> &dyn Bus {
        self.bus
            .get_or_init(|| match &self.bus_config {
                Some(c) => crate::bus::from_config(c, "swarmctl"),
                None => Arc::new(NullBus),
            })
            .as_ref()
    }

    /// The PKI layout.
    pub fn layout(&self) -> Layout {
        Layout::new(self.options.pki_dir.clone())
    }

    /// The pin of the controller's TLS certificate, once it serves TLS.
    pub fn controller_pin(&self) -> Option<Fingerprint> {
        self.controller_pin
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn master(&self) -> Result<Bundle, AgentError> {
        let mut slot = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let b = client::master_identity(&self.layout())?;
        *slot = Some(b.clone());
        Ok(b)
    }

    /// A client of `host`'s agent with the master identity.
    pub fn client(&self, host: &SwarmHost) -> Result<AgentClient, AgentError> {
        AgentClient::new(&self.master()?, host, self.options.verify_hostname)
    }

    /// The TLS acceptor of the controller: the `swarmctl` certificate (issued on first use
    /// with `sans` and loopback), client certificates from the decnet CA required. Its pin
    /// goes into worker bundles enrolled from now on. The master identity is made ready
    /// too (§5.1), so the first call to an agent does not issue it.
    pub fn controller_tls(&self, sans: &[String]) -> Result<TlsAcceptor, String> {
        self.master().map_err(|e| format!("master identity: {e}"))?;
        let bundle = self
            .layout()
            .ensure_server(sans)
            .map_err(|e| format!("swarmctl certificate: {e}"))?;
        let config = crate::tls::server_config(&bundle).map_err(|e| e.to_string())?;
        *self
            .controller_pin
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(bundle.fingerprint().clone());
        Ok(TlsAcceptor::from(config))
    }
}

/// The controller's routes, over `state`.
pub fn controller_router(state: AppState) -> Router {
    routes::controller(state)
}

/// The `/api/v1/swarm` routes (admin JWT, no certificate gate).
pub fn api_routes() -> Router<AppState> {
    routes::api()
}

/// Serves the controller on `listener` (mutual TLS with `tls`, else plain) until
/// `shutdown`.
pub async fn serve_controller(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    crate::https::serve(
        listener,
        tls,
        controller_router(state),
        shutdown,
        crate::https::ServeOptions::default(),
    )
    .await;
}

/// Starts the background work: the heartbeat flush and the liveness check. At shutdown
/// the last heartbeats are flushed.
pub fn spawn(state: &AppState, shutdown: CancellationToken) {
    let s = state.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(s.swarm.options.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => s.swarm.registry.flush(&s.db).await,
                () = stop.cancelled() => break,
            }
        }
        s.swarm.registry.flush(&s.db).await;
    });
    let s = state.clone();
    tokio::spawn(async move {
        if let Err(e) = s.swarm.registry.ensure_loaded(&s.db).await {
            tracing::warn!(error = ?e, "loading swarm hosts failed");
        }
        let window = s.swarm.options.beat_window;
        let mut tick = tokio::time::interval((window / 3).max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let (silent, _flush) = s.swarm.registry.silent(window).await;
            if silent.is_empty() {
                continue;
            }
            let ids = silent.clone();
            let wrote =
                s.db.write(move |st| {
                    for id in &ids {
                        st.set_host_status(id, crate::store::swarm_status::UNREACHABLE, None)?;
                    }
                    Ok(())
                })
                .await;
            match wrote {
                Ok(()) => tracing::warn!(hosts = ?silent, "swarm hosts silent: unreachable"),
                Err(e) => tracing::warn!(error = ?e, "marking silent hosts failed"),
            }
        }
    });
}
