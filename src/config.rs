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
/// Port of the master's syslog-over-TLS listener.
pub const SYSLOG_PORT: &str = "DECNET_SWARM_SYSLOG_PORT";
/// Port of the master REST API.
pub const API_PORT: &str = "DECNET_API_PORT";
/// Port of the web dashboard.
pub const WEB_PORT: &str = "DECNET_WEB_PORT";
/// Address of the master, as workers reach it.
pub const MASTER_HOST: &str = "DECNET_SWARM_MASTER_HOST";
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
    /// Service ports.
    pub ports: Ports,
    /// The host-local service bus.
    pub bus: BusConfig,
    /// The log collector.
    pub collector: CollectorConfig,
    /// Master address for workers, if this host is a worker.
    pub master_host: Option<String>,
    /// Whether TLS clients also check the server name (off: the fingerprint pin is the check).
    pub verify_hostname: bool,
    /// Operator bearer token.
    pub api_token: Option<Secret>,
    /// Static binary for decky images, when set.
    pub decky_binary: Option<PathBuf>,
    /// Docker endpoint, when not the local socket.
    pub docker_host: Option<String>,
    /// Decky name inside a decky container.
    pub node_name: Option<String>,
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
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        parse(&Env)
    }

    /// Every resolved setting in a stable order, secrets masked.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// Records each lookup so `decnet config` can show values with their origin.
struct Reader<'a, S: Source> {
    src: &'a S,
    entries: Vec<Entry>,
}

impl<S: Source> Reader<'_, S> {
    fn raw(&self, key: &str) -> Option<String> {
        self.src.get(key).filter(|v| !v.trim().is_empty())
    }

    fn record(&mut self, key: &'static str, shown: String, from_env: bool) {
        let origin = if from_env {
            Origin::Env
        } else {
            Origin::Default
        };
        self.entries.push(Entry { key, shown, origin });
    }

    fn path(&mut self, key: &'static str, default: PathBuf) -> Result<PathBuf, ConfigError> {
        let raw = self.raw(key);
        let from_env = raw.is_some();
        let path = raw.map(PathBuf::from).unwrap_or(default);
        if !path.is_absolute() {
            return Err(ConfigError::Invalid {
                key,
                value: path.display().to_string(),
                reason: "must be an absolute path".into(),
            });
        }
        self.record(key, path.display().to_string(), from_env);
        Ok(path)
    }

    fn port(&mut self, key: &'static str, default: u16) -> Result<u16, ConfigError> {
        let port = match self.raw(key) {
            Some(v) => match v.trim().parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(ConfigError::Invalid {
                        key,
                        value: v,
                        reason: "expected a TCP port between 1 and 65535".into(),
                    });
                }
            },
            None => default,
        };
        let from_env = self.raw(key).is_some();
        self.record(key, port.to_string(), from_env);
        Ok(port)
    }

    fn flag(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        let value = match self.raw(key) {
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError::Invalid {
                key,
                value: v.clone(),
                reason: "expected one of 1/0, true/false, yes/no, on/off".into(),
            })?,
            None => default,
        };
        let from_env = self.raw(key).is_some();
        self.record(key, value.to_string(), from_env);
        Ok(value)
    }

    fn text(&mut self, key: &'static str) -> Option<String> {
        let value = self.raw(key);
        let shown = value.clone().unwrap_or_else(|| "(unset)".into());
        let from_env = value.is_some();
        self.record(key, shown, from_env);
        value
    }

    fn text_or(&mut self, key: &'static str, default: &str) -> String {
        let value = self.raw(key);
        let from_env = value.is_some();
        let value = value.unwrap_or_else(|| default.to_owned());
        self.record(key, value.clone(), from_env);
        value
    }

    /// A comma-separated list; blanks around items and empty items are dropped.
    fn list(&mut self, key: &'static str, default: &str) -> Vec<String> {
        let value = self.text_or(key, default);
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A number of seconds (fractions allowed); `None` when it is zero or negative.
    fn seconds(
        &mut self,
        key: &'static str,
        default: f64,
    ) -> Result<Option<Duration>, ConfigError> {
        let raw = self.raw(key);
        let value = match &raw {
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s < 1e9),
            None => Some(default),
        }
        .ok_or_else(|| ConfigError::Invalid {
            key,
            value: raw.clone().unwrap_or_default(),
            reason: "expected a number of seconds, e.g. 1.5".into(),
        })?;
        self.record(key, value.to_string(), raw.is_some());
        Ok(Some(value)
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64))
    }

    fn secret(&mut self, key: &'static str) -> Option<Secret> {
        let value = self.raw(key).map(Secret);
        let shown = value
            .as_ref()
            .map_or_else(|| "(unset)".into(), |s| s.to_string());
        let from_env = value.is_some();
        self.record(key, shown, from_env);
        value
    }
}

