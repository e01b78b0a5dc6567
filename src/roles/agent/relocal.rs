//! Relocalisation (swarm.md §4.3): a swarm shard arrives with the master's idea of the
//! network (its NIC name, its LAN); the worker replaces them with its own.
//!
//! Pure: the host is a [`HostNetwork`] snapshot, so tests hand in a made-up one. The
//! deckies keep their addresses when the master's subnet is this host's LAN (an
//! operator who planned the addresses gets them); otherwise they get the first free
//! host addresses of the local LAN in decky order, skipping the gateway and this host.
use std::net::Ipv4Addr;

use thiserror::Error;

use crate::model::detect::HostNetwork;
use crate::model::{self, DecnetConfig};

/// Why a fleet cannot be placed on this host's LAN.
#[derive(Debug, Error)]
pub enum RelocaliseError {
    /// Interface, subnet or gateway could not be detected.
    #[error("detecting this host's network: {0}")]
    Detect(#[from] model::Error),
    /// The local LAN has fewer free addresses than the shard has deckies.
    #[error("the local subnet {subnet} has {free} free address(es) for {wanted} decky(ies)")]
    Exhausted {
        /// The local LAN.
        subnet: String,
        /// Free host addresses.
        free: usize,
        /// Deckies to place.
        wanted: usize,
    },
}

/// `fleet` moved onto `host`'s default-route LAN.
pub fn relocalise(
    host: &HostNetwork,
    mut fleet: DecnetConfig,
) -> Result<DecnetConfig, RelocaliseError> {
    let interface = host.interface()?;
    let subnet = host.subnet(&interface)?;
    let gateway = host.gateway()?;
    let own: Option<Ipv4Addr> = host.address(&interface).map(|a| a.addr);
    let same =
        fleet.subnet.network() == subnet.network() && fleet.subnet.prefix() == subnet.prefix();
    if !same {
        let free: Vec<Ipv4Addr> = subnet
            .hosts()
            .filter(|ip| *ip != gateway && Some(*ip) != own)
            .take(fleet.deckies.len())
            .collect();
        if free.len() < fleet.deckies.len() {
            return Err(RelocaliseError::Exhausted {
                subnet: subnet.to_string(),
                free: free.len(),
                wanted: fleet.deckies.len(),
            });
        }
        for (decky, ip) in fleet.deckies.iter_mut().zip(free) {
            decky.ip = ip;
        }
    }
    tracing::info!(%interface, %subnet, %gateway, "relocalized interface={interface} subnet={subnet} gateway={gateway}");
    fleet.interface = interface;
    fleet.subnet = subnet;
    fleet.gateway = gateway;
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::detect::{DefaultRoute, InterfaceAddr};

    fn host() -> HostNetwork {
        HostNetwork {
            default_routes: vec![DefaultRoute {
                interface: "enp3s0".into(),
                gateway: Some("198.51.100.1".parse().expect("ip")),
            }],
            addrs: vec![InterfaceAddr {
                interface: "enp3s0".into(),
                addr: "198.51.100.2".parse().expect("ip"),
                prefix: 29,
            }],
        }
    }

    fn fleet(subnet: &str, ips: &[&str]) -> DecnetConfig {
        let deckies = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                serde_json::from_value(serde_json::json!({
                    "name": format!("d{i}"), "ip": ip, "services": ["ssh"],
                    "distro": "debian", "base_image": "debian", "hostname": format!("h{i}"),
                }))
                .expect("decky")
            })
            .collect::<Vec<crate::model::DeckyConfig>>();
        serde_json::from_value(serde_json::json!({
            "mode": "swarm", "interface": "eth0", "subnet": subnet,
            "gateway": "10.0.0.1", "deckies": deckies,
        }))
        .expect("fleet")
    }

    #[test]
    fn another_subnet_gets_local_addresses_skipping_gateway_and_host() {
        let out =
            relocalise(&host(), fleet("10.0.0.0/24", &["10.0.0.5", "10.0.0.6"])).expect("fits");
        assert_eq!(out.interface, "enp3s0");
        assert_eq!(out.subnet.to_string(), "198.51.100.0/29");
        assert_eq!(out.gateway.to_string(), "198.51.100.1");
        let ips: Vec<String> = out.deckies.iter().map(|d| d.ip.to_string()).collect();
        assert_eq!(ips, ["198.51.100.3", "198.51.100.4"]);
    }

    #[test]
    fn the_same_subnet_keeps_the_planned_addresses() {
        let out = relocalise(&host(), fleet("198.51.100.0/29", &["198.51.100.6"])).expect("fits");
        assert_eq!(out.deckies[0].ip.to_string(), "198.51.100.6");
        assert_eq!(out.interface, "enp3s0");
    }

    #[test]
    fn too_small_a_lan_fails() {
        // A /29 has 6 hosts, minus gateway and host: 4 free.
        let ips = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"];
        let err = relocalise(&host(), fleet("10.0.0.0/24", &ips)).expect_err("5 > 4");
        assert!(
            err.to_string().contains("4 free address(es) for 5"),
            "{err}"
        );
        assert!(relocalise(&HostNetwork::default(), fleet("10.0.0.0/24", &["10.0.0.2"])).is_err());
    }
}
