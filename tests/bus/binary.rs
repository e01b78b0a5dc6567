//! `decnet bus`, `decnet bus pub` and `decnet bus sub` as an operator runs them: separate
//! processes with a scrubbed environment rooted in a temp `DECNET_HOME`.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use serde_json::Value;

use super::LIMIT;

/// `decnet` with a scrubbed environment rooted in `home`.
fn decnet(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
    cmd.env_clear()
        .env("DECNET_HOME", home)
        .env("DECNET_RUN_DIR", home.join("run"))
        .env("DECNET_LOG_LEVEL", "info")
        .stdin(Stdio::null());
    cmd
}

/// Lines of a child's pipe, readable with a timeout.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`, returning it.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(LIMIT) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line containing {needle:?}: {e}"),
        }
    }
}

/// Runs a short command to completion, bounded.
fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(LIMIT)
        .expect("command finished in time")
        .expect("output")
}

/// Kills a child left running when a test fails.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Reaper {
    fn spawn(cmd: &mut Command) -> Reaper {
        Reaper(Some(cmd.spawn().expect("spawn decnet")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child not yet waited for")
    }

    /// Waits for the child to exit, bounded: a waiter thread reports the status, and a
    /// child still running at the deadline is killed.
    fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("child not yet waited for");
        let pid = child.id().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(LIMIT) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("decnet (pid {pid}) did not exit in time");
            }
        }
    }
}

#[test]
fn the_binary_serves_publishes_and_subscribes() {
    let home = tempfile::tempdir().expect("tempdir");
    let socket = home.path().join("run").join("bus.sock");

    let mut cmd = decnet(home.path());
    cmd.args(["bus", "pub", "a.b", "{}"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "no broker yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the bus broker"));

    let mut broker = Reaper::spawn(decnet(home.path()).arg("bus").stderr(Stdio::piped()));
    let broker_log = lines(broker.child().stderr.take().expect("stderr"));
    wait_line(&broker_log, "listening");
    assert_eq!(
        decnet::fsutil::mode_of(&socket).expect("socket exists"),
        0o660
    );

    let mut cmd = decnet(home.path());
    cmd.args(["bus", "serve"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut sub = Reaper::spawn(
        decnet(home.path())
            .args(["bus", "sub", "a.>", "--count", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let sub_out = lines(sub.child().stdout.take().expect("stdout"));
    let sub_err = lines(sub.child().stderr.take().expect("stderr"));
    wait_line(&sub_err, "subscribed to a.>");

    let mut cmd = decnet(home.path());
    cmd.args(["bus", "pub", "a.b", r#"{"n":1}"#]);
    assert!(run(cmd).status.success());
    let mut cmd = decnet(home.path());
    cmd.args(["bus", "pub", "--type", "note", "a.c.d", r#"{"n":2}"#]);
    assert!(run(cmd).status.success());

    let first: Value = serde_json::from_str(&wait_line(&sub_out, "{")).expect("JSON line");
    let second: Value = serde_json::from_str(&wait_line(&sub_out, "{")).expect("JSON line");
    assert_eq!(
        (first["topic"].as_str(), first["payload"]["n"].as_i64()),
        (Some("a.b"), Some(1))
    );
    assert_eq!(
        (second["topic"].as_str(), second["type"].as_str()),
        (Some("a.c.d"), Some("note"))
    );
    assert!(sub.wait().success());

    let mut cmd = decnet(home.path());
    cmd.args(["bus", "pub", "a..b", "{}"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty token"));
    let mut cmd = decnet(home.path());
    cmd.args(["bus", "pub", "a.b", "{not json"]);
    assert_eq!(run(cmd).status.code(), Some(2));

    let killed = Command::new("kill")
        .args(["-TERM", &broker.child().id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = broker.wait();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket removed on shutdown");
}
