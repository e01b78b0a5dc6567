//! The deployment plan: every network setting and container of a fleet, decided before
//! Docker is touched.
//!
//! A [`Plan`] is a pure function of the fleet ([`DecnetConfig`]), the attachment
//! ([`Driver`]), the fleet's [`Names`] and the image tag. `deploy` creates exactly what it
//! lists, `--dry-run` prints it, and the compose renderer turns it into a compose file, so
//! the three can never disagree.
//!
//! Per decky there is one *base* container that owns the LAN address, the MAC, the
//! hostname and the OS-fingerprint sysctls (engine.md §2.6) and runs `decnet decky
//! --idle`; every service runs in its own container joined to the base's network
//! namespace, `decnet decky --service <svc>`, named `<decky>-<svc>` with `_` → `-`
//! (decision engine #4). MAC addresses are derived from the decky's name and address, so
//! a redeploy keeps them, under a real vendor prefix that suits the claimed OS family: a
//! locally administered MAC would tell an attacker at once that the host is virtual.
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::artifacts::{self, Mount};
use crate::catalog;
use crate::config;
use crate::ini::CustomService;
use crate::model::{DeckyConfig, DecnetConfig, Ipv4Net};

/// Label every decnet container carries: the fleet's Docker network name.
pub const LABEL_NETWORK: &str = "decnet.fleet.network";
/// Label of every decnet container: the decky it belongs to.
pub const LABEL_DECKY: &str = "decnet.fleet.decky";
/// Label of base containers (`true`).
pub const LABEL_BASE: &str = "decnet.fleet.base";
/// Label of service containers (`true`): the collector discovers them by it.
pub const LABEL_SERVICE: &str = "decnet.fleet.service";
/// Label of service containers: the service slug.
pub const LABEL_SERVICE_NAME: &str = "decnet.fleet.service_name";
/// Label of every container: the deploy that created it, so a failed deploy finds all of
/// its containers, even one whose creation answer never arrived.
pub const LABEL_DEPLOY: &str = "decnet.fleet.deploy";

/// The Docker network of the default fleet.
pub const DEFAULT_NETWORK: &str = "decnet_lan";

/// Docker's json-file rotation for service logs: the collector reads them live, so a
/// few rotated files are plenty.
pub const LOG_MAX_SIZE: &str = "10m";
/// How many rotated log files Docker keeps per container.
pub const LOG_MAX_FILE: &str = "5";

/// How decky containers reach the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// One MAC per decky on the parent NIC (the default).
    Macvlan,
    /// L2 IPvlan: deckies share the parent's MAC (Wi-Fi parents accept one per station).
    Ipvlan,
    /// A Docker bridge: deckies are reachable from this host only (no spare NIC, tests).
    Bridge,
}

impl Driver {
    /// Docker's driver name.
    pub fn docker_name(self) -> &'static str {
        match self {
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
            Driver::Bridge => "bridge",
        }
    }

    /// Whether the driver hangs off a host NIC (and so needs the hairpin interface).
    pub fn has_parent(self) -> bool {
        !matches!(self, Driver::Bridge)
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.docker_name())
    }
}

/// The host-level names of one fleet: its Docker network and its hairpin links.
///
/// The default fleet uses the original's names (`decnet_lan`, `decnet_macvlan0`,
/// `decnet_ipvlan0`). Another network name (tests, a second fleet on one host) gets
/// hairpin links named from a hash of it, which fit the kernel's 15-character limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    /// Docker network name.
    pub network: String,
    /// Host-side MACVLAN hairpin link.
    pub macvlan_link: String,
    /// Host-side IPvlan hairpin link.
    pub ipvlan_link: String,
}

impl Names {
    /// The names of the fleet on Docker network `network`.
    pub fn for_network(network: &str) -> Self {
        if network == DEFAULT_NETWORK {
            return Names {
                network: network.to_owned(),
                macvlan_link: "decnet_macvlan0".to_owned(),
                ipvlan_link: "decnet_ipvlan0".to_owned(),
            };
        }
        let hash = hex::encode(&Sha256::digest(network.as_bytes())[..4]);
        Names {
            network: network.to_owned(),
            macvlan_link: format!("dnm{hash}"),
            ipvlan_link: format!("dni{hash}"),
        }
    }

