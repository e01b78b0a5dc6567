//! The builders (engine.md §1.3, §1.5): operator wishes in, validated [`DeckyConfig`]s out.
//!
//! - [`from_ini`] / [`plan_from_ini`]: one decky per INI spec;
//!   explicit `ip=` first, the rest from the subnet in ascending order.
//! - [`from_flags`]: `decky-01` … `decky-NN` from `decnet deploy` flags.
//!
//! Every random choice (hostnames, random service sets, random distros) comes from one
//! [`Rng`] seeded by the caller, in a fixed order, so the same inputs and seed give the
//! same fleet on every machine (decision engine #9); `now` is passed in for the same
//! reason. Beyond the original, a decky whose services would bind one port twice is
//! refused (explicit lists) or never drawn (random sets), service lists are
//! de-duplicated, and INI persona values are checked against the service's schema
//! ([`crate::catalog::Service::validate_persona`]) so a typo fails the deploy, not the
//! container.
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::alloc::{IpPool, allocate_ips};
use super::detect::{HostNetwork, Network, NetworkHints, resolve_network};
use super::rng::Rng;
use super::{DEFAULT_NMAP_OS, DeckyConfig, DeckySeed, Error, IniConfig, ServiceConfig};
use crate::catalog::{self, Archetype, DISTROS, Distro, HOSTNAME_WORDS, HostnameStyle};

/// Most services a random set holds.
const MAX_RANDOM_SERVICES: usize = 3;

/// Tries at giving each flags-built decky a service set no other decky has.
const DISTINCT_SET_TRIES: usize = 20;

/// Tries at drawing a random set whose services do not share a port.
const CLASH_FREE_TRIES: usize = 100;

/// Inputs of [`from_ini`] besides the file and the network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IniOptions {
    /// `--mutate-interval`, which wins over every INI interval when given.
    pub cli_mutate_interval: Option<u32>,
    /// Addresses of deckies already deployed (additive deploys), never handed out.
    pub existing_ips: Vec<Ipv4Addr>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Current time (seconds since the epoch), recorded as `last_mutated`.
    pub now: f64,
}

/// Inputs of [`from_flags`]: the `decnet deploy` flags that shape deckies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagOptions {
    /// `--deckies`: how many.
    pub count: usize,
    /// `--services`: the same list for every decky.
    pub services: Option<Vec<String>>,
    /// `--randomize-services`: 1 to 3 random services each, sets distinct where possible.
    pub randomize_services: bool,
    /// `--distro`: slugs cycled over the deckies.
    pub distros: Option<Vec<String>>,
    /// `--randomize-distros`: a random distro each.
    pub randomize_distros: bool,
    /// `--archetype`.
    pub archetype: Option<String>,
    /// `--mutate-interval`.
    pub mutate_interval: Option<u32>,
    /// `--ip-start`: first address to consider.
    pub ip_start: Option<Ipv4Addr>,
    /// Addresses of deckies already deployed (additive deploys), never handed out.
    pub existing_ips: Vec<Ipv4Addr>,
    /// Names of deckies already deployed: numbering skips them.
    pub existing_names: Vec<String>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Current time (seconds since the epoch), recorded as `last_mutated`.
    pub now: f64,
}

/// An INI deploy worked out: the file, the settled network and the deckies.
#[derive(Debug, Clone, PartialEq)]
pub struct IniPlan {
    /// The parsed file (custom services live here).
    pub ini: IniConfig,
    /// Interface, subnet, gateway and host address.
    pub network: Network,
    /// The deckies to deploy.
    pub deckies: Vec<DeckyConfig>,
}

/// A parsed INI file (from the INI reader's `parse` or `load`) to deckies:
/// settles the network (`flags` > `[general]` > `host`), then builds.
pub fn plan_from_ini(
    ini: IniConfig,
    flags: &NetworkHints,
    host: &HostNetwork,
    opts: &IniOptions,
) -> Result<IniPlan, Error> {
    let network = resolve_network(flags, &ini.network_hints(), host)?;
    let deckies = from_ini(&ini, &network, opts)?;
    Ok(IniPlan {
        ini,
        network,
        deckies,
    })
}

