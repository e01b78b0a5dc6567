//! `decnet bus …`: run the broker, or publish and watch events by hand.
//!
//! `decnet bus` (or `decnet bus serve`) runs the broker. `decnet bus pub TOPIC JSON`
//! publishes one event and returns once the broker has routed it; `decnet bus sub
//! PATTERN` prints each matching envelope as one JSON line on stdout until Ctrl-C (or
//! `--count` events). `sub` says "subscribed to …" on stderr once the broker has the
//! subscription, so scripts can wait for that line before publishing.
use super::Flavor;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::CliError;
use crate::bus::{Bus, UnixBus};
use crate::config::Config;
use crate::term::escape_json;

/// Arguments of `decnet bus`.
#[derive(Debug, Args)]
pub struct BusArgs {
    /// Broker socket (default: $DECNET_BUS_SOCKET, else <run dir>/bus.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<BusCommand>,
}

#[derive(Debug, Subcommand)]
enum BusCommand {
    /// Run the broker (what `decnet bus` alone does).
    Serve,
    /// Publish one event.
    Pub {
        /// Topic, dot-separated (e.g. `decky.web1.state`).
        topic: String,
        /// Payload as JSON (e.g. '{"state":"running"}').
        json: String,
        /// Event type recorded in the envelope.
        #[arg(long = "type", default_value = "cli")]
        event_type: String,
    },
    /// Print matching events as JSON lines until Ctrl-C.
    Sub {
        /// Pattern: `*` matches one token, a final `>` one or more (e.g. `decky.>`).
        pattern: String,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// Runs a `decnet bus` command.
pub fn run(args: BusArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let mut config = config.clone();
    if let Some(socket) = args.socket {
        config.bus.socket = socket;
    }
    let runtime = super::runtime(Flavor::Multi)?;
    match args.command.unwrap_or(BusCommand::Serve) {
        BusCommand::Serve => runtime.block_on(crate::roles::bus::run(&config))?,
        BusCommand::Pub {
            topic,
            json,
            event_type,
        } => {
            let payload: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| CliError::BadArguments(format!("JSON payload: {e}")))?;
            runtime.block_on(publish(&config, &topic, &event_type, &payload))?;
        }
        BusCommand::Sub { pattern, count } => {
            runtime.block_on(subscribe(&config, &pattern, count, out))?;
        }
    }
    Ok(())
}

async fn publish(
    config: &Config,
    topic: &str,
    event_type: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<()> {
    let bus = UnixBus::connect(&config.bus.socket, "decnet-cli").await?;
    bus.publish(topic, event_type, payload)?;
    bus.sync().await.context("waiting for the broker")?;
    if bus.stats().refused > 0 {
        anyhow::bail!("the broker refused the event (see the log above)");
    }
    bus.close();
    Ok(())
}

async fn subscribe(
    config: &Config,
    pattern: &str,
    count: Option<u64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let bus = UnixBus::connect(&config.bus.socket, "decnet-cli").await?;
    let mut sub = bus.subscribe(pattern)?;
    bus.sync().await.context("waiting for the broker")?;
    writeln!(io::stderr(), "subscribed to {pattern}")?;
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let msg = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            msg = sub.recv() => msg,
        };
        let Some(msg) = msg else {
            anyhow::bail!("the bus closed");
        };
        // Payloads carry attacker text; the broker only checked that it is JSON.
        writeln!(out, "{}", escape_json(&String::from_utf8_lossy(&msg.body)))?;
        out.flush()?;
        seen += 1;
    }
    bus.close();
    Ok(())
}
