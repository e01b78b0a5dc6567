//! Test harness: drive the real `decnet` binary in a fresh, scrubbed environment.
#![allow(dead_code)]

pub mod lab;
pub mod swarmlab;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary `DECNET_HOME` and a way to run the built binary against it.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    /// A fresh empty state directory.
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// The state directory path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A `decnet` command with `DECNET_*`/`RUST_LOG` scrubbed and `DECNET_HOME` set here.
    pub fn decnet(&self) -> Command {
        self.command(bin())
    }

    /// Like [`Dir::decnet`], but running `program` (e.g. a symlink to the binary).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        #[allow(clippy::disallowed_methods)] // scrubbing the environment is the point
        let inherited = std::env::vars_os();
        for (key, _) in inherited {
            let k = key.to_string_lossy();
            if k.starts_with("DECNET_") || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("DECNET_HOME", self.path());
        cmd.env("DECNET_LOG_DIR", self.path().join("log"));
        cmd
    }
}

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_decnet"))
}

/// Runs `cmd`, returning its output; panics with a readable report if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn decnet")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts an exit code, printing both streams when it differs.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Whether the tests run under CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    #[allow(clippy::disallowed_methods)] // test harness policy, not decnet config
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    ci
}

/// Announces that the running test is skipped because `missing` is not available, or
/// fails it under CI. The caller returns right after.
///
/// The notice is `SKIP: <test name>: <missing>` (libtest names each test's thread after
/// the test), written straight to the stderr descriptor: libtest swallows `eprintln!`
/// of passing tests, and `scripts/test.sh` collects these lines into its summary.
pub fn skip(missing: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        !in_ci(),
        "{test}: CI must have {missing} (scripts/setup.sh installs the tools)"
    );
    let line = format!("SKIP: {test}: {missing}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The Docker engine at `DOCKER_HOST` (read as decnet reads it), else the local socket;
/// `None` after a [`skip`] notice when none runs.
///
/// Under CI (`CI=true`) a missing engine is a failure, never a silent skip.
pub async fn docker() -> Option<decnet::engine::Engine> {
    let docker_host = decnet::config::Config::from_env()
        .expect("the test environment's configuration")
        .docker_host;
    match decnet::engine::Engine::connect(docker_host.as_deref()).await {
        Ok(engine) => Some(engine),
        Err(e) => {
            skip(&format!("a Docker engine ({e})"));
            None
        }
    }
}

/// A statically linked decnet for images: `$DECNET_TEST_STATIC_BIN`, else built once by
/// `scripts/build-static.sh`, which prints the binary's absolute path wherever
/// `CARGO_TARGET_DIR` puts it.
pub fn static_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        #[allow(clippy::disallowed_methods)] // test harness policy, not decnet config
        if let Some(path) = std::env::var_os("DECNET_TEST_STATIC_BIN") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/build-static.sh"))
            .current_dir(root)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run scripts/build-static.sh");
        assert!(out.status.success(), "scripts/build-static.sh failed");
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let bin = root.join(path);
        assert!(
            bin.is_file(),
            "scripts/build-static.sh printed {}, which is not a file",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Runs the docker CLI and returns its stdout; panics with stderr on failure.
pub fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes an image tag when dropped, so a failing test leaves nothing behind.
pub struct RemoveImageOnDrop(pub String);

impl Drop for RemoveImageOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}
