//! `decnet decky`: the entry point of decky containers.
//!
//! In a container the engine sets everything through the environment (`NODE_NAME`,
//! `DECNET_DECKY_SEED`, `DECNET_DECKY_DISTRO`, `DECNET_DECKY_OS`,
//! `DECNET_DECKY_HOSTNAME` and the service's persona variables). The flags override them
//! so a service can run outside a container for development and tests:
//! `decnet decky --service http --port tcp/0 --seed <hex> --node web-01`; port 0 binds a
//! free port, which the `startup` line names. Without any seed a fresh one is drawn, so
//! such a run has a persona of its own that lasts as long as the process.
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::catalog::Proto;
use crate::config::{self, Config};
use crate::model::DeckySeed;
use crate::roles::decky::{self, Mode, Persona, ServiceSpec};

/// Arguments of `decnet decky`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["idle", "service"]))]
pub struct DeckyArgs {
    /// Hold the decky's network namespace (the base container's job).
    #[arg(long)]
    idle: bool,
    /// Serve this catalogue service (a service container's job).
    #[arg(long, value_name = "SERVICE")]
    service: Option<String>,
    /// Port to serve instead of the catalogue's, as tcp/N or udp/N (repeatable; 0 = any free port).
    #[arg(long = "port", value_name = "PROTO/PORT", value_parser = parse_port, requires = "service")]
    ports: Vec<(Proto, u16)>,
    /// The decky's secret seed, 64 hex digits (default: DECNET_DECKY_SEED, else a fresh one).
    #[arg(long, value_name = "HEX", requires = "service")]
    seed: Option<String>,
    /// The decky name events are logged under (default: NODE_NAME).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// The distro the persona claims (default: DECNET_DECKY_DISTRO, else chosen by the seed).
    #[arg(long, value_name = "SLUG", requires = "service")]
    distro: Option<String>,
    /// The OS family the persona claims (default: DECNET_DECKY_OS, else linux).
    #[arg(long, value_name = "NMAP_OS", requires = "service")]
    os: Option<String>,
    /// The hostname services show (default: DECNET_DECKY_HOSTNAME, else chosen by the seed).
    #[arg(long, value_name = "NAME", requires = "service")]
    hostname: Option<String>,
}

fn parse_port(raw: &str) -> Result<(Proto, u16), String> {
    let (proto, port) = raw
        .split_once('/')
        .ok_or_else(|| format!("{raw:?}: expected tcp/PORT or udp/PORT"))?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(format!("{other:?}: protocol must be tcp or udp")),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{raw:?}: port must be 0-65535"))?;
    Ok((proto, port))
}

/// Runs the decky process in the chosen mode.
pub fn run(args: DeckyArgs, config: &Config) -> anyhow::Result<()> {
    let mode = match args.service {
        None if args.idle => Mode::Idle,
        None => return Err(CliError::BadArguments("pass --idle or --service".into()).into()),
        Some(name) => {
            let ports = if args.ports.is_empty() {
                decky::default_ports(&name)?
            } else {
                decky::default_ports(&name)?;
                args.ports
            };
            let seed_hex = args
                .seed
                .or_else(|| config.decky_seed.as_ref().map(|s| s.expose().to_owned()));
            let seed = match seed_hex {
                Some(hex) => DeckySeed::from_hex(&hex).map_err(|_| decky::Error::Seed)?,
                None => DeckySeed::generate(),
            };
            let node = args
                .node
                .or_else(|| config.node_name.clone())
                .unwrap_or_else(|| "-".to_owned());
            let persona = Persona::new(
                node,
                args.hostname.or_else(|| config.decky_hostname.clone()),
                args.distro
                    .or_else(|| config.decky_distro.clone())
                    .as_deref(),
                args.os.or_else(|| config.decky_os.clone()).as_deref(),
                &seed,
            )
            .map_err(decky::Error::from)?;
            let settings = config::service_env(&config::Env, &decky::setting_names(&name));
            Mode::Service(ServiceSpec {
                name,
                ports,
                persona: Arc::new(persona),
                settings,
            })
        }
    };
    Ok(decky::run(mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_their_protocol() {
        assert_eq!(parse_port("tcp/22"), Ok((Proto::Tcp, 22)));
        assert_eq!(parse_port("udp/161"), Ok((Proto::Udp, 161)));
        assert_eq!(parse_port("tcp/0"), Ok((Proto::Tcp, 0)), "any free port");
        for bad in ["22", "sctp/1", "tcp/70000", "tcp/x"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
