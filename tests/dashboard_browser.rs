//! The dashboard in a real browser, watching real attacks go through the real pipeline.
//!
//! This side starts `decnet up --no-fleet` in a fresh `DECNET_HOME` (master API, bus, log
//! listener, collector and forwarder in one process, as a new user runs it) and two decky
//! service processes, `decnet decky --service ssh` and `--service http`, whose stdout is
//! the ingest log that `up`'s forwarder ships: the place the collector puts a container's
//! lines. So every event the browser sees went decky → log file → forwarder → mTLS
//! listener → store → ingester and profiler → REST and SSE, and none was written into the
//! store by the test.
//!
//! Headless Chromium driven by Selenium (tests/browser/dashboard.py) logs in with the
//! password `up` printed, is forced to change it, watches the overview's counters and feed
//! rise while this side attacks with real clients (`sshpass` + `ssh` running a command,
//! `curl` with Basic auth) when the script asks, searches and tails the live logs, opens
//! the attacker from the attackers list and checks its credentials and commands, sees
//! this host's agent active on the swarm page, creates a one-line enrolment there (the
//! `curl … | sudo sh` command shown) and decommissions that worker through the
//! confirmation, opens every page in both themes (screenshots under `target/screenshots/`) and fails on any
//! console error or rendered attacker markup.
mod util;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

const PYTHON: &str = "/usr/bin/python3";
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
/// The root password of the ssh decky (byte-exact in the credentials).
const SSH_PASSWORD: &str = "browser-root-Pa55 word";
/// The Basic-auth account the http attack sends.
const WEB_USER: &str = "browser-web";
const WEB_SECRET: &str = "browser-web-secret";

