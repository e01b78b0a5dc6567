//! Interface, subnet, gateway and host-address detection (engine.md §1.4).
//!
//! The original runs `ip route` / `ip addr` and parses their text. decnet reads the same
//! facts straight from the kernel: default routes from `/proc/net/route`, interface
//! addresses through `getifaddrs(3)`, into a [`HostNetwork`] snapshot. Decisions are
//! pure functions of that snapshot, so tests hand in a made-up host instead of this one.
//!
//! Precedence is the original's: command-line flag, then the INI `[general]` section,
//! then detection; a subnet given without a gateway still gets the detected gateway.
use std::net::Ipv4Addr;

use super::{Error, Ipv4Net};

/// Where the kernel lists IPv4 routes.
const PROC_NET_ROUTE: &str = "/proc/net/route";

/// One IPv4 default route of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The interface it leaves through.
    pub interface: String,
    /// The next hop, if the route has one.
    pub gateway: Option<Ipv4Addr>,
}

/// One IPv4 address of a host interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface.
    pub interface: String,
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

/// What the host says about its network, in kernel order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetwork {
    /// Default routes, first one first.
    pub default_routes: Vec<DefaultRoute>,
    /// IPv4 addresses of every interface.
    pub addrs: Vec<InterfaceAddr>,
}

