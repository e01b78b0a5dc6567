//! `decnet listener`: run the log listener, or manage its allow-list.
//!
//! `decnet listener` serves on `$DECNET_LISTENER_HOST:$DECNET_SWARM_SYSLOG_PORT`
//! (0.0.0.0:6514) with the master identity from `<pki>/master/` (it refuses to start
//! without one, as the original: `decnet pki issue master` creates it) and stores into
//! `$DECNET_DB_PATH`. Until the swarm controller owns enrolment, `allow NAME --cert FILE`,
//! `revoke NAME` and `list` edit the store's allow-list directly; a running listener sees
//! the change within its recheck interval.
//!
//! `--insecure-tcp` serves plain TCP for interop tests (rsyslog's `omfwd`), every peer
//! being recorded as `--plain-worker`; it is refused on anything but a loopback address.
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::CliError;
use crate::config::Config;
use crate::pki::{Bundle, Fingerprint, Kind, Layout, cert_info, pem_to_der, validate_name};
use crate::roles::listener::{self, ListenerConfig, Settings};
use crate::store::{Options, Store};

/// Seconds between allow-list checks when `--recheck-interval` is not given.
const DEFAULT_RECHECK_SECS: u64 = 10;
/// Default of `--write-timeout` and `--auth-timeout`, in seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Worker name of plain-TCP peers when `--plain-worker` is not given.
const DEFAULT_PLAIN_WORKER: &str = "plain";

/// Arguments of `decnet listener`.
///
/// `--db` is global, so it may come before or after `allow`/`revoke`/`list`. The serving
/// flags are accepted only without a subcommand; given before one, they are refused
/// rather than silently ignored (clap's `args_conflicts_with_subcommands` would also
/// refuse the global `--db` there).
#[derive(Debug, Args)]
pub struct ListenerArgs {
    #[command(subcommand)]
    command: Option<ListenerCommand>,
    /// The master's database (default: $DECNET_DB_PATH, else $DECNET_HOME/decnet.db).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// The flags of `decnet listener` without a subcommand: where and how to serve.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Bind address (default: $DECNET_LISTENER_HOST, else 0.0.0.0).
    #[arg(long)]
    host: Option<String>,
    /// Port (default: $DECNET_SWARM_SYSLOG_PORT, else 6514).
    #[arg(long)]
    port: Option<u16>,
    /// PKI directory holding master/ (default: $DECNET_PKI_DIR).
    #[arg(long)]
    pki_dir: Option<PathBuf>,
    /// Also append every received line to this forensic file.
    #[arg(long)]
    raw_log: Option<PathBuf>,
    /// Seconds between allow-list checks of live connections (1–30) [default: 10].
    #[arg(long)]
    recheck_interval: Option<u64>,
    /// Seconds a reply may take to be written before the peer is dropped as not reading
    /// (1–3600) [default: 10].
    #[arg(long)]
    write_timeout: Option<u64>,
    /// Seconds a new connection has for the TLS handshake and its first valid frame
    /// (1–3600) [default: 10].
    #[arg(long)]
    auth_timeout: Option<u64>,
    /// Plain TCP without TLS, loopback only (interop tests).
    #[arg(long)]
    insecure_tcp: bool,
    /// Worker name recorded for plain-TCP peers [default: plain].
    #[arg(long)]
    plain_worker: Option<String>,
}