/// Whether Debian's chromium, chromium-driver and python3-selenium are here, and the
/// clients of the attacks.
fn have_browser() -> bool {
    let selenium = std::process::Command::new(PYTHON)
        .args(["-c", "import selenium.webdriver"])
        .output()
        .is_ok_and(|o| o.status.success());
    let tool = |t: &str| {
        std::process::Command::new(t)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let ok = selenium
        && Path::new(CHROMIUM).exists()
        && Path::new(DRIVER).exists()
        && tool("curl")
        && tool("ssh")
        && tool("sshpass");
    if !ok {
        util::skip("chromium, chromium-driver, python3-selenium, curl, ssh and sshpass");
    }
    ok
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `decnet up --no-fleet`; killed when dropped.
struct Up {
    _child: Child,
    url: String,
    password: String,
}

impl Up {
    /// Starts it in `home` and waits for its summary's `ready`.
    async fn start(home: &util::Dir) -> Self {
        let api = free_port();
        let stderr = std::fs::File::create(home.path().join("up.stderr")).expect("stderr file");
        let mut cmd = Command::from(home.decnet());
        cmd.args(["up", "--no-fleet", "--api-port", &api.to_string()])
            .args(["--listener-port", &free_port().to_string()])
            .args(["--swarmctl-port", "0", "--agent-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn decnet up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut password = None;
        let summary = async {
            while let Some(line) = lines.next_line().await.expect("read up's summary") {
                println!("up: {line}");
                if let Some(p) = line.trim().strip_prefix("admin password: ") {
                    password = Some(p.trim().to_owned());
                }
                if line == "ready" {
                    return true;
                }
            }
            false
        };
        let ready = timeout(Duration::from_secs(120), summary).await == Ok(true);
        let diagnostics = std::fs::read_to_string(home.path().join("up.stderr"));
        assert!(ready, "decnet up not ready: {diagnostics:?}");
        // Its later lines are not needed, but the pipe must keep draining.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            url: format!("http://127.0.0.1:{api}"),
            password: password.expect("a first run prints the admin password"),
        }
    }
}

/// A decky service process writing its events into the ingest log; killed when dropped.
struct Decky {
    _child: Child,
    port: u16,
}

impl Decky {
    /// Starts `service` of decky `node` (with `env`) and waits for its `startup` line.
    async fn start(home: &util::Dir, service: &str, node: &str, env: &[(&str, &str)]) -> Self {
        let log = ingest_log(home);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the ingest log");
        let mut cmd = Command::from(home.decnet());
        cmd.args([
            "decky",
            "--service",
            service,
            "--port",
            "tcp/0",
            "--node",
            node,
        ])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn decnet decky");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text
                .lines()
                .filter_map(|l| decnet::syslog::parse(l).ok())
                .find(|e| e.event_type == "startup" && e.decky == node)
                .and_then(|e| e.fields.get("ports").map(str::to_owned))
                .and_then(|p| p.strip_prefix("tcp/").and_then(|n| n.parse().ok()));
            if let Some(port) = port {
                return Self {
                    _child: child,
                    port,
                };
            }
            assert!(
                Instant::now() < deadline,
                "{node}: no startup line in {text}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Where `up` reads deckies' lines from (`$DECNET_LOG_DIR/decnet.log`, the harness's).
fn ingest_log(home: &util::Dir) -> PathBuf {
    let dir = home.path().join("log");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join("decnet.log")
}

/// An ssh login as root with the decky's password, running `command`.
async fn ssh_attack(port: u16, command: &str) {
    let out = Command::new("sshpass")
        .env("SSHPASS", SSH_PASSWORD)
        .args(["-e", "ssh", "-p", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "PubkeyAuthentication=no"])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "ConnectTimeout=10"])
        .args(["root@127.0.0.1", command])
        .output();
    let out = timeout(Duration::from_secs(30), out)
        .await
        .expect("ssh within 30 s")
        .expect("run sshpass");
    assert!(
        out.status.success(),
        "ssh {command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A request for `path` with Basic credentials.
async fn http_attack(port: u16, path: &str) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .args(["-u", &format!("{WEB_USER}:{WEB_SECRET}")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .await
        .expect("run curl");
    assert!(out.status.success(), "curl {path}");
}

/// The browser script; asked to stop (SIGTERM) when the test ends early, so it can quit
/// Chromium and chromedriver instead of leaving them behind as a SIGKILL would.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    if !have_browser() || util::docker().await.is_none() {
        return;
    }
    let home = util::Dir::new();
    let up = Up::start(&home).await;
    let ssh_env = [
        ("SSH_ROOT_PASSWORD", SSH_PASSWORD),
        ("SSH_AUTH_DELAY_MS", "100"),
        ("SSH_RSA_HOST_KEY", "0"),
    ];
    let ssh = Decky::start(&home, "ssh", "decky-ssh-01", &ssh_env).await;
    let web = Decky::start(&home, "http", "decky-web-01", &[]).await;
    // Something stored before the browser arrives, as on any running install.
    ssh_attack(ssh.port, "uname -a").await;
    http_attack(web.port, "/").await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let child = Command::new(PYTHON)
        .arg(&script)
        .args(["--url", &up.url])
        .args(["--password", &up.password])
        .args(["--new-password", "browser-chosen-password"])
        .args(["--web-user", WEB_USER, "--ssh-password", SSH_PASSWORD])
        .arg("--shots")
        .arg(screenshots())
        .args(["--chromium", CHROMIUM, "--driver", DRIVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the browser script");
    let mut child = Script(child);
    let mut to_script = child.0.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let mut passed = false;
    let mut shots = Vec::new();
    let talk = async {
        while let Some(line) = lines.next_line().await.expect("read script output") {
            println!("browser: {line}");
            if let Some(command) = line.strip_prefix("ATTACK ssh ") {
                ssh_attack(ssh.port, command).await;
            } else if let Some(path) = line.strip_prefix("ATTACK http ") {
                http_attack(web.port, path).await;
            } else if let Some(path) = line.strip_prefix("SHOT ") {
                shots.push(PathBuf::from(path));
                continue;
            } else {
                passed |= line == "PASS";
                continue;
            }
            to_script
                .write_all(b"OK\n")
                .await
                .expect("answer the script");
        }
    };
    timeout(Duration::from_secs(300), talk)
        .await
        .expect("the browser run finished within 5 minutes");
    let status = child.0.wait().await.expect("script exit");
    assert!(
        status.success() && passed,
        "browser checks failed ({status}); decnet up said: {:?}",
        std::fs::read_to_string(home.path().join("up.stderr"))
    );
    for name in [
        "01-login",
        "02-change-password",
        "03-overview",
        "04-live-logs",
        "05-attackers",
        "06-attacker-detail",
        "07-attacker-credentials",
        "08-attacker-commands",
        "09-credentials",
        "10-bounty",
        "11-fleet",
        "12-swarm",
        "13-users-config",
    ] {
        for theme in ["dark", "light"] {
            let p = screenshots().join(format!("{name}-{theme}.png"));
            assert!(shots.contains(&p), "no screenshot {}", p.display());
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(size > 10_000, "{} is {size} bytes", p.display());
        }
    }
    println!("screenshots: {}", shots.len());
}