/// Accepts the usual spellings of a boolean switch.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

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
    let ports = Ports {
        agent: r.port(AGENT_PORT, 8765)?,
        updater: r.port(UPDATER_PORT, 8766)?,
        swarmctl: r.port(SWARMCTL_PORT, 8770)?,
        syslog: r.port(SYSLOG_PORT, 6514)?,
        api: r.port(API_PORT, 8000)?,
        web: r.port(WEB_PORT, 8080)?,
    };
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
    let verify_hostname = r.flag(VERIFY_HOSTNAME, false)?;
    let api_token = r.secret(API_TOKEN);
    let decky_binary = match r.raw(DECKY_BINARY) {
        Some(_) => Some(r.path(DECKY_BINARY, PathBuf::new())?),
        None => {
            r.record(DECKY_BINARY, "(this binary)".into(), false);
            None
        }
    };
    let docker_host = r.text(DOCKER_HOST);
    let node_name = r.text(NODE_NAME);
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
        ports,
        bus,
        collector,
        master_host,
        verify_hostname,
        api_token,
        decky_binary,
        docker_host,
        node_name,
        log_format,
        log_filter,
        entries: r.entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        parse(&map)
    }

    #[test]
    fn defaults_follow_the_state_directory() {
        let c = cfg(&[]).expect("defaults parse");
        assert_eq!(c.home, PathBuf::from("/var/lib/decnet"));
        assert_eq!(c.pki_dir, PathBuf::from("/var/lib/decnet/pki"));
        assert_eq!(c.run_dir, PathBuf::from("/var/lib/decnet/run"));
        assert_eq!(
            c.ingest_log_file,
            PathBuf::from("/var/log/decnet/decnet.log")
        );
        assert_eq!(c.ports.agent, 8765);
        assert_eq!(c.ports.syslog, 6514);
        assert!(!c.verify_hostname);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.log_filter, "info");

        let c = cfg(&[(HOME, "/tmp/x")]).expect("home parses");
        assert_eq!(c.pki_dir, PathBuf::from("/tmp/x/pki"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = cfg(&[(AGENT_PORT, "99999")]).expect_err("port out of range");
        assert!(err.to_string().contains("DECNET_AGENT_PORT"), "{err}");
        let err = cfg(&[(VERIFY_HOSTNAME, "maybe")]).expect_err("bad bool");
        assert!(err.to_string().contains("DECNET_VERIFY_HOSTNAME"), "{err}");
        let err = cfg(&[(HOME, "relative/dir")]).expect_err("relative path");
        assert!(err.to_string().contains("absolute"), "{err}");
        assert!(cfg(&[(LOG_FORMAT, "xml")]).is_err());
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let c = cfg(&[(API_TOKEN, "hunter2")]).expect("parses");
        assert_eq!(c.api_token.as_ref().map(Secret::expose), Some("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let shown: Vec<_> = c.entries().iter().map(|e| e.shown.clone()).collect();
        assert!(!shown.iter().any(|s| s.contains("hunter2")));
        let entry = c
            .entries()
            .iter()
            .find(|e| e.key == API_TOKEN)
            .expect("token listed");
        assert_eq!(entry.origin, Origin::Env);
    }

    #[test]
    fn bus_socket_follows_the_run_directory() {
        let c = cfg(&[(HOME, "/tmp/x")]).expect("parses");
        assert_eq!(c.bus.socket, PathBuf::from("/tmp/x/run/bus.sock"));
        assert_eq!(c.bus.group, "decnet");
        assert!(c.bus.enabled);
        assert_eq!(c.bus.kind, BusKind::Unix);
        let c = cfg(&[
            (RUN_DIR, "/run/decnet"),
            (BUS_ENABLED, "no"),
            (BUS_TYPE, "fake"),
        ])
        .expect("parses");
        assert_eq!(c.bus.socket, PathBuf::from("/run/decnet/bus.sock"));
        assert!(!c.bus.enabled);
        assert_eq!(c.bus.kind, BusKind::Fake);
        let c = cfg(&[(BUS_SOCKET, "/tmp/b.sock"), (BUS_GROUP, "ops")]).expect("parses");
        assert_eq!(c.bus.socket, PathBuf::from("/tmp/b.sock"));
        assert_eq!(c.bus.group, "ops");
        assert!(cfg(&[(BUS_SOCKET, "bus.sock")]).is_err());
        let err = cfg(&[(BUS_TYPE, "redis")]).expect_err("unknown type");
        assert!(err.to_string().contains("DECNET_BUS_TYPE"), "{err}");
    }

    #[test]
    fn collector_settings_have_defaults_and_validation() {
        let c = cfg(&[]).expect("defaults parse").collector;
        assert_eq!(c.drop_apps.len(), 10);
        assert!(c.drop_apps.iter().any(|a| a == "CRON"));
        assert_eq!(
            c.rl_event_types,
            ["connect", "disconnect", "connection", "accept", "close"]
        );
        assert_eq!(c.rl_window, Some(Duration::from_secs(1)));
        assert_eq!(c.reconcile, Duration::from_secs(30));
        assert_eq!(c.session_ttl, Some(Duration::from_secs(3600)));
        let c = cfg(&[
            (COLLECTOR_DROP_APPS, " cron , ,sudo"),
            (COLLECTOR_RL_EVENT_TYPES, "connect"),
            (COLLECTOR_RL_WINDOW_SEC, "0"),
            (COLLECTOR_RECONCILE_S, "2.5"),
            (COLLECTOR_SESSION_AGG_TTL_SEC, "0"),
        ])
        .expect("parses")
        .collector;
        assert_eq!(c.drop_apps, ["cron", "sudo"]);
        assert_eq!(c.rl_event_types, ["connect"]);
        assert_eq!(c.rl_window, None, "a zero window turns the limit off");
        assert_eq!(c.reconcile, Duration::from_millis(2500));
        assert_eq!(c.session_ttl, None);
        assert_eq!(
            cfg(&[(COLLECTOR_RL_WINDOW_SEC, "-1")])
                .expect("parses")
                .collector
                .rl_window,
            None
        );
        for bad in [
            (COLLECTOR_RL_WINDOW_SEC, "soon"),
            (COLLECTOR_RL_WINDOW_SEC, "NaN"),
            (COLLECTOR_RECONCILE_S, "0"),
            (COLLECTOR_RECONCILE_S, "inf"),
        ] {
            let err = cfg(&[bad]).expect_err("invalid");
            assert!(err.to_string().contains(bad.0), "{err}");
        }
    }

    #[test]
    fn log_shipping_paths_follow_home_and_log_dir() {
        let c = cfg(&[(HOME, "/srv/d"), (LOG_DIR, "/logs")]).expect("parses");
        assert_eq!(c.db_path, PathBuf::from("/srv/d/decnet.db"));
        assert_eq!(c.agent_dir, PathBuf::from("/srv/d/agent"));
        assert_eq!(c.agent_log_file, PathBuf::from("/logs/agent.log"));
        assert_eq!(c.listener_host, "0.0.0.0");
        let c = cfg(&[
            (DB_PATH, "/db/m.db"),
            (AGENT_DIR, "/etc/decnet/agent"),
            (AGENT_LOG_FILE, "/x/a.log"),
            (LISTENER_HOST, "127.0.0.1"),
        ])
        .expect("parses");
        assert_eq!(c.db_path, PathBuf::from("/db/m.db"));
        assert_eq!(c.agent_dir, PathBuf::from("/etc/decnet/agent"));
        assert_eq!(c.agent_log_file, PathBuf::from("/x/a.log"));
        assert_eq!(c.listener_host, "127.0.0.1");
        assert!(cfg(&[(AGENT_DIR, "agent")]).is_err());
    }

    #[test]
    fn rust_log_wins_over_decnet_log_level() {
        let c = cfg(&[(LOG_LEVEL, "debug"), (RUST_LOG, "warn")]).expect("parses");
        assert_eq!(c.log_filter, "warn");
        let c = cfg(&[(LOG_LEVEL, "debug"), (VERIFY_HOSTNAME, "yes")]).expect("parses");
        assert_eq!(c.log_filter, "debug");
        assert!(c.verify_hostname);
    }
}