impl ServeArgs {
    /// The first serving flag given, if any (they mean nothing to a subcommand).
    fn first_given(&self) -> Option<&'static str> {
        [
            (self.host.is_some(), "--host"),
            (self.port.is_some(), "--port"),
            (self.pki_dir.is_some(), "--pki-dir"),
            (self.raw_log.is_some(), "--raw-log"),
            (self.recheck_interval.is_some(), "--recheck-interval"),
            (self.write_timeout.is_some(), "--write-timeout"),
            (self.auth_timeout.is_some(), "--auth-timeout"),
            (self.insecure_tcp, "--insecure-tcp"),
            (self.plain_worker.is_some(), "--plain-worker"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

#[derive(Debug, Subcommand)]
enum ListenerCommand {
    /// Allow worker NAME to ship logs with the certificate in FILE (replaces its pin).
    Allow {
        /// Worker name: must be the certificate's CN.
        name: String,
        /// The worker's certificate (PEM), e.g. <bundle>/worker.crt.
        #[arg(long)]
        cert: PathBuf,
    },
    /// Stop accepting logs from worker NAME (live connections close within the recheck interval).
    Revoke {
        /// Worker name.
        name: String,
    },
    /// List allowed workers and their pinned fingerprints.
    List,
}

impl ListenerCommand {
    /// The subcommand as typed.
    fn name(&self) -> &'static str {
        match self {
            ListenerCommand::Allow { .. } => "allow",
            ListenerCommand::Revoke { .. } => "revoke",
            ListenerCommand::List => "list",
        }
    }
}

/// Runs `decnet listener …`.
pub fn run(args: ListenerArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    if let (Some(command), Some(flag)) = (&args.command, args.serve.first_given()) {
        return Err(CliError::BadArguments(format!(
            "{flag} is for serving; `decnet listener {}` does not take it",
            command.name()
        ))
        .into());
    }
    let db = args.db.clone().unwrap_or_else(|| config.db_path.clone());
    let store = Store::open(&db, Options::default())?;
    match args.command {
        Some(ListenerCommand::Allow { name, cert }) => {
            validate_name(&name)?;
            let pem = std::fs::read_to_string(&cert)
                .with_context(|| format!("reading {}", cert.display()))?;
            let der = pem_to_der(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
            let info = cert_info(&der).map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
            if info.cn != name {
                return Err(CliError::BadArguments(format!(
                    "{} is issued to CN {:?}, not {name:?}",
                    cert.display(),
                    info.cn
                ))
                .into());
            }
            let fp = Fingerprint::of_der(&der);
            store.allow_worker(&name, &fp)?;
            writeln!(out, "allowed {name} with fingerprint {fp}")?;
        }
        Some(ListenerCommand::Revoke { name }) => {
            if store.revoke_worker(&name)? {
                writeln!(out, "revoked {name}")?;
            } else {
                anyhow::bail!("{name} is not on the allow-list");
            }
        }
        Some(ListenerCommand::List) => {
            for (name, fp) in store.reader()?.allowed_workers()? {
                writeln!(out, "{name}  {fp}")?;
            }
        }
        None => serve(args.serve, config, store)?,
    }
    Ok(())
}

fn serve(args: ServeArgs, config: &Config, store: Store) -> anyhow::Result<()> {
    let host = args.host.unwrap_or_else(|| config.listener_host.clone());
    let ip: IpAddr = host
        .parse()
        .map_err(|_| CliError::BadArguments(format!("--host {host:?} is not an IP address")))?;
    let addr = SocketAddr::new(ip, args.port.unwrap_or(config.ports.syslog));
    let recheck_interval = args.recheck_interval.unwrap_or(DEFAULT_RECHECK_SECS);
    if !(1..=30).contains(&recheck_interval) {
        return Err(
            CliError::BadArguments("--recheck-interval must be 1 to 30 seconds".into()).into(),
        );
    }
    let write_timeout = args.write_timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let auth_timeout = args.auth_timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    for (flag, secs) in [
        ("--write-timeout", write_timeout),
        ("--auth-timeout", auth_timeout),
    ] {
        if !(1..=3600).contains(&secs) {
            return Err(CliError::BadArguments(format!("{flag} must be 1 to 3600 seconds")).into());
        }
    }
    let tls = if args.insecure_tcp {
        if !ip.is_loopback() {
            return Err(CliError::BadArguments(
                "--insecure-tcp is for local interop tests: bind it to 127.0.0.1 or ::1".into(),
            )
            .into());
        }
        None
    } else {
        let layout = Layout::new(args.pki_dir.unwrap_or_else(|| config.pki_dir.clone()));
        let dir = layout.bundle_dir(Kind::Master, "");
        let bundle = Bundle::load(&dir, Kind::Master.stem()).with_context(|| {
            format!(
                "master identity missing at {}: run `decnet pki issue master` first",
                dir.display()
            )
        })?;
        Some(crate::tls::server_config(&bundle)?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let lc = ListenerConfig {
            store,
            tls,
            plain_worker: args
                .plain_worker
                .unwrap_or_else(|| DEFAULT_PLAIN_WORKER.to_owned()),
            raw_log: args.raw_log,
            bus: crate::bus::from_config(&config.bus, "listener"),
            settings: Settings {
                recheck: Duration::from_secs(recheck_interval),
                write_timeout: Duration::from_secs(write_timeout),
                auth_timeout: Duration::from_secs(auth_timeout),
                ..Settings::default()
            },
        };
        listener::run(addr, lc).await
    })?;
    Ok(())
}
