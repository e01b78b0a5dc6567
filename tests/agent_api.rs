//! `decnet agent` over real mTLS on loopback: who may drive it, its answers, the
//! lifecycle and periodic heartbeats at a real `swarmctl` receiver, and self-destruct.
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use decnet::engine::plan::Driver;
use decnet::https::{self, Client, ServeOptions, Timeouts};
use decnet::pki::{self, Bundle, IssueRequest, Kind, Layout, MASTER_CN};
use decnet::roles::agent::{self, AgentSettings, AgentState, HeartbeatConfig, ReaperConfig};
use decnet::tls::{self, ClientOptions};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

struct World {
    dir: tempfile::TempDir,
    layout: Layout,
    w1: Bundle,
    w1_dir: PathBuf,
    w2: Bundle,
    w2_dir: PathBuf,
    updater: Bundle,
    master: Bundle,
    swarmctl: Bundle,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path().join("pki"));
    layout.ensure_ca().expect("CA");
    let sans = ["127.0.0.1".to_owned()];
    let w1_dir = dir.path().join("agent-w1");
    let w2_dir = dir.path().join("agent-w2");
    let (w1, _) = layout
        .issue_host(Kind::Worker, "w1", &sans, Some(&w1_dir), false)
        .expect("w1");
    let (w2, _) = layout
        .issue_host(Kind::Worker, "w2", &sans, Some(&w2_dir), false)
        .expect("w2");
    let (updater, _) = layout
        .issue_host(Kind::Updater, "w1", &[], None, false)
        .expect("updater");
    let master = layout.ensure_master().expect("master");
    let swarmctl = layout.ensure_server(&[]).expect("swarmctl");
    World {
        dir,
        layout,
        w1,
        w1_dir,
        w2,
        w2_dir,
        updater,
        master,
        swarmctl,
    }
}

/// A `swarmctl` heartbeat receiver: every body it gets goes to the channel; 204.
async fn receiver(swarmctl: &Bundle) -> (u16, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/swarm/heartbeat",
        post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = TlsAcceptor::from(tls::server_config(swarmctl).expect("server config"));
    tokio::spawn(https::serve(
        listener,
        Some(acceptor),
        app,
        CancellationToken::new(),
        ServeOptions::default(),
    ));
    (port, rx)
}

fn settings(
    agent_dir: &Path,
    home: &Path,
    uuid: &str,
    port: u16,
    reap: Vec<PathBuf>,
) -> AgentSettings {
    AgentSettings {
        agent_dir: agent_dir.to_path_buf(),
        home: home.to_path_buf(),
        docker_host: None,
        decky_binary: None,
        artifacts_root: home.join("artifacts"),
        driver: Driver::Macvlan,
        heartbeat: Some(HeartbeatConfig {
            interval: Duration::from_millis(200),
            ..HeartbeatConfig::new(uuid.into(), "127.0.0.1".into(), port, false)
        }),
        reaper: ReaperConfig {
            paths: reap,
            units: Vec::new(),
        },
    }
}

async fn start(settings: AgentSettings) -> (u16, CancellationToken) {
    let state = AgentState::new(settings).expect("agent state");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = CancellationToken::new();
    tokio::spawn(agent::serve(listener, state, stop.clone()));
    (port, stop)
}

/// A client presenting `me` to the agent on `port`, which must be `server` (pinned).
fn client(me: &Bundle, server: &Bundle, port: u16) -> Client {
    let config = tls::client_config(
        me,
        &ClientOptions {
            identity: Some(server.cn().to_owned()),
            pin: Some(server.fingerprint().clone()),
            verify_hostname: false,
        },
    )
    .expect("client config");
    Client::new(config, "127.0.0.1", port)
}

async fn get(c: &Client, path: &str) -> https::Response {
    c.send(Method::GET, path, None, Timeouts::CONTROL)
        .await
        .expect("an answer")
}

async fn post_json(c: &Client, path: &str, body: Value) -> https::Response {
    c.json(Method::POST, path, &body, Timeouts::CONTROL)
        .await
        .expect("an answer")
}

