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

/// Arguments of `decnet listener`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ListenerArgs {
    #[command(subcommand)]
    command: Option<ListenerCommand>,
    /// The master's database (default: $DECNET_DB_PATH, else $DECNET_HOME/decnet.db).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
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
    /// Seconds between allow-list checks of live connections (1–30).
    #[arg(long, default_value_t = 10)]
    recheck_interval: u64,
    /// Seconds a reply may take to be written before the peer is dropped as not reading.
    #[arg(long, default_value_t = 10)]
    write_timeout: u64,
    /// Seconds a new connection has for the TLS handshake and its first valid frame.
    #[arg(long, default_value_t = 10)]
    auth_timeout: u64,
    /// Plain TCP without TLS, loopback only (interop tests).
    #[arg(long)]
    insecure_tcp: bool,
    /// Worker name recorded for plain-TCP peers.
    #[arg(long, default_value = "plain")]
    plain_worker: String,
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

/// Runs `decnet listener …`.
pub fn run(args: ListenerArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
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
        None => serve(args, config, store)?,
    }
    Ok(())
}

fn serve(args: ListenerArgs, config: &Config, store: Store) -> anyhow::Result<()> {
    let host = args.host.unwrap_or_else(|| config.listener_host.clone());
    let ip: IpAddr = host
        .parse()
        .map_err(|_| CliError::BadArguments(format!("--host {host:?} is not an IP address")))?;
    let addr = SocketAddr::new(ip, args.port.unwrap_or(config.ports.syslog));
    if !(1..=30).contains(&args.recheck_interval) {
        return Err(
            CliError::BadArguments("--recheck-interval must be 1 to 30 seconds".into()).into(),
        );
    }
    for (flag, secs) in [
        ("--write-timeout", args.write_timeout),
        ("--auth-timeout", args.auth_timeout),
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
            plain_worker: args.plain_worker,
            raw_log: args.raw_log,
            bus: crate::bus::from_config(&config.bus, "listener"),
            settings: Settings {
                recheck: Duration::from_secs(args.recheck_interval),
                write_timeout: Duration::from_secs(args.write_timeout),
                auth_timeout: Duration::from_secs(args.auth_timeout),
                ..Settings::default()
            },
        };
        listener::run(addr, lc).await
    })?;
    Ok(())
}
