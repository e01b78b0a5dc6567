//! Paths, ports and switches: every `DECNET_*` variable, its default, and its validation.
//!
//! This is the only module that reads the process environment. Configuration is parsed
//! from an abstract key→string [`Source`] into a typed [`Config`], so production reads
//! [`Env`] while tests hand in a `HashMap` and never touch `set_var`. Command-line flags
//! are applied on top by the commands themselves; the environment only supplies defaults.
//!
//! Where the original spreads state over `~/.decnet`, `/etc/decnet` and `/var/lib/decnet`,
//! decnet keeps one state directory (`DECNET_HOME`, default `/var/lib/decnet`) holding the
//! PKI, the databases and the run directory, so a non-root user or a test only has to set
//! one variable.
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// State directory: PKI, databases, deployment state.
pub const HOME: &str = "DECNET_HOME";
/// Directory of the honeypot event logs the forwarder ships.
pub const LOG_DIR: &str = "DECNET_LOG_DIR";
/// Directory of sockets and pid files.
pub const RUN_DIR: &str = "DECNET_RUN_DIR";
/// Directory of the CA and issued bundles.
pub const PKI_DIR: &str = "DECNET_PKI_DIR";
/// The RFC 5424 log file the collector writes and the forwarder ships.
pub const INGEST_LOG_FILE: &str = "DECNET_INGEST_LOG_FILE";
/// Port of the worker agent's mTLS API.
pub const AGENT_PORT: &str = "DECNET_AGENT_PORT";
/// Port of the worker updater's mTLS API.
pub const UPDATER_PORT: &str = "DECNET_UPDATER_PORT";
/// Port of the swarm controller.
pub const SWARMCTL_PORT: &str = "DECNET_SWARMCTL_PORT";
/// The swarm controller the operator CLI calls.
pub const SWARMCTL_URL: &str = "DECNET_SWARMCTL_URL";
/// Port of the master's syslog-over-TLS listener.
pub const SYSLOG_PORT: &str = "DECNET_SWARM_SYSLOG_PORT";
/// Port of the master REST API.
pub const API_PORT: &str = "DECNET_API_PORT";
/// Port of the web dashboard.
pub const WEB_PORT: &str = "DECNET_WEB_PORT";
/// Address of the master, as workers reach it.
pub const MASTER_HOST: &str = "DECNET_SWARM_MASTER_HOST";
/// The master the agent's heartbeat goes to (default: `DECNET_SWARM_MASTER_HOST`).
pub const HEARTBEAT_MASTER_HOST: &str = "DECNET_MASTER_HOST";
/// This worker's host id from its enrolment, which the heartbeat names.
pub const HOST_UUID: &str = "DECNET_HOST_UUID";
/// Seconds between an agent's heartbeats.
pub const HEARTBEAT_INTERVAL: &str = "DECNET_HEARTBEAT_INTERVAL";
/// Seconds of silence after which the master marks a worker unreachable.
pub const SWARM_LIVENESS: &str = "DECNET_SWARM_LIVENESS";
/// The root a worker was installed under (the bootstrap's `DECNET_ROOT`; empty: `/`).
pub const INSTALL_ROOT: &str = "DECNET_INSTALL_ROOT";
/// The master identity's fingerprint the forwarder pins (beats the bundle's, loses to the flag).
pub const MASTER_FINGERPRINT: &str = "DECNET_MASTER_FINGERPRINT";
/// Turn on TLS hostname verification on top of CA and fingerprint pinning.
pub const VERIFY_HOSTNAME: &str = "DECNET_VERIFY_HOSTNAME";
/// Bearer token the operator CLI presents to the master.
pub const API_TOKEN: &str = "DECNET_API_TOKEN";
/// A statically linked `decnet` to put in decky images when this one is not static.
pub const DECKY_BINARY: &str = "DECNET_DECKY_BINARY";
/// The Docker engine endpoint (`unix:///path` or `tcp://host:port`), as Docker's own CLI reads it.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// The decky name a decky container logs as (the RFC 5424 HOSTNAME), set by the engine.
pub const NODE_NAME: &str = "NODE_NAME";
/// A decky's secret seed (64 hex digits), set by the engine in its service containers.
/// Secret: never printed ([`crate::catalog::is_secret_env`]).
pub const DECKY_SEED: &str = "DECNET_DECKY_SEED";
/// The distro slug a decky's services claim (engine.md §2.5), set by the engine.
pub const DECKY_DISTRO: &str = "DECNET_DECKY_DISTRO";
/// The OS family (`nmap_os`) a decky's services claim, set by the engine.
pub const DECKY_OS: &str = "DECNET_DECKY_OS";
/// The cosmetic hostname a decky's services show (prompts, certificates), set by the engine.
pub const DECKY_HOSTNAME: &str = "DECNET_DECKY_HOSTNAME";
/// Diagnostic log format: `pretty` or `json`.
pub const LOG_FORMAT: &str = "DECNET_LOG_FORMAT";
/// Diagnostic log filter (tracing `EnvFilter` syntax); `RUST_LOG` wins over it.
pub const LOG_LEVEL: &str = "DECNET_LOG_LEVEL";
/// The conventional tracing filter variable, honoured for familiarity.
pub const RUST_LOG: &str = "RUST_LOG";
/// Socket of the host-local bus broker (default `<run dir>/bus.sock`).
pub const BUS_SOCKET: &str = "DECNET_BUS_SOCKET";
/// Group given the bus socket, when it exists (default `decnet`).
pub const BUS_GROUP: &str = "DECNET_BUS_GROUP";
/// Whether workers use the bus at all (default on).
pub const BUS_ENABLED: &str = "DECNET_BUS_ENABLED";
/// Which bus workers use: `unix` (the broker) or `fake` (in-process).
pub const BUS_TYPE: &str = "DECNET_BUS_TYPE";
/// APP-NAMEs whose lines the collector keeps in the raw log only (comma list).
pub const COLLECTOR_DROP_APPS: &str = "DECNET_COLLECTOR_DROP_APPS";
/// Event types the collector rate-limits per attacker, decky and service (comma list).
pub const COLLECTOR_RL_EVENT_TYPES: &str = "DECNET_COLLECTOR_RL_EVENT_TYPES";
/// The collector's rate-limit window in seconds; 0 or less turns the limit off.
pub const COLLECTOR_RL_WINDOW_SEC: &str = "DECNET_COLLECTOR_RL_WINDOW_SEC";
/// Seconds between the collector's full rescans of running containers.
pub const COLLECTOR_RECONCILE_S: &str = "DECNET_COLLECTOR_RECONCILE_S";
/// Seconds the collector keeps an attacker's commands for the session summary; 0 turns
/// the summaries off.
pub const COLLECTOR_SESSION_AGG_TTL_SEC: &str = "DECNET_COLLECTOR_SESSION_AGG_TTL_SEC";
/// The master's SQLite database (default `<home>/decnet.db`).
pub const DB_PATH: &str = "DECNET_DB_PATH";
/// A worker's agent directory: its bundle (`ca.crt`, `worker.crt`, `worker.key`) and the
/// forwarder's `forwarder.db` (default `<home>/agent`).
pub const AGENT_DIR: &str = "DECNET_AGENT_DIR";
/// The agent's topology log, the forwarder's second file (default `<log dir>/agent.log`).
pub const AGENT_LOG_FILE: &str = "DECNET_AGENT_LOG_FILE";
/// Address the log listener binds (default `0.0.0.0`).
pub const LISTENER_HOST: &str = "DECNET_LISTENER_HOST";
/// Host directory of the files deckies capture, `<root>/<decky>/<service>` (engine.md
/// §2.1; default `<home>/artifacts`).
pub const ARTIFACTS_ROOT: &str = "DECNET_ARTIFACTS_ROOT";

