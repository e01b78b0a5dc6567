//! `decnet collect`: follow decky service containers into the local event log.
//!
//! Runs until SIGTERM or Ctrl-C, then writes what it has read and saves the read positions,
//! so the next start goes on from there.
use super::Flavor;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

/// Arguments of `decnet collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Raw RFC 5424 log to append to; parsed events go to the same name with `.json`
    /// (default: $DECNET_INGEST_LOG_FILE, else <log dir>/decnet.log).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
}

/// Runs the collector until a termination signal.
pub fn run(args: CollectArgs, config: &Config) -> anyhow::Result<()> {
    let runtime = super::runtime(Flavor::Multi)?;
    runtime.block_on(async {
        let shutdown =
            crate::signals::shutdown_on_signals().context("installing the SIGTERM handler")?;
        let stats = crate::roles::collector::run(config, args.log_file, shutdown).await?;
        tracing::info!(
            lines = stats.lines,
            admitted = stats.admitted,
            rate_limited = stats.rate_limited,
            dropped = stats.dropped,
            unparsed = stats.unparsed,
            hostname_mismatch = stats.mismatched,
            "collector stopped"
        );
        Ok(())
    })
}
