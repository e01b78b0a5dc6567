//! The host side of the decky LAN: capability and interface checks, and the hairpin link.
//!
//! MACVLAN (and IPvlan) children cannot talk to their parent, so without help the host
//! could not reach its own deckies. The hairpin is a host-side child of the same parent
//! (`decnet_macvlan0` or `decnet_ipvlan0`, engine.md §1.8) holding the host's address as
//! a /32 and a route to the deckies' range through it.
//!
//! Links and routes are changed with `ip(8)`, as in the original: decnet has no netlink
//! dependency, and every host that runs Docker has iproute2. The checks before a deploy
//! read `/proc` and `/sys` directly, so they cost nothing and fail before anything exists.
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::plan::Driver;
use crate::model::Ipv4Net;
use crate::model::detect::HostNetwork;

/// `CAP_NET_ADMIN`'s bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

/// The hairpin link of a deployed fleet, as the state file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hairpin {
    /// The link's name.
    pub link: String,
    /// The route to the deckies through it, when the host has an address to route from.
    pub route: Option<Ipv4Net>,
}

/// Whether the effective capability set `CapEff` in a `/proc/<pid>/status` text holds
/// `bit`.
pub fn cap_eff_has(status: &str, bit: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// Fails unless this process holds `CAP_NET_ADMIN` (needed for the hairpin link).
pub fn require_net_admin() -> Result<(), Error> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if cap_eff_has(&status, CAP_NET_ADMIN) {
        Ok(())
    } else {
        Err(Error::NoNetAdmin)
    }
}

/// Fails unless `name` is a network interface of this host.
pub fn require_interface(name: &str) -> Result<(), Error> {
    let plausible = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    if plausible && Path::new("/sys/class/net").join(name).exists() {
        Ok(())
    } else {
        Err(Error::NoSuchInterface {
            name: name.to_owned(),
        })
    }
}

/// Fails when an interface other than the fleet's own holds an address in `subnet`.
///
/// The hairpin route (and a Docker bridge's gateway address) would then capture the
/// host's traffic to that network, cutting the host off from, say, its own default
/// gateway. Allowed: addresses on the parent itself, on the fleet's hairpin `links`, and
/// on a Docker bridge (`br-…`) holding the gateway (the bridge driver's own).
pub fn require_subnet_free(
    host: &HostNetwork,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    parent: Option<&str>,
    links: &[&str],
) -> Result<(), Error> {
    let clash = host.addrs.iter().find(|a| {
        subnet.contains(a.addr)
            && Some(a.interface.as_str()) != parent
            && !links.contains(&a.interface.as_str())
            && !(parent.is_none() && a.interface.starts_with("br-") && a.addr == gateway)
    });
    match clash {
        None => Ok(()),
        Some(a) => Err(Error::SubnetInUse {
            subnet,
            interface: a.interface.clone(),
            addr: a.addr,
        }),
    }
}

/// Whether the link `name` exists.
pub fn link_exists(name: &str) -> bool {
    !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
}

