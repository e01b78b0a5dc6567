//! The first fleet of `decnet up`: deployed once on a host-local bridge, found again on
//! every later run.
//!
//! Without `--config` it is [`DEFAULT_DECKIES`] deckies cycling through
//! [`ARCHETYPES`] (ssh and http among their services, so the operator can try both at
//! once). The network is Docker's bridge driver on a subnet [`super::subnet`] chose: the
//! host is the bridge's gateway, so every decky is reachable from it and from nowhere
//! else. A fleet already in `$DECNET_HOME/decnet-state.json` is kept as it is (never
//! deployed twice); its containers that stopped (a reboot, `docker stop`) are started
//! again, each base before its services, since services live in the base's network
//! namespace.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::query_parameters::{RestartContainerOptions, StartContainerOptions};
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::engine::deploy::{self, DEFAULT_PARALLEL, Progress, Request};
use crate::engine::image::{self, ImageSpec};
use crate::engine::plan::{Driver, Names};
use crate::engine::state::{self, State};
use crate::engine::teardown::{self, DeckyStatus};
use crate::engine::{Engine, containers};
use crate::ini;
use crate::model::detect::{HostNetwork, Network};
use crate::model::{DecnetConfig, Ipv4Net, Mode, build, rng};

/// Deckies of the first fleet when `--deckies` is not given.
pub const DEFAULT_DECKIES: usize = 3;
/// Archetypes of the first fleet, cycled: ssh + http, http + ftp, a bare ssh box.
pub const ARCHETYPES: &[&str] = &["linux-server", "web-server", "deaddeck"];
/// Docker network of the first fleet when `--network-name` is not given.
pub const DEFAULT_NETWORK: &str = "decnet_up";

/// How the fleet is to be made when none is deployed.
#[derive(Debug, Clone)]
pub struct FleetSpec<'a> {
    /// An INI file instead of the default archetypes.
    pub ini: Option<&'a Path>,
    /// Deckies of the default fleet.
    pub deckies: usize,
    /// The subnet (used when the INI names none).
    pub subnet: Ipv4Net,
    /// The Docker network's name.
    pub network_name: &'a str,
    /// The static binary of the decky image.
    pub binary: &'a Path,
    /// Host directory of captured files.
    pub artifacts_root: &'a Path,
}

/// The INI text of the default fleet of `n` deckies.
pub fn default_ini(n: usize) -> String {
    (1..=n)
        .map(|i| {
            let archetype = ARCHETYPES[(i - 1) % ARCHETYPES.len()];
            format!("[decky-{i:02}]\narchetype={archetype}\n")
        })
        .collect()
}

/// The deployed fleet in `state_path`, if any.
pub fn deployed(state_path: &Path) -> Result<Option<State>, Error> {
    Ok(state::load(state_path)?.filter(|s| !s.config.deckies.is_empty()))
}