impl HostNetwork {
    /// Reads this host's routes and addresses; what cannot be read is simply absent (the
    /// decisions then report that detection failed).
    pub fn read() -> Self {
        let default_routes = std::fs::read_to_string(PROC_NET_ROUTE)
            .map(|text| parse_proc_route(&text))
            .unwrap_or_default();
        let addrs = nix::ifaddrs::getifaddrs()
            .map(|ifaces| {
                ifaces
                    .filter_map(|i| {
                        let addr = i.address?.as_sockaddr_in()?.ip();
                        let mask = i.netmask?.as_sockaddr_in()?.ip();
                        // A netmask has at most 32 one bits.
                        let prefix = u32::from(mask).count_ones() as u8;
                        Some(InterfaceAddr {
                            interface: i.interface_name,
                            addr,
                            prefix,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        HostNetwork {
            default_routes,
            addrs,
        }
    }

    /// The interface of the first default route.
    pub fn interface(&self) -> Result<String, Error> {
        self.default_routes
            .first()
            .map(|r| r.interface.clone())
            .ok_or(Error::NoInterface)
    }

    /// The first gateway of any default route (not filtered by interface, as in the
    /// original).
    pub fn gateway(&self) -> Result<Ipv4Addr, Error> {
        self.default_routes
            .iter()
            .find_map(|r| r.gateway)
            .ok_or(Error::NoGateway)
    }

    /// The first IPv4 address of `interface`.
    pub fn address(&self, interface: &str) -> Option<&InterfaceAddr> {
        self.addrs.iter().find(|a| a.interface == interface)
    }

    /// The network of `interface`'s first IPv4 address.
    pub fn subnet(&self, interface: &str) -> Result<Ipv4Net, Error> {
        self.address(interface)
            .and_then(|a| Ipv4Net::new(a.addr, a.prefix))
            .ok_or_else(|| Error::NoSubnet {
                interface: interface.to_owned(),
            })
    }
}

/// The default routes of a `/proc/net/route` table, in file order.
///
/// Columns are tab-separated; addresses are the kernel's network-order `u32` printed as
/// a native-endian hex number, so the native byte order of the parsed number gives the
/// address bytes back.
pub fn parse_proc_route(text: &str) -> Vec<DefaultRoute> {
    const RTF_GATEWAY: u32 = 0x2;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw, flags, mask) = (
                cols.first()?,
                hex(cols.get(1)?)?,
                hex(cols.get(2)?)?,
                hex(cols.get(3)?)?,
                hex(cols.get(7)?)?,
            );
            (dest == 0 && mask == 0).then(|| DefaultRoute {
                interface: (*iface).to_owned(),
                gateway: (flags & RTF_GATEWAY != 0 && gw != 0)
                    .then(|| Ipv4Addr::from(gw.to_ne_bytes())),
            })
        })
        .collect()
}

/// Network settings given explicitly, by flags or by the INI `[general]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkHints {
    /// Host NIC (`--interface`, `interface=`).
    pub interface: Option<String>,
    /// Decky LAN (`--subnet`, `net=`).
    pub subnet: Option<Ipv4Net>,
    /// Its gateway (`gw=`).
    pub gateway: Option<Ipv4Addr>,
}

/// The settled network of a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Host NIC the decky network hangs off.
    pub interface: String,
    /// The decky LAN.
    pub subnet: Ipv4Net,
    /// Its gateway.
    pub gateway: Ipv4Addr,
    /// This host's address on the interface, if it has one (never given to a decky).
    pub host_ip: Option<Ipv4Addr>,
}

/// Settles the network: each value from `flags`, else `ini`, else `host`. The gateway
/// must lie inside the subnet.
pub fn resolve_network(
    flags: &NetworkHints,
    ini: &NetworkHints,
    host: &HostNetwork,
) -> Result<Network, Error> {
    let interface = match flags.interface.as_ref().or(ini.interface.as_ref()) {
        Some(i) => i.clone(),
        None => host.interface()?,
    };
    let subnet = match flags.subnet.or(ini.subnet) {
        Some(s) => s,
        None => host.subnet(&interface)?,
    };
    let gateway = match flags.gateway.or(ini.gateway) {
        Some(g) => g,
        None => host.gateway()?,
    };
    if !subnet.contains(gateway) {
        return Err(Error::GatewayOutside { gateway, subnet });
    }
    let host_ip = host.address(&interface).map(|a| a.addr);
    Ok(Network {
        interface,
        subnet,
        gateway,
        host_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n\
        eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";

    fn host() -> HostNetwork {
        HostNetwork {
            default_routes: parse_proc_route(ROUTE),
            addrs: vec![
                InterfaceAddr {
                    interface: "wg0".into(),
                    addr: Ipv4Addr::new(10, 9, 0, 2),
                    prefix: 24,
                },
                InterfaceAddr {
                    interface: "eth0".into(),
                    addr: Ipv4Addr::new(10, 0, 2, 15),
                    prefix: 24,
                },
            ],
        }
    }

    #[test]
    fn proc_route_default_routes() {
        let routes = parse_proc_route(ROUTE);
        let expected_gw = if cfg!(target_endian = "little") {
            Some(Ipv4Addr::new(10, 0, 2, 1))
        } else {
            Some(Ipv4Addr::new(1, 2, 0, 10))
        };
        assert_eq!(
            routes,
            [
                DefaultRoute {
                    interface: "wg0".into(),
                    gateway: None
                },
                DefaultRoute {
                    interface: "eth0".into(),
                    gateway: expected_gw
                },
            ]
        );
        assert!(parse_proc_route("header only\n").is_empty());
        assert!(parse_proc_route("h\nbroken line\n").is_empty());
    }

    #[test]
    fn detection_follows_the_original() {
        let h = host();
        assert_eq!(h.interface().ok().as_deref(), Some("wg0"));
        assert_eq!(h.subnet("eth0").ok(), "10.0.2.0/24".parse().ok());
        let e = h.subnet("eth9").unwrap_err();
        assert_eq!(e.to_string(), "Could not detect subnet for interface eth9.");
        let empty = HostNetwork::default();
        assert_eq!(
            empty.interface().unwrap_err().to_string(),
            "Could not auto-detect network interface. Use --interface."
        );
        assert_eq!(
            empty.gateway().unwrap_err().to_string(),
            "Could not detect gateway."
        );
    }

    #[test]
    fn flags_beat_ini_beat_detection() {
        if cfg!(target_endian = "big") {
            return;
        }
        let h = host();
        let flags = NetworkHints {
            interface: Some("eth0".into()),
            ..NetworkHints::default()
        };
        let n = resolve_network(&flags, &NetworkHints::default(), &h).expect("detected");
        assert_eq!(n.subnet.to_string(), "10.0.2.0/24");
        assert_eq!(n.gateway, Ipv4Addr::new(10, 0, 2, 1));
        assert_eq!(n.host_ip, Some(Ipv4Addr::new(10, 0, 2, 15)));

        let ini = NetworkHints {
            interface: Some("eth1".into()),
            subnet: "192.0.2.0/24".parse().ok(),
            gateway: Some(Ipv4Addr::new(192, 0, 2, 254)),
        };
        let n = resolve_network(&flags, &ini, &h).expect("given");
        assert_eq!(
            (n.interface.as_str(), n.gateway),
            ("eth0", Ipv4Addr::new(192, 0, 2, 254))
        );
        assert_eq!(n.subnet.to_string(), "192.0.2.0/24");

        // Only the subnet given: the gateway is still detected, and must fit.
        let only_subnet = NetworkHints {
            subnet: "10.0.2.0/25".parse().ok(),
            ..NetworkHints::default()
        };
        let n = resolve_network(&flags, &only_subnet, &h).expect("detected gateway");
        assert_eq!(n.gateway, Ipv4Addr::new(10, 0, 2, 1));
        let elsewhere = NetworkHints {
            subnet: "192.0.2.0/24".parse().ok(),
            ..NetworkHints::default()
        };
        let e = resolve_network(&flags, &elsewhere, &h).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The gateway 10.0.2.1 is outside the subnet 192.0.2.0/24."
        );
    }

    #[test]
    fn reading_this_host_does_not_fail() {
        let h = HostNetwork::read();
        assert!(h.addrs.iter().all(|a| a.prefix <= 32));
    }
}
