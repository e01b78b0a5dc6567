//! Checks `decnet up` makes before it writes anything, each failing with what to do.
//!
//! In order: the decky binary (only when a fleet is wanted), the API and listener ports
//! (bound here and kept, so nothing can take them between the check and the start), the
//! Docker engine (reachable, and we may use its socket), and the state directory (we may
//! create or write it). Nothing is created before all of them pass: not the state
//! directory, not a key, not a container.
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};
use tokio::net::TcpListener;

use super::Error;
use crate::engine::{self, Engine, elf};

/// Where `scripts/build-static.sh` puts the static binary, relative to cargo's target
/// directory, in the order they are tried.
const STATIC_BUILDS: &[&str] = &[
    "x86_64-unknown-linux-musl/dist/decnet",
    "x86_64-unknown-linux-musl/release/decnet",
    "x86_64-unknown-linux-gnu/dist/decnet",
    "x86_64-unknown-linux-gnu/release/decnet",
];

/// The statically linked decnet the decky image is built from: `configured`
/// (`DECNET_DECKY_BINARY`), else this binary when it is static, else a static build in
/// the cargo target directory this binary was built in (`cargo run --release -- up`
/// after `scripts/build-static.sh`).
pub fn decky_binary(configured: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = configured {
        return match elf::is_static(path) {
            Ok(true) => Ok(path.to_path_buf()),
            Ok(false) => Err(Error::NotStatic(path.to_path_buf())),
            Err(e) => Err(Error::Preflight(format!(
                "DECNET_DECKY_BINARY={}: {e}",
                path.display()
            ))),
        };
    }
    let exe = std::env::current_exe().map_err(|e| Error::Preflight(format!("{e}")))?;
    if elf::is_static(&exe).unwrap_or(false) {
        return Ok(exe);
    }
    let target = exe.parent().and_then(Path::parent);
    target
        .into_iter()
        .flat_map(|t| STATIC_BUILDS.iter().map(move |rel| t.join(rel)))
        .find(|p| elf::is_static(p).unwrap_or(false))
        .ok_or(Error::NoStaticBinary(exe))
}

/// Binds `addr` for `what` (`--api-port`, `--listener-port`), explaining a taken port.
pub async fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => Error::PortTaken { addr, flag },
        _ => Error::Preflight(format!("cannot listen on {addr}: {e}")),
    })
}

/// Connects to the Docker engine; a socket we may not open gets its own advice.
pub async fn docker(docker_host: Option<&str>) -> Result<Engine, Error> {
    Engine::connect(docker_host).await.map_err(|e| match &e {
        engine::Error::Unreachable { endpoint, source }
            if format!("{source:?}").contains("PermissionDenied") =>
        {
            Error::Docker(format!(
                "no permission on the Docker socket ({endpoint}): run `decnet up` as root, or \
                 add this user to the `docker` group"
            ))
        }
        _ => Error::Docker(e.to_string()),
    })
}

/// Fails unless the state directory `home` exists writable, or could be created (its
/// nearest existing ancestor is writable).
pub fn writable_home(home: &Path) -> Result<(), Error> {
    let existing = home.ancestors().find(|p| p.exists()).unwrap_or(home);
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        Error::Preflight(format!(
            "cannot write the state directory {} ({}: {e}): run `decnet up` as root, or set \
             DECNET_HOME (and DECNET_LOG_DIR) to directories this user owns",
            home.display(),
            existing.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_names_its_flag() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr");
        let err = bind(addr, "--api-port").await.expect_err("taken");
        let text = err.to_string();
        assert!(
            text.contains("--api-port") && text.contains(&addr.to_string()),
            "{text}"
        );
    }

    #[test]
    fn a_dynamic_configured_binary_is_refused() {
        // The test binary itself is dynamically linked on glibc hosts.
        let exe = std::env::current_exe().expect("exe");
        if elf::is_static(&exe).unwrap_or(true) {
            return;
        }
        let err = decky_binary(Some(&exe)).expect_err("dynamic");
        assert!(err.to_string().contains("build-static.sh"), "{err}");
    }
}