fn fleet() -> Value {
    json!({
        "mode": "unihost", "interface": "lo", "subnet": "198.51.100.0/24",
        "gateway": "198.51.100.1",
        "deckies": [{
            "name": "decky-01", "ip": "198.51.100.10", "services": ["ssh"],
            "distro": "debian", "base_image": "debian", "hostname": "files01",
        }],
    })
}

/// Waits for a heartbeat of `uuid` matching `want`.
async fn beat_where(
    rx: &mut mpsc::UnboundedReceiver<Value>,
    uuid: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = rx.recv().await.expect("receiver open");
            if v["host_uuid"] == uuid && want(&v) {
                return v;
            }
        }
    })
    .await
    .expect("the heartbeat arrives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_pinned_master_drives_the_agent_and_heartbeats_report_operations() {
    let w = world();
    pki::write_swarmctl_pin(&w.w1_dir, w.swarmctl.fingerprint()).expect("pin");
    let (hb_port, mut beats) = receiver(&w.swarmctl).await;
    let home = w.dir.path().join("home");
    let reap = vec![w.dir.path().join("reap/opt"), w.dir.path().join("reap/etc")];
    for p in &reap {
        std::fs::create_dir_all(p.join("inner")).expect("mkdir");
        std::fs::write(p.join("inner/file"), b"x").expect("write");
    }
    let (port, stop) = start(settings(&w.w1_dir, &home, "uuid-w1", hb_port, reap.clone())).await;

    let master = client(&w.master, &w.w1, port);
    let r = get(&master, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json::<Value>().expect("json"), json!({"status": "ok"}));
    let r = get(&master, "/status").await;
    assert_eq!(
        r.json::<Value>().expect("json"),
        json!({"deployed": false, "deckies": []})
    );

    // Other workers' certificates and the agent's own: authenticated, not authorised.
    for other in [&w.w2, &w.w1] {
        let r = get(&client(other, &w.w1, port), "/status").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", other.cn());
        assert_eq!(r.detail(), "master certificate required");
    }
    // A re-issued master identity from the same CA: the bundle pins the old one.
    let ca = w.layout.load_ca().expect("CA");
    let reissued = ca
        .issue(&IssueRequest::new(MASTER_CN, ["127.0.0.1"]).with_kind(Kind::Master))
        .expect("reissue");
    let r = get(&client(&reissued, &w.w1, port), "/health").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.detail(), "master certificate required");
    // No clientAuth EKU (updater) or another CA: the handshake itself fails.
    let foreign = Layout::new(w.dir.path().join("pki2"))
        .ensure_master()
        .expect("foreign");
    for refused in [&w.updater, &foreign] {
        let res = client(refused, &w.w1, port)
            .send(Method::GET, "/health", None, Timeouts::CONTROL)
            .await;
        assert!(res.is_err(), "{} got an answer: {res:?}", refused.cn());
    }

    // Bodies: unknown fields are named; no state is 404 for a dry mutate, 200 for teardown.
    let r = post_json(
        &master,
        "/deploy",
        json!({"config": fleet(), "bogus_flag": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.detail().contains("bogus_flag"), "{}", r.detail());
    let r = post_json(&master, "/deploy", json!({"dry_run": true})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.detail().contains("config"), "{}", r.detail());
    let r = post_json(
        &master,
        "/mutate",
        json!({"decky_id": "decky-01", "services": ["http"], "dry_run": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "no active deployment on this worker");
    let r = post_json(&master, "/teardown", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json::<Value>().expect("json"),
        json!({"status": "torn_down", "decky_id": null})
    );

    // Periodic beats carry the host id and the snapshot.
    let periodic = beat_where(&mut beats, "uuid-w1", |v| v.get("lifecycle").is_none()).await;
    assert_eq!(periodic["status"]["deployed"], false);
    assert_eq!(periodic["agent_version"], decnet::VERSION);

    // A dry-run deploy is accepted and reported once it finished.
    let r = post_json(
        &master,
        "/deploy",
        json!({"config": fleet(), "dry_run": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.json::<Value>().expect("json"),
        json!({"status": "accepted", "deckies": ["decky-01"]})
    );
    let pushed = beat_where(&mut beats, "uuid-w1", |v| v.get("lifecycle").is_some()).await;
    let deltas = pushed["lifecycle"].as_array().expect("deltas");
    assert_eq!(deltas.len(), 1, "{pushed}");
    assert_eq!(deltas[0]["decky_name"], "decky-01");
    assert_eq!(deltas[0]["operation"], "deploy");
    assert_eq!(deltas[0]["status"], "succeeded", "{pushed}");
    assert!(deltas[0]["completed_at"].is_string());

    // Self-destruct answers, then the install paths go.
    let r = master
        .send(Method::POST, "/self-destruct", None, Timeouts::CONTROL)
        .await
        .expect("an answer");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json::<Value>().expect("json"),
        json!({"status": "self_destruct_scheduled"})
    );
    let gone = tokio::time::timeout(Duration::from_secs(12), async {
        while reap.iter().any(|p| p.exists()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "reap paths still there: {reap:?}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_is_not_the_pinned_one_gets_no_heartbeat() {
    let w = world();
    // The bundle pins some other certificate than the controller's.
    pki::write_swarmctl_pin(&w.w2_dir, w.w1.fingerprint()).expect("pin");
    let (hb_port, mut beats) = receiver(&w.swarmctl).await;
    let home = w.dir.path().join("home2");
    let (port, stop) = start(settings(&w.w2_dir, &home, "uuid-w2", hb_port, Vec::new())).await;
    // The agent runs (it answers its master) ...
    let r = get(&client(&w.master, &w.w2, port), "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    // ... yet several beat intervals pass without a single beat reaching the impostor.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        beats.try_recv().is_err(),
        "a heartbeat reached an unpinned controller"
    );
    stop.cancel();

    // Control: the same setup with the right pin does deliver.
    pki::write_swarmctl_pin(&w.w2_dir, w.swarmctl.fingerprint()).expect("pin");
    let (_, stop) = start(settings(&w.w2_dir, &home, "uuid-w2", hb_port, Vec::new())).await;
    let v = beat_where(&mut beats, "uuid-w2", |_| true).await;
    assert_eq!(v["status"]["deployed"], false);
    stop.cancel();
}

#[test]
fn without_a_bundle_the_agent_refuses_to_start_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent_dir = dir.path().join("agent");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decnet"))
        .env_clear()
        .env("DECNET_HOME", dir.path())
        .args(["agent", "--no-collector", "--agent-dir"])
        .arg(&agent_dir)
        .output()
        .expect("run decnet");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "[agent] No cert bundle at {}. Run `decnet swarm enroll` from the master first.",
            agent_dir.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_fails_is_reported_failed_with_its_cause() {
    let w = world();
    pki::write_swarmctl_pin(&w.w1_dir, w.swarmctl.fingerprint()).expect("pin");
    let (hb_port, mut beats) = receiver(&w.swarmctl).await;
    let home = w.dir.path().join("home");
    let mut s = settings(&w.w1_dir, &home, "uuid-w1", hb_port, Vec::new());
    // No engine there: the deploy cannot succeed, and the cause names where it looked.
    s.docker_host = Some(format!(
        "unix://{}",
        w.dir.path().join("no-docker.sock").display()
    ));
    let (port, stop) = start(s).await;
    let mut config = fleet();
    config["interface"] = json!("decnet-none0");
    let r = post_json(
        &client(&w.master, &w.w1, port),
        "/deploy",
        json!({"config": config}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let pushed = beat_where(&mut beats, "uuid-w1", |v| v.get("lifecycle").is_some()).await;
    let delta = &pushed["lifecycle"][0];
    assert_eq!(delta["status"], "failed", "{pushed}");
    let error = delta["error"].as_str().expect("an error text");
    assert!(error.contains("no-docker.sock"), "{error}");
    assert!(error.chars().count() <= 2000);
    stop.cancel();
}
