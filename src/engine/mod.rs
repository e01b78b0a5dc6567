//! Docker through the Engine API (bollard): the decky image, networks and containers.
//!
//! No registry is ever contacted. The decky image is built locally `FROM scratch` out of
//! this very binary ([`image`]), so a host needs nothing but a Docker engine. The engine
//! version is negotiated at connect time, because fleets run whatever Docker their
//! distribution ships (20.10 speaks API 1.41, newer bollard defaults are higher).
pub mod elf;
pub mod image;

use std::path::PathBuf;

use bollard::Docker;
use thiserror::Error;

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
    /// The Docker engine refused or failed a request.
    #[error("Docker: {0}")]
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
    /// Reading the binary or assembling the build context failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A connection to the local Docker engine, version-negotiated and pinged.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to `docker_host` (`unix:///path` or `tcp://host:port`), or the local socket.
    pub async fn connect(docker_host: Option<&str>) -> Result<Self, Error> {
        let endpoint = docker_host
            .unwrap_or("unix:///var/run/docker.sock")
            .to_owned();
        let unreachable = |source| Error::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = match endpoint.strip_prefix("unix://") {
            Some(path) => {
                Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            None => {
                Docker::connect_with_http(&endpoint, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
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