    /// The hairpin link `driver` uses, if it uses one.
    pub fn hairpin(&self, driver: Driver) -> Option<&str> {
        match driver {
            Driver::Macvlan => Some(&self.macvlan_link),
            Driver::Ipvlan => Some(&self.ipvlan_link),
            Driver::Bridge => None,
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::for_network(DEFAULT_NETWORK)
    }
}

/// The decky LAN as Docker and the host see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPlan {
    /// Fleet names (network, hairpin links).
    pub names: Names,
    /// How deckies attach.
    pub driver: Driver,
    /// Host NIC (unused by [`Driver::Bridge`]).
    pub parent: String,
    /// The LAN.
    pub subnet: Ipv4Net,
    /// Its gateway.
    pub gateway: Ipv4Addr,
    /// Tightest CIDR covering every decky address (engine.md §1.8).
    pub ip_range: Ipv4Net,
    /// This host's address on the parent, for the hairpin link.
    pub host_ip: Option<Ipv4Addr>,
}

/// How a container joins the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// On the decky LAN with its own address (and MAC, unless IPvlan).
    Lan {
        /// The address.
        ip: Ipv4Addr,
        /// The MAC address, when the driver allows one.
        mac: Option<String>,
    },
    /// In the network namespace of the named base container.
    Join(String),
}

/// One container to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command (after the image's entrypoint); empty keeps the image's own.
    pub cmd: Vec<String>,
    /// Environment, `KEY=value`.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Hostname (base containers only: joined containers share the base's network).
    pub hostname: Option<String>,
    /// Where it sits on the network.
    pub attach: Attach,
    /// Kernel settings of its network namespace (base containers only).
    pub sysctls: BTreeMap<String, String>,
    /// Capabilities added to Docker's default set.
    pub cap_add: Vec<String>,
    /// Host directories bind-mounted into it (artifact volumes).
    pub mounts: Vec<Mount>,
}

/// What [`ContainerPlan::env_masked`] shows instead of a secret value.
pub const MASK: &str = "********";

impl ContainerPlan {
    /// The environment as printed for the operator: secret persona values (passwords,
    /// private keys) replaced by [`MASK`]; the containers themselves get the real ones.
    pub fn env_masked(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((var, _)) if catalog::is_secret_env(var) => format!("{var}={MASK}"),
                _ => kv.clone(),
            })
            .collect()
    }
}

/// One decky: its base and its services.
#[derive(Debug, Clone, PartialEq)]
pub struct DeckyPlan {
    /// The decky's configuration.
    pub decky: DeckyConfig,
    /// The base container.
    pub base: ContainerPlan,
    /// One container per service.
    pub services: Vec<ContainerPlan>,
}

impl DeckyPlan {
    /// Every container, base first.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerPlan> {
        std::iter::once(&self.base).chain(&self.services)
    }
}

/// The whole plan of a deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The network settings.
    pub network: NetworkPlan,
    /// The deckies to create.
    pub deckies: Vec<DeckyPlan>,
}

/// Inputs of [`Plan::new`] besides the fleet.
#[derive(Debug, Clone)]
pub struct PlanOptions<'a> {
    /// How deckies attach.
    pub driver: Driver,
    /// Fleet names.
    pub names: Names,
    /// The decky image tag.
    pub image: String,
    /// This host's address on the parent.
    pub host_ip: Option<Ipv4Addr>,
    /// Bring-your-own services of the INI file.
    pub custom: &'a [CustomService],
    /// Label value identifying this deploy.
    pub deploy_id: String,
    /// The host directory under which capturing services keep their files.
    pub artifacts_root: PathBuf,
}

impl Plan {
    /// The plan for `fleet` (the whole fleet after the deploy), creating containers only
    /// for the deckies named in `create`.
    pub fn new(fleet: &DecnetConfig, create: &[String], opts: &PlanOptions<'_>) -> Self {
        let first = fleet.deckies.iter().map(|d| d.ip).min();
        let last = fleet.deckies.iter().map(|d| d.ip).max();
        let ip_range = match (first, last) {
            (Some(a), Some(b)) => Ipv4Net::covering(a, b),
            _ => fleet.subnet,
        };
        let network = NetworkPlan {
            names: opts.names.clone(),
            driver: opts.driver,
            parent: fleet.interface.clone(),
            subnet: fleet.subnet,
            gateway: fleet.gateway,
            ip_range,
            host_ip: opts.host_ip,
        };
        let deckies = fleet
            .deckies
            .iter()
            .filter(|d| create.contains(&d.name))
            .map(|d| decky_plan(d, opts))
            .collect();
        Plan { network, deckies }
    }
}

