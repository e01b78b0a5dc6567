//! `decnet up`: preflight refusals that change nothing, and the whole single-host
//! installation end to end (Docker): first run, attacks recorded through the real log
//! pipeline into the API, Ctrl-C, and a second run that finds everything again.
//!
//! [`Up`] is the harness: it starts `decnet up` in a clean `DECNET_HOME` on free ports
//! with its own network name and subnets, reads the summary, and hands out the API base
//! URL and an admin token ([`Up::session`]) for further checks of the API.
mod util;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use serde_json::Value;

/// Subnets the tests let `up`'s chooser pick from (documentation ranges only).
const TEST_SUBNETS: &[&str] = &["198.51.100.224/27", "203.0.113.224/27", "198.51.100.160/27"];
/// The password the tests change the generated one to.
const CHOSEN_PASSWORD: &str = "e2e-chosen-admin-password";

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The entries of `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// `decnet up` with `DECNET_HOME` at `<dir>/home` (not created) and `args`.
fn up_in(dir: &util::Dir, args: &[&str]) -> Command {
    let mut cmd = dir.decnet();
    cmd.env("DECNET_HOME", dir.path().join("home"));
    // Free controller and agent ports: several `up`s run at once here.
    cmd.arg("up")
        .args(args)
        .args(["--swarmctl-port", "0", "--agent-port", "0"]);
    cmd
}

/// Asserts a refused `up` exits 1 with `needle` in its message and writes nothing.
fn assert_refused(dir: &util::Dir, cmd: &mut Command, needle: &str) {
    let out = util::run(cmd);
    util::assert_code(&out, 1);
    let err = util::stderr(&out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(
        entries(dir.path()).is_empty(),
        "a refused `up` left {:?}",
        entries(dir.path())
    );
}

#[test]
fn taken_ports_are_refused_before_anything_is_written() {
    let dir = util::Dir::new();
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("addr").port().to_string();
    let free = free_port().to_string();
    assert_refused(
        &dir,
        &mut up_in(
            &dir,
            &["--no-fleet", "--api-port", &taken, "--listener-port", &free],
        ),
        "--api-port",
    );
    // Flags in any order; the listener's port has its own advice.
    assert_refused(
        &dir,
        &mut up_in(
            &dir,
            &["--listener-port", &taken, "--no-fleet", "--api-port", &free],
        ),
        "choose another port with --listener-port",
    );
}

#[test]
fn an_unreachable_docker_engine_is_refused_before_anything_is_written() {
    let dir = util::Dir::new();
    let (api, listener) = (free_port().to_string(), free_port().to_string());
    let args = [
        "--no-fleet",
        "--api-port",
        &api,
        "--listener-port",
        &listener,
    ];
    for bogus in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let mut cmd = up_in(&dir, &args);
        cmd.env("DOCKER_HOST", bogus);
        assert_refused(&dir, &mut cmd, "cannot reach the Docker engine");
    }
}

#[test]
fn a_user_without_docker_access_is_told_what_to_do_and_nothing_is_written() {
    if !nix::unistd::Uid::effective().is_root() {
        util::skip("root (to run decnet up as an unprivileged user)");
        return;
    }
    let dir = util::Dir::new();
    // `nobody` can walk into the temporary directory but not write it or the socket.
    let (api, listener) = (free_port().to_string(), free_port().to_string());
    let home = dir.path().join("home");
    let mut cmd = dir.command("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(util::bin())
        .args([
            "up",
            "--no-fleet",
            "--api-port",
            &api,
            "--listener-port",
            &listener,
            "--swarmctl-port",
            "0",
            "--agent-port",
            "0",
        ])
        .env("DECNET_HOME", &home);
    let mut perms = std::fs::metadata(dir.path()).expect("dir").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).expect("chmod");
    // Refused for the Docker socket or, with an engine anyone may use, for DECNET_HOME.
    assert_refused(&dir, &mut cmd, "run `decnet up` as root");
}

#[test]
fn a_dynamic_decky_binary_is_refused_with_how_to_build_a_static_one() {
    let dir = util::Dir::new();
    if decnet::engine::elf::is_static(&util::bin()).unwrap_or(true) {
        return; // a static test build: nothing to refuse
    }
    let (api, listener) = (free_port().to_string(), free_port().to_string());
    let mut cmd = up_in(&dir, &["--api-port", &api, "--listener-port", &listener]);
    cmd.env("DECNET_DECKY_BINARY", util::bin());
    assert_refused(&dir, &mut cmd, "scripts/build-static.sh");
}

/// What a running `decnet up` printed.
#[derive(Debug, Default)]
struct Summary {
    /// The whole summary.
    text: String,
    /// The generated admin password, on a first run.
    password: Option<String>,
    /// `(decky, ip, services)` rows.
    deckies: Vec<(String, String, String)>,
}

impl Summary {
    fn parse(text: String) -> Self {
        let password = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin password: "))
            .map(|p| p.trim().to_owned());
        let deckies = text
            .lines()
            .filter(|l| l.starts_with("  decky-"))
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                Some((
                    (*cols.first()?).to_owned(),
                    (*cols.get(1)?).to_owned(),
                    (*cols.last()?).to_owned(),
                ))
            })
            .collect();
        Self {
            text,
            password,
            deckies,
        }
    }

    /// The address of the first decky running `service`.
    fn ip_with(&self, service: &str) -> &str {
        self.deckies
            .iter()
            .find(|(_, _, s)| s.split(',').any(|x| x == service))
            .map(|(_, ip, _)| ip.as_str())
            .unwrap_or_else(|| panic!("no decky runs {service}: {}", self.text))
    }
}

/// A running `decnet up`, killed and its fleet torn down when dropped.
struct Up {
    child: Option<Child>,
    /// Where its stderr (progress and diagnostics) goes.
    stderr: PathBuf,
    api_port: u16,
    summary: Summary,
}

impl Up {
    /// Starts `decnet up` in `home` with `args` and waits (up to `wait`) for "ready".
    fn start(home: &util::Dir, api_port: u16, args: &[String], wait: Duration) -> Self {
        let stderr = home.path().join(format!("up-{}.stderr", free_port()));
        let file = std::fs::File::create(&stderr).expect("stderr file");
        let mut cmd = home.decnet();
        cmd.env("DECNET_DECKY_BINARY", util::static_binary())
            .arg("up")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file));
        let mut child = cmd.spawn().expect("spawn decnet up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
                if line == "ready" {
                    let _ = tx.send(text.clone());
                }
            }
        });
        let mut up = Up {
            child: Some(child),
            stderr,
            api_port,
            summary: Summary::default(),
        };
        match rx.recv_timeout(wait) {
            Ok(text) => up.summary = Summary::parse(text),
            Err(_) => panic!(
                "`decnet up` was not ready within {wait:?}:\n{}",
                up.diagnostics()
            ),
        }
        up
    }

    /// What it wrote on stderr so far.
    fn diagnostics(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `http://127.0.0.1:<api port>/api/v1`.
    fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1", self.api_port)
    }

    /// The API base URL and an admin token, changing the first password when needed.
    fn session(&self) -> (String, String) {
        let base = self.api_base();
        if let Some(first) = &self.summary.password {
            let login = api(&base, "POST", "/auth/login", None, Some(&login_body(first)));
            assert_eq!(login["must_change_password"], true, "{login}");
            let token = login["access_token"].as_str().expect("token").to_owned();
            let body = serde_json::json!({"old_password": first, "new_password": CHOSEN_PASSWORD});
            api(
                &base,
                "POST",
                "/auth/change-password",
                Some(&token),
                Some(&body),
            );
        }
        let login = api(
            &base,
            "POST",
            "/auth/login",
            None,
            Some(&login_body(CHOSEN_PASSWORD)),
        );
        let token = login["access_token"].as_str().expect("token").to_owned();
        (base, token)
    }

    /// Sends SIGINT and returns the exit code (panics after 30 s).
    async fn interrupt(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("`decnet up` did not stop within 30 s of SIGINT");
            }
            sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- decnet up stderr\n{}", self.diagnostics());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Tears the fleet of a home down even when the test fails.
