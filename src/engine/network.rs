//! The fleet's Docker network (`decnet_lan`): created, reused or replaced by the rules of
//! engine.md §1.8.
//!
//! - Absent: created with one IPAM pool (subnet, gateway, ip_range).
//! - Same driver, parent, subnet and gateway: kept.
//! - Same driver, different pool or parent: kept while containers are attached (the
//!   running fleet wins; the deploy then fails on addresses Docker refuses, saying so),
//!   otherwise removed and recreated.
//!
//! Unlike the original, a different `ip_range` alone never recreates the network: Docker
//! accepts static addresses anywhere in the subnet, the range only shapes the hairpin
//! route (which decnet manages itself), and recreating would strand the stopped
//! containers of a fleet being replaced.
//! - Different driver: attached containers are disconnected, the network removed and
//!   recreated (MACVLAN and IPvlan children cannot share a parent).
use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest, NetworkDisconnectRequest};
use bollard::query_parameters::InspectNetworkOptions;

use super::plan::{Driver, NetworkPlan};
use super::{Engine, Error, not_found};

/// How often a network removal is retried while Docker releases endpoints.
const REMOVE_TRIES: u32 = 40;
/// Pause between those tries.
const REMOVE_RETRY: Duration = Duration::from_millis(250);

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The existing network fits and was kept.
    Kept,
    /// The network was created (or recreated) now.
    Created,
}

/// Makes sure the fleet's network exists as `plan` describes.
pub async fn ensure(engine: &Engine, plan: &NetworkPlan) -> Result<Ensured, Error> {
    let docker = engine.docker();
    let name = &plan.names.network;
    let existing = match docker
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(n) => Some(n),
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(net) = existing {
        let attached: Vec<String> = net
            .containers
            .as_ref()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        let same_driver = net.driver.as_deref() == Some(plan.driver.docker_name());
        let pool = net
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.first());
        let same_pool = pool.is_some_and(|p| {
            p.subnet.as_deref() == Some(plan.subnet.to_string().as_str())
                && p.gateway.as_deref() == Some(plan.gateway.to_string().as_str())
        });
        let same_parent = !plan.driver.has_parent()
            || net
                .options
                .as_ref()
                .and_then(|o| o.get("parent"))
                .is_some_and(|p| *p == plan.parent);
        if same_driver && ((same_pool && same_parent) || !attached.is_empty()) {
            return Ok(Ensured::Kept);
        }
        if !same_driver {
            for container in attached {
                let req = NetworkDisconnectRequest {
                    container: Some(container),
                    force: Some(true),
                };
                docker.disconnect_network(name, req).await?;
            }
        }
        remove(engine, name).await?;
    }
    create(engine, plan).await?;
    Ok(Ensured::Created)
}

async fn create(engine: &Engine, plan: &NetworkPlan) -> Result<(), Error> {
    let mut options = HashMap::new();
    if plan.driver.has_parent() {
        options.insert("parent".to_owned(), plan.parent.clone());
    }
    if plan.driver == Driver::Ipvlan {
        options.insert("ipvlan_mode".to_owned(), "l2".to_owned());
    }
    let req = NetworkCreateRequest {
        name: plan.names.network.clone(),
        driver: Some(plan.driver.docker_name().to_owned()),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![IpamConfig {
                subnet: Some(plan.subnet.to_string()),
                gateway: Some(plan.gateway.to_string()),
                ip_range: Some(plan.ip_range.to_string()),
                auxiliary_addresses: None,
            }]),
            options: None,
        }),
        options: Some(options),
        labels: Some(HashMap::from([(
            super::plan::LABEL_NETWORK.to_owned(),
            plan.names.network.clone(),
        )])),
        ..Default::default()
    };
    engine.docker().create_network(req).await?;
    Ok(())
}

/// Removes the network `name`; an absent one is not an error.
///
/// Docker releases the endpoints of just-removed containers asynchronously, so "has
/// active endpoints" is retried for a few seconds before it counts.
pub async fn remove(engine: &Engine, name: &str) -> Result<(), Error> {
    let mut tries = 0;
    loop {
        match engine.docker().remove_network(name).await {
            Ok(()) => return Ok(()),
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) if e.to_string().contains("active endpoints") => {
                if tries == REMOVE_TRIES {
                    return Err(Error::NetworkStuck {
                        name: name.to_owned(),
                    });
                }
                tries += 1;
                tokio::time::sleep(REMOVE_RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether the network `name` exists.
pub async fn exists(engine: &Engine, name: &str) -> Result<bool, Error> {
    match engine
        .docker()
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
