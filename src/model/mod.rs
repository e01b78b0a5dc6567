//! The fleet model: plain data for deckies and deployments, and the pure logic that
//! decides them (IP allocation, network detection, the builders).
//!
//! The flow of a deploy, before any container exists:
//! 1. [`detect::resolve_network`] settles interface, subnet, gateway and host IP
//!    (flag > INI `[general]` > what the host says).
//! 2. [`build::plan_from_ini`] (or its parts) or [`build::from_flags`] turn the
//!    operator's wishes into validated [`DeckyConfig`]s, allocating addresses with
//!    [`alloc`] and drawing every random choice from a seeded [`rng::Rng`], so a seed
//!    reproduces a fleet exactly.
//! 3. The engine wraps them into a [`DecnetConfig`] and deploys it.
//!
//! Errors keep the original's texts where it has them, so operators and its docs still
//! match; everything that can go wrong is one variant of [`enum@Error`].
pub mod alloc;
pub mod build;
mod cidr;
mod decky;
pub mod detect;
mod fleet;
pub mod rng;
mod seed;
mod spec;
pub mod swarm;

pub use cidr::{CidrError, Ipv4Net};
pub use decky::{
    DEFAULT_BUILD_BASE, DEFAULT_NMAP_OS, DeckyConfig, DeckySpec, MAX_NAME_LEN, ServiceConfig,
    validate_name,
};
pub use fleet::{DEFAULT_MUTATE_INTERVAL, DecnetConfig, Mode};
pub use seed::{DeckySeed, SEED_LEN, SeedError};
pub use spec::{CustomService, IniConfig};

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::catalog::{self, PortClash};

/// Why a fleet cannot be built or is not valid.
#[derive(Debug, Error)]
pub enum Error {
    /// A decky with an empty service list.
    #[error("A decky must have at least one service.")]
    NoServices,
    /// A fleet without deckies.
    #[error("A fleet must have at least one decky.")]
    NoDeckies,
    /// A decky name that breaks the naming rule.
    #[error(
        "Invalid decky name '{name}': use 1 to 128 characters from A-Z, a-z, 0-9, '-', '_' and '.'."
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// `mutate_interval=0`.
    #[error("[{name}] mutate_interval= must be at least 1 (minutes).")]
    ZeroInterval {
        /// The decky.
        name: String,
    },
    /// Two deckies with one name.
    #[error("Two deckies are named '{name}'; decky names must be unique.")]
    DuplicateName {
        /// The shared name.
        name: String,
    },
    /// Two deckies with one address.
    #[error("[{name}] ip={ip} is already used by another decky.")]
    DuplicateIp {
        /// The shared address.
        ip: Ipv4Addr,
        /// The second decky to claim it.
        name: String,
    },
    /// A decky address outside the subnet.
    #[error("[{name}] ip={ip} is outside the subnet {subnet}.")]
    IpOutsideSubnet {
        /// The address.
        ip: Ipv4Addr,
        /// The fleet's subnet.
        subnet: Ipv4Net,
        /// The decky.
        name: String,
    },
    /// A decky address that is already spoken for.
    #[error("[{name}] ip={ip} is the {what}; pick another address.")]
    IpReserved {
        /// The address.
        ip: Ipv4Addr,
        /// The decky.
        name: String,
        /// Whose address it is ("gateway", "network address", …).
        what: &'static str,
    },
    /// `--mode` other than unihost or swarm.
    #[error("--mode must be 'unihost' or 'swarm'")]
    BadMode,
    /// A flags deploy that says nothing about services.
    #[error("Specify --services, --archetype, or --randomize-services.")]
    NoServiceChoice,
    /// A flags deploy of zero deckies.
    #[error("--deckies must be at least 1.")]
    ZeroDeckies,
    /// Service names not in the catalogue (nor custom services of the INI).
    #[error(
        "Unknown service(s) in {place}: {}. Available: {}",
        py_list(unknown),
        py_list(available)
    )]
    UnknownServices {
        /// `[decky]` or `--services`.
        place: String,
        /// The names not found.
        unknown: Vec<String>,
        /// Every name that would have been accepted.
        available: Vec<String>,
    },
    /// Two services of one decky that need the same port.
    #[error("[{name}] {clash}; put them on different deckies.")]
    PortClash {
        /// The decky.
        name: String,
        /// The two services and the port.
        clash: PortClash,
    },
    /// A persona setting its key's type does not allow.
    #[error("[{name}.{service}] {source}")]
    Persona {
        /// The decky.
        name: String,
        /// The service.
        service: String,
        /// What is wrong with the value.
        source: catalog::PersonaError,
    },
    /// The subnet ran out while allocating for an INI decky.
    #[error("Not enough free IPs in {subnet} while assigning IP for '{name}'.")]
    NotEnoughIps {
        /// The subnet.
        subnet: Ipv4Net,
        /// The decky left without an address.
        name: String,
    },
    /// The subnet ran out while allocating for a flags deploy.
    #[error("Not enough free IPs in {subnet} for {wanted} deckies (found {found}).")]
    NotEnoughIpsFor {
        /// The subnet.
        subnet: Ipv4Net,
        /// How many addresses were asked for.
        wanted: usize,
        /// How many were free.
        found: usize,
    },
    /// A service that would contradict the decky's OS family.
    #[error(
        "[{name}] {service} cannot pass for a {os} host ({why}); drop it from this decky or give the decky a Linux OS profile."
    )]
    OsConflict {
        /// The decky.
        name: String,
        /// The service.
        service: String,
        /// The decky's `nmap_os`.
        os: String,
        /// What in the service gives the OS away.
        why: &'static str,
    },
    /// `--ip-start` outside the subnet.
    #[error("--ip-start {ip} is outside the subnet {subnet}.")]
    IpStartOutside {
        /// The start address.
        ip: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// The gateway is not on the decky LAN.
    #[error("The gateway {gateway} is outside the subnet {subnet}.")]
    GatewayOutside {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// No default route names an interface.
    #[error("Could not auto-detect network interface. Use --interface.")]
    NoInterface,
    /// The interface has no IPv4 address.
    #[error("Could not detect subnet for interface {interface}.")]
    NoSubnet {
        /// The interface.
        interface: String,
    },
    /// No default route has a gateway.
    #[error("Could not detect gateway.")]
    NoGateway,
    /// An archetype, distro or service lookup failed.
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
}

/// Renders names like a Python list (`['a', 'b']`), as the original's messages do.
fn py_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}
