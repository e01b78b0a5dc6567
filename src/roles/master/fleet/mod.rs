//! The master's hold on the fleet (engine.md §1.9–§1.10): the Docker engine handle, the
//! lock that serialises every change to the fleet, and the background operations the
//! fleet routes start ([`ops`]).
//!
//! The state file `$DECNET_HOME/decnet-state.json` stays the one truth about the fleet,
//! as for the CLI: the master reads it for `/deckies` and changes it only through the
//! engine (deploy, teardown) or, for a decky's mutation interval, by rewriting it under
//! the lock. Docker may be missing when the master starts ([`Fleet::engine`] is `None`):
//! the read routes keep working and the ones that need containers answer 503 "docker
//! daemon unavailable" instead of failing later in a background task. The handle is not
//! re-dialled later; a master started before Docker needs a restart to deploy.
pub mod ops;

use std::path::PathBuf;

use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

use crate::engine::Engine;
use crate::engine::plan::{DEFAULT_NETWORK, Driver};

/// The 503 text of routes that need Docker.
pub const NO_DOCKER: &str = "docker daemon unavailable";

/// How the master deploys when no fleet exists yet (a deployed fleet keeps its own).
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// How deckies attach (MACVLAN unless told otherwise).
    pub driver: Driver,
    /// The Docker network of the fleet.
    pub network_name: String,
    /// The static binary the decky image holds (`None`: this executable).
    pub decky_binary: Option<PathBuf>,
    /// Host directory of captured files (`DECNET_ARTIFACTS_ROOT`).
    pub artifacts_root: PathBuf,
}

impl FleetOptions {
    /// The defaults of `decnet deploy`: MACVLAN on `decnet_lan`, this binary.
    pub fn new(artifacts_root: PathBuf) -> Self {
        Self {
            driver: Driver::Macvlan,
            network_name: DEFAULT_NETWORK.to_owned(),
            decky_binary: None,
            artifacts_root,
        }
    }
}

/// The engine handle, the fleet lock and the background operations.
#[derive(Debug)]
pub struct Fleet {
    /// The Docker engine, if it answered at startup.
    pub engine: Option<Engine>,
    /// How new fleets are deployed.
    pub options: FleetOptions,
    /// Held by every operation that changes the fleet, so two never interleave.
    pub lock: Mutex<()>,
    /// The background operations, awaited (bounded) at shutdown.
    pub tasks: TaskTracker,
}

impl Fleet {
    /// A fleet handle over `engine` with `options`.
    pub fn new(engine: Option<Engine>, options: FleetOptions) -> Self {
        Self {
            engine,
            options,
            lock: Mutex::new(()),
            tasks: TaskTracker::new(),
        }
    }
}
