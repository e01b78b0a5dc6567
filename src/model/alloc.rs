//! Decky address allocation (engine.md §1.3): the subnet's host addresses in ascending
//! order, skipping every address that is spoken for.
//!
//! An [`IpPool`] knows *why* each address is reserved (network, broadcast, gateway, the
//! host's own address, an existing decky, an explicit `ip=`), so an explicit address that
//! collides gets an error naming the owner instead of a Docker failure later.
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::Ipv4Addr;

use super::{Error, Ipv4Net};

/// Why an address may not be handed out.
const NETWORK: &str = "network address";
const BROADCAST: &str = "broadcast address";
const GATEWAY: &str = "gateway";
const HOST: &str = "host's own address";
const EXISTING: &str = "address of an existing decky";
const CLAIMED: &str = "address of another decky";

/// Free addresses of a subnet, handed out in ascending order.
#[derive(Debug, Clone)]
pub struct IpPool {
    subnet: Ipv4Net,
    reserved: BTreeMap<Ipv4Addr, &'static str>,
    cursor: Option<Ipv4Addr>,
}

impl IpPool {
    /// A pool of `subnet`'s hosts without its network and broadcast addresses, the
    /// gateway, the host's own address and `existing` (addresses of a running fleet).
    pub fn new(
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
        host_ip: Option<Ipv4Addr>,
        existing: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Self {
        let mut reserved = BTreeMap::new();
        for ip in existing {
            reserved.insert(ip, EXISTING);
        }
        if let Some(ip) = host_ip {
            reserved.insert(ip, HOST);
        }
        reserved.insert(gateway, GATEWAY);
        reserved.insert(subnet.broadcast(), BROADCAST);
        reserved.insert(subnet.network(), NETWORK);
        IpPool {
            subnet,
            reserved,
            cursor: subnet.hosts().next(),
        }
    }

    /// Starts handing out at `start` instead of the first host address.
    pub fn start_at(&mut self, start: Ipv4Addr) -> Result<(), Error> {
        if !self.subnet.contains(start) {
            return Err(Error::IpStartOutside {
                ip: start,
                subnet: self.subnet,
            });
        }
        self.cursor = Some(start);
        Ok(())
    }

    /// The subnet addresses come from.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// Claims an explicit address for decky `name`: it must be in the subnet and free.
    pub fn claim(&mut self, ip: Ipv4Addr, name: &str) -> Result<(), Error> {
        if !self.subnet.contains(ip) {
            return Err(Error::IpOutsideSubnet {
                ip,
                subnet: self.subnet,
                name: name.to_owned(),
            });
        }
        match self.reserved.get(&ip) {
            None => {
                self.reserved.insert(ip, CLAIMED);
                Ok(())
            }
            Some(&CLAIMED) => Err(Error::DuplicateIp {
                ip,
                name: name.to_owned(),
            }),
            Some(what) => Err(Error::IpReserved {
                ip,
                name: name.to_owned(),
                what,
            }),
        }
    }

    /// The lowest free address at or after the cursor, now reserved; `None` when the
    /// subnet is exhausted.
    pub fn next_free(&mut self) -> Option<Ipv4Addr> {
        let last = u32::from(self.subnet.broadcast());
        let mut at = u32::from(self.cursor?);
        loop {
            let ip = Ipv4Addr::from(at);
            if let Entry::Vacant(slot) = self.reserved.entry(ip) {
                slot.insert(CLAIMED);
                self.cursor = at.checked_add(1).filter(|n| *n <= last).map(Ipv4Addr::from);
                return Some(ip);
            }
            if at >= last {
                self.cursor = None;
                return None;
            }
            at += 1;
        }
    }
}

/// `count` addresses for a flags deploy, ascending from `ip_start` (or the first host),
/// skipping network, broadcast, gateway, the host's address and `existing`.
pub fn allocate_ips(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    host_ip: Option<Ipv4Addr>,
    count: usize,
    ip_start: Option<Ipv4Addr>,
    existing: &[Ipv4Addr],
) -> Result<Vec<Ipv4Addr>, Error> {
    let mut pool = IpPool::new(subnet, gateway, host_ip, existing.iter().copied());
    if let Some(start) = ip_start {
        pool.start_at(start)?;
    }
    let mut ips = Vec::with_capacity(count.min(1024));
    while ips.len() < count {
        match pool.next_free() {
            Some(ip) => ips.push(ip),
            None => {
                return Err(Error::NotEnoughIpsFor {
                    subnet,
                    wanted: count,
                    found: ips.len(),
                });
            }
        }
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect(s)
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect(s)
    }

    #[test]
    fn skips_gateway_host_and_existing() {
        let got = allocate_ips(
            net("192.0.2.0/24"),
            ip("192.0.2.1"),
            Some(ip("192.0.2.3")),
            3,
            None,
            &[ip("192.0.2.4")],
        )
        .expect("room");
        assert_eq!(got, [ip("192.0.2.2"), ip("192.0.2.5"), ip("192.0.2.6")]);
    }

    #[test]
    fn starts_where_asked() {
        let got = allocate_ips(
            net("192.0.2.0/24"),
            ip("192.0.2.1"),
            None,
            2,
            Some(ip("192.0.2.100")),
            &[],
        )
        .expect("room");
        assert_eq!(got, [ip("192.0.2.100"), ip("192.0.2.101")]);
        let e = allocate_ips(
            net("192.0.2.0/24"),
            ip("192.0.2.1"),
            None,
            2,
            Some(ip("10.0.0.1")),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--ip-start 10.0.0.1 is outside the subnet 192.0.2.0/24."
        );
    }

    #[test]
    fn exhaustion_says_how_many_were_found() {
        // /29: hosts .1-.6, minus gateway .1 and host .2 → 4 free.
        let e = allocate_ips(
            net("192.0.2.0/29"),
            ip("192.0.2.1"),
            Some(ip("192.0.2.2")),
            5,
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Not enough free IPs in 192.0.2.0/29 for 5 deckies (found 4)."
        );
        let e = allocate_ips(
            net("192.0.2.0/29"),
            ip("192.0.2.1"),
            None,
            1,
            Some(ip("192.0.2.7")),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().ends_with("(found 0)."), "{e}");
        assert!(allocate_ips(net("192.0.2.0/29"), ip("192.0.2.1"), None, 5, None, &[]).is_ok());
    }

    #[test]
    fn claims_name_the_owner_of_a_taken_address() {
        let mut pool = IpPool::new(
            net("192.0.2.0/24"),
            ip("192.0.2.1"),
            Some(ip("192.0.2.9")),
            [ip("192.0.2.50")],
        );
        assert!(pool.claim(ip("192.0.2.10"), "a").is_ok());
        let text = |r: Result<(), Error>| r.unwrap_err().to_string();
        assert_eq!(
            text(pool.claim(ip("192.0.2.10"), "b")),
            "[b] ip=192.0.2.10 is already used by another decky."
        );
        assert_eq!(
            text(pool.claim(ip("192.0.2.1"), "c")),
            "[c] ip=192.0.2.1 is the gateway; pick another address."
        );
        assert_eq!(
            text(pool.claim(ip("192.0.2.50"), "d")),
            "[d] ip=192.0.2.50 is the address of an existing decky; pick another address."
        );
        assert_eq!(
            text(pool.claim(ip("192.0.2.255"), "e")),
            "[e] ip=192.0.2.255 is the broadcast address; pick another address."
        );
        assert_eq!(
            text(pool.claim(ip("192.0.3.1"), "f")),
            "[f] ip=192.0.3.1 is outside the subnet 192.0.2.0/24."
        );
        // Claimed and reserved addresses are skipped by automatic allocation.
        let auto: Vec<_> = std::iter::from_fn(|| pool.next_free()).take(9).collect();
        assert_eq!(auto.first(), Some(&ip("192.0.2.2")));
        assert!(!auto.contains(&ip("192.0.2.9")) && !auto.contains(&ip("192.0.2.10")));
    }

    #[test]
    fn a_full_pool_stays_empty() {
        let mut pool = IpPool::new(net("192.0.2.0/30"), ip("192.0.2.1"), None, []);
        assert_eq!(pool.next_free(), Some(ip("192.0.2.2")));
        assert_eq!(pool.next_free(), None);
        assert_eq!(pool.next_free(), None);
    }
}
