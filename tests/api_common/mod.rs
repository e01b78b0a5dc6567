//! Harness of the API tests: a real master on a port-0 listener over a real SQLite file,
//! driven with a real HTTP client (curl).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use decnet::config::Secret;
use decnet::roles::master::{self, AppState, Extras, MasterConfig, Settings, bootstrap};
use decnet::store::{LogRecord, Options, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The seeded admin's first password.
pub const ADMIN_PASSWORD: &str = "first-admin-password";
/// An origin the test servers allow.
pub const ORIGIN: &str = "http://dashboard.test:8080";

/// A running master; stopped when dropped.
pub struct Master {
    pub addr: SocketAddr,
    pub store: Store,
    _dir: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for Master {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the master under test is started with.
pub struct Setup {
    pub limiter: bool,
    pub developer: bool,
    /// Artifacts root (default: `artifacts` in the master's temp dir).
    pub artifacts_root: Option<PathBuf>,
    /// The bus ingestion publishes on (default: none).
    pub bus: Option<decnet::config::BusConfig>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            limiter: true,
            developer: false,
            artifacts_root: None,
            bus: None,
        }
    }
}

/// Whether curl is here; otherwise the test is skipped (a failure under CI).
pub fn have_curl() -> bool {
    let ok = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        crate::util::skip("curl");
    }
    ok
}

impl Master {
    /// A master with the admin `admin` (must change its password) seeded.
    pub async fn start(setup: Setup) -> Self {
        Self::start_with(setup, Extras::for_home).await
    }

    /// Like [`Master::start`], with the fleet and stream settings `extras(home)` gives.
    pub async fn start_with(setup: Setup, extras: impl FnOnce(&Path) -> Extras) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("decnet.db"), Options::default()).expect("store");
        let s = store.clone();
        tokio::task::spawn_blocking(move || bootstrap::seed_admin(&s, "admin", ADMIN_PASSWORD))
            .await
            .expect("seed task")
            .expect("seed admin");
        let extras = extras(dir.path());
        Self::launch(dir, store, &setup, extras).await
    }

    async fn launch(dir: tempfile::TempDir, store: Store, setup: &Setup, extras: Extras) -> Self {
        let config = MasterConfig {
            store: store.clone(),
            jwt_secret: Secret::new("test-key-0123456789abcdef-0123456789".into()),
            settings: Settings {
                token_ttl: Duration::from_secs(3600),
                cors_origins: vec![ORIGIN.into()],
                limiter_enabled: setup.limiter,
                developer: setup.developer,
                home: PathBuf::from(dir.path()),
                docker_host: Some("unix:///nonexistent/docker.sock".into()),
                artifacts_root: setup
                    .artifacts_root
                    .clone()
                    .unwrap_or_else(|| dir.path().join("artifacts")),
                bus: setup.bus.clone(),
            },
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        tokio::spawn(master::serve(
            listener,
            AppState::with_extras(config, extras),
            stop.clone(),
        ));
        Self {
            addr,
            store,
            _dir: dir,
            stop,
        }
    }

    /// Stops this master and starts another on the same database and state directory.
    pub async fn restart(mut self, setup: Setup, extras: Extras) -> Self {
        self.stop.cancel();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let store = self.store.clone();
        Self::launch(dir, store, &setup, extras).await
    }

    /// The state directory (`DECNET_HOME`).
    pub fn home(&self) -> &Path {
        self._dir.path()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to `path`.
    pub fn req(&self, method: &str, path: &str) -> Req {
        Req {
            source: None,
            url: self.url(path),
            method: method.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Logs in; the response.
    pub async fn login(&self, user: &str, password: &str) -> Resp {
        self.req("POST", "/api/v1/auth/login")
            .json(&serde_json::json!({ "username": user, "password": password }))
            .send()
            .await
    }

    /// Logs in and returns the token, asserting success.
    pub async fn token(&self, user: &str, password: &str) -> String {
        let r = self.login(user, password).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An admin token after the forced password change (the new password is returned).
    pub async fn admin(&self) -> String {
        let first = self.token("admin", ADMIN_PASSWORD).await;
        let r = self
            .req("POST", "/api/v1/auth/change-password")
            .bearer(&first)
            .json(&serde_json::json!({
                "old_password": ADMIN_PASSWORD, "new_password": "admin-chosen-password"
            }))
            .send()
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        self.token("admin", "admin-chosen-password").await
    }

    /// Stores `lines` through the real store writer.
    pub async fn write_lines(&self, lines: &[String]) {
        let (writer, task) = self.store.spawn_writer().expect("writer");
        let records = lines
            .iter()
            .enumerate()
            .map(|(i, l)| LogRecord::from_line("local", "test", i as u64 + 1, l.as_bytes()))
            .collect();
        let done = writer.write(records).await.expect("commit");
        assert_eq!(done.inserted, lines.len());
        drop(writer);
        task.await.expect("writer task");
    }
}

/// A request being built.
pub struct Req {
    source: Option<String>,
    url: String,
    method: String,
    headers: Vec<String>,
    body: Option<Vec<u8>>,
}

impl Req {
    /// Adds a header line `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(format!("{name}: {value}"));
        self
    }

    /// Sends from loopback address `ip` (any of 127.0.0.0/8), as another client would.
    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source = Some(ip.into());
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body with its Content-Type.
    pub fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .raw(body.to_string().as_bytes())
    }

    /// A body as is (no Content-Type added).
    pub fn raw(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    /// Sends it with curl.
    pub async fn send(self) -> Resp {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args([
            "-sS",
            "-i",
            "--max-time",
            "20",
            "-H",
            "Expect:",
            "-X",
            &self.method,
        ]);
        // curl adds a form Content-Type to -d bodies unless told otherwise.
        if !self
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type"))
        {
            cmd.args(["-H", "Content-Type:"]);
        }
        if let Some(ip) = &self.source {
            cmd.args(["--interface", ip]);
        }
        for h in &self.headers {
            cmd.args(["-H", h]);
        }
        if self.body.is_some() {
            cmd.args(["--data-binary", "@-"]);
        }
        cmd.arg("--").arg(&self.url);
        cmd.stdin(std::process::Stdio::piped());
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn curl");
        let mut stdin = child.stdin.take().expect("stdin");
        let body = self.body.unwrap_or_default();
        tokio::io::AsyncWriteExt::write_all(&mut stdin, &body)
            .await
            .expect("write body");
        drop(stdin);
        let out = child.wait_with_output().await.expect("curl");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Resp::parse(&out.stdout)
    }
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (mut head, mut body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        while head.starts_with("HTTP/1.1 100") {
            (head, body) = body.split_once("\r\n\r\n").unwrap_or((body, ""));
        }
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            text: body.to_owned(),
        }
    }

    /// The body as JSON (panics with the text when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    /// The `detail` of an error body.
    pub fn detail(&self) -> String {
        self.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
