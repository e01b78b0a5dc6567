//! The master under test: this build's `decnet master` in a process of its own over the
//! benchmark's store, rate limits off (the login scenario would hit them at once), and
//! its memory as `/proc` reports it.
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::BenchResult;
use super::load::{self, Call};

/// The seeded admin's first password.
const FIRST_PASSWORD: &str = "bench-first-admin-password";
/// The admin's password after the forced change.
pub const NEW_PASSWORD: &str = "bench-chosen-admin-password";

/// A running master; killed when dropped.
pub struct Master {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Now (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// Peak so far (`VmHWM`), MiB.
    pub hwm_mib: f64,
}

impl Master {
    /// Starts `decnet master` with state directory `home` over the store `db`.
    pub fn start(home: &Path, db: &Path) -> BenchResult<Self> {
        // A free port: bound, read back, released for the master to bind.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
        #[allow(clippy::disallowed_methods)] // scrubbing the environment is the point
        let inherited = std::env::vars_os();
        for (key, _) in inherited {
            if key.to_string_lossy().starts_with("DECNET_") {
                cmd.env_remove(&key);
            }
        }
        let log = std::fs::File::create(home.join("master.log"))?;
        cmd.args(["master", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--db")
            .arg(db)
            .env("DECNET_HOME", home)
            .env("DECNET_LOG_DIR", home.join("log"))
            .env("DECNET_ADMIN_PASSWORD", FIRST_PASSWORD)
            .env("DECNET_JWT_SECRET", "bench-token-key-0123456789abcdef-0123")
            .env("DECNET_LIMITER_ENABLED", "false")
            .env("DECNET_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn()?;
        Ok(Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        })
    }

    /// Waits until the master accepts connections (30 s at most).
    pub async fn wait_ready(&mut self) -> BenchResult<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("decnet master exited: {status}").into());
            }
            if Instant::now() > deadline {
                return Err("decnet master did not start within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Logs in as the seeded admin, makes the forced password change (unless done
    /// before), and returns a token of the changed account.
    pub async fn admin_token(&self) -> BenchResult<String> {
        let login = |password: &str| {
            Call::post(
                "/api/v1/auth/login",
                &serde_json::json!({ "username": "admin", "password": password }),
            )
        };
        let token = |body: &serde_json::Value| -> BenchResult<String> {
            Ok(body["access_token"]
                .as_str()
                .ok_or_else(|| format!("no token in {body}"))?
                .to_owned())
        };
        // A reused store's admin changed its password in an earlier run.
        let (status, body) = load::once(self.addr, None, &login(NEW_PASSWORD)).await?;
        if status == 200 {
            return token(&body);
        }
        let (status, body) = load::once(self.addr, None, &login(FIRST_PASSWORD)).await?;
        if status != 200 {
            return Err(format!("first login: {status} {body}").into());
        }
        let first = token(&body)?;
        let change = Call::post(
            "/api/v1/auth/change-password",
            &serde_json::json!({ "old_password": FIRST_PASSWORD, "new_password": NEW_PASSWORD }),
        );
        let (status, body) = load::once(self.addr, Some(&first), &change).await?;
        if status != 200 {
            return Err(format!("password change: {status} {body}").into());
        }
        let (status, body) = load::once(self.addr, None, &login(NEW_PASSWORD)).await?;
        if status != 200 {
            return Err(format!("login: {status} {body}").into());
        }
        token(&body)
    }

    /// The master's memory now.
    pub fn memory(&self) -> BenchResult<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> BenchResult<f64> {
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc status"))?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            rss_mib: field("VmRSS:")?,
            hwm_mib: field("VmHWM:")?,
        })
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
