//! The catalogues: honeypot services, archetypes, distro profiles and OS fingerprint
//! profiles, as static data.
//!
//! This module is the one source of truth for every name an operator can type after
//! `services=`, `archetype=`, `--distro` or `nmap_os=`: the INI parser, the builders, the
//! listing commands (`decnet services`, `decnet archetypes`, `decnet distros`) and the
//! engine all read these tables and nothing else. Lookups return a typed [`enum@Error`] whose
//! text names every valid choice, so a typo is fixed from the message alone.
//!
//! The tables follow the original's catalogues, with two deliberate differences, both
//! from engine decision #5 ("never advertise a port that nothing serves"): ports the
//! original declared but never bound (http 443, smb 139, ldap 636, llmnr/snmp/tftp TCP)
//! are not listed, and conpot leaves SNMP (161) to the `snmp` service so that the
//! `industrial-control` archetype (conpot + snmp) never binds one port twice.
//! [`port_clash`] keeps that property checkable for any service list.
mod archetypes;
mod distros;
mod os;
mod persona;
mod persona_values;
mod services;

pub use archetypes::{ARCHETYPES, Archetype, archetype};
pub use distros::{DISTROS, Distro, HOSTNAME_WORDS, HostnameStyle, distro};
pub use os::{Cloak, IpId, OS_PROFILES, OsProfile, os_profile, service_conflict};
pub use persona::{KeyKind, PersonaKey};
pub use persona_values::PersonaError;
pub use services::{
    PortClash, Proto, SERVICES, Service, deployable_names, is_secret_env, port_clash, service,
};

use thiserror::Error;

/// A name that is not in a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// No service has this slug.
    #[error("Unknown service '{name}'. Available: {}", deployable_names().join(", "))]
    UnknownService {
        /// The slug asked for.
        name: String,
    },
    /// No archetype has this slug.
    #[error("Unknown archetype '{name}'. Available: {}", sorted_slugs(ARCHETYPES.iter().map(|a| a.slug)))]
    UnknownArchetype {
        /// The slug asked for.
        name: String,
    },
    /// No distro profile has this slug.
    #[error("Unknown distro '{name}'. Available: {}", sorted_slugs(DISTROS.iter().map(|d| d.slug)))]
    UnknownDistro {
        /// The slug asked for.
        name: String,
    },
}

/// The slugs, sorted and comma-separated, as the "Available:" part of an error.
fn sorted_slugs<'a>(slugs: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = slugs.collect();
    v.sort_unstable();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_choices() {
        let e = archetype("nope").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Unknown archetype 'nope'. Available: database-server, deaddeck,")
        );
        let e = distro("gentoo").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown distro 'gentoo'. Available: alpine, arch, centos7, debian, fedora, kali, \
             rocky9, ubuntu20, ubuntu22"
        );
        let e = service("gopher").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Unknown service 'gopher'. Available: conpot, dns, docker_api,")
        );
    }

    #[test]
    fn archetypes_name_only_catalogued_services_and_distros() {
        for a in ARCHETYPES {
            for s in a.services {
                let svc = service(s).unwrap_or_else(|e| panic!("{}: {e}", a.slug));
                assert!(!svc.singleton, "{} uses singleton {s}", a.slug);
            }
            assert!(!a.preferred_distros.is_empty(), "{}", a.slug);
            for d in a.preferred_distros {
                assert!(distro(d).is_ok(), "{}: {d}", a.slug);
            }
            assert!(
                OS_PROFILES.iter().any(|p| p.name == a.nmap_os),
                "{}: {}",
                a.slug,
                a.nmap_os
            );
            assert_eq!(port_clash(a.services), None, "{}", a.slug);
        }
    }
}
