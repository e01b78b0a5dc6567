//! What a deployment file asks for: [`IniConfig`] and its [`CustomService`]s, the input of
//! the INI builders ([`super::build::from_ini`]).
//!
//! The INI reader (`decnet::ini`) reads the file into these types; they live in the model so the builders
//! depend on plain data rather than on the file format (the INI reader depends on the
//! model, never the reverse).
use std::net::Ipv4Addr;

use super::detect::NetworkHints;
use super::{DeckySpec, Ipv4Net};

/// A bring-your-own service from a `[custom-<name>]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomService {
    /// The service name (section name without `custom-`).
    pub name: String,
    /// The Docker image to run (`binary=`).
    pub image: String,
    /// The command line (`exec=`, split on whitespace); empty keeps the image's own.
    pub exec: Vec<String>,
    /// Ports it listens on (`ports=`; tokens that are not port numbers are dropped).
    pub ports: Vec<u16>,
}

impl CustomService {
    /// Container name in decky `decky`: `<decky>-<name>` with `_` turned into `-`.
    pub fn container_name(&self, decky: &str) -> String {
        format!("{decky}-{}", self.name.replace('_', "-"))
    }
}

/// A parsed deployment file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniConfig {
    /// `[general] net=`.
    pub subnet: Option<Ipv4Net>,
    /// `[general] gw=`.
    pub gateway: Option<Ipv4Addr>,
    /// `[general] interface=`.
    pub interface: Option<String>,
    /// `[general] mutate_interval=`: rotation interval of deckies that set none.
    pub mutate_interval: Option<u32>,
    /// One spec per decky, `amount=` already expanded, personas attached.
    pub deckies: Vec<DeckySpec>,
    /// Services from `[custom-<name>]` sections.
    pub custom_services: Vec<CustomService>,
}

impl IniConfig {
    /// The `[general]` network settings, for [`super::detect::resolve_network`].
    pub fn network_hints(&self) -> NetworkHints {
        NetworkHints {
            interface: self.interface.clone(),
            subnet: self.subnet,
            gateway: self.gateway,
        }
    }

    /// The custom service named `name`.
    pub fn custom_service(&self, name: &str) -> Option<&CustomService> {
        self.custom_services.iter().find(|c| c.name == name)
    }
}