/// Runs `ip args…`, returning its error output as an error when it fails.
async fn ip(args: &[&str]) -> Result<(), Error> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| Error::HostCommand {
            command: format!("ip {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::HostCommand {
            command: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Creates (or keeps) the hairpin link `link` on `parent` for `driver`, deleting the
/// other driver's link `other`, and routes `range` through it from `host_ip`.
///
/// Returns the hairpin and whether the link was created now (so a failed deploy knows
/// whether to remove it).
pub async fn setup_hairpin(
    driver: Driver,
    link: &str,
    other: &str,
    parent: &str,
    host_ip: Option<Ipv4Addr>,
    range: Ipv4Net,
) -> Result<(Hairpin, bool), Error> {
    if link_exists(other) {
        ip(&["link", "del", other]).await?;
    }
    let created = !link_exists(link);
    if created {
        let kind: &[&str] = match driver {
            Driver::Ipvlan => &["ipvlan", "mode", "l2"],
            _ => &["macvlan", "mode", "bridge"],
        };
        let mut args = vec!["link", "add", link, "link", parent, "type"];
        args.extend_from_slice(kind);
        ip(&args).await?;
    }
    let result = async {
        ip(&["link", "set", link, "up"]).await?;
        let Some(host_ip) = host_ip else {
            return Ok(None);
        };
        // An address or route that already exists is what we want; other failures
        // only cost the host its view of the deckies, never the deploy.
        let _ = ip(&["addr", "add", &format!("{host_ip}/32"), "dev", link]).await;
        let _ = ip(&["route", "add", &range.to_string(), "dev", link]).await;
        Ok(Some(range))
    }
    .await;
    match result {
        Ok(route) => Ok((
            Hairpin {
                link: link.to_owned(),
                route,
            },
            created,
        )),
        Err(e) => {
            if created {
                let _ = ip(&["link", "del", link]).await;
            }
            Err(e)
        }
    }
}

/// Moves the hairpin route from `old`'s range to `new`'s (an additive deploy widened the
/// fleet's range); routes that already match or that cannot change are left alone.
pub async fn reroute(old: &Hairpin, new: &Hairpin) {
    let (Some(from), Some(to)) = (old.route, new.route) else {
        return;
    };
    if from == to && old.link == new.link {
        return;
    }
    let _ = ip(&["route", "del", &from.to_string(), "dev", &old.link]).await;
    let _ = ip(&["route", "add", &to.to_string(), "dev", &new.link]).await;
}

/// Deletes the hairpin route and link; what is already gone is not an error.
pub async fn remove_hairpin(hairpin: &Hairpin) -> Result<(), Error> {
    if let Some(route) = hairpin.route {
        let _ = ip(&["route", "del", &route.to_string(), "dev", &hairpin.link]).await;
    }
    if link_exists(&hairpin.link) {
        ip(&["link", "del", &hairpin.link]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_net_admin_is_bit_twelve_of_cap_eff() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert!(cap_eff_has(root, CAP_NET_ADMIN));
        let user = "CapEff:\t0000000000000000\n";
        assert!(!cap_eff_has(user, CAP_NET_ADMIN));
        let only_net_admin = "CapEff:\t0000000000001000\n";
        assert!(cap_eff_has(only_net_admin, CAP_NET_ADMIN));
        assert!(!cap_eff_has("garbage", CAP_NET_ADMIN));
    }

    #[test]
    fn a_subnet_the_host_uses_elsewhere_is_refused() {
        use crate::model::detect::InterfaceAddr;
        let addr = |interface: &str, ip: [u8; 4]| InterfaceAddr {
            interface: interface.into(),
            addr: Ipv4Addr::from(ip),
            prefix: 24,
        };
        let host = HostNetwork {
            default_routes: Vec::new(),
            addrs: vec![
                addr("eth0", [192, 0, 2, 2]),
                addr("dnt0", [198, 51, 100, 254]),
                addr("dnm1", [198, 51, 100, 254]),
                addr("br-0123456789ab", [203, 0, 113, 1]),
            ],
        };
        let net = |s: &str| s.parse::<Ipv4Net>().expect("cidr");
        let gw = |ip: [u8; 4]| Ipv4Addr::from(ip);
        assert!(
            require_subnet_free(
                &host,
                net("198.51.100.0/24"),
                gw([198, 51, 100, 1]),
                Some("dnt0"),
                &["dnm1"]
            )
            .is_ok()
        );
        let e = require_subnet_free(
            &host,
            net("192.0.2.0/24"),
            gw([192, 0, 2, 1]),
            Some("dnt0"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("eth0 (192.0.2.2)"), "{e}");
        assert!(
            require_subnet_free(
                &host,
                net("203.0.113.0/24"),
                gw([203, 0, 113, 1]),
                None,
                &[]
            )
            .is_ok()
        );
        assert!(
            require_subnet_free(
                &host,
                net("203.0.113.0/24"),
                gw([203, 0, 113, 1]),
                Some("dnt0"),
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn interfaces_are_checked_on_this_host() {
        assert!(require_interface("lo").is_ok());
        for bad in ["", "..", "../lo", "no-such-nic0"] {
            let e = require_interface(bad).unwrap_err();
            assert!(e.to_string().contains("does not exist"), "{bad}: {e}");
        }
    }
}
