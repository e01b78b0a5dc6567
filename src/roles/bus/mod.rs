//! The `decnet bus` role: owns the broker's socket file and runs the broker on it.
//!
//! [`bind`] takes care of the path: a live broker already answering there is an error
//! (two brokers would split the host's workers between them), a stale socket file left by
//! a crash is removed, and anything that is not a socket is left alone. The socket's
//! directory (`<home>/run` by default) is created when missing. After binding the
//! socket is mode 0660 and, when the group exists and we may chown, owned by the
//! configured group (`decnet`): the file mode is the bus's only authorisation, as in the
//! original. [`serve`] runs the broker on an already-bound listener until the token is
//! cancelled; [`run`] does both and stops on SIGINT or SIGTERM, removing the socket.
use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Group, chown};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::bus::{Broker, BrokerSettings, Error};
use crate::config::Config;

/// Mode of the socket file: owner and group may connect, nobody else.
pub const SOCKET_MODE: u32 = 0o660;

/// Binds the broker socket at `path`, replacing a stale one and refusing a live one.
pub async fn bind(path: &Path, group: &str) -> Result<UnixListener, Error> {
    let io_err = |source: io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(Error::NotASocket(path.to_path_buf()));
        }
        Ok(_) => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(Error::AlreadyRunning(path.to_path_buf()));
            }
            tracing::info!(path = %path.display(), "removing stale bus socket");
            fs::remove_file(path).map_err(io_err)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    fs::set_permissions(path, Permissions::from_mode(SOCKET_MODE)).map_err(io_err)?;
    give_to_group(path, group);
    Ok(listener)
}

/// Hands the socket to `group` when that group exists; failure only costs convenience.
fn give_to_group(path: &Path, group: &str) {
    match Group::from_name(group) {
        Ok(Some(g)) => {
            if let Err(err) = chown(path, None, Some(g.gid)) {
                tracing::warn!(
                    path = %path.display(),
                    group,
                    "cannot give the bus socket to its group: {err}"
                );
            }
        }
        Ok(None) => tracing::debug!(group, "no such group; bus socket keeps our group"),
        Err(err) => tracing::warn!(group, "cannot look up the bus group: {err}"),
    }
}

/// Runs the broker on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: UnixListener, config: &Config, shutdown: CancellationToken) {
    tracing::debug!(socket = %config.bus.socket.display(), "bus broker starting");
    Broker::new(BrokerSettings::default())
        .serve(listener, shutdown)
        .await;
}

/// `decnet bus`: binds the configured socket and serves until SIGINT or SIGTERM.
pub async fn run(config: &Config) -> Result<(), Error> {
    let path = &config.bus.socket;
    let listener = bind(path, &config.bus.group).await?;
    let shutdown = crate::signals::shutdown_on_signals().map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    tracing::info!(socket = %path.display(), "bus broker listening");
    serve(listener, config, shutdown).await;
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            path: path.clone(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode_of;

    #[tokio::test]
    async fn bind_sets_the_mode_replaces_stale_and_refuses_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run").join("bus.sock");
        let live = bind(&path, "no-such-group-decnet-test")
            .await
            .expect("first bind");
        assert_eq!(mode_of(&path).expect("mode"), SOCKET_MODE);
        let err = bind(&path, "decnet").await.expect_err("a broker is live");
        assert!(matches!(err, Error::AlreadyRunning(_)), "{err}");
        drop(live);
        // The socket file stays behind with nobody listening: stale.
        bind(&path, "decnet").await.expect("stale socket replaced");

        let file = dir.path().join("not-a-socket");
        fs::write(&file, b"keep me").expect("write");
        let err = bind(&file, "decnet").await.expect_err("regular file");
        assert!(matches!(err, Error::NotASocket(_)), "{err}");
        assert_eq!(fs::read(&file).expect("still there"), b"keep me");
    }
}
