//! `decnet master`: run the master REST API on `$DECNET_API_HOST:$DECNET_API_PORT`
//! (127.0.0.1:8000) over the database at `$DECNET_DB_PATH`.
//!
//! The swarm controller runs in the same process on `$DECNET_SWARMCTL_HOST:$DECNET_SWARMCTL_PORT`
//! (127.0.0.1:8770) unless `--no-swarmctl`: plain HTTP on loopback, mutual TLS with
//! `--tls`. A non-loopback controller without `--tls` is refused before anything starts
//! (operator routes over plain HTTP are only safe on loopback).
//!
//! The log listener runs in the same process too, on `$DECNET_LISTENER_HOST:6514` with
//! the master identity, unless `--no-listener`: workers' forwarders deliver straight into
//! this master's store.
//!
//! Startup checks and the first admin are [`crate::roles::master::bootstrap`]'s; this
//! file only maps flags over the environment and starts the runtime.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::roles::master::{self, bootstrap, swarm};
use crate::store::{Options, Store};

/// Arguments of `decnet master`.
#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Bind address (default: $DECNET_API_HOST, else 127.0.0.1).
    #[arg(long)]
    host: Option<String>,
    /// Port (default: $DECNET_API_PORT, else 8000).
    #[arg(long)]
    port: Option<u16>,
    /// The master's database (default: $DECNET_DB_PATH, else $DECNET_HOME/decnet.db).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Swarm controller bind address (default: $DECNET_SWARMCTL_HOST, else 127.0.0.1).
    #[arg(long)]
    swarmctl_host: Option<String>,
    /// Swarm controller port (default: $DECNET_SWARMCTL_PORT, else 8770).
    #[arg(long)]
    swarmctl_port: Option<u16>,
    /// Serve the swarm controller over mutual TLS (needed for heartbeats and off loopback).
    #[arg(long)]
    tls: bool,
    /// Log listener bind address (default: $DECNET_LISTENER_HOST, else 0.0.0.0).
    #[arg(long)]
    listener_host: Option<String>,
    /// Log listener port (default: $DECNET_SWARM_SYSLOG_PORT, else 6514).
    #[arg(long)]
    listener_port: Option<u16>,
    /// Do not run the log listener in this process (another `decnet listener` does).
    #[arg(long, conflicts_with_all = ["listener_host", "listener_port"])]
    no_listener: bool,
    /// Do not serve the swarm controller.
    #[arg(long, conflicts_with_all = ["swarmctl_host", "swarmctl_port", "tls"])]
    no_swarmctl: bool,
}

fn parse_ip(what: &str, h: &str) -> Result<IpAddr, CliError> {
    match h {
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| CliError::BadArguments(format!("{what} {h:?} is not an IP address"))),
    }
}

/// The controller to serve, or a usage error (exit 2) when it would be plain HTTP off
/// loopback.
fn controller(
    args: &MasterArgs,
    config: &Config,
) -> Result<Option<swarm::ControllerBind>, CliError> {
    if args.no_swarmctl {
        return Ok(None);
    }
    let host = args
        .swarmctl_host
        .clone()
        .unwrap_or_else(|| config.api.swarmctl_host.clone());
    let ip = parse_ip("swarm controller host", &host)?;
    if !ip.is_loopback() && !args.tls {
        return Err(CliError::BadArguments(format!(
            "the swarm controller on {host} (not loopback) needs --tls: its operator routes \
             over plain HTTP are only safe on loopback"
        )));
    }
    let mut sans = Vec::new();
    if !ip.is_loopback() && !ip.is_unspecified() {
        sans.push(ip.to_string());
    }
    if let Some(m) = &config.master_host {
        sans.push(m.clone());
    }
    Ok(Some(swarm::ControllerBind {
        addr: SocketAddr::new(ip, args.swarmctl_port.unwrap_or(config.ports.swarmctl)),
        tls: args.tls,
        sans,
    }))
}

/// Runs `decnet master`.
pub fn run(args: MasterArgs, config: &Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    if let Some(host) = args.host.clone() {
        config.api.host = host;
    }
    let ip = parse_ip("API host", &config.api.host)?;
    let addr = SocketAddr::new(ip, args.port.unwrap_or(config.ports.api));
    let controller = controller(&args, &config)?;
    let listener = if args.no_listener {
        None
    } else {
        let host = args
            .listener_host
            .clone()
            .unwrap_or_else(|| config.listener_host.clone());
        Some(SocketAddr::new(
            parse_ip("log listener host", &host)?,
            args.listener_port.unwrap_or(config.ports.syslog),
        ))
    };
    let db = args.db.unwrap_or_else(|| config.db_path.clone());
    let store = Store::open(&db, Options::default())?;
    let prepared = bootstrap::prepare(&config, store)?;
    let mut extras = master::Extras::for_home(&config.home);
    extras.sse_max_per_user = config.api.sse_max_per_user;
    extras.fleet.artifacts_root = config.artifacts_root.clone();
    extras.fleet.decky_binary = config.decky_binary.clone();
    extras.swarm.pki_dir = config.pki_dir.clone();
    extras.swarm.verify_hostname = config.verify_hostname;
    extras.swarm.beat_window = config.swarm_liveness;
    extras.swarm.controller = controller;
    extras.ports = config.ports.clone();
    extras.listener = listener;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(master::run(addr, prepared, extras))?;
    Ok(())
}
