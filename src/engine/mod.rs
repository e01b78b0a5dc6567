//! Docker through the Engine API (bollard): the decky image, networks and containers.
//!
//! No registry is ever contacted. The decky image is built locally `FROM scratch` out of
//! this very binary ([`image`]), so a host needs nothing but a Docker engine. The engine
//! version is negotiated at connect time, because fleets run whatever Docker their
//! distribution ships (20.10 speaks API 1.41, newer bollard defaults are higher).
//!
//! A deploy flows through: [`plan`] (what to create, pure) → [`deploy`] (image,
//! [`network`], [`hostnet`] hairpin, [`containers`], then [`state`]); [`teardown`] undoes
//! it and reports status; [`compose`] renders a plan for people who want a compose file.
//! Capturing services keep their files in host directories ([`artifacts`]).
pub mod artifacts;
pub mod compose;
pub mod containers;
pub mod deploy;
pub mod elf;
pub mod endpoint;
pub mod hostnet;
pub mod image;
pub mod network;
pub mod plan;
pub mod state;
pub mod teardown;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use bollard::Docker;
use thiserror::Error;

use endpoint::Endpoint;

/// Runs the engine operation `f` makes on a blocking thread, driven by the runtime's
/// handle.
///
/// The engine's futures are not `Send` for every lifetime (their bounded concurrent
/// streams borrow per item), so they cannot be spawned as tasks or awaited in a handler;
/// the CLI drives them with `block_on`, and so does this, on a thread of its own. `None`
/// if that thread panicked.
pub async fn off_task<T, F, Fut>(f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f()))
        .await
        .ok()
}

/// Seconds to wait for an answer from the Docker engine on ordinary calls.
const TIMEOUT_SECS: u64 = 120;

/// Why an engine operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The Docker engine cannot be reached.
    #[error(
        "cannot reach the Docker engine at {endpoint}: {source}; is it running? \
         start it with `sudo systemctl start docker` (or set DOCKER_HOST)"
    )]
    Unreachable {
        /// Where decnet looked for it.
        endpoint: String,
        /// What went wrong.
        source: bollard::errors::Error,
    },
    /// `DOCKER_HOST` names an endpoint decnet cannot use.
    #[error(transparent)]
    BadDockerHost(#[from] endpoint::BadDockerHost),
    /// The Docker engine refused or failed a request.
    #[error("Docker engine request failed")]
    Docker(#[from] bollard::errors::Error),
    /// An image build reported an error.
    #[error("building image {tag} failed: {message}")]
    Build {
        /// The tag being built.
        tag: String,
        /// Docker's error message.
        message: String,
    },
    /// The binary to put in the decky image is dynamically linked.
    #[error(
        "{path} is dynamically linked and cannot run in a FROM-scratch decky image; \
         build a static binary with `scripts/build-static.sh` and point DECNET_DECKY_BINARY at it"
    )]
    NotStatic {
        /// The offending binary.
        path: PathBuf,
    },
    /// A container could not be created, started, stopped or removed.
    #[error("container {name}")]
    Container {
        /// The container.
        name: String,
        /// Docker's answer.
        source: bollard::errors::Error,
    },
    /// The hairpin link needs a capability this process lacks.
    #[error(
        "MACVLAN host-side interface setup needs CAP_NET_ADMIN: run decnet as root \
         (sudo decnet deploy …), or use --bridge on a host without a spare interface"
    )]
    NoNetAdmin,
    /// The parent interface is not on this host.
    #[error(
        "network interface '{name}' does not exist on this host; pick one from \
         `ip -br link` with --interface (or interface= in [general]), or use --bridge"
    )]
    NoSuchInterface {
        /// The name given.
        name: String,
    },
    /// The decky LAN is a network the host already uses on another interface.
    #[error(
        "{subnet} is already this host's network on {interface} ({addr}): deploying there \
         would route the host's own traffic into the decky LAN; use --interface {interface}, \
         or a subnet the host does not use"
    )]
    SubnetInUse {
        /// The decky LAN.
        subnet: crate::model::Ipv4Net,
        /// The interface holding an address in it.
        interface: String,
        /// That address.
        addr: Ipv4Addr,
    },
    /// Docker refuses to remove a network that has no container left.
    #[error(
        "Docker still counts endpoints on network {name} although no container uses it \
         (a Docker 20.10 bug, moby/moby#42119); restart the engine (`sudo systemctl restart \
         docker`) and run the teardown again"
    )]
    NetworkStuck {
        /// The network.
        name: String,
    },
    /// An `ip(8)` command failed.
    #[error("`{command}` failed: {message}")]
    HostCommand {
        /// The command line.
        command: String,
        /// Its error output.
        message: String,
    },
    /// The state file is not valid.
    #[error("{path} is not a valid decnet state file ({source}); move it aside to start over")]
    StateCorrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// An additive deploy on a different network than the deployed fleet.
    #[error(
        "the deployed fleet uses {deployed}, this deploy asks for {asked}; deploy on the \
         same network, or run `decnet teardown --all` first"
    )]
    NetworkChanged {
        /// The deployed fleet's network.
        deployed: String,
        /// The requested network.
        asked: String,
    },
    /// An additive deploy reusing a deployed decky's name.
    #[error("decky '{name}' already exists; deploy with --replace to replace the fleet")]
    DeckyExists {
        /// The name.
        name: String,
    },
    /// An additive deploy reusing a deployed decky's address.
    #[error("IP {ip} is already in use by an existing decky ({owner})")]
    IpInUse {
        /// The address.
        ip: Ipv4Addr,
        /// The decky holding it.
        owner: String,
    },
    /// The merged fleet is not valid.
    #[error(transparent)]
    Fleet(crate::model::Error),
    /// The deploy was interrupted (Ctrl-C) and undone.
    #[error("interrupted: the deploy was undone, the previous fleet and state are unchanged")]
    Interrupted,
    /// Nothing is deployed.
    #[error("No active deployment found (no decnet-state.json).")]
    NoDeployment,
    /// A teardown of a decky the fleet does not have.
    #[error("no decky named '{name}' is deployed; deployed: {}", known.join(", "))]
    UnknownDecky {
        /// The name given.
        name: String,
        /// The deployed deckies.
        known: Vec<String>,
    },
    /// Reading the binary or assembling the build context failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Whether Docker answered 404 (no such container, network or image).
fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connection to the local Docker engine, version-negotiated and pinged.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to `docker_host` (`DOCKER_HOST`: `unix:///path` or `tcp://host:port`),
    /// or the local socket when it is unset.
    pub async fn connect(docker_host: Option<&str>) -> Result<Self, Error> {
        let endpoint = Endpoint::from_docker_host(docker_host)?;
        let unreachable = |source| Error::Unreachable {
            endpoint: endpoint.to_string(),
            source,
        };
        let docker = match &endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(
                &path.to_string_lossy(),
                TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp(addr) => {
                Docker::connect_with_http(addr, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Self { docker })
    }

    /// The underlying bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}
