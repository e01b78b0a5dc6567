//! Decky containers: created from a [`ContainerPlan`], found by label, removed.
//!
//! Every container decnet creates carries the fleet's network name as a label
//! ([`LABEL_NETWORK`]), so one fleet's containers are found (and removed) without
//! touching anything else on the host, including another fleet's.
use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigLogConfig,
    Mount, MountTypeEnum, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};

use super::plan::{
    Attach, ContainerPlan, LABEL_BASE, LABEL_DECKY, LABEL_NETWORK, LABEL_SERVICE_NAME,
    LOG_MAX_FILE, LOG_MAX_SIZE,
};
use super::{Engine, Error, not_found};

/// Seconds a stopping container gets before it is killed: decky processes exit on
/// SIGTERM at once, so this only matters for custom service images.
pub const STOP_GRACE_SECS: i32 = 5;

/// One container of a fleet as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Container id.
    pub id: String,
    /// Container name (without Docker's leading `/`).
    pub name: String,
    /// The decky it belongs to.
    pub decky: String,
    /// The service it runs; `None` for a base container.
    pub service: Option<String>,
    /// Docker's state word (`running`, `exited`, `restarting`, …).
    pub state: String,
    /// Its MAC address on the fleet network, if it has one there.
    pub mac: Option<String>,
    /// Its address on the fleet network, if it has one there.
    pub ip: Option<String>,
}

impl Found {
    /// Whether this is a decky's base container.
    pub fn is_base(&self) -> bool {
        self.service.is_none()
    }
}

/// Creates and starts `c` on `network`, returning its id.
pub async fn create_and_start(
    engine: &Engine,
    network: &str,
    c: &ContainerPlan,
) -> Result<String, Error> {
    let container = |source| Error::Container {
        name: c.name.clone(),
        source,
    };
    let (network_mode, networking_config, mac) = match &c.attach {
        Attach::Lan { ip, mac } => {
            let endpoint = EndpointSettings {
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: Some(ip.to_string()),
                    ..Default::default()
                }),
                mac_address: mac.clone(),
                ..Default::default()
            };
            (
                network.to_owned(),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
                }),
                mac.clone(),
            )
        }
        Attach::Join(base) => (format!("container:{base}"), None, None),
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILE.to_owned()),
            ])),
        }),
        cap_add: (!c.cap_add.is_empty()).then(|| c.cap_add.clone()),
        // Typed mounts rather than `binds` strings: a path with a `:` stays one path, and
        // a missing source is an error instead of a root-owned directory made by Docker.
        mounts: (!c.mounts.is_empty()).then(|| {
            c.mounts
                .iter()
                .map(|m| Mount {
                    typ: Some(MountTypeEnum::BIND),
                    source: Some(m.host.to_string_lossy().into_owned()),
                    target: Some(m.container.clone()),
                    read_only: Some(m.read_only),
                    ..Default::default()
                })
                .collect()
        }),
        sysctls: (!c.sysctls.is_empty()).then(|| {
            c.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(c.image.clone()),
        cmd: (!c.cmd.is_empty()).then(|| c.cmd.clone()),
        env: Some(c.env.clone()),
        hostname: c.hostname.clone(),
        // API 1.41 (Docker 20.10) takes the MAC here; newer engines read the endpoint's.
        mac_address: mac,
        labels: Some(c.labels.clone().into_iter().collect()),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&c.name).build();
    let created = engine
        .docker()
        .create_container(Some(options), body)
        .await
        .map_err(container)?;
    engine
        .docker()
        .start_container(&created.id, None::<StartContainerOptions>)
        .await
        .map_err(container)?;
    Ok(created.id)
}

/// Every container (running or not) whose labels match all of `labels`.
pub async fn list(engine: &Engine, labels: &[(&str, &str)]) -> Result<Vec<Found>, Error> {
    let filters = HashMap::from([(
        "label".to_owned(),
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    )]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let summaries = engine.docker().list_containers(Some(options)).await?;
    Ok(summaries
        .into_iter()
        .filter_map(|s| {
            let labels = s.labels.unwrap_or_default();
            let network = labels.get(LABEL_NETWORK)?.clone();
            let endpoint = s
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(&network));
            let name = s.names?.first()?.trim_start_matches('/').to_owned();
            Some(Found {
                id: s.id?,
                name,
                decky: labels.get(LABEL_DECKY)?.clone(),
                service: match labels.get(LABEL_BASE) {
                    Some(_) => None,
                    None => Some(labels.get(LABEL_SERVICE_NAME)?.clone()),
                },
                state: s.state.map(|st| st.to_string()).unwrap_or_default(),
                mac: endpoint
                    .as_ref()
                    .and_then(|e| e.mac_address.clone())
                    .filter(|m| !m.is_empty()),
                ip: endpoint
                    .and_then(|e| e.ip_address)
                    .filter(|ip| !ip.is_empty()),
            })
        })
        .collect())
}

/// The containers of fleet `network`, optionally only those of decky `decky`.
pub async fn of_fleet(
    engine: &Engine,
    network: &str,
    decky: Option<&str>,
) -> Result<Vec<Found>, Error> {
    let mut labels = vec![(LABEL_NETWORK, network)];
    if let Some(d) = decky {
        labels.push((LABEL_DECKY, d));
    }
    list(engine, &labels).await
}

/// Stops container `id` (SIGTERM, then SIGKILL after `grace` seconds) and removes it; an
/// absent one is not an error.
///
/// Stopping first lets Docker release the network endpoint on its ordinary exit path:
/// Docker 20.10 can otherwise lose count of a MACVLAN network's endpoints when running
/// containers are force-removed (moby/moby#42119), and the network can then never be
/// removed without restarting the daemon.
pub async fn remove(engine: &Engine, id: &str, grace: i32) -> Result<(), Error> {
    let docker = engine.docker();
    let container = |source| Error::Container {
        name: id.to_owned(),
        source,
    };
    let stop = StopContainerOptionsBuilder::new().t(grace).build();
    match docker.stop_container(id, Some(stop)).await {
        Ok(()) => {}
        Err(e) if not_found(&e) => return Ok(()),
        // 304: already stopped.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => {}
        Err(e) => return Err(container(e)),
    }
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(container(e)),
    }
}

/// Removes `found`: service containers first, then bases (a base holds its services'
/// network namespace), `parallel` at a time.
pub async fn remove_all(engine: &Engine, found: &[Found], parallel: usize) -> Result<(), Error> {
    use futures_util::StreamExt;
    let (bases, services): (Vec<&Found>, Vec<&Found>) = found.iter().partition(|f| f.is_base());
    for group in [services, bases] {
        let results: Vec<Result<(), Error>> = futures_util::stream::iter(group)
            .map(|f| remove(engine, &f.id, STOP_GRACE_SECS))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<(), Error>>()?;
    }
    Ok(())
}