/// Builds the deckies of a parsed INI file on `net`.
pub fn from_ini(
    ini: &IniConfig,
    net: &Network,
    opts: &IniOptions,
) -> Result<Vec<DeckyConfig>, Error> {
    let mut rng = Rng::new(opts.seed);
    let mut pool = IpPool::new(
        net.subnet,
        net.gateway,
        net.host_ip,
        opts.existing_ips.iter().copied(),
    );
    for spec in &ini.deckies {
        if let Some(ip) = spec.ip {
            pool.claim(ip, &spec.name)?;
        }
    }
    let mut known: Vec<String> = catalog::deployable_names()
        .into_iter()
        .map(str::to_owned)
        .chain(ini.custom_services.iter().map(|c| c.name.clone()))
        .collect();
    known.sort_unstable();

    let mut deckies = Vec::with_capacity(ini.deckies.len());
    for spec in &ini.deckies {
        let arch = spec
            .archetype
            .as_deref()
            .map(catalog::archetype)
            .transpose()?;
        let distro = match arch {
            Some(a) => {
                catalog::distro(a.preferred_distros[deckies.len() % a.preferred_distros.len()])?
            }
            None => &DISTROS[deckies.len() % DISTROS.len()],
        };
        let hostname = hostname(distro.hostname_style, &mut rng);
        let ip = match spec.ip {
            Some(ip) => ip,
            None => pool.next_free().ok_or_else(|| Error::NotEnoughIps {
                subnet: net.subnet,
                name: spec.name.clone(),
            })?,
        };
        let services = match (&spec.services, arch) {
            (Some(list), _) => checked_services(list, &known, &format!("[{}]", spec.name))?,
            (None, Some(a)) => a.services.iter().map(|s| (*s).to_owned()).collect(),
            (None, None) => random_services(&mut rng),
        };
        if let Some(clash) = catalog::port_clash(&services) {
            return Err(Error::PortClash {
                name: spec.name.clone(),
                clash,
            });
        }
        let nmap_os = spec
            .nmap_os
            .clone()
            .or_else(|| arch.map(|a| a.nmap_os.to_owned()))
            .unwrap_or_else(|| DEFAULT_NMAP_OS.to_owned());
        let decky = DeckyConfig {
            name: spec.name.clone(),
            ip,
            services,
            distro: distro.slug.to_owned(),
            base_image: distro.base_image.to_owned(),
            build_base: distro.build_base.to_owned(),
            hostname,
            archetype: arch.map(|a| a.slug.to_owned()),
            service_config: checked_personas(&spec.name, &spec.service_config)?,
            nmap_os,
            mutate_interval: opts
                .cli_mutate_interval
                .or(spec.mutate_interval)
                .or(ini.mutate_interval),
            last_mutated: opts.now,
            last_login_attempt: 0.0,
            host_uuid: None,
            seed: DeckySeed::generate(),
        };
        decky.validate()?;
        os_consistent(&decky)?;
        deckies.push(decky);
    }
    Ok(deckies)
}

/// Builds `decky-01` … from `decnet deploy` flags on `net`.
pub fn from_flags(net: &Network, opts: &FlagOptions) -> Result<Vec<DeckyConfig>, Error> {
    if opts.count == 0 {
        return Err(Error::ZeroDeckies);
    }
    let arch = opts
        .archetype
        .as_deref()
        .map(catalog::archetype)
        .transpose()?;
    let explicit = match &opts.services {
        Some(list) if !list.is_empty() => {
            let known: Vec<String> = catalog::deployable_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let list: Vec<String> = list.iter().map(|s| s.trim().to_owned()).collect();
            let list = checked_services(&list, &known, "--services")?;
            if let Some(clash) = catalog::port_clash(&list) {
                return Err(Error::PortClash {
                    name: "--services".to_owned(),
                    clash,
                });
            }
            Some(list)
        }
        _ => None,
    };
    if explicit.is_none() && arch.is_none() && !opts.randomize_services {
        return Err(Error::NoServiceChoice);
    }
    let explicit_distros: Option<Vec<&'static Distro>> = match &opts.distros {
        Some(list) if !list.is_empty() => Some(
            list.iter()
                .map(|d| catalog::distro(d.trim()))
                .collect::<Result<_, _>>()?,
        ),
        _ => None,
    };
    let ips = allocate_ips(
        net.subnet,
        net.gateway,
        net.host_ip,
        opts.count,
        opts.ip_start,
        &opts.existing_ips,
    )?;
    let names = decky_names(opts.count, &opts.existing_names);

    let mut rng = Rng::new(opts.seed);
    let mut used_sets: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut deckies = Vec::with_capacity(opts.count);
    for (i, (name, ip)) in names.into_iter().zip(ips).enumerate() {
        let distro = pick_distro(
            i,
            explicit_distros.as_deref(),
            opts.randomize_distros,
            arch,
            &mut rng,
        )?;
        let hostname = hostname(distro.hostname_style, &mut rng);
        let services = match (&explicit, arch) {
            (Some(list), _) => list.clone(),
            (None, Some(a)) => a.services.iter().map(|s| (*s).to_owned()).collect(),
            (None, None) => distinct_random_services(&mut rng, &mut used_sets),
        };
        let decky = DeckyConfig {
            name,
            ip,
            services,
            distro: distro.slug.to_owned(),
            base_image: distro.base_image.to_owned(),
            build_base: distro.build_base.to_owned(),
            hostname,
            archetype: arch.map(|a| a.slug.to_owned()),
            service_config: Default::default(),
            nmap_os: arch.map_or(DEFAULT_NMAP_OS, |a| a.nmap_os).to_owned(),
            mutate_interval: opts.mutate_interval,
            last_mutated: opts.now,
            last_login_attempt: 0.0,
            host_uuid: None,
            seed: DeckySeed::generate(),
        };
        decky.validate()?;
        os_consistent(&decky)?;
        deckies.push(decky);
    }
    Ok(deckies)
}

