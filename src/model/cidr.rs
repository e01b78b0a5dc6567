//! [`Ipv4Net`]: an IPv4 network in CIDR notation, the subnet deckies live in.
//!
//! Parsing is lenient about host bits, like the original (`192.168.1.5/24` is the network
//! `192.168.1.0/24`), because operators paste their host's own address. Serialised as the
//! canonical string, so state files read `"subnet": "192.168.1.0/24"`.
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A string that is not an IPv4 network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not an IPv4 network in CIDR notation (e.g. 192.168.1.0/24)")]
pub struct CidrError(pub String);

/// An IPv4 network: address with host bits cleared, and prefix length 0..=32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network of `addr` with `prefix` bits (host bits are cleared); `None` if
    /// `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Net {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The smallest network that contains both `a` and `b` (the ip_range of a fleet).
    pub fn covering(a: Ipv4Addr, b: Ipv4Addr) -> Self {
        let diff = u32::from(a) ^ u32::from(b);
        // `diff` has at most 32 significant bits, so the prefix fits in 0..=32.
        let prefix = diff.leading_zeros() as u8;
        Ipv4Net {
            network: Ipv4Addr::from(u32::from(a) & mask(prefix)),
            prefix,
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The broadcast address (last address of the network).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// The host addresses in ascending order: every address but the network and
    /// broadcast ones, except on /31 and /32 where every address is a host.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let first = u32::from(self.network);
        let last = u32::from(self.broadcast());
        let (first, last) = if self.prefix >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        };
        (first..=last).map(Ipv4Addr::from)
    }
}

/// The netmask of a prefix as an integer.
fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_owned());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        Ipv4Net::new(addr, prefix).ok_or_else(err)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect(s)
    }

    #[test]
    fn parses_and_clears_host_bits() {
        assert_eq!(net("192.168.1.5/24").to_string(), "192.168.1.0/24");
        assert_eq!(
            net("10.0.0.0/8").broadcast(),
            Ipv4Addr::new(10, 255, 255, 255)
        );
        assert_eq!(net("0.0.0.0/0").broadcast(), Ipv4Addr::BROADCAST);
        for bad in [
            "192.168.1.0",
            "192.168.1.0/33",
            "192.168.1/24",
            "x/24",
            "1.2.3.4/+1",
            "1.2.3.4/",
        ] {
            assert_eq!(
                bad.parse::<Ipv4Net>(),
                Err(CidrError(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_skip_network_and_broadcast() {
        let hosts: Vec<_> = net("192.0.2.0/30").hosts().collect();
        assert_eq!(
            hosts,
            [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        assert_eq!(net("192.0.2.0/31").hosts().count(), 2);
        assert_eq!(net("192.0.2.7/32").hosts().count(), 1);
        assert_eq!(net("10.0.0.0/8").hosts().count(), (1 << 24) - 2);
    }

    #[test]
    fn contains_and_covering() {
        let n = net("198.51.100.0/24");
        assert!(n.contains(Ipv4Addr::new(198, 51, 100, 200)));
        assert!(!n.contains(Ipv4Addr::new(198, 51, 101, 1)));
        let c = Ipv4Net::covering(Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 20));
        assert_eq!(c.to_string(), "192.0.2.0/27");
        let one = Ipv4Net::covering(Ipv4Addr::new(192, 0, 2, 9), Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(one.to_string(), "192.0.2.9/32");
    }

    #[test]
    fn serde_round_trip_as_string() {
        let n = net("203.0.113.0/24");
        let json = serde_json::to_string(&n).expect("serialise");
        assert_eq!(json, "\"203.0.113.0/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Net>(&json).expect("parse"), n);
        assert!(serde_json::from_str::<Ipv4Net>("\"203.0.113.0\"").is_err());
    }
}
