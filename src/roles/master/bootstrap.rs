//! Startup of the master API: the checks of engine.md §7.5 and the first admin (§7.1).
//!
//! Order, each step refusing to start with a message that says what to do:
//! 1. Role gating: `DECNET_MODE=agent` refuses the master unless
//!    `DECNET_DISALLOW_MASTER=false`.
//! 2. CORS: `*` is refused; the default is the dashboard's own origin.
//! 3. Public binding (skipped with `DECNET_TESTING=1`): an API bound beyond loopback
//!    refuses loopback CORS origins, and logs CRITICAL when the limiter is off.
//! 4. The token key: `DECNET_JWT_SECRET`, else a random one generated once into
//!    `<home>/jwt.secret` (0600; a file others can read is refused), so a restart keeps
//!    sessions and no operator has to invent a key.
//! 5. Secret strength (skipped with `DECNET_TESTING=1`): well-known values are refused;
//!    the key needs 32 characters and the admin password 12, unless `DECNET_DEVELOPER`.
//!    The values are never echoed.
//! 6. The admin: created with `must_change_password` from `DECNET_ADMIN_PASSWORD` (which
//!    is required while no such account exists), and re-synced from it on every start
//!    until its owner has chosen a password.
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::state::{MasterConfig, Settings};
use crate::config::{self, ApiConfig, Config, Secret};
use crate::store::{self, Role, Seeded, Store, User};

/// Name of the generated token key in the state directory.
pub const JWT_SECRET_FILE: &str = "jwt.secret";
/// Values refused as secrets whatever the mode (case-insensitive).
const WELL_KNOWN: &[&str] = &[
    "fallback-secret-key-change-me",
    "admin",
    "secret",
    "password",
    "changeme",
];
/// Shortest token key accepted outside developer mode.
const MIN_JWT_SECRET: usize = 32;
/// Shortest admin password accepted outside developer mode.
const MIN_ADMIN_PASSWORD: usize = 12;

/// Why the master refuses to start.
#[derive(Debug, Error)]
pub enum Error {
    /// This host is configured as an agent.
    #[error(
        "DECNET_MODE=agent: this host is a worker and does not run the master \
         (set DECNET_DISALLOW_MASTER=false to allow it)"
    )]
    AgentMode,
    /// `*` among the CORS origins.
    #[error("DECNET_CORS_ORIGINS must list origins explicitly; `*` is refused")]
    CorsWildcard,
    /// A check of a publicly bound API failed.
    #[error("{0}")]
    PublicBinding(String),
    /// A secret is too weak; the value is not repeated.
    #[error("{key} is too weak: {reason}")]
    WeakSecret {
        /// The variable.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No admin account and no password to create it with.
    #[error(
        "no admin account yet: set DECNET_ADMIN_PASSWORD (at least 12 characters) for the \
         first start; it must be changed at first login"
    )]
    NoAdminPassword,
    /// The key file cannot be read or written.
    #[error("{path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The key file is readable by others.
    #[error("{0}: the token key must be private: run `chmod 600` on it")]
    SecretFileMode(PathBuf),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Hashing the admin password failed.
    #[error("hashing the admin password: {0}")]
    Hash(String),
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host part of an origin such as `http://example.org:8080`.
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The CORS origins: configured, or the dashboard's own (`localhost` for a wildcard or
/// loopback web host).
pub fn cors_origins(api: &ApiConfig, web_port: u16) -> Result<Vec<String>, Error> {
    let origins = match &api.cors_origins {
        Some(list) => list.clone(),
        None => {
            let host = match api.web_host.as_str() {
                "0.0.0.0" | "127.0.0.1" | "::" | "" => "localhost",
                h => h,
            };
            vec![format!("http://{host}:{web_port}")]
        }
    };
    if origins.iter().any(|o| o == "*") {
        return Err(Error::CorsWildcard);
    }
    Ok(origins)
}