/// The distro of the `i`-th flags-built decky: explicit list cycled, else random, else
/// the archetype's preferred cycled, else the whole catalogue cycled.
fn pick_distro(
    i: usize,
    explicit: Option<&[&'static Distro]>,
    randomize: bool,
    arch: Option<&Archetype>,
    rng: &mut Rng,
) -> Result<&'static Distro, Error> {
    Ok(match (explicit, randomize, arch) {
        (Some(list), _, _) => list[i % list.len()],
        (None, true, _) => &DISTROS[rng.below(DISTROS.len())],
        (None, false, Some(a)) => {
            catalog::distro(a.preferred_distros[i % a.preferred_distros.len()])?
        }
        (None, false, None) => &DISTROS[i % DISTROS.len()],
    })
}

/// `count` names `decky-NN` (two digits at least), skipping names already taken.
fn decky_names(count: usize, taken: &[String]) -> Vec<String> {
    let taken: BTreeSet<&str> = taken.iter().map(String::as_str).collect();
    (1..)
        .map(|i| format!("decky-{i:02}"))
        .filter(|n| !taken.contains(n.as_str()))
        .take(count)
        .collect()
}

/// `list` without duplicates, or the error naming what is not in `known` (sorted).
fn checked_services(list: &[String], known: &[String], place: &str) -> Result<Vec<String>, Error> {
    let unknown: Vec<String> = list
        .iter()
        .filter(|s| !known.contains(s))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownServices {
            place: place.to_owned(),
            unknown,
            available: known.to_vec(),
        });
    }
    let mut seen = BTreeSet::new();
    Ok(list
        .iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect())
}

/// Persona settings with every built-in service's values checked and normalised
/// (unknown keys dropped); custom services keep theirs verbatim.
fn checked_personas(name: &str, configs: &ServiceConfig) -> Result<ServiceConfig, Error> {
    configs
        .iter()
        .map(|(svc, cfg)| {
            let cfg = match catalog::service(svc) {
                Ok(service) => service
                    .validate_persona(cfg)
                    .map_err(|source| Error::Persona {
                        name: name.to_owned(),
                        service: svc.clone(),
                        source,
                    })?,
                Err(_) => cfg.clone(),
            };
            Ok((svc.clone(), cfg))
        })
        .collect()
}

/// 1 to 3 distinct built-in services that share no port.
fn random_services(rng: &mut Rng) -> Vec<String> {
    let pool = catalog::deployable_names();
    let mut set = Vec::new();
    for _ in 0..CLASH_FREE_TRIES {
        let k = rng.between(1, MAX_RANDOM_SERVICES.min(pool.len()));
        set = rng.sample(&pool, k);
        if catalog::port_clash(&set).is_none() {
            break;
        }
        set.truncate(1);
    }
    set.into_iter().map(str::to_owned).collect()
}

/// A random set, redrawn up to 20 times while another decky already has the same set.
fn distinct_random_services(rng: &mut Rng, used: &mut BTreeSet<BTreeSet<String>>) -> Vec<String> {
    let mut set = random_services(rng);
    for _ in 1..DISTINCT_SET_TRIES {
        if !used.contains(&set.iter().cloned().collect::<BTreeSet<_>>()) {
            break;
        }
        set = random_services(rng);
    }
    used.insert(set.iter().cloned().collect());
    set
}

/// Refuses a decky whose services would contradict its OS family (a Windows host
/// offering a Linux shell over ssh, …).
fn os_consistent(d: &DeckyConfig) -> Result<(), Error> {
    for service in &d.services {
        if let Some(why) = catalog::service_conflict(&d.nmap_os, service) {
            return Err(Error::OsConflict {
                name: d.name.clone(),
                service: service.clone(),
                os: d.nmap_os.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// A hostname in `style`: `SRV-DELTA-42`, `web17.localdomain`, `nova-23` or `kilo-proxy`.
pub fn hostname(style: HostnameStyle, rng: &mut Rng) -> String {
    let word = HOSTNAME_WORDS[rng.below(HOSTNAME_WORDS.len())];
    let number = rng.between(10, 99);
    match style {
        HostnameStyle::Generic => format!("SRV-{}-{number}", word.to_uppercase()),
        HostnameStyle::Rhel => format!("{word}{number}.localdomain"),
        HostnameStyle::Minimal => format!("{word}-{number}"),
        HostnameStyle::Rolling => {
            let second = HOSTNAME_WORDS[rng.below(HOSTNAME_WORDS.len())];
            format!("{word}-{second}")
        }
    }
}

#[cfg(test)]
mod tests;
