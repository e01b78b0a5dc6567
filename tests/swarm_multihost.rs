//! The swarm across hosts (issue "Swarm", "Done when"): a master and two workers as
//! separate processes in their own network namespaces, each worker with its own Docker
//! engine, LAN bridge and attacker ([`util::swarmlab`]).
//!
//! One scenario, in order: both workers enrol through the one-line bundle (`curl … | sh`
//! against the master, with the binary it serves); 6 deckies are deployed sharded across
//! them; an attack from each worker's attacker namespace is stored on the master under
//! the right worker; heartbeats mark both active; one worker is cut off and turns
//! unreachable, then active again when reconnected, with every log line of the cut
//! stored exactly once; one decky and then one host are torn down; a decommissioned
//! worker's heartbeats and logs stop being accepted within 30 s.
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, sleep};
use util::swarmlab::{MASTER, SwarmLab, Worker};

const PASSWORD: &str = "multihost-admin-password-1";
const CHOSEN: &str = "multihost-chosen-password-2";
/// Heartbeat period of the test agents and the master's silence limit.
const BEAT_S: &str = "1";
const LIVENESS_S: &str = "4";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The master as the tests reach it: curl and the CLI inside its namespace.
struct Master<'a> {
    lab: &'a SwarmLab,
    home: PathBuf,
    token: String,
}

