//! Which names belong to which role, and what each role's certificate may be used for.
//!
//! decnet authorises peers by certificate CN, so a CN is a claim to a role. The role
//! identities are `decnet-master` (the master: drives agents and updaters, serves the log
//! listener), `swarmctl` (the controller's server) and `updater@<worker>`; every other
//! name is a worker host. The CA therefore refuses to issue a worker or updater
//! certificate whose name is a role identity ([`check_host_name`], case-insensitively, so
//! `Decnet-Master` cannot slip past a case-folding comparison either), and a certificate
//! whose CN names one role under another role's profile ([`check_cn`]).
//!
//! Extended key usages, the least each role needs without breaking a link:
//!
//! | role | EKU | why |
//! |---|---|---|
//! | worker | serverAuth + clientAuth | serves the agent API (:8765) with it; client of the listener (forwarder), of the controller (heartbeat), and of its own agent (the updater's health probe uses the worker certificate) |
//! | updater | serverAuth | only serves the updater API (:8766); it is never a client |
//! | master (`decnet-master`) | serverAuth + clientAuth | client of agents and updaters; the log listener serves with it |
//! | server (`swarmctl`) | serverAuth | only serves the controller; operators present the master identity, so this certificate can never pass a client-certificate gate |
//!
//! rustls (webpki) enforces these on both sides: a server certificate needs serverAuth,
//! a client certificate clientAuth. A worker keeps serverAuth, so only the forwarder's
//! identity check ([`crate::tls::ClientOptions::identity`]) stops a worker certificate
//! from posing as the listener.
use rcgen::ExtendedKeyUsagePurpose;

use super::{Error, Kind, MASTER_CN, Result, SWARMCTL_CN};

/// Prefix of every updater CN (`updater@<worker>`).
const UPDATER_PREFIX: &str = "updater@";

/// The role a CN names by itself, or `None` for a host name.
pub fn role_of(cn: &str) -> Option<Kind> {
    let lower = cn.to_ascii_lowercase();
    if lower == MASTER_CN {
        Some(Kind::Master)
    } else if lower == SWARMCTL_CN {
        Some(Kind::Server)
    } else if lower.starts_with(UPDATER_PREFIX) {
        Some(Kind::Updater)
    } else {
        None
    }
}

/// Refuses a worker name that is a role identity.
pub fn check_host_name(name: &str) -> Result<()> {
    match role_of(name) {
        None => Ok(()),
        Some(role) => Err(Error::ReservedName {
            name: name.to_owned(),
            role: role_name(role),
        }),
    }
}

/// Checks that a certificate of `kind` may carry `cn`.
pub fn check_cn(kind: Kind, cn: &str) -> Result<()> {
    match kind {
        Kind::Worker => check_host_name(cn),
        Kind::Updater => match cn.strip_prefix(UPDATER_PREFIX) {
            Some(host) => check_host_name(host),
            None => Err(Error::InvalidName {
                name: cn.to_owned(),
                reason: "an updater CN is `updater@<worker name>`",
            }),
        },
        Kind::Master if cn == MASTER_CN => Ok(()),
        Kind::Master => Err(Error::InvalidName {
            name: cn.to_owned(),
            reason: "the master identity's CN is `decnet-master`",
        }),
        Kind::Server => match role_of(cn) {
            None | Some(Kind::Server) => Ok(()),
            Some(role) => Err(Error::ReservedName {
                name: cn.to_owned(),
                role: role_name(role),
            }),
        },
    }
}

/// The EKUs a certificate of `kind` gets (see the table in the module docs).
pub(super) fn usages(kind: Kind) -> Vec<ExtendedKeyUsagePurpose> {
    match kind {
        Kind::Worker | Kind::Master => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Kind::Updater | Kind::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
    }
}

fn role_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Master => "the master's identity",
        Kind::Server => "the swarm controller's identity",
        Kind::Updater => "updater identities",
        Kind::Worker => "workers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_identities_are_refused_as_host_names_in_any_case() {
        for reserved in ["decnet-master", "DECNET-Master", "swarmctl", "updater@w1"] {
            let err = check_host_name(reserved).expect_err(reserved);
            assert!(matches!(err, Error::ReservedName { .. }), "{err:?}");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        for host in ["w1", "master", "decnet-master-2", "updater"] {
            check_host_name(host).expect(host);
        }
    }

    #[test]
    fn a_cn_is_issued_only_under_its_own_role() {
        check_cn(Kind::Worker, "w1").expect("worker");
        check_cn(Kind::Updater, "updater@w1").expect("updater");
        check_cn(Kind::Master, MASTER_CN).expect("master");
        check_cn(Kind::Server, SWARMCTL_CN).expect("server");
        for (kind, cn) in [
            (Kind::Worker, MASTER_CN),
            (Kind::Worker, SWARMCTL_CN),
            (Kind::Worker, "updater@w1"),
            (Kind::Updater, "updater@decnet-master"),
            (Kind::Updater, "updater@swarmctl"),
            (Kind::Updater, "w1"),
            (Kind::Master, "w1"),
            (Kind::Server, MASTER_CN),
            (Kind::Server, "updater@w1"),
        ] {
            assert!(check_cn(kind, cn).is_err(), "{kind:?} {cn} accepted");
        }
    }

    #[test]
    fn only_roles_that_serve_and_call_get_both_usages() {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        assert_eq!(usages(Kind::Worker), [ServerAuth, ClientAuth]);
        assert_eq!(usages(Kind::Master), [ServerAuth, ClientAuth]);
        assert_eq!(usages(Kind::Updater), [ServerAuth]);
        assert_eq!(usages(Kind::Server), [ServerAuth]);
    }
}