struct Teardown<'a>(&'a util::Dir);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let _ = self.0.decnet().args(["teardown", "--all"]).output();
    }
}

fn login_body(password: &str) -> Value {
    serde_json::json!({"username": "admin", "password": password})
}

/// A JSON API call with curl; panics unless it answers 2xx with JSON.
fn api(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail-with-body", "--max-time", "10", "-X", method]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = cmd.arg(format!("{base}{path}")).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{method} {path}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

/// Waits until `ip:port` accepts connections (up to `wait`).
async fn wait_port(ip: &str, port: u16, wait: Duration) {
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
    let deadline = Instant::now() + wait;
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(Instant::now() < deadline, "{addr} never answered");
        sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the API's `path` until `found` holds for its answer, returning how long it took.
async fn wait_for(
    base: &str,
    token: &str,
    path: &str,
    within: Duration,
    found: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let page = api(base, "GET", path, Some(token), None);
        if found(&page) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "nothing as expected at {path} within {within:?}: {page}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/logs?search=…` until a row matches, returning how long it took.
async fn wait_logged(base: &str, token: &str, search: &str, within: Duration) -> Duration {
    let path = format!("/logs?search={}", search.replace(' ', "%20"));
    wait_for(base, token, &path, within, |page| {
        page["total"].as_u64().unwrap_or(0) > 0
    })
    .await
}

/// Polls `/credentials` until `principal` shows up with exactly `secret`'s bytes.
async fn wait_credential(base: &str, token: &str, principal: &str, secret: &[u8]) -> Duration {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    wait_for(
        base,
        token,
        "/credentials?limit=100",
        Duration::from_secs(2),
        |page| {
            page["data"].as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|r| r["principal"] == principal && r["secret_b64"] == b64.as_str())
            })
        },
    )
    .await
}

