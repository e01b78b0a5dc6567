//! Self-destruct (swarm.md §4.9): tear the fleet down, then a detached shell script
//! stops the decnet units and deletes the install, after the answer has left.
//!
//! The script is written before the answer (so a full disk is a 500, not silence) into
//! a fresh 0700 directory `decnet-reaper-<random>` under the temporary directory, mode
//! 0700. The teardown runs in the background after the answer, then the script is
//! started outside the agent: with `systemd-run` in a transient unit of its own when
//! systemd runs the host (stopping `decnet-agent` would otherwise kill it mid-delete),
//! else in a new session (`setsid`) or at least a new process group. It sleeps 3 s,
//! stops and disables [`ReaperConfig::units`], deletes [`ReaperConfig::paths`]
//! recursively (each from the configuration, never a glob: `/var/log/decnet` stays for
//! forensics), and when it manages units also their unit files, then itself.
use std::fmt::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use super::AgentState;

/// The units the reaper stops and disables (the original's list plus the roles decnet has).
pub const DEFAULT_UNITS: &[&str] = &[
    "decnet-agent",
    "decnet-engine",
    "decnet-collector",
    "decnet-forwarder",
    "decnet-prober",
    "decnet-reconciler",
    "decnet-sniffer",
    "decnet-updater",
];

/// What self-destruct removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaperConfig {
    /// Deleted recursively. Only absolute paths below `/` are accepted.
    pub paths: Vec<PathBuf>,
    /// systemd units stopped and disabled; empty: no systemctl at all.
    pub units: Vec<String>,
}

impl ReaperConfig {
    /// The install of a worker: its agent directory, the state directory, `/opt/decnet`,
    /// `/usr/local/bin/decnet` and `/etc/decnet` (under `install_root` when it was
    /// installed under one), with [`DEFAULT_UNITS`] only for an install at `/`.
    pub fn defaults(agent_dir: &Path, home: &Path, install_root: Option<&Path>) -> Self {
        let mut paths = vec![agent_dir.to_path_buf(), home.to_path_buf()];
        let root = install_root.unwrap_or(Path::new("/"));
        for p in ["opt/decnet", "usr/local/bin/decnet", "etc/decnet"] {
            paths.push(root.join(p));
        }
        // Units belong to a real install; one under another root (an image, a test) has
        // none, and must not touch the host's systemd.
        let units = match install_root {
            None => DEFAULT_UNITS.iter().map(|u| (*u).to_owned()).collect(),
            Some(_) => Vec::new(),
        };
        Self { paths, units }
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Whether `path` may be handed to `rm -rf`: absolute, and not `/` itself.
fn deletable(path: &Path) -> bool {
    path.is_absolute() && path.components().any(|c| matches!(c, Component::Normal(_)))
}

/// The reaper script for `config`, deleting `own_dir` last.
pub fn script(config: &ReaperConfig, own_dir: &Path) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# decnet agent self-destruct reaper; every step goes on after an error.\nsleep 3\n",
    );
    if !config.units.is_empty() {
        s.push_str("if command -v systemctl >/dev/null 2>&1; then\n");
        for unit in &config.units {
            let u = quote(unit);
            let _ = writeln!(
                s,
                "  systemctl stop {u} >/dev/null 2>&1\n  systemctl disable {u} >/dev/null 2>&1"
            );
        }
        s.push_str("fi\n");
    }
    for path in &config.paths {
        match path.to_str() {
            Some(p) if deletable(path) => {
                let _ = writeln!(s, "rm -rf -- {}", quote(p));
            }
            _ => tracing::warn!(path = %path.display(), "not a path the reaper deletes"),
        }
    }
    if !config.units.is_empty() {
        s.push_str(
            "rm -f /etc/systemd/system/decnet-*.service /etc/systemd/system/decnet-*.timer\n",
        );
        s.push_str("command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload\n");
    }
    if let Some(dir) = own_dir.to_str() {
        let _ = writeln!(s, "rm -rf -- {}", quote(dir));
    }
    s
}

