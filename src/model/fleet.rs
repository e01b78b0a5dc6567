//! [`DecnetConfig`]: the whole fleet of one deployment, as the state file stores it.
//!
//! Not strict, like the original: unknown keys are ignored so a newer state file still
//! loads. A fleet has at least one decky; web deploys must build the decky list before
//! constructing one.
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::detect::Network;
use super::{DeckyConfig, Error, Ipv4Net};

/// Where the deckies run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything on this host.
    Unihost,
    /// Deckies spread over enrolled worker hosts.
    Swarm,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Unihost => "unihost",
            Mode::Swarm => "swarm",
        })
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unihost" => Ok(Mode::Unihost),
            "swarm" => Ok(Mode::Swarm),
            _ => Err(Error::BadMode),
        }
    }
}

/// The default global rotation interval, in minutes.
pub const DEFAULT_MUTATE_INTERVAL: u32 = 30;

/// One deployment: network, deckies and fleet-wide switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecnetConfig {
    /// Single host or swarm.
    pub mode: Mode,
    /// Host NIC the decky network hangs off.
    pub interface: String,
    /// The LAN the deckies appear on.
    pub subnet: Ipv4Net,
    /// The LAN's gateway.
    pub gateway: Ipv4Addr,
    /// The deckies, at least one.
    #[serde(deserialize_with = "non_empty_deckies")]
    pub deckies: Vec<DeckyConfig>,
    /// Host path of the collector's RFC 5424 log.
    #[serde(default)]
    pub log_file: Option<String>,
    /// IPvlan L2 instead of MACVLAN (for Wi-Fi parents, one MAC per station).
    #[serde(default)]
    pub ipvlan: bool,
    /// Global rotation interval in minutes.
    #[serde(default = "default_interval")]
    pub mutate_interval: Option<u32>,
}

impl DecnetConfig {
    /// A validated fleet of `deckies` on `network`, with the default switches (MACVLAN,
    /// no log file, 30-minute rotation).
    pub fn new(mode: Mode, network: &Network, deckies: Vec<DeckyConfig>) -> Result<Self, Error> {
        let config = DecnetConfig {
            mode,
            interface: network.interface.clone(),
            subnet: network.subnet,
            gateway: network.gateway,
            deckies,
            log_file: None,
            ipvlan: false,
            mutate_interval: default_interval(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the fleet: at least one decky, each valid, unique names and addresses, all
    /// inside the subnet.
    pub fn validate(&self) -> Result<(), Error> {
        if self.deckies.is_empty() {
            return Err(Error::NoDeckies);
        }
        let mut names = std::collections::BTreeSet::new();
        let mut ips = std::collections::BTreeSet::new();
        for d in &self.deckies {
            d.validate()?;
            if !names.insert(d.name.as_str()) {
                return Err(Error::DuplicateName {
                    name: d.name.clone(),
                });
            }
            if !ips.insert(d.ip) {
                return Err(Error::DuplicateIp {
                    ip: d.ip,
                    name: d.name.clone(),
                });
            }
            if !self.subnet.contains(d.ip) {
                return Err(Error::IpOutsideSubnet {
                    ip: d.ip,
                    subnet: self.subnet,
                    name: d.name.clone(),
                });
            }
        }
        Ok(())
    }
}

fn default_interval() -> Option<u32> {
    Some(DEFAULT_MUTATE_INTERVAL)
}

fn non_empty_deckies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeckyConfig>, D::Error> {
    let v = Vec::<DeckyConfig>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(Error::NoDeckies));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fleet_json(deckies: serde_json::Value) -> serde_json::Value {
        json!({
            "mode": "unihost",
            "interface": "eth0",
            "subnet": "192.0.2.0/24",
            "gateway": "192.0.2.1",
            "deckies": deckies,
            "from_the_future": true,
        })
    }

    fn decky(name: &str, ip: &str) -> serde_json::Value {
        json!({
            "name": name, "ip": ip, "services": ["ssh"], "distro": "debian",
            "base_image": "debian:bookworm-slim", "hostname": "h",
        })
    }

    #[test]
    fn loads_with_defaults_and_ignores_unknown_keys() {
        let c: DecnetConfig =
            serde_json::from_value(fleet_json(json!([decky("a", "192.0.2.10")]))).expect("ok");
        assert_eq!(c.mode, Mode::Unihost);
        assert_eq!(c.mutate_interval, Some(30));
        assert!(!c.ipvlan);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn new_validates() {
        let network = Network {
            interface: "br0".into(),
            subnet: "192.0.2.0/24".parse().expect("cidr"),
            gateway: Ipv4Addr::new(192, 0, 2, 1),
            host_ip: None,
        };
        let e = DecnetConfig::new(Mode::Unihost, &network, Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "A fleet must have at least one decky.");
        let d: DeckyConfig = serde_json::from_value(decky("a", "192.0.2.10")).expect("decky");
        let c = DecnetConfig::new(Mode::Swarm, &network, vec![d]).expect("valid");
        assert_eq!((c.interface.as_str(), c.mutate_interval), ("br0", Some(30)));
        let json = serde_json::to_value(&c).expect("serialise");
        assert_eq!(json["subnet"], "192.0.2.0/24");
        assert_eq!(json["mode"], "swarm");
    }

    #[test]
    fn empty_fleet_is_refused() {
        let e = serde_json::from_value::<DecnetConfig>(fleet_json(json!([]))).unwrap_err();
        assert_eq!(e.to_string(), "A fleet must have at least one decky.");
    }

    #[test]
    fn validate_finds_duplicates_and_strays() {
        let dup = fleet_json(json!([decky("a", "192.0.2.10"), decky("a", "192.0.2.11")]));
        let c: DecnetConfig = serde_json::from_value(dup).expect("parses");
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "Two deckies are named 'a'; decky names must be unique."
        );
        let stray = fleet_json(json!([decky("a", "198.51.100.7")]));
        let c: DecnetConfig = serde_json::from_value(stray).expect("parses");
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "[a] ip=198.51.100.7 is outside the subnet 192.0.2.0/24."
        );
    }

    #[test]
    fn mode_parses_or_says_what_is_allowed() {
        assert_eq!("swarm".parse::<Mode>().ok(), Some(Mode::Swarm));
        assert_eq!(
            "cluster".parse::<Mode>().unwrap_err().to_string(),
            "--mode must be 'unihost' or 'swarm'"
        );
    }
}
