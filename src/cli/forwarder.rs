//! `decnet forwarder`: flags and environment → [`ForwarderConfig`], then the role.
//!
//! Defaults (swarm.md §11/§12): master from `$DECNET_SWARM_MASTER_HOST`, port from
//! `$DECNET_SWARM_SYSLOG_PORT` (6514), files `$DECNET_INGEST_LOG_FILE` and
//! `$DECNET_AGENT_LOG_FILE` (swarm #14: ship both), bundle and `forwarder.db` in
//! `$DECNET_AGENT_DIR`. Exit 2 without a master host, without a worker bundle, or with
//! no file to ship. The master's pin: `--master-fingerprint`, else
//! `$DECNET_MASTER_FINGERPRINT`, else the bundle's `master.fingerprint`
//! ([`crate::config::master_pin`]).
use super::Flavor;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::pki::Fingerprint;
use crate::roles::forwarder::{self, ForwarderConfig, Settings};

/// Arguments of `decnet forwarder`.
#[derive(Debug, Args)]
pub struct ForwarderArgs {
    /// Master host (default: $DECNET_SWARM_MASTER_HOST).
    #[arg(long)]
    master_host: Option<String>,
    /// Listener port (default: $DECNET_SWARM_SYSLOG_PORT, else 6514).
    #[arg(long)]
    master_port: Option<u16>,
    /// A file to ship; repeat for several (default: $DECNET_INGEST_LOG_FILE and $DECNET_AGENT_LOG_FILE).
    #[arg(long = "log-file")]
    log_files: Vec<PathBuf>,
    /// Directory of the worker bundle (default: $DECNET_AGENT_DIR, else $DECNET_HOME/agent).
    #[arg(long)]
    agent_dir: Option<PathBuf>,
    /// Position database (default: <agent dir>/forwarder.db).
    #[arg(long)]
    state_db: Option<PathBuf>,
    /// Seconds between checks of idle files.
    #[arg(long, default_value_t = 0.5)]
    poll_interval: f64,
    /// MiB the files may run ahead of the forwarder before the oldest bytes are dropped.
    #[arg(long, default_value_t = 128)]
    max_lag_mib: u64,
    /// Plain RFC 5425 receiver (rsyslog …): no acknowledgements, advance after drain.
    #[arg(long)]
    plain: bool,
    /// No TLS at all (interop tests only; lines travel in clear).
    #[arg(long)]
    insecure_tcp: bool,
    /// Expected SHA-256 fingerprint of the master identity the listener serves with
    /// (default: $DECNET_MASTER_FINGERPRINT, else master.fingerprint in the bundle).
    #[arg(long)]
    master_fingerprint: Option<Fingerprint>,
}

/// Runs the forwarder until SIGINT or SIGTERM.
pub fn run(args: ForwarderArgs, config: &Config) -> anyhow::Result<()> {
    let master_host = args
        .master_host
        .or_else(|| config.master_host.clone())
        .ok_or_else(|| {
            CliError::BadArguments(
                "no master host: pass --master-host or set DECNET_SWARM_MASTER_HOST".into(),
            )
        })?;
    let agent_dir = args.agent_dir.unwrap_or_else(|| config.agent_dir.clone());
    if !args.insecure_tcp && !agent_dir.join("worker.crt").exists() {
        return Err(CliError::BadArguments(format!(
            "no worker bundle in {} (worker.crt missing); issue one with `decnet pki issue worker NAME --out {}`",
            agent_dir.display(),
            agent_dir.display()
        ))
        .into());
    }
    let files = if args.log_files.is_empty() {
        vec![
            config.ingest_log_file.clone(),
            config.agent_log_file.clone(),
        ]
    } else {
        args.log_files
    };
    if files.iter().any(|f| f.as_os_str().is_empty()) {
        return Err(CliError::BadArguments("empty --log-file".into()).into());
    }
    // Source names contain the path: make them independent of the working directory.
    let files = files
        .iter()
        .map(std::path::absolute)
        .collect::<std::io::Result<Vec<_>>>()
        .context("resolving --log-file")?;
    if !(args.poll_interval > 0.0 && args.poll_interval <= 60.0) {
        return Err(
            CliError::BadArguments("--poll-interval must be in (0, 60] seconds".into()).into(),
        );
    }
    let settings = Settings {
        poll: Duration::from_secs_f64(args.poll_interval),
        max_lag: args.max_lag_mib.max(1).saturating_mul(1024 * 1024),
        ..Settings::default()
    };
    let fwd = ForwarderConfig {
        files,
        master_host,
        master_port: args.master_port.unwrap_or(config.ports.syslog),
        state_db: args
            .state_db
            .unwrap_or_else(|| agent_dir.join("forwarder.db")),
        agent_dir,
        plain: args.plain,
        tls: !args.insecure_tcp,
        pin_flag: args.master_fingerprint,
        pin_env: config.master_fingerprint.clone(),
        verify_hostname: config.verify_hostname,
        settings,
    };
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(async move {
        let shutdown =
            crate::signals::shutdown_on_signals().context("installing the SIGTERM handler")?;
        tracing::info!(
            master = %fwd.master_host,
            port = fwd.master_port,
            files = ?fwd.files,
            plain = fwd.plain,
            "forwarder starting"
        );
        forwarder::run(fwd, shutdown).await?;
        Ok(())
    })
}
