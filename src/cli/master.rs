//! `decnet master`: run the master REST API on `$DECNET_API_HOST:$DECNET_API_PORT`
//! (127.0.0.1:8000) over the database at `$DECNET_DB_PATH`.
//!
//! Startup checks and the first admin are [`crate::roles::master::bootstrap`]'s; this
//! file only maps flags over the environment and starts the runtime.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::roles::master::{self, bootstrap};
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
}

/// Runs `decnet master`.
pub fn run(args: MasterArgs, config: &Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    if let Some(host) = args.host {
        config.api.host = host;
    }
    let ip: IpAddr = match config.api.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| CliError::BadArguments(format!("API host {h:?} is not an IP address")))?,
    };
    let addr = SocketAddr::new(ip, args.port.unwrap_or(config.ports.api));
    let db = args.db.unwrap_or_else(|| config.db_path.clone());
    let store = Store::open(&db, Options::default())?;
    let prepared = bootstrap::prepare(&config, store)?;
    let mut extras = master::Extras::for_home(&config.home);
    extras.sse_max_per_user = config.api.sse_max_per_user;
    extras.fleet.artifacts_root = config.artifacts_root.clone();
    extras.fleet.decky_binary = config.decky_binary.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(master::run(addr, prepared, extras))?;
    Ok(())
}
