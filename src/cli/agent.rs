//! `decnet agent`: flags and environment → [`AgentConfig`], then the role.
//!
//! Agent directory: `--agent-dir`, else `DECNET_AGENT_DIR` (default `<home>/agent`), one
//! order for the API, the heartbeat and the forwarder (settled swarm #12). Without a
//! worker bundle there the agent refuses to start (exit 2, §4.1): unauthenticated agents
//! are not a supported mode. The master host (`--master-host`, else
//! `DECNET_MASTER_HOST`, else `DECNET_SWARM_MASTER_HOST`) feeds both the heartbeat (with
//! `DECNET_HOST_UUID`) and the in-process forwarder (port `DECNET_SWARM_SYSLOG_PORT`),
//! which ships `DECNET_INGEST_LOG_FILE` and `DECNET_AGENT_LOG_FILE` (swarm #14).
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{CliError, Flavor};
use crate::config::Config;
use crate::roles::agent::{self, AgentConfig, AgentSettings};
use crate::roles::{collector, forwarder};

/// Arguments of `decnet agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on (default: $DECNET_AGENT_PORT, else 8765).
    #[arg(long)]
    port: Option<u16>,
    /// Directory of the worker bundle (default: $DECNET_AGENT_DIR, else $DECNET_HOME/agent).
    #[arg(long)]
    agent_dir: Option<PathBuf>,
    /// Do not ship the local log to the master from this process.
    #[arg(long)]
    no_forwarder: bool,
    /// Do not follow the deckies' containers into the local log from this process.
    #[arg(long)]
    no_collector: bool,
    /// The master's host (default: $DECNET_MASTER_HOST, else $DECNET_SWARM_MASTER_HOST).
    #[arg(long)]
    master_host: Option<String>,
}

/// The message of §4.1 for an agent directory without a bundle.
fn no_bundle(dir: &std::path::Path) -> String {
    format!(
        "[agent] No cert bundle at {}. Run `decnet swarm enroll` from the master first.",
        dir.display()
    )
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(args: AgentArgs, config: &Config) -> anyhow::Result<()> {
    let agent_dir = args.agent_dir.unwrap_or_else(|| config.agent_dir.clone());
    if !agent::has_bundle(&agent_dir) {
        return Err(CliError::Verbatim(no_bundle(&agent_dir)).into());
    }
    let mut config = config.clone();
    if let Some(host) = args.master_host {
        config.heartbeat_master_host = Some(host.clone());
        config.master_host = Some(host);
    }
    let settings = AgentSettings::from_config(&config, agent_dir.clone());
    let collector = (!args.no_collector).then(|| collector::Settings::from_config(&config, None));
    let master = config
        .master_host
        .clone()
        .or_else(|| config.heartbeat_master_host.clone());
    let forwarder = match master {
        Some(master_host) if !args.no_forwarder => {
            let files = [&config.ingest_log_file, &config.agent_log_file]
                .into_iter()
                .map(std::path::absolute)
                .collect::<std::io::Result<Vec<_>>>()
                .context("resolving the log files to ship")?;
            Some(forwarder::ForwarderConfig {
                files,
                master_host,
                master_port: config.ports.syslog,
                state_db: agent_dir.join("forwarder.db"),
                agent_dir: agent_dir.clone(),
                plain: false,
                tls: true,
                pin_flag: None,
                pin_env: config.master_fingerprint.clone(),
                verify_hostname: config.verify_hostname,
                settings: forwarder::Settings::default(),
            })
        }
        _ => None,
    };
    if settings.heartbeat.is_none() {
        tracing::info!("no heartbeat: DECNET_HOST_UUID or the master host is not set");
    }
    let agent = AgentConfig {
        settings,
        bind: SocketAddr::new(args.host, args.port.unwrap_or(config.ports.agent)),
        collector,
        forwarder,
    };
    let runtime = super::runtime(Flavor::Multi)?;
    runtime.block_on(async move {
        let shutdown =
            crate::signals::shutdown_on_signals().context("installing the SIGTERM handler")?;
        agent::run(agent, shutdown).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_bundle_message_is_the_specs() {
        assert_eq!(
            no_bundle(std::path::Path::new("/etc/decnet/agent")),
            "[agent] No cert bundle at /etc/decnet/agent. Run `decnet swarm enroll` from the master first."
        );
    }
}