/// Writes the script into a fresh private directory; its path.
fn write_script(config: &ReaperConfig) -> std::io::Result<PathBuf> {
    let mut random = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| std::io::Error::other("no randomness for the reaper's directory name"))?;
    let dir = std::env::temp_dir().join(format!("decnet-reaper-{}", hex::encode(random)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let path = dir.join("reaper.sh");
    std::fs::write(&path, script(config, &dir))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    Ok(path)
}

/// Starts `script` detached from the agent.
async fn launch(script: &Path) -> std::io::Result<()> {
    if Path::new("/run/systemd/system").is_dir() {
        let unit = format!("decnet-reaper-{}", std::process::id());
        let out = tokio::process::Command::new("systemd-run")
            .args(["--collect", "--unit", &unit, "--description"])
            .arg("DECNET agent self-destruct reaper")
            .arg("/bin/sh")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        match out {
            Ok(s) if s.success() => return Ok(()),
            other => {
                tracing::warn!(outcome = ?other, "systemd-run failed; starting the reaper in a new session")
            }
        }
    }
    let spawn = |program: &str, args: &[&std::ffi::OsStr]| {
        tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
    };
    let child = match spawn("setsid", &["/bin/sh".as_ref(), script.as_os_str()]) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            spawn("/bin/sh", &[script.as_os_str()])?
        }
        Err(e) => return Err(e),
    };
    // Reap it when it exits (it outlives the agent only if the agent is stopped first).
    let mut child = child;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

/// Writes the reaper, then in the background tears the fleet down and starts it.
pub fn schedule(state: &AgentState) -> Result<(), String> {
    let script = write_script(&state.settings().reaper)
        .map_err(|e| format!("writing the reaper script: {e}"))?;
    tracing::warn!(script = %script.display(), "self-destruct scheduled");
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = super::ops::teardown(&state, None).await {
            tracing::warn!(error = %e, "self-destruct teardown failed; removing the install anyway");
        }
        if let Err(e) = launch(&script).await {
            tracing::error!(error = %e, "starting the reaper failed");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_paths_and_refuses_the_root() {
        let config = ReaperConfig {
            paths: vec!["/tmp/it's here".into(), "/".into(), "relative".into()],
            units: vec![],
        };
        let s = script(&config, Path::new("/tmp/decnet-reaper-x"));
        assert!(s.contains(r"rm -rf -- '/tmp/it'\''s here'"), "{s}");
        assert!(!s.contains("rm -rf -- '/'"), "{s}");
        assert!(!s.contains("relative"), "{s}");
        assert!(!s.contains("systemctl"), "{s}");
        assert!(
            s.trim_end().ends_with("rm -rf -- '/tmp/decnet-reaper-x'"),
            "{s}"
        );
        let with_units = ReaperConfig::defaults(
            Path::new("/etc/decnet/agent"),
            Path::new("/var/lib/decnet"),
            None,
        );
        let s = script(&with_units, Path::new("/tmp/x"));
        assert!(s.contains("systemctl stop 'decnet-agent'"), "{s}");
        assert!(s.contains("rm -rf -- '/var/lib/decnet'"), "{s}");
        assert!(s.contains("rm -rf -- '/opt/decnet'"), "{s}");
        assert!(!s.contains("/var/log"), "{s}");
        let rooted = ReaperConfig::defaults(
            Path::new("/srv/w1/etc/decnet/agent"),
            Path::new("/srv/w1/var/lib/decnet"),
            Some(Path::new("/srv/w1")),
        );
        let s = script(&rooted, Path::new("/tmp/x"));
        assert!(
            !s.contains("systemctl"),
            "an install under a root has no units: {s}"
        );
        assert!(s.contains("rm -rf -- '/srv/w1/opt/decnet'"), "{s}");
        assert!(!s.contains("rm -rf -- '/opt/decnet'"), "{s}");
    }
}
