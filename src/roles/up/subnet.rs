//! The first fleet's bridge subnet: the first candidate that nothing on this host uses.
//!
//! A bridge subnet that overlaps a route or an address of the host would capture the
//! host's own traffic to that network (its LAN, a VPN, another Docker network), so a
//! candidate is taken only when no route in the kernel's table (`/proc/net/route`, what
//! `ip route` prints) and no interface address overlaps it. The candidates are a few
//! small RFC 1918 networks unlikely to be a home or office LAN; `decnet up --subnet`
//! replaces the list (tests hand in their own so they never take the default one).
use std::net::Ipv4Addr;

use crate::model::Ipv4Net;
use crate::model::detect::HostNetwork;

/// Subnets tried in order when `--subnet` is not given.
pub const CANDIDATES: &[&str] = &[
    "10.213.47.0/24",
    "172.30.213.0/24",
    "192.168.213.0/24",
    "10.214.91.0/24",
];

/// Where the kernel lists IPv4 routes.
const PROC_NET_ROUTE: &str = "/proc/net/route";

/// Every network this host already reaches directly or routes to: its routes (default
/// routes excluded, they overlap everything) and the networks of its addresses.
pub fn host_networks() -> Vec<Ipv4Net> {
    let mut nets = std::fs::read_to_string(PROC_NET_ROUTE)
        .map(|t| parse_routes(&t))
        .unwrap_or_default();
    nets.extend(
        HostNetwork::read()
            .addrs
            .iter()
            .filter_map(|a| Ipv4Net::new(a.addr, a.prefix)),
    );
    nets
}

/// The non-default route destinations of a `/proc/net/route` table.
///
/// Addresses are the kernel's network-order `u32` printed as a native-endian hex number.
pub fn parse_routes(text: &str) -> Vec<Ipv4Net> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = hex(cols.get(1)?)?;
            let mask = hex(cols.get(7)?)?;
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            (prefix > 0).then(|| Ipv4Net::new(Ipv4Addr::from(dest.to_ne_bytes()), prefix))?
        })
        .collect()
}

/// Whether `a` and `b` share an address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The first of `candidates` overlapping none of `used`.
pub fn choose(candidates: &[Ipv4Net], used: &[Ipv4Net]) -> Option<Ipv4Net> {
    candidates
        .iter()
        .copied()
        .find(|c| !used.iter().any(|u| overlaps(*c, *u)))
}

/// The default candidates, parsed.
pub fn default_candidates() -> Vec<Ipv4Net> {
    CANDIDATES.iter().filter_map(|c| c.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("cidr")
    }

    #[test]
    fn routes_are_read_without_the_default_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            eth0\t0000D50A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            parse_routes(table),
            vec![net("10.213.0.0/16"), net("172.17.0.0/16")]
        );
    }

    #[test]
    fn the_first_candidate_clear_of_every_host_network_wins() {
        let candidates = default_candidates();
        assert_eq!(candidates.len(), CANDIDATES.len());
        assert_eq!(choose(&candidates, &[]), Some(net("10.213.47.0/24")));
        // A wider route (a VPN's 10.213/16) and an exact address network both count.
        let used = [net("10.213.0.0/16"), net("172.30.213.0/24")];
        assert_eq!(choose(&candidates, &used), Some(net("192.168.213.0/24")));
        // A narrower network inside a candidate rules it out too.
        let used = [
            net("0.0.0.0/1"),
            net("192.168.213.128/25"),
            net("172.16.0.0/12"),
        ];
        assert_eq!(choose(&candidates, &used), None);
    }
}