/// Default state directory when `DECNET_HOME` is not set.
pub const DEFAULT_HOME: &str = "/var/lib/decnet";
/// Default event-log directory when `DECNET_LOG_DIR` is not set.
pub const DEFAULT_LOG_DIR: &str = "/var/log/decnet";
/// APP-NAMEs the collector drops by default: host daemons, not honeypot events.
pub const DEFAULT_COLLECTOR_DROP_APPS: &str =
    "sshd,pam_unix,sudo,su,CRON,cron,systemd,kernel,rsyslogd,dbus-daemon";
/// Event types the collector rate-limits by default: connection churn.
pub const DEFAULT_COLLECTOR_RL_EVENT_TYPES: &str = "connect,disconnect,connection,accept,close";

/// A key→string lookup the configuration is parsed from.
pub trait Source {
    /// The raw value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment, the production [`Source`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Env;

impl Source for Env {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reader of the environment
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

impl Source for HashMap<&str, &str> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).map(|v| (*v).to_owned())
    }
}

/// A configuration value that could not be accepted.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The variable is set to something decnet cannot use.
    #[error("{key}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable name.
        key: &'static str,
        /// What it was set to.
        value: String,
        /// What is expected instead.
        reason: String,
    },
    /// The INI file exists but cannot be used.
    #[error("{path}: {reason} (fix the file, or point DECNET_CONFIG elsewhere)")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines for a terminal.
    Pretty,
    /// One JSON object per line, for journald and log shippers.
    Json,
}

