//! `teardown` and `status`: removing deckies and reporting on them, from the state file.
//!
//! Unlike the original's CLI (engine.md §1.9, [PY-BUG?]), tearing down one decky removes
//! its base container too and prunes it from the state file; tearing down the last one
//! is a full teardown. A full teardown removes every container labelled with the fleet's
//! network (also strays of an interrupted deploy), the hairpin link, the network and the
//! state file.
use std::path::Path;

use serde::Serialize;

use super::containers::{self, Found};
use super::deploy::DEFAULT_PARALLEL;
use super::plan::container_name;
use super::state::{self, State};
use super::{Engine, Error, hostnet, network};

/// What to tear down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The whole fleet.
    All,
    /// One decky, by name.
    Decky(String),
}

/// What a teardown removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornDown {
    /// The deckies removed.
    pub deckies: Vec<String>,
    /// Containers removed.
    pub containers: usize,
    /// Whether the whole fleet is gone (network, hairpin and state file included).
    pub fleet_removed: bool,
}

/// Tears down `target` of the fleet recorded at `state_path`.
pub async fn teardown(
    engine: &Engine,
    state_path: &Path,
    target: &Target,
) -> Result<TornDown, Error> {
    let state = state::load(state_path)?.ok_or(Error::NoDeployment)?;
    let network = &state.names.network;
    match target {
        Target::Decky(name) if state.config.deckies.len() > 1 || !is_member(&state, name) => {
            if !is_member(&state, name) {
                return Err(Error::UnknownDecky {
                    name: name.clone(),
                    known: state
                        .config
                        .deckies
                        .iter()
                        .map(|d| d.name.clone())
                        .collect(),
                });
            }
            let found = containers::of_fleet(engine, network, Some(name)).await?;
            containers::remove_all(engine, &found, DEFAULT_PARALLEL).await?;
            let mut pruned = state.clone();
            pruned.config.deckies.retain(|d| d.name != *name);
            state::save(state_path, &pruned)?;
            Ok(TornDown {
                deckies: vec![name.clone()],
                containers: found.len(),
                fleet_removed: false,
            })
        }
        _ => {
            let found = containers::of_fleet(engine, network, None).await?;
            containers::remove_all(engine, &found, DEFAULT_PARALLEL).await?;
            if let Some(h) = &state.hairpin {
                hostnet::remove_hairpin(h).await?;
            }
            network::remove(engine, network).await?;
            state::remove(state_path)?;
            Ok(TornDown {
                deckies: state
                    .config
                    .deckies
                    .iter()
                    .map(|d| d.name.clone())
                    .collect(),
                containers: found.len(),
                fleet_removed: true,
            })
        }
    }
}

fn is_member(state: &State, name: &str) -> bool {
    state.config.deckies.iter().any(|d| d.name == name)
}

/// One service of a decky and its container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// The service slug.
    pub service: String,
    /// Its container.
    pub container: String,
    /// Docker's state word, `None` when the container does not exist.
    pub state: Option<String>,
}

/// One decky as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeckyStatus {
    /// Decky name.
    pub name: String,
    /// Its LAN address.
    pub ip: String,
    /// Its MAC on the LAN, as Docker reports it.
    pub mac: Option<String>,
    /// Cosmetic hostname.
    pub hostname: String,
    /// OS family it claims.
    pub nmap_os: String,
    /// The base container's state, `None` when it does not exist.
    pub base: Option<String>,
    /// Its services.
    pub services: Vec<ServiceStatus>,
    /// `up` when the base and every service run, else `degraded`.
    pub state: &'static str,
}

/// The state of every decky of `state`'s fleet.
pub async fn status(engine: &Engine, state: &State) -> Result<Vec<DeckyStatus>, Error> {
    let found = containers::of_fleet(engine, &state.names.network, None).await?;
    let by_name = |name: &str| -> Option<&Found> { found.iter().find(|f| f.name == name) };
    Ok(state
        .config
        .deckies
        .iter()
        .map(|d| {
            let base = by_name(&d.name);
            let services: Vec<ServiceStatus> = d
                .services
                .iter()
                .map(|svc| {
                    let container = container_name(&d.name, svc);
                    ServiceStatus {
                        service: svc.clone(),
                        state: by_name(&container).map(|f| f.state.clone()),
                        container,
                    }
                })
                .collect();
            let running = |s: Option<&str>| s == Some("running");
            let up = running(base.map(|b| b.state.as_str()))
                && services.iter().all(|s| running(s.state.as_deref()));
            DeckyStatus {
                name: d.name.clone(),
                ip: d.ip.to_string(),
                mac: base.and_then(|b| b.mac.clone()),
                hostname: d.hostname.clone(),
                nmap_os: d.nmap_os.clone(),
                base: base.map(|b| b.state.clone()),
                services,
                state: if up { "up" } else { "degraded" },
            }
        })
        .collect())
}
