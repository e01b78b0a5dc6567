//! `decnet decky`: the entry point of decky containers.
use clap::Args;

use super::CliError;
use crate::catalog::Proto;
use crate::config::Config;
use crate::roles::decky::{self, Mode};

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
    /// Port to serve instead of the catalogue's, as tcp/N or udp/N (repeatable).
    #[arg(long = "port", value_name = "PROTO/PORT", value_parser = parse_port, requires = "service")]
    ports: Vec<(Proto, u16)>,
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
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{raw:?}: port must be 1-65535"))?;
    Ok((proto, port))
}

/// Runs the decky process in the chosen mode.
pub fn run(args: DeckyArgs, config: &Config) -> anyhow::Result<()> {
    let node = config.node_name.clone().unwrap_or_else(|| "-".to_owned());
    let mode = match args.service {
        None if args.idle => Mode::Idle,
        None => return Err(CliError::BadArguments("pass --idle or --service".into()).into()),
        Some(name) => {
            let ports = if args.ports.is_empty() {
                decky::default_ports(&name)?
            } else {
                args.ports
            };
            Mode::Service { name, ports }
        }
    };
    Ok(decky::run(mode, node)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_their_protocol() {
        assert_eq!(parse_port("tcp/22"), Ok((Proto::Tcp, 22)));
        assert_eq!(parse_port("udp/161"), Ok((Proto::Udp, 161)));
        for bad in ["22", "sctp/1", "tcp/0", "tcp/70000", "tcp/x"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