/// A value that must never appear in output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret that did not come from the environment (a generated key).
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// The TCP ports decnet's services listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// Worker agent mTLS API (8765).
    pub agent: u16,
    /// Worker updater mTLS API (8766).
    pub updater: u16,
    /// Swarm controller (8770).
    pub swarmctl: u16,
    /// Syslog-over-TLS listener (6514).
    pub syslog: u16,
    /// Master REST API (8000).
    pub api: u16,
    /// Web dashboard (8080).
    pub web: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            agent: 8765,
            updater: 8766,
            swarmctl: 8770,
            syslog: 6514,
            api: 8000,
            web: 8080,
        }
    }
}

/// Which bus implementation workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// The `decnet bus` broker over its UNIX socket.
    Unix,
    /// An in-process bus (tests, single-process experiments).
    Fake,
}

/// The host-local service bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// The broker's socket (`DECNET_BUS_SOCKET`, default `<run dir>/bus.sock`).
    pub socket: PathBuf,
    /// Group the socket is given when it exists (`DECNET_BUS_GROUP`, default `decnet`).
    pub group: String,
    /// Whether workers publish and subscribe at all (`DECNET_BUS_ENABLED`).
    pub enabled: bool,
    /// Broker client or in-process (`DECNET_BUS_TYPE`).
    pub kind: BusKind,
}

/// The log collector's filter and discovery settings (engine.md §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorConfig {
    /// APP-NAMEs kept out of the `.json` file and the bus (`DECNET_COLLECTOR_DROP_APPS`).
    pub drop_apps: Vec<String>,
    /// Event types limited to one per window and key (`DECNET_COLLECTOR_RL_EVENT_TYPES`).
    pub rl_event_types: Vec<String>,
    /// The rate-limit window; `None` when the limit is off (`DECNET_COLLECTOR_RL_WINDOW_SEC`).
    pub rl_window: Option<Duration>,
    /// Time between full rescans of running containers (`DECNET_COLLECTOR_RECONCILE_S`).
    pub reconcile: Duration,
    /// How long commands wait for their session's end; `None` turns session summaries off
    /// (`DECNET_COLLECTOR_SESSION_AGG_TTL_SEC`).
    pub session_ttl: Option<Duration>,
}

/// Where a resolved value came from, for `decnet config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// Read from the environment.
    Env,
}