/// The public-binding checks of §7.5.
pub fn check_public_binding(api: &ApiConfig, origins: &[String]) -> Result<(), Error> {
    if api.testing || is_loopback_host(&api.host) {
        return Ok(());
    }
    if let Some(o) = origins.iter().find(|o| is_loopback_host(origin_host(o))) {
        return Err(Error::PublicBinding(format!(
            "DECNET_API_HOST={} is reachable from the network, but the CORS origin {o} is \
             a loopback address: set DECNET_CORS_ORIGINS to the dashboard's real address",
            api.host
        )));
    }
    if !api.limiter_enabled {
        tracing::error!(
            host = %api.host,
            "CRITICAL: the API is reachable from the network with rate limits disabled"
        );
    }
    Ok(())
}

/// Refuses well-known and (outside developer mode) short secrets.
pub fn check_secret(
    key: &'static str,
    value: &str,
    min: usize,
    api: &ApiConfig,
) -> Result<(), Error> {
    if api.testing {
        return Ok(());
    }
    if WELL_KNOWN
        .iter()
        .any(|w| w.eq_ignore_ascii_case(value.trim()))
    {
        return Err(Error::WeakSecret {
            key,
            reason: "it is a well-known default".into(),
        });
    }
    if !api.developer && value.chars().count() < min {
        return Err(Error::WeakSecret {
            key,
            reason: format!("use at least {min} characters"),
        });
    }
    Ok(())
}

/// The token key in `path`, generated (64 hex digits, 0600) if the file is missing.
pub fn secret_file(path: &Path) -> Result<Secret, Error> {
    let io = |source| Error::SecretFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(Error::SecretFileMode(path.to_path_buf()));
            }
            let text = text.trim();
            if text.len() < MIN_JWT_SECRET {
                return Err(Error::WeakSecret {
                    key: config::JWT_SECRET,
                    reason: format!("{} holds fewer than 32 characters", path.display()),
                });
            }
            Ok(Secret::new(text.to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let value = super::random_hex(32);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            io::Write::write_all(&mut f, format!("{value}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(Secret::new(value))
        }
        Err(e) => Err(io(e)),
    }
}

/// Creates or re-syncs the admin `username` with `password` (hashing on this thread:
/// call it off the async runtime).
pub fn seed_admin(store: &Store, username: &str, password: &str) -> Result<Seeded, Error> {
    let hash = super::auth::password::hash(password).map_err(Error::Hash)?;
    Ok(store.seed_admin(&User {
        uuid: super::new_uuid(),
        username: username.to_owned(),
        password_hash: hash,
        role: Role::Admin,
        must_change_password: true,
        tokens_valid_from_ms: 0,
    })?)
}

/// Runs every startup step for `config` on `store`.
pub fn prepare(config: &Config, store: Store) -> Result<MasterConfig, Error> {
    let api = &config.api;
    if api.mode == "agent" && api.disallow_master {
        return Err(Error::AgentMode);
    }
    let cors_origins = cors_origins(api, config.ports.web)?;
    check_public_binding(api, &cors_origins)?;
    let jwt_secret = match &api.jwt_secret {
        Some(s) => s.clone(),
        None => secret_file(&config.home.join(JWT_SECRET_FILE))?,
    };
    check_secret(config::JWT_SECRET, jwt_secret.expose(), MIN_JWT_SECRET, api)?;
    match &api.admin_password {
        Some(p) => {
            check_secret(config::ADMIN_PASSWORD, p.expose(), MIN_ADMIN_PASSWORD, api)?;
            let seeded = seed_admin(&store, &api.admin_user, p.expose())?;
            tracing::info!(user = %api.admin_user, ?seeded, "admin account");
        }
        None => {
            if store.reader()?.user_by_name(&api.admin_user)?.is_none() {
                return Err(Error::NoAdminPassword);
            }
        }
    }
    Ok(MasterConfig {
        store,
        jwt_secret,
        settings: Settings {
            token_ttl: Duration::from_secs(u64::from(api.jwt_exp_minutes) * 60),
            cors_origins,
            limiter_enabled: api.limiter_enabled,
            developer: api.developer,
            home: config.home.clone(),
            docker_host: config.docker_host.clone(),
            artifacts_root: config.artifacts_root.clone(),
            bus: Some(config.bus.clone()),
        },
    })
}
