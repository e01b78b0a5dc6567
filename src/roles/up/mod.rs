//! `decnet up`: every role of a single-host decnet in one process, over loopback.
//!
//! DESIGN.md: "on one host every role runs in one process with the same code paths, over
//! loopback and a local CA". So `up` composes the small roles exactly as a swarm runs
//! them: the bus broker on `<run dir>/bus.sock`; the log listener on 127.0.0.1 with the
//! master identity (mTLS, allow-listed peers only); the collector following the fleet's
//! service containers into `$DECNET_INGEST_LOG_FILE`; the forwarder shipping that file to
//! the listener over loopback mTLS as worker [`first_run::LOCAL_WORKER`], pinning the
//! master's fingerprint; and the master API. Then the first fleet ([`fleet`]) on a
//! host-local bridge.
//!
//! Steps: [`preflight`] (nothing is written when it fails), [`first_run`] (CA, bundles,
//! admin, token key: created once, found again later), the components, the fleet, the
//! summary for the operator. On SIGINT/SIGTERM every component stops (each drains within
//! its own grace period) and `up` returns.
//!
//! What Ctrl-C does to the deckies: they **keep running**. They are the decoy network,
//! and an operator stopping the console does not expect the LAN's fake machines to
//! vanish (nor an attacker to watch them go). Nothing is lost while `up` is down: the
//! collector resumes each container's log from its saved position at the next start.
//! The next `up` finds the fleet in the state file and deploys nothing new;
//! `decnet teardown --all` removes it.
pub mod console;
pub mod first_run;
pub mod fleet;
pub mod local;
pub mod preflight;
pub mod subnet;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::engine::deploy::Progress;
use crate::engine::state::{self, State};
use crate::model::Ipv4Net;
use crate::roles::master::health::TaskResult;
use crate::roles::master::{self, AppState, bootstrap};
use crate::roles::{collector, forwarder, listener};
use crate::store::{Options as StoreOptions, Store};
pub use console::{Console, DeckyLine, Started, Terminal, write_summary};

/// How long the components get to drain after a signal before `up` stops waiting.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How often the in-process forwarder looks at an idle log (events reach the API in
/// well under a second).
const FORWARDER_POLL: Duration = Duration::from_millis(100);