/// The validated configuration every role starts from.
#[derive(Debug, Clone)]
pub struct Config {
    /// State directory (`DECNET_HOME`).
    pub home: PathBuf,
    /// Event-log directory (`DECNET_LOG_DIR`).
    pub log_dir: PathBuf,
    /// Sockets and pid files (`DECNET_RUN_DIR`, default `<home>/run`).
    pub run_dir: PathBuf,
    /// CA and bundles (`DECNET_PKI_DIR`, default `<home>/pki`).
    pub pki_dir: PathBuf,
    /// The event log the forwarder ships (`DECNET_INGEST_LOG_FILE`).
    pub ingest_log_file: PathBuf,
    /// The agent's topology log, also shipped (`DECNET_AGENT_LOG_FILE`).
    pub agent_log_file: PathBuf,
    /// The master's database (`DECNET_DB_PATH`, default `<home>/decnet.db`).
    pub db_path: PathBuf,
    /// The worker's bundle and forwarder state (`DECNET_AGENT_DIR`, default `<home>/agent`).
    pub agent_dir: PathBuf,
    /// Address the log listener binds (`DECNET_LISTENER_HOST`, default `0.0.0.0`).
    pub listener_host: String,
    /// Captured uploads and messages on the host (`DECNET_ARTIFACTS_ROOT`, default
    /// `<home>/artifacts`, which is `/var/lib/decnet/artifacts` with the default home).
    pub artifacts_root: PathBuf,
    /// Service ports.
    pub ports: Ports,
    /// The master REST API.
    pub api: ApiConfig,
    /// The host-local service bus.
    pub bus: BusConfig,
    /// The log collector.
    pub collector: CollectorConfig,
    /// Master address for workers, if this host is a worker.
    pub master_host: Option<String>,
    /// Where the agent sends heartbeats (`DECNET_MASTER_HOST`, else `master_host`).
    pub heartbeat_master_host: Option<String>,
    /// This worker's enrolled host id (`DECNET_HOST_UUID`); no heartbeat without it.
    pub host_uuid: Option<String>,
    /// Time between an agent's heartbeats (`DECNET_HEARTBEAT_INTERVAL`, 30 s).
    pub heartbeat_interval: Duration,
    /// Silence after which the master marks a worker unreachable
    /// (`DECNET_SWARM_LIVENESS`, 90 s: three missed heartbeats).
    pub swarm_liveness: Duration,
    /// The root this worker was installed under (`DECNET_INSTALL_ROOT`; `None`: `/`).
    pub install_root: Option<PathBuf>,
    /// The master identity's pin from `DECNET_MASTER_FINGERPRINT` (see [`master_pin`] for
    /// how it ranks against the flag and the bundle).
    pub master_fingerprint: Option<Fingerprint>,
    /// Whether TLS clients also check the server name (off: the fingerprint pin is the check).
    pub verify_hostname: bool,
    /// Operator bearer token.
    pub api_token: Option<Secret>,
    /// The swarm controller the CLI calls (`DECNET_SWARMCTL_URL`).
    pub swarmctl_url: Option<String>,
    /// Static binary for decky images, when set.
    pub decky_binary: Option<PathBuf>,
    /// Docker endpoint, when not the local socket.
    pub docker_host: Option<String>,
    /// Decky name inside a decky container.
    pub node_name: Option<String>,
    /// The decky's secret seed as hex (`DECNET_DECKY_SEED`), inside a decky container.
    pub decky_seed: Option<Secret>,
    /// The distro the decky claims (`DECNET_DECKY_DISTRO`).
    pub decky_distro: Option<String>,
    /// The OS family the decky claims (`DECNET_DECKY_OS`).
    pub decky_os: Option<String>,
    /// The decky's cosmetic hostname (`DECNET_DECKY_HOSTNAME`).
    pub decky_hostname: Option<String>,
    /// Diagnostic log format.
    pub log_format: LogFormat,
    /// Diagnostic log filter.
    pub log_filter: String,
    entries: Vec<Entry>,
}

/// One resolved setting as `decnet config` shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The variable name.
    pub key: &'static str,
    /// The value, with secrets masked.
    pub shown: String,
    /// Default or environment.
    pub origin: Origin,
}

impl Config {
    /// Reads the configuration from the process environment, over the host's INI file
    /// ([`file`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        parse(&file::Layered::over(Env)?)
    }

    /// Every resolved setting in a stable order, secrets masked.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