/// Deploys `spec` as the fleet in `state_path`, reporting progress to `progress`.
pub async fn deploy(
    engine: &Engine,
    spec: &FleetSpec<'_>,
    state_path: &Path,
    cancel: CancellationToken,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<State, Error> {
    let parsed = match spec.ini {
        Some(path) => ini::load(path)?,
        None => ini::parse(&default_ini(spec.deckies.max(1)))?,
    };
    let host = HostNetwork::read();
    let subnet = parsed.subnet.unwrap_or(spec.subnet);
    let gateway = match parsed.gateway.or_else(|| subnet.hosts().next()) {
        Some(g) => g,
        None => return Err(Error::Preflight(format!("{subnet} has no host addresses"))),
    };
    let network = Network {
        // Unused by the bridge driver; recorded so the state file reads like any other.
        interface: host.interface().unwrap_or_else(|_| "lo".into()),
        subnet,
        gateway,
        host_ip: None,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let opts = build::IniOptions {
        cli_mutate_interval: None,
        existing_ips: Vec::new(),
        seed: rng::fresh_seed(),
        now,
    };
    let deckies = build::from_ini(&parsed, &network, &opts)?;
    let fleet = DecnetConfig::new(Mode::Unihost, &network, deckies)?;
    let req = Request {
        fleet,
        driver: Driver::Bridge,
        names: Names::for_network(spec.network_name),
        host_ip: None,
        image: ImageSpec {
            tag: image::default_tag(),
            binary: spec.binary.to_path_buf(),
        },
        custom: &parsed.custom_services,
        replace: false,
        state_path: state_path.to_path_buf(),
        parallel: DEFAULT_PARALLEL,
        cancel,
        artifacts_root: spec.artifacts_root.to_path_buf(),
    };
    deploy::preflight(&req, &host)?;
    let deployed = deploy::deploy(engine, &req, progress).await?;
    Ok(deployed.state)
}

/// Starts the containers of `state`'s fleet that are not running: bases first, then
/// every service (restarted when its base was, since it shared the old namespace).
pub async fn revive(engine: &Engine, state: &State) -> Result<usize, Error> {
    let found = containers::of_fleet(engine, &state.names.network, None).await?;
    let stopped_bases: Vec<&containers::Found> = found
        .iter()
        .filter(|f| f.is_base() && f.state != "running")
        .collect();
    let mut started = 0;
    for base in &stopped_bases {
        engine
            .docker()
            .start_container(&base.id, None::<StartContainerOptions>)
            .await
            .map_err(crate::engine::Error::from)?;
        started += 1;
    }
    for svc in found.iter().filter(|f| !f.is_base()) {
        let base_restarted = stopped_bases.iter().any(|b| b.decky == svc.decky);
        if base_restarted {
            engine
                .docker()
                .restart_container(&svc.id, None::<RestartContainerOptions>)
                .await
                .map_err(crate::engine::Error::from)?;
            started += 1;
        } else if svc.state != "running" {
            engine
                .docker()
                .start_container(&svc.id, None::<StartContainerOptions>)
                .await
                .map_err(crate::engine::Error::from)?;
            started += 1;
        }
    }
    Ok(started)
}

/// Each decky's state, as `decnet status` shows it.
pub async fn status(engine: &Engine, state: &State) -> Result<Vec<DeckyStatus>, Error> {
    Ok(teardown::status(engine, state).await?)
}

/// What an operator can try against a decky running `services` at `ip`.
pub fn what_to_try(ip: &str, services: &[String]) -> Vec<String> {
    let mut tries = Vec::new();
    for svc in services {
        match svc.as_str() {
            "ssh" => tries.push(format!("ssh root@{ip}")),
            "http" => tries.push(format!("curl -u admin:secret http://{ip}/")),
            "ftp" => tries.push(format!("ftp {ip}")),
            "telnet" => tries.push(format!("telnet {ip}")),
            "smtp" => tries.push(format!("swaks --server {ip} --to root@example.com")),
            "redis" => tries.push(format!("redis-cli -h {ip}")),
            _ => {}
        }
    }
    tries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_fleet_cycles_archetypes_with_ssh_and_http() {
        let parsed = ini::parse(&default_ini(4)).expect("default INI parses");
        let names: Vec<&str> = parsed.deckies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["decky-01", "decky-02", "decky-03", "decky-04"]);
        let services: Vec<&str> = ARCHETYPES
            .iter()
            .flat_map(|a| crate::catalog::archetype(a).expect("catalogued").services)
            .copied()
            .collect();
        assert!(
            services.contains(&"ssh") && services.contains(&"http"),
            "{services:?}"
        );
    }

    #[test]
    fn suggestions_follow_the_services() {
        let tries = what_to_try("10.0.0.2", &["ssh".into(), "smb".into(), "http".into()]);
        assert_eq!(
            tries,
            ["ssh root@10.0.0.2", "curl -u admin:secret http://10.0.0.2/"]
        );
    }
}