/// Why `decnet up` did not start or stopped.
#[derive(Debug, Error)]
pub enum Error {
    /// A preflight check failed; nothing was changed.
    #[error("{0}")]
    Preflight(String),
    /// A port is in use.
    #[error(
        "{addr} is already in use (another decnet, or another program): stop it, or choose \
         another port with {flag}"
    )]
    PortTaken {
        /// The address.
        addr: SocketAddr,
        /// The flag that moves it.
        flag: &'static str,
    },
    /// The Docker engine cannot be used.
    #[error("{0}")]
    Docker(String),
    /// The configured decky binary is dynamically linked.
    #[error(
        "{0} is not statically linked, and the decky image (FROM scratch) needs a static \
         decnet: build one with scripts/build-static.sh and point DECNET_DECKY_BINARY at the \
         path it prints"
    )]
    NotStatic(PathBuf),
    /// No static binary could be found.
    #[error(
        "the decky image needs a statically linked decnet, and {0} is not one: build it with \
         `scripts/build-static.sh` (then `cargo run --release -- up` finds it), or set \
         DECNET_DECKY_BINARY=PATH; `--no-fleet` runs without deckies"
    )]
    NoStaticBinary(PathBuf),
    /// Every candidate subnet is in use on this host.
    #[error(
        "every candidate subnet ({0}) overlaps a route or address of this host: pass a free \
         one with --subnet CIDR"
    )]
    NoSubnet(String),
    /// Hashing the admin password failed.
    #[error("hashing the admin password: {0}")]
    Hash(String),
    /// A component could not start or failed while running.
    #[error("{name}: {reason}")]
    Component {
        /// The component.
        name: &'static str,
        /// What happened.
        reason: String,
    },
    /// The PKI failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// The master refused to start.
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// The fleet is not valid.
    #[error(transparent)]
    Model(#[from] crate::model::Error),
    /// The INI file was refused.
    #[error(transparent)]
    Ini(#[from] crate::ini::Error),
    /// The bus socket could not be bound.
    #[error(transparent)]
    Bus(#[from] crate::bus::Error),
    /// The listener's TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
}

/// What `decnet up` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the master API on 127.0.0.1.
    pub api_port: u16,
    /// Port of the log listener on 127.0.0.1.
    pub listener_port: u16,
    /// Port of the swarm controller (mTLS) on 127.0.0.1; 0 picks a free one.
    pub swarmctl_port: u16,
    /// Port of this host's agent (mTLS) on 127.0.0.1; 0 picks a free one.
    pub agent_port: u16,
    /// Deploy a first fleet when none is deployed.
    pub fleet: bool,
    /// Deckies of the default fleet.
    pub deckies: usize,
    /// An INI file for the first fleet instead of the default one.
    pub ini: Option<PathBuf>,
    /// Subnets to choose the bridge's from (the first free one wins).
    pub subnets: Vec<Ipv4Net>,
    /// Docker network of the fleet.
    pub network_name: String,
    /// Replace the admin password by a new one (printed once).
    pub reset_admin_password: bool,
}

/// The fleet `up` will run: the deployed one, or one to deploy on `subnet`.
enum FleetPlan {
    None,
    Deployed(Box<State>),
    New { subnet: Ipv4Net, binary: PathBuf },
}

/// Runs `decnet up` until `shutdown` is cancelled.
pub async fn run(
    config: &Config,
    opts: &Options,
    console: &mut dyn Console,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // Preflight: read-only until every check has passed.
    let state_path = state::path_in(&config.home);
    let plan = match (opts.fleet, fleet::deployed(&state_path)?) {
        (_, Some(state)) => FleetPlan::Deployed(Box::new(state)),
        (false, None) => FleetPlan::None,
        (true, None) => {
            let binary = preflight::decky_binary(config.decky_binary.as_deref())?;
            let candidates = if opts.subnets.is_empty() {
                subnet::default_candidates()
            } else {
                opts.subnets.clone()
            };
            let subnet =
                subnet::choose(&candidates, &subnet::host_networks()).ok_or_else(|| {
                    let list: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                    Error::NoSubnet(list.join(", "))
                })?;
            FleetPlan::New { subnet, binary }
        }
    };
    let loopback = Ipv4Addr::LOCALHOST;
    let api_tcp = preflight::bind((loopback, opts.api_port).into(), "--api-port").await?;
    let listener_tcp =
        preflight::bind((loopback, opts.listener_port).into(), "--listener-port").await?;
    let ctl_tcp = preflight::bind((loopback, opts.swarmctl_port).into(), "--swarmctl-port").await?;
    let agent_tcp = preflight::bind((loopback, opts.agent_port).into(), "--agent-port").await?;
    let engine = preflight::docker(config.docker_host.as_deref()).await?;
    preflight::writable_home(&config.home)?;

    // First run (or finding everything again), off the async threads: key generation
    // and argon2id are slow on purpose.
    let store = Store::open(&config.db_path, StoreOptions::default())?;
    let prepared = {
        let (config, store, reset) = (config.clone(), store.clone(), opts.reset_admin_password);
        tokio::task::spawn_blocking(move || first_run::prepare(&config, store, reset))
            .await
            .map_err(|e| component("first run", e))??
    };
    let tls = crate::tls::server_config(&prepared.identity)?;
    let bus_listener = crate::roles::bus::bind(&config.bus.socket, &config.bus.group).await?;

    let tracker = TaskTracker::new();
    let (failed_tx, mut failed) = mpsc::channel::<Error>(8);
    // The API deploys into the same bridge network as the first fleet.
    let mut extras = master::Extras::for_home(&config.home);
    extras.engine = Some(engine.clone());
    extras.sse_max_per_user = config.api.sse_max_per_user;
    extras.fleet.driver = crate::engine::plan::Driver::Bridge;
    extras.fleet.network_name = opts.network_name.clone();
    extras.fleet.artifacts_root = config.artifacts_root.clone();
    extras.fleet.decky_binary = preflight::decky_binary(config.decky_binary.as_deref()).ok();
    extras.swarm.pki_dir = config.pki_dir.clone();
    extras.swarm.beat_window = config.swarm_liveness;
    extras.ports = config.ports.clone();
    let state = AppState::with_extras(prepared.master.clone(), extras);
    let (ctl_addr, agent_addr) =
        local::start(&state, config, ctl_tcp, agent_tcp, &shutdown).await?;
    let api = api_tcp
        .local_addr()
        .map_err(|e| component("master API", e))?;
    let listener_addr = listener_tcp
        .local_addr()
        .map_err(|e| component("listener", e))?;
    let bus = crate::bus::from_config(&config.bus, "up");

    let spawn = |name: &'static str, fut: futures_util::future::BoxFuture<'static, TaskResult>| {
        let failed_tx = failed_tx.clone();
        tracker.spawn(async move {
            let result = fut.await;
            if let Err(reason) = &result {
                tracing::error!(component = name, "stopped: {reason}");
                let _ = failed_tx.try_send(Error::Component {
                    name,
                    reason: reason.clone(),
                });
            }
            result
        })
    };
    {
        let (config, stop) = (config.clone(), shutdown.clone());
        let h = spawn(
            "bus",
            Box::pin(async move {
                crate::roles::bus::serve(bus_listener, &config, stop).await;
                Ok(())
            }),
        );
        state.health.register("bus", h);
    }
    {
        let lc = listener::ListenerConfig {
            store: store.clone(),
            tls: Some(tls),
            plain_worker: "plain".into(),
            raw_log: None,
            bus: bus.clone(),
            settings: listener::Settings::default(),
        };
        let stop = shutdown.clone();
        let h = spawn(
            "listener",
            Box::pin(async move {
                listener::serve(listener_tcp, lc, stop)
                    .await
                    .map_err(|e| e.to_string())
            }),
        );
        state.health.register("listener", h);
    }
    {
        let (state, stop) = (state.clone(), shutdown.clone());
        spawn(
            "master API",
            Box::pin(async move {
                master::serve(api_tcp, state, stop)
                    .await
                    .map_err(|e| e.to_string())
            }),
        );
    }
    {
        let settings = collector::Settings::from_config(config, None);
        let (engine, bus, stop) = (engine.clone(), bus.clone(), shutdown.clone());
        let h = spawn(
            "collector",
            Box::pin(async move {
                collector::serve(engine, settings, Some(bus), stop)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        );
        state.health.register("collector", h);
    }
    {
        let fwd = forwarder_config(config, listener_addr)?;
        let stop = shutdown.clone();
        let h = spawn(
            "forwarder",
            Box::pin(async move { forwarder::run(fwd, stop).await.map_err(|e| e.to_string()) }),
        );
        state.health.register("forwarder", h);
    }
    drop(failed_tx);
    tracker.close();
    console.progress(&format!(
        "master API on http://{api}, log listener on {listener_addr} (mTLS), bus on {}",
        config.bus.socket.display()
    ));
    console.progress(&format!(
        "swarm controller on https://{ctl_addr} (mTLS), this host's agent on {agent_addr} \
         (mTLS, enrolled as `{}`)",
        first_run::LOCAL_WORKER
    ));

    let outcome = bring_up_fleet(&engine, config, opts, plan, &state_path, &shutdown, console)
        .await
        .map(|(network, deckies, deployed_now)| Started {
            api,
            listener: listener_addr,
            admin_user: config.api.admin_user.clone(),
            new_password: prepared.new_password.map(|p| p.expose().to_owned()),
            admin_existed: prepared.admin_existed,
            network,
            deckies,
            deployed_now,
        });
    let result = match outcome {
        Ok(started) => {
            console.started(&started);
            tokio::select! {
                () = shutdown.cancelled() => Ok(()),
                Some(err) = failed.recv() => Err(err),
            }
        }
        Err(e) => Err(e),
    };
    shutdown.cancel();
    console.progress("stopping: draining the log pipeline");
    if tokio::time::timeout(STOP_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("components still running after {STOP_GRACE:?}; leaving them");
    }
    bus.close();
    let _ = std::fs::remove_file(&config.bus.socket);
    result
}

/// A component error from anything displayable.
fn component(name: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Component {
        name,
        reason: e.to_string(),
    }
}

/// The in-process forwarder: the ingest log → the listener at `listener` as the local
/// worker, pinned to the master identity (the bundle's `master.fingerprint`).
fn forwarder_config(
    config: &Config,
    listener: SocketAddr,
) -> Result<forwarder::ForwarderConfig, Error> {
    let file = std::path::absolute(&config.ingest_log_file).map_err(|e| {
        component(
            "forwarder",
            format!("{}: {e}", config.ingest_log_file.display()),
        )
    })?;
    Ok(forwarder::ForwarderConfig {
        files: vec![file],
        master_host: listener.ip().to_string(),
        master_port: listener.port(),
        agent_dir: config.agent_dir.clone(),
        state_db: config.agent_dir.join("forwarder.db"),
        plain: false,
        tls: true,
        pin_flag: None,
        pin_env: config.master_fingerprint.clone(),
        verify_hostname: config.verify_hostname,
        settings: forwarder::Settings {
            poll: FORWARDER_POLL,
            ..forwarder::Settings::default()
        },
    })
}

/// Deploys or revives the fleet of `plan`; its network and deckies for the summary.
async fn bring_up_fleet(
    engine: &crate::engine::Engine,
    config: &Config,
    opts: &Options,
    plan: FleetPlan,
    state_path: &std::path::Path,
    shutdown: &CancellationToken,
    console: &mut dyn Console,
) -> Result<(Option<(String, Ipv4Net)>, Vec<DeckyLine>, bool), Error> {
    let (state, deployed_now) = match plan {
        FleetPlan::None => return Ok((None, Vec::new(), false)),
        FleetPlan::Deployed(state) => {
            let started = fleet::revive(engine, &state).await?;
            if started > 0 {
                console.progress(&format!(
                    "started {started} stopped container(s) of the fleet"
                ));
            }
            (*state, false)
        }
        FleetPlan::New { subnet, binary } => {
            console.progress(&format!(
                "deploying the first fleet on {subnet} (Docker bridge {})",
                opts.network_name
            ));
            let spec = fleet::FleetSpec {
                ini: opts.ini.as_deref(),
                deckies: opts.deckies,
                subnet,
                network_name: &opts.network_name,
                binary: &binary,
                artifacts_root: &config.artifacts_root,
            };
            let mut report = |p: Progress<'_>| match p {
                Progress::Image(line) => console.progress(&format!("  image: {line}")),
                Progress::Step(step) => console.progress(step),
                Progress::Decky { done, total, name } => {
                    console.progress(&format!("[{done:>3}/{total}] {name} up"));
                }
            };
            let state = fleet::deploy(
                engine,
                &spec,
                state_path,
                shutdown.child_token(),
                &mut report,
            )
            .await?;
            (state, true)
        }
    };
    let rows = fleet::status(engine, &state).await?;
    let deckies = state
        .config
        .deckies
        .iter()
        .map(|d| DeckyLine {
            name: d.name.clone(),
            ip: d.ip.to_string(),
            services: d.services.clone(),
            archetype: d.archetype.clone(),
            state: rows
                .iter()
                .find(|r| r.name == d.name)
                .map_or("degraded", |r| r.state),
        })
        .collect();
    Ok((
        Some((state.names.network.clone(), state.config.subnet)),
        deckies,
        deployed_now,
    ))
}