mod api;
pub mod file;
mod pin;

/// The values of the variables `names` that are set and not blank, as a service reads
/// its persona settings (engine.md §2.2) from its container's environment.
pub fn service_env<S: Source>(
    src: &S,
    names: &[&str],
) -> std::collections::BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|n| {
            src.get(n)
                .filter(|v| !v.trim().is_empty())
                .map(|v| ((*n).to_owned(), v))
        })
        .collect()
}

mod reader;

pub use api::{
    ADMIN_PASSWORD, ADMIN_USER, API_HOST, ApiConfig, CORS_ORIGINS, DEVELOPER, DISALLOW_MASTER,
    JWT_EXP_MINUTES, JWT_SECRET, LIMITER_ENABLED, MODE, SSE_MAX_PER_USER, SWARMCTL_HOST, TESTING,
    WEB_HOST,
};
pub use pin::{PinOrigin, master_pin};
use reader::Reader;
pub use reader::parse_bool;

use crate::pki::Fingerprint;

/// Parses and validates the configuration from `src`.
pub fn parse<S: Source>(src: &S) -> Result<Config, ConfigError> {
    let mut r = Reader {
        src,
        entries: Vec::new(),
    };
    let home = r.path(HOME, PathBuf::from(DEFAULT_HOME))?;
    let log_dir = r.path(LOG_DIR, PathBuf::from(DEFAULT_LOG_DIR))?;
    let run_dir = r.path(RUN_DIR, home.join("run"))?;
    let pki_dir = r.path(PKI_DIR, home.join("pki"))?;
    let ingest_log_file = r.path(INGEST_LOG_FILE, log_dir.join("decnet.log"))?;
    let agent_log_file = r.path(AGENT_LOG_FILE, log_dir.join("agent.log"))?;
    let db_path = r.path(DB_PATH, home.join("decnet.db"))?;
    let agent_dir = r.path(AGENT_DIR, home.join("agent"))?;
    let listener_host = r.text_or(LISTENER_HOST, "0.0.0.0");
    let artifacts_root = r.path(ARTIFACTS_ROOT, home.join("artifacts"))?;
    let ports = Ports {
        agent: r.port(AGENT_PORT, 8765)?,
        updater: r.port(UPDATER_PORT, 8766)?,
        swarmctl: r.port(SWARMCTL_PORT, 8770)?,
        syslog: r.port(SYSLOG_PORT, 6514)?,
        api: r.port(API_PORT, 8000)?,
        web: r.port(WEB_PORT, 8080)?,
    };
    let api = api::parse(&mut r)?;
    let bus_type = r.text_or(BUS_TYPE, "unix").trim().to_ascii_lowercase();
    let bus = BusConfig {
        socket: r.path(BUS_SOCKET, run_dir.join("bus.sock"))?,
        group: r.text_or(BUS_GROUP, "decnet"),
        enabled: r.flag(BUS_ENABLED, true)?,
        kind: match bus_type.as_str() {
            "unix" => BusKind::Unix,
            "fake" => BusKind::Fake,
            _ => {
                return Err(ConfigError::Invalid {
                    key: BUS_TYPE,
                    value: bus_type,
                    reason: "expected `unix` or `fake`".into(),
                });
            }
        },
    };
    let collector = CollectorConfig {
        drop_apps: r.list(COLLECTOR_DROP_APPS, DEFAULT_COLLECTOR_DROP_APPS),
        rl_event_types: r.list(COLLECTOR_RL_EVENT_TYPES, DEFAULT_COLLECTOR_RL_EVENT_TYPES),
        rl_window: r.seconds(COLLECTOR_RL_WINDOW_SEC, 1.0)?,
        reconcile: r
            .seconds(COLLECTOR_RECONCILE_S, 30.0)?
            .ok_or_else(|| ConfigError::Invalid {
                key: COLLECTOR_RECONCILE_S,
                value: r.raw(COLLECTOR_RECONCILE_S).unwrap_or_default(),
                reason: "the rescan interval must be more than 0 seconds".into(),
            })?,
        session_ttl: r.seconds(COLLECTOR_SESSION_AGG_TTL_SEC, 3600.0)?,
    };
    let master_host = r.text(MASTER_HOST);
    let heartbeat_master_host = r
        .text(HEARTBEAT_MASTER_HOST)
        .or_else(|| master_host.clone());
    let host_uuid = r.text(HOST_UUID);
    let positive = |key: &'static str, v: Option<Duration>, raw: Option<String>| {
        v.ok_or_else(|| ConfigError::Invalid {
            key,
            value: raw.unwrap_or_default(),
            reason: "must be more than 0 seconds".into(),
        })
    };
    let heartbeat_interval = positive(
        HEARTBEAT_INTERVAL,
        r.seconds(HEARTBEAT_INTERVAL, 30.0)?,
        r.raw(HEARTBEAT_INTERVAL),
    )?;
    let swarm_liveness = positive(
        SWARM_LIVENESS,
        r.seconds(SWARM_LIVENESS, 90.0)?,
        r.raw(SWARM_LIVENESS),
    )?;
    let install_root = r
        .text(INSTALL_ROOT)
        .filter(|v| !v.trim().is_empty() && v.trim() != "/")
        .map(PathBuf::from);
    let master_fingerprint = match r.text(MASTER_FINGERPRINT) {
        None => None,
        Some(v) => {
            Some(
                v.parse()
                    .map_err(|e: crate::pki::FingerprintError| ConfigError::Invalid {
                        key: MASTER_FINGERPRINT,
                        value: v.clone(),
                        reason: e.to_string(),
                    })?,
            )
        }
    };
    let verify_hostname = r.flag(VERIFY_HOSTNAME, false)?;
    let api_token = r.secret(API_TOKEN);
    let swarmctl_url = r.text(SWARMCTL_URL);
    let decky_binary = match r.raw(DECKY_BINARY) {
        Some(_) => Some(r.path(DECKY_BINARY, PathBuf::new())?),
        None => {
            r.record(DECKY_BINARY, "(this binary)".into(), false);
            None
        }
    };
    let docker_host = r.text(DOCKER_HOST);
    let node_name = r.text(NODE_NAME);
    let decky_seed = r.secret(DECKY_SEED);
    let decky_distro = r.text(DECKY_DISTRO);
    let decky_os = r.text(DECKY_OS);
    let decky_hostname = r.text(DECKY_HOSTNAME);
    let log_format = match r.raw(LOG_FORMAT) {
        None => LogFormat::Pretty,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            _ => {
                return Err(ConfigError::Invalid {
                    key: LOG_FORMAT,
                    value: v,
                    reason: "expected `pretty` or `json`".into(),
                });
            }
        },
    };
    let format_from_env = r.raw(LOG_FORMAT).is_some();
    r.record(
        LOG_FORMAT,
        format!("{log_format:?}").to_lowercase(),
        format_from_env,
    );
    let log_filter = match r.raw(RUST_LOG) {
        Some(v) => {
            r.record(RUST_LOG, v.clone(), true);
            v
        }
        None => {
            let v = r.raw(LOG_LEVEL).unwrap_or_else(|| "info".into());
            let from_env = r.raw(LOG_LEVEL).is_some();
            r.record(LOG_LEVEL, v.clone(), from_env);
            v
        }
    };
    Ok(Config {
        home,
        log_dir,
        run_dir,
        pki_dir,
        ingest_log_file,
        agent_log_file,
        db_path,
        agent_dir,
        listener_host,
        artifacts_root,
        ports,
        api,
        bus,
        collector,
        master_host,
        heartbeat_master_host,
        host_uuid,
        heartbeat_interval,
        swarm_liveness,
        install_root,
        master_fingerprint,
        verify_hostname,
        api_token,
        swarmctl_url,
        decky_binary,
        docker_host,
        node_name,
        decky_seed,
        decky_distro,
        decky_os,
        decky_hostname,
        log_format,
        log_filter,
        entries: r.entries,
    })
}

#[cfg(test)]
mod tests;
