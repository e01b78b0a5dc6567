//! Harness of the swarm controller tests: a master API and its controller (mutual TLS
//! and plain loopback) on one state and one SQLite file, plain and mTLS HTTP/1.1
//! requests, and fake agents served with `https::serve` that answer like the real one.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use decnet::config::Secret;
use decnet::https::{self, ServeOptions};
use decnet::pki::{Bundle, Layout};
use decnet::roles::master::{self, AppState, Extras, MasterConfig, Settings, bootstrap, swarm};
use decnet::store::{Options, Store};
use decnet::tls::{self, ClientOptions};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "first-admin-password";

/// A master API and its swarm controller (TLS and plain) on one state.
pub struct Rig {
    pub _dir: tempfile::TempDir,
    pub state: AppState,
    pub store: Store,
    pub layout: Layout,
    pub api: SocketAddr,
    pub tls: SocketAddr,
    pub plain: SocketAddr,
    pub token: String,
    pub master: Bundle,
    pub stop: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// One HTTP/1.1 exchange over `stream`.
pub async fn exchange<S>(
    stream: S,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        send.send_request(req.body(Full::new(bytes)).expect("request")),
    )
    .await
    .expect("answer in time")
    .expect("answer");
    let status = resp.status().as_u16();
    let raw = resp.into_body().collect().await.expect("body").to_bytes();
    let value = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
    };
    (status, value)
}

/// A plain HTTP request to `addr`.
pub async fn plain(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    exchange(tcp, method, path, token, body).await
}

/// An mTLS request to the controller at `addr`, presenting `client`.
pub async fn mtls(
    client: &Bundle,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let opts = ClientOptions {
        identity: Some("swarmctl".into()),
        pin: None,
        verify_hostname: false,
    };
    let config = tls::client_config(client, &opts).expect("client config");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let stream = tls::connect(config, "127.0.0.1", tcp)
        .await
        .expect("handshake");
    exchange(stream, method, path, token, body).await
}

pub fn detail(v: &Value) -> String {
    v["detail"].as_str().unwrap_or_default().to_owned()
}