/// The containers of one decky.
fn decky_plan(d: &DeckyConfig, opts: &PlanOptions<'_>) -> DeckyPlan {
    let common = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        [
            (LABEL_NETWORK, opts.names.network.as_str()),
            (LABEL_DECKY, d.name.as_str()),
            (LABEL_DEPLOY, opts.deploy_id.as_str()),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let mac = (opts.driver != Driver::Ipvlan).then(|| mac_for(d));
    let base = ContainerPlan {
        name: d.name.clone(),
        image: opts.image.clone(),
        cmd: vec!["decky".into(), "--idle".into()],
        env: vec![format!("NODE_NAME={}", d.name)],
        labels: common(&[(LABEL_BASE, "true")]),
        hostname: Some(d.hostname.clone()),
        attach: Attach::Lan { ip: d.ip, mac },
        sysctls: catalog::os_profile(&d.nmap_os)
            .sysctls
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        cap_add: vec!["NET_ADMIN".into()],
        mounts: Vec::new(),
    };
    let services = d
        .services
        .iter()
        .map(|svc| {
            let mut env = vec![
                format!("NODE_NAME={}", d.name),
                format!("HOSTNAME={}", d.hostname),
                // The persona every service of the decky derives its identity from.
                format!("{}={}", config::DECKY_SEED, d.seed.expose_hex()),
                format!("{}={}", config::DECKY_DISTRO, d.distro),
                format!("{}={}", config::DECKY_OS, d.nmap_os),
                format!("{}={}", config::DECKY_HOSTNAME, d.hostname),
            ];
            let labels = common(&[(LABEL_SERVICE, "true"), (LABEL_SERVICE_NAME, svc.as_str())]);
            let mut mounts = Vec::new();
            let (image, cmd, cap_add) = match catalog::service(svc) {
                Ok(s) => {
                    let persona = s.persona_env(d.service_config.get(svc));
                    env.extend(persona.into_iter().map(|(k, v)| format!("{k}={v}")));
                    if let Some(cap) = artifacts::capture(svc) {
                        env.push(format!("{}={}", cap.env, cap.container_path));
                        mounts.push(Mount::artifacts(&opts.artifacts_root, &d.name, cap));
                    }
                    let cmd = vec!["decky".into(), "--service".into(), svc.clone()];
                    let caps = s.cap_add.iter().map(|c| (*c).to_owned()).collect();
                    (opts.image.clone(), cmd, caps)
                }
                Err(_) => match opts.custom.iter().find(|c| c.name == *svc) {
                    Some(c) => (c.image.clone(), c.exec.clone(), Vec::new()),
                    None => (opts.image.clone(), Vec::new(), Vec::new()),
                },
            };
            ContainerPlan {
                name: container_name(&d.name, svc),
                image,
                cmd,
                env,
                labels,
                hostname: None,
                attach: Attach::Join(d.name.clone()),
                sysctls: BTreeMap::new(),
                cap_add,
                mounts,
            }
        })
        .collect();
    DeckyPlan {
        decky: d.clone(),
        base,
        services,
    }
}

/// Container name of service `svc` in decky `decky`: `<decky>-<svc>` with `_` → `-`, for
/// catalogue and custom services alike.
pub fn container_name(decky: &str, svc: &str) -> String {
    format!("{decky}-{}", svc.replace('_', "-"))
}

/// Vendor prefixes (OUIs) per OS family, so a decky's MAC matches the machine it claims
/// to be: PC and server NIC makers for Windows and Linux, PC Engines for BSD firewalls,
/// Raspberry Pi for embedded, Cisco for Cisco.
fn ouis(nmap_os: &str) -> &'static [[u8; 3]] {
    match nmap_os {
        "windows" | "windows_server" => {
            &[[0x00, 0x14, 0x22], [0x3c, 0xd9, 0x2b], [0x00, 0x1b, 0x21]]
        }
        "bsd" => &[[0x00, 0x0d, 0xb9]],
        "embedded" => &[[0xb8, 0x27, 0xeb], [0xdc, 0xa6, 0x32]],
        "cisco" => &[[0x00, 0x1b, 0x54], [0x00, 0x26, 0x0b]],
        _ => &[[0x00, 0x25, 0x90], [0x00, 0x1b, 0x21], [0xf8, 0xbc, 0x12]],
    }
}

