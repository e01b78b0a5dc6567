//! One decky: [`DeckyConfig`] as deployed and stored, and [`DeckySpec`] as an INI file
//! describes it before IPs, distros and hostnames are decided.
//!
//! Both are strict like the original: unknown keys are rejected and nothing is coerced
//! (a number is not a string). The rules that serde alone cannot express (at least one
//! service, the name pattern, a positive interval) are checked by `validate`, and during
//! deserialisation too, so a stored config that breaks them never loads.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize};

use super::{DeckySeed, Error};

/// Persona overrides: service name → key → value (engine.md §2.2).
pub type ServiceConfig = BTreeMap<String, BTreeMap<String, String>>;

/// Longest allowed decky name.
pub const MAX_NAME_LEN: usize = 128;

/// The image service containers were built on when a config does not say.
pub const DEFAULT_BUILD_BASE: &str = "debian:bookworm-slim";

/// The OS family of a decky that does not name one.
pub const DEFAULT_NMAP_OS: &str = "linux";

/// A decky as deployed: one fake host with its address, services and persona.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeckyConfig {
    /// Decky identifier; also the base container's name.
    pub name: String,
    /// LAN address of the base container.
    pub ip: Ipv4Addr,
    /// Service slugs, at least one.
    #[serde(deserialize_with = "non_empty_services")]
    pub services: Vec<String>,
    /// Distro slug.
    pub distro: String,
    /// Image of the base container (metadata: decnet builds its own).
    pub base_image: String,
    /// Image service builds are based on (metadata: decnet builds its own).
    #[serde(default = "default_build_base")]
    pub build_base: String,
    /// Cosmetic hostname.
    pub hostname: String,
    /// Archetype slug, if the decky was made from one.
    #[serde(default)]
    pub archetype: Option<String>,
    /// Per-service persona overrides.
    #[serde(default)]
    pub service_config: ServiceConfig,
    /// OS family for stack fingerprint spoofing.
    #[serde(default = "default_nmap_os")]
    pub nmap_os: String,
    /// Minutes between automatic service rotations, if any.
    #[serde(default)]
    pub mutate_interval: Option<u32>,
    /// When the services last changed (seconds since the epoch).
    #[serde(default)]
    pub last_mutated: f64,
    /// When the last login attempt was seen (seconds since the epoch).
    #[serde(default)]
    pub last_login_attempt: f64,
    /// The swarm worker running it; `None` on a single host.
    #[serde(default)]
    pub host_uuid: Option<String>,
    /// The secret every identity detail of its services is derived from; a fresh one for
    /// state files that predate it.
    #[serde(default)]
    pub seed: DeckySeed,
}

impl DeckyConfig {
    /// Checks the rules serde cannot: at least one service and a usable name.
    pub fn validate(&self) -> Result<(), Error> {
        if self.services.is_empty() {
            return Err(Error::NoServices);
        }
        validate_name(&self.name)
    }
}

/// A decky as an INI section describes it (one per expanded name), before the builders
/// fill in what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeckySpec {
    /// Decky name: at most 128 characters of `A-Za-z0-9-_.`.
    pub name: String,
    /// Explicit address, else one is allocated.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// Explicit services, else the archetype's, else random.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Archetype slug.
    #[serde(default)]
    pub archetype: Option<String>,
    /// Persona overrides from `[<decky>.<service>]` sub-sections.
    #[serde(default)]
    pub service_config: ServiceConfig,
    /// OS family, else the archetype's, else `linux`.
    #[serde(default)]
    pub nmap_os: Option<String>,
    /// Minutes between rotations, at least 1.
    #[serde(default)]
    pub mutate_interval: Option<u32>,
}

impl DeckySpec {
    /// Checks the name pattern and that a given interval is at least 1.
    pub fn validate(&self) -> Result<(), Error> {
        validate_name(&self.name)?;
        if self.mutate_interval == Some(0) {
            return Err(Error::ZeroInterval {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}

/// Checks a decky name: 1 to 128 characters, each `A-Z`, `a-z`, `0-9`, `-`, `_` or `.`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_owned(),
        })
    }
}

fn default_build_base() -> String {
    DEFAULT_BUILD_BASE.to_owned()
}

fn default_nmap_os() -> String {
    DEFAULT_NMAP_OS.to_owned()
}

fn non_empty_services<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(Error::NoServices));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decky_json() -> serde_json::Value {
        json!({
            "name": "decky-01",
            "ip": "192.0.2.10",
            "services": ["ssh"],
            "distro": "debian",
            "base_image": "debian:bookworm-slim",
            "hostname": "SRV-ALPHA-10",
        })
    }

    #[test]
    fn defaults_fill_the_optional_fields() {
        let d: DeckyConfig = serde_json::from_value(decky_json()).expect("valid");
        assert_eq!(d.build_base, DEFAULT_BUILD_BASE);
        assert_eq!(d.nmap_os, "linux");
        assert_eq!(d.mutate_interval, None);
        assert_eq!(d.last_mutated, 0.0);
        assert!(d.validate().is_ok());
        let other: DeckyConfig = serde_json::from_value(decky_json()).expect("valid");
        assert_ne!(
            d.seed, other.seed,
            "an old state file gets a fresh seed per decky"
        );
        let back = serde_json::to_value(&d).expect("serialise");
        assert_eq!(
            serde_json::from_value::<DeckyConfig>(back).expect("again"),
            d
        );
    }

    #[test]
    fn strict_like_the_original() {
        let mut v = decky_json();
        v["surprise"] = json!(1);
        let e = serde_json::from_value::<DeckyConfig>(v).unwrap_err();
        assert!(e.to_string().contains("unknown field `surprise`"), "{e}");

        let mut v = decky_json();
        v["services"] = json!([]);
        let e = serde_json::from_value::<DeckyConfig>(v).unwrap_err();
        assert_eq!(e.to_string(), "A decky must have at least one service.");

        let mut v = decky_json();
        v["mutate_interval"] = json!("30");
        assert!(
            serde_json::from_value::<DeckyConfig>(v).is_err(),
            "no coercion"
        );

        let mut v = decky_json();
        v["ip"] = json!("192.0.2.300");
        assert!(serde_json::from_value::<DeckyConfig>(v).is_err());
    }

    #[test]
    fn validate_catches_constructed_mistakes() {
        let mut d: DeckyConfig = serde_json::from_value(decky_json()).expect("valid");
        d.services.clear();
        assert_eq!(
            d.validate().unwrap_err().to_string(),
            "A decky must have at least one service."
        );
    }

    #[test]
    fn spec_names_and_intervals() {
        let spec = |name: &str, interval| DeckySpec {
            name: name.to_owned(),
            mutate_interval: interval,
            ..DeckySpec::default()
        };
        assert!(spec("web.lan_01-a", Some(1)).validate().is_ok());
        assert!(spec(&"a".repeat(128), None).validate().is_ok());
        for bad in ["", "has space", "semi;colon", "slash/y", &"a".repeat(129)] {
            let e = spec(bad, None).validate().unwrap_err();
            assert!(matches!(e, Error::InvalidName { .. }), "{bad}: {e}");
        }
        let e = spec("web", Some(0)).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "[web] mutate_interval= must be at least 1 (minutes)."
        );
    }
}
