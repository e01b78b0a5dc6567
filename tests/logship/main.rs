//! The log-shipping link as an operator runs it: `decnet listener` and `decnet forwarder`
//! as real processes over loopback mTLS, killed, restarted and rotated under them, with
//! the store checked line by line at the end.
mod auth;
mod bad_input;
mod bounds;
mod chaos;
mod copytruncate;
mod revoke;
mod rsyslog;
#[path = "../util/mod.rs"]
mod util;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use decnet::store::{Options, Store, StoredLog};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Longest wait for anything a test waits on (start-up, catch-up, a log line).
const LIMIT: Duration = Duration::from_secs(60);

/// Sleeps the test thread (plain threads here, no runtime whose clock could be paused).
#[allow(clippy::disallowed_methods)]
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Polls `check` every 50 ms until it holds, failing after `limit` with `what`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let tries = limit.as_millis() / 50;
    for _ in 0..tries {
        if check() {
            return;
        }
        nap(50);
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// A temp `DECNET_HOME` with a CA, the master identity, and worker bundles.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
}

impl Site {
    fn new() -> Self {
        let site = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
        };
        for args in [&["pki", "init"][..], &["pki", "issue", "master"]] {
            let out = site.run(args);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        }
        site
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> PathBuf {
        self.home().join("decnet.db")
    }

    fn log_dir(&self) -> PathBuf {
        self.home().join("log")
    }

    /// `decnet` with a scrubbed environment rooted here; the bus is off.
    fn decnet(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
        cmd.env_clear()
            .env("DECNET_HOME", self.home())
            .env("DECNET_LOG_DIR", self.log_dir())
            .env("DECNET_BUS_ENABLED", "false")
            .env("DECNET_LOG_LEVEL", "info")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a short command to completion.
    fn run(&self, args: &[&str]) -> Output {
        self.decnet().args(args).output().expect("run decnet")
    }

    /// Issues worker `name`'s bundle into `dir` (replacing any) and returns its cert path.
    fn issue_worker(&self, name: &str, dir: &Path) -> PathBuf {
        let out = self.run(&[
            "pki",
            "issue",
            "worker",
            name,
            "--force",
            "--out",
            &dir.to_string_lossy(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir.join("worker.crt")
    }

    fn allow(&self, name: &str, cert: &Path) {
        let out = self.run(&["listener", "allow", name, "--cert", &cert.to_string_lossy()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// Starts the listener on this site's port, logging to `<home>/<tag>.log`, and waits
    /// until it accepts connections.
    fn listener(&self, tag: &str, extra: &[&str]) -> Proc {
        let port = self.port.to_string();
        let mut args = vec!["listener", "--host", "127.0.0.1", "--port", &port];
        args.extend_from_slice(extra);
        let proc = Proc::spawn(
            self.decnet().args(&args),
            &self.home().join(format!("{tag}.log")),
        );
        wait_until(LIMIT, "the listener to accept", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        proc
    }

    /// Starts a forwarder shipping `file` with the bundle in `agent`.
    fn forwarder(&self, tag: &str, agent: &Path, file: &Path, extra: &[&str]) -> Proc {
        let port = self.port.to_string();
        let agent = agent.to_string_lossy();
        let file = file.to_string_lossy();
        let mut args = vec![
            "forwarder",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            &port,
            "--agent-dir",
            &agent,
            "--log-file",
            &file,
            "--poll-interval",
            "0.1",
        ];
        args.extend_from_slice(extra);
        Proc::spawn(
            self.decnet().args(&args),
            &self.home().join(format!("{tag}.log")),
        )
    }

    fn store(&self) -> Store {
        Store::open(self.db(), Options::default()).expect("open the store")
    }

    fn count(&self) -> u64 {
        self.store()
            .reader()
            .and_then(|r| r.count_logs())
            .expect("count")
    }

    fn all_logs(&self) -> Vec<StoredLog> {
        let reader = self.store().reader().expect("reader");
        let mut out = Vec::new();
        loop {
            let after = out.last().map_or(0, |l: &StoredLog| l.id);
            let page = reader.logs_after(after, 10_000).expect("read logs");
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A child process whose stderr goes to a file; killed when dropped.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: &Path) -> Self {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn decnet");
        Self {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// Sends `signal` and reaps the process, bounded.
    fn stop(&mut self, signal: Signal) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        let _ = kill(pid, signal);
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            nap(50);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("pid {pid} ignored {signal:?} for 10 s");
    }

    /// The process's diagnostics so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last 40 lines of a process's diagnostics, for a failure message.
fn tail(proc: &Proc) -> String {
    let text = proc.output();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A decnet-style RFC 5424 event line numbered `n`, about 200 bytes long.
fn event_line(n: u64) -> String {
    let line = format!(
        "<134>1 2026-11-29T12:00:00.{:06}+00:00 decky-{} ssh - login [relay@55555 src_ip=\"10.0.{}.{}\" username=\"root\" n=\"{n}\"] attempt {n} ",
        n % 1_000_000,
        n % 7,
        (n / 250) % 250,
        n % 250
    );
    format!("{line:x<200}")
}

#[test]
fn misconfigurations_are_refused_with_what_to_do() {
    let site = Site {
        dir: tempfile::tempdir().expect("tempdir"),
        port: free_port(),
    };
    let out = site.run(&["forwarder"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--master-host"));
    let out = site.run(&["forwarder", "--master-host", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("decnet pki issue worker"));
    let out = site.run(&["listener", "--insecure-tcp", "--host", "0.0.0.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("loopback") || text(&out.stderr).contains("127.0.0.1"));
    let out = site.run(&["listener", "--host", "127.0.0.1", "--port", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("decnet pki issue master"),
        "{}",
        text(&out.stderr)
    );
    let out = site.run(&["listener", "revoke", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
}