/// The MAC of decky `d`: a vendor prefix for its OS family and three bytes of
/// SHA-256(name, address), stable across redeploys.
pub fn mac_for(d: &DeckyConfig) -> String {
    let digest = Sha256::digest(format!("{}\0{}", d.name, d.ip).as_bytes());
    let choices = ouis(&d.nmap_os);
    let oui = choices[usize::from(digest[0]) % choices.len()];
    let bytes = [oui[0], oui[1], oui[2], digest[1], digest[2], digest[3]];
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Mode, detect::Network};

    pub(crate) fn decky(name: &str, ip: [u8; 4], services: &[&str], os: &str) -> DeckyConfig {
        DeckyConfig {
            name: name.into(),
            ip: Ipv4Addr::from(ip),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            distro: "debian".into(),
            base_image: "debian:bookworm-slim".into(),
            build_base: "debian:bookworm-slim".into(),
            hostname: format!("{name}-host"),
            archetype: None,
            service_config: Default::default(),
            nmap_os: os.into(),
            mutate_interval: None,
            last_mutated: 0.0,
            last_login_attempt: 0.0,
            host_uuid: None,
            seed: crate::model::DeckySeed::generate(),
        }
    }

    fn fleet() -> DecnetConfig {
        let net = Network {
            interface: "dnt0".into(),
            subnet: "192.0.2.0/24".parse().expect("cidr"),
            gateway: Ipv4Addr::new(192, 0, 2, 1),
            host_ip: None,
        };
        DecnetConfig::new(
            Mode::Unihost,
            &net,
            vec![
                decky("win", [192, 0, 2, 10], &["smb", "smtp_relay"], "windows"),
                decky("lin", [192, 0, 2, 20], &["ssh"], "linux"),
            ],
        )
        .expect("valid fleet")
    }

    fn opts(driver: Driver) -> PlanOptions<'static> {
        PlanOptions {
            driver,
            names: Names::default(),
            image: "decnet/decky:test".into(),
            host_ip: None,
            custom: &[],
            deploy_id: "d1".into(),
            artifacts_root: "/srv/artifacts".into(),
        }
    }

    #[test]
    fn bases_own_the_address_and_services_join_them() {
        let fleet = fleet();
        let plan = Plan::new(&fleet, &["win".into()], &opts(Driver::Macvlan));
        assert_eq!(plan.network.ip_range.to_string(), "192.0.2.0/27");
        assert_eq!(plan.deckies.len(), 1, "only the deckies asked for");
        let win = &plan.deckies[0];
        assert_eq!(win.base.cmd, ["decky", "--idle"]);
        assert_eq!(win.base.sysctls["net.ipv4.ip_default_ttl"], "128");
        assert_eq!(win.base.labels[LABEL_BASE], "true");
        assert!(matches!(&win.base.attach, Attach::Lan { mac: Some(_), .. }));
        let names: Vec<_> = win.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["win-smb", "win-smtp-relay"]);
        let relay = &win.services[1];
        assert_eq!(relay.cmd, ["decky", "--service", "smtp_relay"]);
        assert_eq!(relay.attach, Attach::Join("win".into()));
        assert_eq!(relay.labels[LABEL_SERVICE], "true");
        assert_eq!(relay.labels[LABEL_SERVICE_NAME], "smtp_relay");
        assert_eq!(relay.labels[LABEL_DECKY], "win");
        assert!(relay.env.contains(&"NODE_NAME=win".to_owned()));
        assert!(relay.env.contains(&"HOSTNAME=win-host".to_owned()));
        let seed = format!("DECNET_DECKY_SEED={}", win.decky.seed.expose_hex());
        assert!(relay.env.contains(&seed), "services get the decky's seed");
        assert!(relay.env.contains(&"DECNET_DECKY_OS=windows".to_owned()));
        assert!(relay.env.contains(&"SMTP_OPEN_RELAY=1".to_owned()));
        assert!(relay.sysctls.is_empty() && relay.hostname.is_none());
        assert!(win.base.mounts.is_empty() && win.services[0].mounts.is_empty());
    }

    #[test]
    fn capturing_services_get_their_artifact_volume() {
        let fleet = fleet();
        let plan = Plan::new(&fleet, &["win".into(), "lin".into()], &opts(Driver::Bridge));
        let relay = &plan.deckies[0].services[1];
        assert_eq!(
            relay.mounts,
            [Mount {
                host: "/srv/artifacts/win/smtp".into(),
                container: "/var/spool/mqueue".into(),
                read_only: false,
            }]
        );
        assert!(
            relay
                .env
                .contains(&"SMTP_QUARANTINE_DIR=/var/spool/mqueue".to_owned())
        );
        let ssh = &plan.deckies[1].services[0];
        assert_eq!(ssh.mounts.len(), 1);
        assert_eq!(ssh.mounts[0].host, PathBuf::from("/srv/artifacts/lin/ssh"));
        assert_eq!(ssh.mounts[0].container, "/var/lib/systemd/coredump");
        assert!(
            ssh.env
                .contains(&"SSH_ARTIFACTS_DIR=/var/lib/systemd/coredump".to_owned())
        );
        let smb = &plan.deckies[0].services[0];
        assert!(
            !smb.env.iter().any(|e| e.contains("ARTIFACTS_DIR")),
            "{:?}",
            smb.env
        );
    }

    #[test]
    fn printed_environments_mask_persona_secrets() {
        let mut fleet = fleet();
        let lin = &mut fleet.deckies[1];
        lin.service_config.insert(
            "ssh".into(),
            [("password", "hunter2"), ("user", "alice")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let plan = Plan::new(&fleet, &["lin".into()], &opts(Driver::Macvlan));
        let ssh = &plan.deckies[0].services[0];
        assert!(ssh.env.contains(&"SSH_ROOT_PASSWORD=hunter2".to_owned()));
        let shown = ssh.env_masked();
        assert!(
            shown.contains(&format!("SSH_ROOT_PASSWORD={MASK}")),
            "{shown:?}"
        );
        assert!(
            shown.contains(&format!("SSH_USER_PASSWORD={MASK}")),
            "{shown:?}"
        );
        assert!(shown.contains(&"SSH_USER=alice".to_owned()), "{shown:?}");
        assert!(shown.contains(&"NODE_NAME=lin".to_owned()), "{shown:?}");
        assert!(!shown.join(" ").contains("hunter2"));
        let seed = format!("{}={MASK}", crate::config::DECKY_SEED);
        assert!(shown.contains(&seed), "{shown:?}");
        assert!(
            !shown
                .join(" ")
                .contains(&fleet.deckies[1].seed.expose_hex())
        );
    }

    #[test]
    fn macs_are_stable_vendor_addresses_and_ipvlan_has_none() {
        let fleet = fleet();
        let a = mac_for(&fleet.deckies[0]);
        assert_eq!(a, mac_for(&fleet.deckies[0]));
        assert_ne!(a, mac_for(&fleet.deckies[1]));
        let first = u8::from_str_radix(&a[..2], 16).expect("hex");
        assert_eq!(first & 0b11, 0, "unicast, universally administered");
        let plan = Plan::new(&fleet, &["lin".into()], &opts(Driver::Ipvlan));
        assert!(matches!(
            &plan.deckies[0].base.attach,
            Attach::Lan { mac: None, .. }
        ));
    }

    #[test]
    fn names_fit_the_kernel_limit() {
        let d = Names::default();
        assert_eq!(d.network, "decnet_lan");
        assert_eq!(d.hairpin(Driver::Macvlan), Some("decnet_macvlan0"));
        let t = Names::for_network("decnet_test_abcdef");
        assert!(t.macvlan_link.len() <= 15 && t.ipvlan_link.len() <= 15);
        assert_ne!(t.macvlan_link, t.ipvlan_link);
        assert_eq!(t.hairpin(Driver::Bridge), None);
    }
}
