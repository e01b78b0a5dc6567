//! `decnet up`: flags over the environment, then [`crate::roles::up`].
//!
//! The API and listener ports default to `$DECNET_API_PORT` and
//! `$DECNET_SWARM_SYSLOG_PORT` (8000, 6514), always on 127.0.0.1: `up` is the one-host
//! installation, and nothing of it listens beyond loopback.
use std::io;

use anyhow::Context;
use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::model::Ipv4Net;
use crate::roles::up::{self, Options, Terminal, fleet};

/// Arguments of `decnet up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Start without deploying a first fleet.
    #[arg(long, conflicts_with_all = ["deckies", "config"])]
    no_fleet: bool,
    /// Deckies of the first fleet [default: 3].
    #[arg(long, short = 'n')]
    deckies: Option<usize>,
    /// INI file of the first fleet instead of the default archetypes.
    #[arg(long, short = 'c', value_name = "FLEET.ini")]
    config: Option<std::path::PathBuf>,
    /// Port of the master API on 127.0.0.1 (default: $DECNET_API_PORT, else 8000).
    #[arg(long)]
    api_port: Option<u16>,
    /// Port of the log listener on 127.0.0.1 (default: $DECNET_SWARM_SYSLOG_PORT, else 6514).
    #[arg(long)]
    listener_port: Option<u16>,
    /// Port of the swarm controller on 127.0.0.1 (default: $DECNET_SWARMCTL_PORT, else
    /// 8770; 0 picks a free one).
    #[arg(long)]
    swarmctl_port: Option<u16>,
    /// Port of this host's agent on 127.0.0.1 (default: $DECNET_AGENT_PORT, else 8765; 0
    /// picks a free one).
    #[arg(long)]
    agent_port: Option<u16>,
    /// A subnet the fleet's bridge may use; repeat to give several, the first free one is
    /// taken (default: a few RFC 1918 /24s).
    #[arg(long = "subnet", value_name = "CIDR")]
    subnets: Vec<Ipv4Net>,
    /// Docker network of the first fleet.
    #[arg(long, default_value = fleet::DEFAULT_NETWORK)]
    network_name: String,
    /// Give the admin account a new random password (printed once; its sessions end).
    #[arg(long)]
    reset_admin_password: bool,
}

/// Runs `decnet up` until SIGINT or SIGTERM.
pub fn run(args: UpArgs, config: &Config) -> anyhow::Result<()> {
    let deckies = args.deckies.unwrap_or(fleet::DEFAULT_DECKIES);
    if !(1..=100).contains(&deckies) {
        return Err(CliError::BadArguments("--deckies must be 1 to 100".into()).into());
    }
    let opts = Options {
        api_port: args.api_port.unwrap_or(config.ports.api),
        listener_port: args.listener_port.unwrap_or(config.ports.syslog),
        swarmctl_port: args.swarmctl_port.unwrap_or(config.ports.swarmctl),
        agent_port: args.agent_port.unwrap_or(config.ports.agent),
        fleet: !args.no_fleet,
        deckies,
        ini: args.config,
        subnets: args.subnets,
        network_name: args.network_name,
        reset_admin_password: args.reset_admin_password,
    };
    let runtime = super::runtime(super::Flavor::Multi)?;
    runtime.block_on(async {
        let shutdown =
            crate::signals::shutdown_on_signals().context("installing the signal handlers")?;
        let mut console = Terminal {
            out: io::stdout(),
            err: io::stderr(),
        };
        up::run(config, &opts, &mut console, shutdown).await?;
        Ok(())
    })
}