/// A `/stream` read by curl, its output gathered by a thread.
struct Stream {
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Stream {
    /// Opens the live stream with a fresh ticket.
    fn open(base: &str, token: &str) -> Self {
        let ticket = api(base, "POST", "/auth/sse-ticket", Some(token), None);
        let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
        let mut child = Command::new("curl")
            .args(["-sN", "--max-time", "120"])
            .arg(format!("{base}/stream?ticket={ticket}"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("curl");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (out, into) = (child.stdout.take().expect("stdout"), seen.clone());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut s) = into.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Self { child, seen }
    }

    /// Waits until the stream has carried `needle`, returning how long it took.
    async fn wait_for(&self, needle: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let text = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
            if text.contains(needle) {
                assert!(text.starts_with(": keepalive"), "{text}");
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{needle:?} not on the stream within {within:?}: {text}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` runs (else the test is skipped; a failure under CI).
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg(if tool == "ssh" { "-V" } else { "--version" })
        .output()
        .is_ok();
    if !ok {
        util::skip(tool);
    }
    ok
}

/// The fleet containers of Docker network `network`.
fn fleet_containers(network: &str) -> Vec<String> {
    let filter = format!("label=decnet.fleet.network={network}");
    let mut ids: Vec<String> = util::docker_cli(&["ps", "-aq", "--filter", &filter])
        .lines()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_the_whole_pipeline_and_finds_it_again() {
    if util::docker().await.is_none() || !have("curl") || !have("sshpass") || !have("ssh") {
        return;
    }
    end_to_end().await;
}

async fn end_to_end() {
    let home = util::Dir::new();
    let _teardown = Teardown(&home);
    let network = format!("decnet_upt{}", std::process::id());
    let api_port = free_port();
    let mut args: Vec<String> = vec![
        "--deckies".into(),
        "2".into(),
        "--network-name".into(),
        network.clone(),
        "--api-port".into(),
        api_port.to_string(),
        "--listener-port".into(),
        free_port().to_string(),
        "--swarmctl-port".into(),
        "0".into(),
        "--agent-port".into(),
        "0".into(),
    ];
    for s in TEST_SUBNETS {
        args.extend(["--subnet".into(), (*s).to_owned()]);
    }
    let mut up = Up::start(&home, api_port, &args, Duration::from_secs(600));
    let first = &up.summary;
    assert!(
        first.password.as_ref().is_some_and(|p| p.len() >= 16),
        "{}",
        first.text
    );
    assert_eq!(first.deckies.len(), 2, "{}", first.text);
    let secret = std::fs::metadata(home.path().join("jwt.secret")).expect("jwt.secret");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&secret.permissions()) & 0o777,
        0o600
    );
    let log =
        std::fs::read_to_string(home.path().join("log").join("decnet.log")).unwrap_or_default();
    let password = first.password.clone().unwrap_or_default();
    assert!(!log.contains(&password), "the admin password reached a log");

    assert!(
        !up.diagnostics().contains(&password),
        "the admin password reached the diagnostics"
    );
    let (base, token) = up.session();
    // One host is a swarm of one: its agent, enrolled as `local`, answers the master's
    // probe over loopback mTLS and reports the fleet in its heartbeats.
    let start = Instant::now();
    loop {
        let hosts = api(&base, "GET", "/swarm/hosts", Some(&token), None);
        let deckies = api(&base, "GET", "/swarm/deckies", Some(&token), None);
        let local = hosts
            .as_array()
            .and_then(|a| a.iter().find(|h| h["name"] == "local"));
        let reported = deckies
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|d| d["host_name"] == "local"));
        if local.is_some_and(|h| h["status"] == "active") && reported {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the local agent: hosts {hosts}, deckies {deckies}"
        );
        sleep(Duration::from_millis(500)).await;
    }
    let ssh_ip = first.ip_with("ssh").to_owned();
    let http_ip = first.ip_with("http").to_owned();
    wait_port(&ssh_ip, 22, Duration::from_secs(60)).await;
    wait_port(&http_ip, 80, Duration::from_secs(60)).await;

    let stream = Stream::open(&base, &token);
    let _ = Command::new("sshpass")
        .args(["-p", "e2e-ssh-secret", "ssh"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg(format!("e2euser@{ssh_ip}"))
        .arg("true")
        .output()
        .expect("sshpass");
    let took = wait_logged(
        &base,
        &token,
        "service:ssh event:auth_attempt",
        Duration::from_secs(2),
    )
    .await;
    eprintln!("ssh attempt stored and served after {took:?}");
    let took = wait_credential(&base, &token, "e2euser", b"e2e-ssh-secret").await;
    eprintln!("ssh credential in /credentials after {took:?}");
    let took = stream.wait_for("e2euser", Duration::from_secs(2)).await;
    eprintln!("ssh attempt on the live stream after {took:?}");

    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            "-u",
            "e2e-web:e2e-web-secret",
        ])
        .arg(format!("http://{http_ip}/admin"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "http request failed");
    let took = wait_logged(
        &base,
        &token,
        "service:http event:request",
        Duration::from_secs(2),
    )
    .await;
    eprintln!("http request stored and served after {took:?}");
    let took = wait_credential(&base, &token, "e2e-web", b"e2e-web-secret").await;
    eprintln!("http Basic credential in /credentials after {took:?}");
    let took = wait_for(
        &base,
        &token,
        "/attackers",
        Duration::from_secs(2),
        |page| {
            page["data"].as_array().is_some_and(|rows| {
                rows.iter().any(|a| {
                    let services = a["services"].to_string();
                    services.contains("ssh") && services.contains("http")
                })
            })
        },
    )
    .await;
    eprintln!("one attacker with ssh and http in /attackers after {took:?}");
    drop(stream);

    let before = fleet_containers(&network);
    assert!(!before.is_empty());
    assert_eq!(up.interrupt().await, Some(0), "SIGINT is a clean stop");
    assert!(
        !home.path().join("run").join("bus.sock").exists(),
        "bus socket left behind"
    );

    // The second run finds the admin, the fleet and the stored events again.
    let mut again = Up::start(&home, api_port, &args, Duration::from_secs(120));
    let text = &again.summary.text;
    assert!(again.summary.password.is_none(), "{text}");
    assert!(
        text.contains("admin password was printed on first run"),
        "{text}"
    );
    assert!(text.contains("found again"), "{text}");
    assert_eq!(again.summary.deckies, up.summary.deckies, "{text}");
    assert_eq!(
        fleet_containers(&network),
        before,
        "the fleet was duplicated"
    );
    again.summary.password = None;
    let (base, token) = again.session();
    wait_logged(&base, &token, "service:ssh", Duration::from_secs(2)).await;
    assert_eq!(again.interrupt().await, Some(0));

    // A reset prints a new password, which must be changed at the next login.
    args.push("--reset-admin-password".into());
    let mut reset = Up::start(&home, api_port, &args, Duration::from_secs(120));
    let fresh = reset.summary.password.clone().expect("a new password");
    assert!(
        fresh.len() >= 16 && fresh != password,
        "{}",
        reset.summary.text
    );
    let login = api(
        &base,
        "POST",
        "/auth/login",
        None,
        Some(&login_body(&fresh)),
    );
    assert_eq!(login["must_change_password"], true, "{login}");
    assert_eq!(reset.interrupt().await, Some(0));
}