impl Master<'_> {
    /// `method path` on the API with the admin token; status and JSON body.
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("http://{MASTER}:8000{path}");
        let mut args = vec![
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "--max-time",
            "30",
        ];
        let auth = format!("Authorization: Bearer {}", self.token);
        if !self.token.is_empty() {
            args.extend(["-H", &auth]);
        }
        let data = body.map(Value::to_string);
        if let Some(d) = &data {
            args.extend(["-H", "Content-Type: application/json", "--data", d]);
        }
        args.push(&url);
        let out = self
            .lab
            .master("curl", &args)
            .output()
            .unwrap_or_else(|e| panic!("curl: {e}"));
        let all = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = all.rsplit_once('\n').unwrap_or(("", "0"));
        let code: u16 = code.trim().parse().unwrap_or(0);
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// `decnet swarm args…` in the master's namespace, through the controller over mTLS.
    fn swarm(&self, args: &[&str]) -> Output {
        let mut cmd = self
            .lab
            .master(util::bin().to_str().unwrap_or("decnet"), &["swarm"]);
        cmd.args(args)
            .args(["--url", &format!("https://{MASTER}:8770")])
            .env("DECNET_HOME", &self.home)
            .env("DECNET_API_TOKEN", &self.token);
        cmd.output().unwrap_or_else(|e| panic!("decnet swarm: {e}"))
    }

    fn swarm_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.swarm(&all);
        assert!(out.status.success(), "swarm {args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }

    /// The status of host `name` in `swarm list`.
    fn status_of(&self, name: &str) -> Option<String> {
        self.swarm_json(&["list"])
            .as_array()?
            .iter()
            .find(|h| h["name"] == name)
            .and_then(|h| h["status"].as_str().map(str::to_owned))
    }

    /// Stored log rows whose raw line contains `needle`: (worker, decky) each.
    fn rows(&self, needle: &str) -> Vec<(String, String)> {
        let conn = rusqlite::Connection::open_with_flags(
            self.home.join("decnet.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut stmt = conn
            .prepare("SELECT worker, decky FROM logs WHERE instr(raw_line, ?1) > 0")
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([needle], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Fetches `/<needle>` from the decky at `ip` out of `w`'s attacker namespace.
fn attack(w: &Worker, ip: &str, needle: &str) {
    let url = format!("http://{ip}/{needle}");
    let out = w
        .attacker("curl", &["-s", "-o", "/dev/null", "--max-time", "10", &url])
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert!(out.status.success(), "attack on {url}: {}", text(&out));
}

/// Polls `f` every 500 ms until it is true or `limit` passes; how long it took.
async fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(500)).await;
    }
}

/// Starts `decnet master` (API, controller over mTLS, listener) in the master namespace.
fn start_master(lab: &mut SwarmLab, home: &Path, static_bin: &Path) {
    let log = std::fs::File::create(home.with_extension("log")).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = lab.master(util::bin().to_str().unwrap_or("decnet"), &["master"]);
    cmd.args(["--host", &MASTER.to_string(), "--port", "8000"])
        .args(["--swarmctl-host", &MASTER.to_string(), "--tls"])
        .env("DECNET_HOME", home)
        .env("DECNET_LOG_DIR", home.join("log"))
        .env("DECNET_ADMIN_PASSWORD", PASSWORD)
        .env("DECNET_CORS_ORIGINS", format!("http://{MASTER}:8080"))
        .env("DECNET_LISTENER_HOST", MASTER.to_string())
        .env("DECNET_DECKY_BINARY", static_bin)
        .env("DECNET_SWARM_LIVENESS", LIVENESS_S)
        .env("DECNET_CONFIG", home.join("none.ini"))
        .stdout(Stdio::null())
        .stderr(log);
    lab.keep(cmd.spawn().unwrap_or_else(|e| panic!("decnet master: {e}")));
}

/// An RFC 5424 line as a decky's collector writes it, tagged `needle`.
fn line(decky: &str, needle: &str) -> String {
    format!(
        "<134>1 2026-12-02T05:00:00.000000+00:00 {decky} http - request [decnet@55555 \
         src_ip=\"198.51.100.99\" path=\"/{needle}\"] GET /{needle}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_enrol_deploy_report_survive_a_cut_and_are_decommissioned() {
    if util::docker().await.is_none() || !api_tools() {
        return;
    }
    let dir = util::Dir::new();
    let static_bin = util::static_binary();
    let Some(mut lab) = SwarmLab::new(dir.path(), 2) else {
        return;
    };
    let home = dir.path().join("master");
    start_master(&mut lab, &home, &static_bin);
    let mut m = Master {
        lab: &lab,
        home: home.clone(),
        token: String::new(),
    };
    until(Duration::from_secs(30), "master API up", || {
        m.api("GET", "/api/v1/health", None).0 != 0
    })
    .await;
    let (code, v) = m.api(
        "POST",
        "/api/v1/auth/login",
        Some(&json!({"username":"admin","password":PASSWORD})),
    );
    assert_eq!(code, 200, "{v}");
    m.token = v["access_token"].as_str().unwrap_or_default().to_owned();
    let (code, v) = m.api(
        "POST",
        "/api/v1/auth/change-password",
        Some(&json!({"old_password": PASSWORD, "new_password": CHOSEN})),
    );
    assert_eq!(code, 200, "{v}");
    let (_, v) = m.api(
        "POST",
        "/api/v1/auth/login",
        Some(&json!({"username":"admin","password":CHOSEN})),
    );
    m.token = v["access_token"].as_str().unwrap_or_default().to_owned();
    let token = m.token.clone();
    drop(m);

    for i in 0..2 {
        let agent = enrol(
            &Master {
                lab: &lab,
                home: home.clone(),
                token: token.clone(),
            },
            i,
        );
        lab.keep(agent);
    }
    let m = Master {
        lab: &lab,
        home: home.clone(),
        token,
    };

    // Heartbeats mark both active.
    until(Duration::from_secs(30), "both workers active", || {
        m.status_of("w1").as_deref() == Some("active")
            && m.status_of("w2").as_deref() == Some("active")
    })
    .await;
    let hosts = m.swarm_json(&["list"]);
    for h in hosts.as_array().into_iter().flatten() {
        assert_eq!(
            h["agent_version"],
            decnet::VERSION,
            "the build each agent reports: {h}"
        );
    }

    // 6 deckies, sharded 3 + 3.
    let out = m.swarm(&[
        "deploy",
        "-n",
        "6",
        "--services",
        "http",
        "--interface",
        "sw0",
        "--subnet",
        "203.0.113.0/24",
        "--gateway",
        "203.0.113.1",
        "--ip-start",
        "203.0.113.100",
    ]);
    assert!(out.status.success(), "swarm deploy: {}", text(&out));
    // Dispatch marks the shards running at once (the agents accepted); the workers'
    // heartbeats then report them running at the addresses they relocalised to.
    until(
        Duration::from_secs(300),
        "6 deckies running on their workers' LANs",
        || {
            let v = m.swarm_json(&["deckies", "--state", "running"]);
            v.as_array().is_some_and(|a| {
                a.len() == 6
                    && a.iter().all(|d| {
                        d["decky_ip"]
                            .as_str()
                            .is_some_and(|ip| ip.starts_with("198.51.100."))
                    })
            })
        },
    )
    .await;
    let deckies = m.swarm_json(&["deckies"]);
    let of = |w: &str| -> Vec<(String, String)> {
        deckies
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["host_name"] == w)
            .map(|d| {
                (
                    d["decky_name"].as_str().unwrap_or_default().to_owned(),
                    d["decky_ip"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let (w1, w2) = (of("w1"), of("w2"));
    assert_eq!((w1.len(), w2.len()), (3, 3), "{deckies}");
    for (i, (name, ip)) in [&w1[0], &w2[0]].into_iter().enumerate() {
        let lan = &lab.workers[i].lan;
        assert!(
            ip.starts_with(&lan[..lan.rfind('.').unwrap_or(0)]),
            "{name} at {ip}, LAN {lan}"
        );
    }

    // An attack from each worker's LAN is stored under that worker.
    for (i, (name, ip)) in [&w1[0], &w2[0]].into_iter().enumerate() {
        let needle = format!("probe-{}-{}", lab.workers[i].name, lab.tag);
        attack(&lab.workers[i], ip, &needle);
        let want = lab.workers[i].name.clone();
        until(Duration::from_secs(30), "attack stored", || {
            let rows = m.rows(&needle);
            !rows.is_empty() && rows.iter().all(|(w, d)| *w == want && d == name)
        })
        .await;
    }

    // Cut w1 off: unreachable; its attacks during the cut arrive once it is back.
    lab.link(0, false);
    until(Duration::from_secs(30), "w1 unreachable", || {
        m.status_of("w1").as_deref() == Some("unreachable")
    })
    .await;
    let cut: Vec<String> = (0..5).map(|k| format!("cut-{k}-{}", lab.tag)).collect();
    for needle in &cut {
        attack(&lab.workers[0], &w1[1].1, needle);
    }
    sleep(Duration::from_secs(2)).await;
    assert!(
        m.rows(&format!("cut-0-{}", lab.tag)).is_empty(),
        "nothing crosses a cut link"
    );
    lab.link(0, true);
    until(Duration::from_secs(30), "w1 active again", || {
        m.status_of("w1").as_deref() == Some("active")
    })
    .await;
    until(Duration::from_secs(60), "the cut's lines arrive", || {
        cut.iter().all(|n| !m.rows(n).is_empty())
    })
    .await;
    sleep(Duration::from_secs(3)).await;
    // Exactly once: as many stored rows as lines the worker's collector wrote (a request
    // makes more than one line), none lost, none repeated.
    let written = std::fs::read_to_string(lab.workers[0].root.join("var/log/decnet/decnet.log"))
        .unwrap_or_default();
    for needle in &cut {
        let lines = written
            .lines()
            .filter(|l| l.contains(needle.as_str()))
            .count();
        assert!(lines > 0, "{needle}: the collector wrote it");
        assert_eq!(m.rows(needle).len(), lines, "{needle}: exactly once");
    }

    // Teardown of one decky, then of one host.
    let out = m.swarm(&["teardown", "--host", "w1", "--decky", &w1[2].0]);
    assert!(out.status.success(), "{}", text(&out));
    let names = lab.workers[0].docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.lines().any(|n| n.starts_with(&w1[2].0)), "{names}");
    assert!(
        names.lines().any(|n| n.starts_with(&w1[0].0)),
        "the others stay: {names}"
    );
    let out = m.swarm(&["teardown", "--host", "w2"]);
    assert!(out.status.success(), "{}", text(&out));
    let names = lab.workers[1].docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !w2.iter()
            .any(|(d, _)| names.lines().any(|n| n.starts_with(d.as_str()))),
        "{names}"
    );

    // Decommission w1: gone from the list, its logs refused within 30 s; w2's still flow.
    let out = m.swarm(&["decommission", "--name", "w1", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.status_of("w1"), None);
    let started = Instant::now();
    sleep(Duration::from_secs(12)).await;
    let (gone, kept) = (
        format!("after-w1-{}", lab.tag),
        format!("after-w2-{}", lab.tag),
    );
    for (w, needle) in [(&lab.workers[0], &gone), (&lab.workers[1], &kept)] {
        let log = w.root.join("var/log/decnet/decnet.log");
        let mut text = std::fs::read_to_string(&log).unwrap_or_default();
        text.push_str(&line("late", needle));
        let _ = std::fs::write(&log, text);
    }
    until(Duration::from_secs(30), "w2's line", || {
        !m.rows(&kept).is_empty()
    })
    .await;
    sleep(Duration::from_secs(5)).await;
    assert!(
        m.rows(&gone).is_empty(),
        "a decommissioned worker's line was stored"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Enrols worker `i` through the one-line bundle and starts its agent from what the
/// bootstrap installed.
fn enrol(m: &Master<'_>, i: usize) -> std::process::Child {
    let lab = m.lab;
    let w: &Worker = &lab.workers[i];
    let (code, v) = m.api(
        "POST",
        "/api/v1/swarm/enroll-bundle",
        Some(&json!({"master_host": MASTER.to_string(), "agent_name": w.name, "with_updater": false})),
    );
    assert_eq!(code, 201, "{v}");
    let command = v["command"].as_str().unwrap_or_default().to_owned();
    assert!(
        command.starts_with(&format!("curl -fsSL http://{MASTER}:8000/")),
        "{command}"
    );
    let line = command.replace("| sudo sh", "| sh");
    let root = w.root.display().to_string();
    let out = w
        .exec("sh", &["-c", &line])
        .env("DECNET_ROOT", &root)
        .output()
        .unwrap_or_else(|e| panic!("bootstrap: {e}"));
    assert!(
        out.status.success(),
        "bootstrap of {}: {}",
        w.name,
        text(&out)
    );
    let key = w.root.join("etc/decnet/agent/worker.key");
    let meta = std::fs::metadata(&key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let tgz = format!(
        "/api/v1/swarm/enroll-bundle/{}.tgz",
        v["token"].as_str().unwrap_or("")
    );
    assert_eq!(m.api("GET", &tgz, None).0, 404, "the payload is one-shot");

    let installed = w.root.join("usr/local/bin/decnet");
    let log =
        std::fs::File::create(w.root.with_extension("agent.log")).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = w.exec(installed.to_str().unwrap_or("decnet"), &["agent"]);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DECNET_CONFIG", w.root.join("etc/decnet/decnet.ini"))
        .env("DOCKER_HOST", format!("unix://{}", w.docker_sock.display()))
        .env("DECNET_HEARTBEAT_INTERVAL", BEAT_S)
        .stdout(Stdio::null())
        .stderr(log);
    cmd.spawn().unwrap_or_else(|e| panic!("agent: {e}"))
}

/// curl and sh, which the bootstrap needs.
fn api_tools() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        util::skip("curl");
    }
    ok
}
