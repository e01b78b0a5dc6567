//! Artifact volumes: the host directories where deckies keep what attackers leave behind
//! (engine.md §2.1).
//!
//! A decky image is `FROM scratch` and its containers are replaced on every redeploy, so a
//! capture written inside one would be lost. Each capturing service therefore gets
//! `<ARTIFACTS_ROOT>/<decky>/<dir>` bind-mounted read-write at the in-container path the
//! real software would use, and the service's variable names that path. One table,
//! [`CAPTURES`], says which services capture and where, so another one (http `files`)
//! only needs a row.
//!
//! The directories are made 0700 by whoever deploys: that is root in production, which is
//! also the user decky containers run as (the image has no `USER`), and under rootless
//! Docker the deploying user is what container root maps to. Teardown leaves them in
//! place, they are evidence, unless the operator asks for a [`purge`].
use std::fs::{DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::Error;

/// Mode of every artifact directory: captured files are hostile and may hold secrets.
pub const DIR_MODE: u32 = 0o700;

/// Where one service keeps its captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// The service slug.
    pub service: &'static str,
    /// The variable that tells the service its directory.
    pub env: &'static str,
    /// Where the directory appears inside the container.
    pub container_path: &'static str,
    /// Its name under `<ARTIFACTS_ROOT>/<decky>/` (the master serves it by this name).
    pub host_dir: &'static str,
}

/// Every capturing service. `smtp_relay` shares `smtp`'s directory, as engine.md §2.1
/// says, so the master's artifact route (§3.5) finds its messages under `smtp`.
pub const CAPTURES: &[Capture] = &[
    Capture {
        service: "ssh",
        env: "SSH_ARTIFACTS_DIR",
        container_path: "/var/lib/systemd/coredump",
        host_dir: "ssh",
    },
    Capture {
        service: "smtp",
        env: "SMTP_QUARANTINE_DIR",
        container_path: "/var/spool/mqueue",
        host_dir: "smtp",
    },
    Capture {
        service: "smtp_relay",
        env: "SMTP_QUARANTINE_DIR",
        container_path: "/var/spool/mqueue",
        host_dir: "smtp",
    },
    Capture {
        service: "ftp",
        env: "FTP_ARTIFACTS_DIR",
        container_path: "/srv/ftp/.quarantine",
        host_dir: "ftp",
    },
];

/// The capture row of `service`, if it captures anything.
pub fn capture(service: &str) -> Option<&'static Capture> {
    CAPTURES.iter().find(|c| c.service == service)
}

/// A host directory bind-mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory.
    pub host: PathBuf,
    /// Where it appears in the container.
    pub container: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

impl Mount {
    /// The read-write artifact mount of `cap` for decky `decky` under `root`.
    pub fn artifacts(root: &Path, decky: &str, cap: &Capture) -> Self {
        Mount {
            host: root.join(decky).join(cap.host_dir),
            container: cap.container_path.to_owned(),
            read_only: false,
        }
    }

    /// `rw` or `ro`, as Docker's CLI and `--dry-run` write it.
    pub fn mode(&self) -> &'static str {
        if self.read_only { "ro" } else { "rw" }
    }
}

/// Creates the host directory of artifact mount `m` of decky `decky` under `root` (and
/// the decky's directory), each 0700 whatever the umask; existing ones keep their
/// contents and are brought back to 0700.
///
/// The decky name becomes a path component, so one that is not a plain file name (`..`)
/// is refused rather than letting a mount land outside `root`.
pub fn prepare(root: &Path, decky: &str, m: &Mount) -> Result<(), Error> {
    let io_err = |path: &Path, source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let decky_dir = root.join(decky);
    if !plain_name(decky) || m.host.parent() != Some(decky_dir.as_path()) {
        return Err(io_err(
            &m.host,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an artifact directory must lie in its decky's directory under the artifacts root",
            ),
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
    for dir in [&decky_dir, &m.host] {
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(io_err(dir, e)),
        }
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
            .map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

/// Removes decky `decky`'s artifacts under `root`, all of its services' captures;
/// returns whether there were any.
pub fn purge(root: &Path, decky: &str) -> Result<bool, Error> {
    let dir = root.join(decky);
    let io_err = |source| Error::Io {
        path: dir.clone(),
        source,
    };
    if !plain_name(decky) {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a decky name that is not a plain file name has no artifacts directory",
        )));
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(e)),
    }
}

/// Whether `decky` names exactly one directory below the root (not `..`, no `/`).
fn plain_name(decky: &str) -> bool {
    matches!(
        Path::new(decky).components().collect::<Vec<_>>().as_slice(),
        [Component::Normal(_)]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_engine_md() {
        let ssh = capture("ssh").expect("ssh captures");
        assert_eq!(
            (ssh.env, ssh.container_path),
            ("SSH_ARTIFACTS_DIR", "/var/lib/systemd/coredump")
        );
        for smtp in ["smtp", "smtp_relay"] {
            let c = capture(smtp).expect("smtp captures");
            assert_eq!(
                (c.env, c.container_path, c.host_dir),
                ("SMTP_QUARANTINE_DIR", "/var/spool/mqueue", "smtp")
            );
        }
        assert_eq!(capture("ftp").expect("ftp").env, "FTP_ARTIFACTS_DIR");
        assert!(capture("redis").is_none());
        for c in CAPTURES {
            assert!(
                crate::catalog::service(c.service).is_ok(),
                "{} is a catalogue service",
                c.service
            );
        }
    }

    #[test]
    fn directories_are_private_and_stay_inside_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("artifacts");
        let ftp = capture("ftp").expect("ftp");
        let m = Mount::artifacts(&root, "files-01", ftp);
        assert_eq!(m.host, root.join("files-01/ftp"));
        assert_eq!(
            (m.container.as_str(), m.mode()),
            ("/srv/ftp/.quarantine", "rw")
        );
        prepare(&root, "files-01", &m).expect("prepare");
        std::fs::write(m.host.join("evidence"), b"x").expect("write");
        std::fs::set_permissions(&m.host, Permissions::from_mode(0o755)).expect("chmod");
        prepare(&root, "files-01", &m).expect("prepare again");
        for dir in [root.join("files-01"), m.host.clone()] {
            let mode = std::fs::metadata(&dir).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, DIR_MODE, "{}", dir.display());
        }
        assert!(
            m.host.join("evidence").exists(),
            "a redeploy keeps captures"
        );

        let escape = Mount::artifacts(&root, "..", ftp);
        assert!(prepare(&root, "..", &escape).is_err());
        assert!(!tmp.path().join("ftp").exists());

        assert!(purge(&root, "..").is_err() && root.exists());
        assert!(purge(&root, "files-01").expect("purge"));
        assert!(!root.join("files-01").exists() && root.exists());
        assert!(!purge(&root, "files-01").expect("nothing left"));
    }
}