pub async fn rig(limiter: bool) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("decnet.db"), Options::default()).expect("store");
    let s = store.clone();
    tokio::task::spawn_blocking(move || bootstrap::seed_admin(&s, "admin", PASSWORD))
        .await
        .expect("seed task")
        .expect("seed admin");
    let mut extras = Extras::for_home(dir.path());
    extras.swarm.beat_window = Duration::from_millis(1500);
    extras.swarm.flush_every = Duration::from_millis(100);
    let config = MasterConfig {
        store: store.clone(),
        jwt_secret: Secret::new("test-key-0123456789abcdef-0123456789".into()),
        settings: Settings {
            token_ttl: Duration::from_secs(3600),
            cors_origins: vec!["http://dashboard.test:8080".into()],
            limiter_enabled: limiter,
            developer: false,
            home: PathBuf::from(dir.path()),
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            artifacts_root: dir.path().join("artifacts"),
            bus: Some(decnet::config::BusConfig {
                socket: dir.path().join("bus.sock"),
                group: "decnet".into(),
                enabled: true,
                kind: decnet::config::BusKind::Fake,
            }),
        },
    };
    let state = AppState::with_extras(config, extras);
    let stop = CancellationToken::new();
    let (api_l, api) = bind().await;
    tokio::spawn(master::serve(api_l, state.clone(), stop.clone()));
    let acceptor = state.swarm.controller_tls(&[]).expect("controller TLS");
    let (tls_l, tls) = bind().await;
    tokio::spawn(swarm::serve_controller(
        tls_l,
        state.clone(),
        Some(acceptor),
        stop.clone(),
    ));
    let (plain_l, plain_addr) = bind().await;
    tokio::spawn(swarm::serve_controller(
        plain_l,
        state.clone(),
        None,
        stop.clone(),
    ));
    let login = |pw: &'static str| async move {
        let (code, v) = plain(
            api,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": "admin", "password": pw})),
        )
        .await;
        assert_eq!(code, 200, "{v}");
        v["access_token"].as_str().expect("token").to_owned()
    };
    let first = login(PASSWORD).await;
    let (code, v) = plain(
        api,
        "POST",
        "/api/v1/auth/change-password",
        Some(&first),
        Some(&json!({"old_password": PASSWORD, "new_password": "admin-chosen-password"})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let token = login("admin-chosen-password").await;
    let layout = Layout::new(dir.path().join("pki"));
    let master = layout.ensure_master().expect("master identity");
    Rig {
        _dir: dir,
        state,
        store,
        layout,
        api,
        tls,
        plain: plain_addr,
        token,
        master,
        stop,
    }
}

impl Rig {
    /// The state directory (`DECNET_HOME`).
    pub fn home(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `POST /swarm/enroll` over loopback; the answer.
    pub async fn enroll(&self, name: &str, port: u16) -> (u16, Value) {
        let body = json!({"name": name, "address": "127.0.0.1", "agent_port": port});
        plain(
            self.plain,
            "POST",
            "/swarm/enroll",
            Some(&self.token),
            Some(&body),
        )
        .await
    }

    /// Enrols `name` and returns its uuid and the worker bundle as the master keeps it.
    pub async fn enrolled(&self, name: &str, port: u16) -> (String, Bundle) {
        let (code, v) = self.enroll(name, port).await;
        assert_eq!(code, 201, "{v}");
        let uuid = v["host_uuid"].as_str().expect("uuid").to_owned();
        let dir = self.layout.bundle_dir(decnet::pki::Kind::Worker, name);
        (uuid, Bundle::load(&dir, "worker").expect("worker bundle"))
    }

    /// A heartbeat claiming `uuid`, presenting `cert`.
    pub async fn beat(&self, cert: &Bundle, uuid: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"host_uuid": uuid, "agent_version": "test", "status": {"deployed": false, "deckies": []}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        mtls(
            cert,
            self.tls,
            "POST",
            "/swarm/heartbeat",
            None,
            Some(&body),
        )
        .await
    }

    pub fn host_status(&self, uuid: &str) -> Option<String> {
        let r = self.store.reader().expect("reader");
        r.host(uuid).expect("host").map(|h| h.status)
    }

    /// Waits (≤ 5 s) until `check` holds on the store.
    pub async fn until(&self, what: &str, check: impl Fn(&Store) -> bool) {
        for _ in 0..100 {
            if check(&self.store) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

pub fn decky(name: &str, ip: &str, host: Option<&str>) -> Value {
    let mut d = json!({"name": name, "ip": ip, "services": ["ssh"], "distro": "debian",
        "base_image": "debian:bookworm-slim", "hostname": format!("{name}-h")});
    if let Some(h) = host {
        d["host_uuid"] = json!(h);
    }
    d
}

pub fn fleet(mode: &str, deckies: Vec<Value>) -> Value {
    json!({"config": {"mode": mode, "interface": "lo", "subnet": "203.0.113.0/28",
        "gateway": "203.0.113.1", "deckies": deckies}})
}

/// What a fake agent was sent.
#[derive(Default)]
pub struct Seen {
    pub deploys: Vec<Value>,
    pub teardowns: Vec<Value>,
    pub self_destructs: usize,
}

/// Serves an agent on `listener` with `bundle`: /deploy 202, /status, /health, /teardown.
pub fn fake_agent(
    listener: TcpListener,
    bundle: &Bundle,
    stop: CancellationToken,
) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (s1, s2, s3, s4) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    let app = Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(
            "/deploy",
            post(move |axum::Json(v): axum::Json<Value>| async move {
                s1.lock().expect("lock").deploys.push(v);
                (
                    http::StatusCode::ACCEPTED,
                    axum::Json(json!({"status": "accepted"})),
                )
            }),
        )
        .route(
            "/status",
            get(move || async move {
                let n = s2.lock().expect("lock").deploys.len();
                axum::Json(json!({"deployed": n > 0, "deckies": []}))
            }),
        )
        .route(
            "/teardown",
            post(move |axum::Json(v): axum::Json<Value>| async move {
                s3.lock().expect("lock").teardowns.push(v);
                axum::Json(json!({"status": "torn down"}))
            }),
        )
        .route(
            "/self-destruct",
            post(move || async move {
                s4.lock().expect("lock").self_destructs += 1;
                axum::Json(json!({"status": "bye"}))
            }),
        );
    let acceptor = TlsAcceptor::from(tls::server_config(bundle).expect("server config"));
    tokio::spawn(https::serve(
        listener,
        Some(acceptor),
        app,
        stop,
        ServeOptions::default(),
    ));
    seen
}

/// Whether every program of `tools` runs here; a skip notice (a failure under CI) names
/// the first that does not.
pub fn have_tools(tools: &[&str]) -> bool {
    for tool in tools {
        let ok = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            crate::util::skip(tool);
            return false;
        }
    }
    true
}
