//! `decnet deploy`: deckies from an INI file or flags, onto this host's Docker.
//!
//! The network is settled as flag > INI `[general]` > the deployed fleet (state file) >
//! what the host says, so a second, additive deploy lands on the fleet's network without
//! repeating it. Every check that needs no Docker (INI, catalogue names, addresses, the
//! parent interface, `CAP_NET_ADMIN`) runs first; `--dry-run` stops after them and prints
//! the exact plan (and writes a compose file with `--compose`). The printed plan masks
//! persona secrets (passwords, private keys); the compose file is an artifact meant to
//! run as is, so it keeps them and is written 0600.
use super::Flavor;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::status::print_table;
use crate::config::Config;
use crate::engine::deploy::{self, DEFAULT_PARALLEL, Progress, Request};
use crate::engine::image::{self, ImageSpec};
use crate::engine::plan::{Attach, DEFAULT_NETWORK, Driver, Names, Plan};
use crate::engine::{Engine, compose, hostnet, state, teardown};
use crate::ini::{self, CustomService};
use crate::model::build::{self, FlagOptions, IniOptions};
use crate::model::detect::{HostNetwork, NetworkHints, resolve_network};
use crate::model::{DecnetConfig, Ipv4Net, Mode, rng};

/// Arguments of `decnet deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// INI deployment file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Number of deckies (flags deploy, without --config).
    #[arg(long, short = 'n')]
    deckies: Option<usize>,
    /// Services of every decky, comma-separated.
    #[arg(long, value_delimiter = ',')]
    services: Option<Vec<String>>,
    /// Give each decky 1 to 3 random services.
    #[arg(long)]
    randomize_services: bool,
    /// Distro profiles, comma-separated, cycled over the deckies.
    #[arg(long, value_delimiter = ',')]
    distro: Option<Vec<String>>,
    /// A random distro profile per decky.
    #[arg(long)]
    randomize_distros: bool,
    /// Archetype of every decky.
    #[arg(long, short = 'a')]
    archetype: Option<String>,
    /// Minutes between service rotations (wins over the INI's).
    #[arg(long)]
    mutate_interval: Option<u32>,
    /// Host interface the deckies hang off (default: the default route's).
    #[arg(long, short = 'i')]
    interface: Option<String>,
    /// Decky LAN, CIDR (default: the interface's).
    #[arg(long)]
    subnet: Option<Ipv4Net>,
    /// Gateway of the decky LAN (default: the host's default gateway).
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// First decky address (flags deploy).
    #[arg(long)]
    ip_start: Option<Ipv4Addr>,
    /// IPvlan L2 instead of MACVLAN (Wi-Fi parents: one MAC per station).
    #[arg(long, conflicts_with = "bridge")]
    ipvlan: bool,
    /// A Docker bridge instead of the LAN, for hosts without a spare interface: deckies
    /// are then reachable from this host only.
    #[arg(long)]
    bridge: bool,
    /// Replace the deployed fleet instead of adding to it.
    #[arg(long)]
    replace: bool,
    /// Print the plan; create nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also write the plan as a compose file here (with --dry-run).
    #[arg(long, requires = "dry_run")]
    compose: Option<PathBuf>,
    /// Seed of every random choice (hostnames, random services), to reproduce a fleet.
    #[arg(long)]
    seed: Option<u64>,
    /// `unihost` or `swarm` (swarm deploys go through the master).
    #[arg(long, short = 'm', default_value = "unihost")]
    mode: String,
    /// Docker network of the fleet (another name runs a second fleet on this host).
    #[arg(long, default_value = DEFAULT_NETWORK)]
    network_name: String,
    /// Deckies brought up at once.
    #[arg(long, default_value_t = DEFAULT_PARALLEL)]
    parallel: usize,
}

/// A fleet built from `args`: its deckies on their settled network, bring-your-own
/// services, the driver, the host network read and the seed.
struct Built {
    fleet: DecnetConfig,
    custom: Vec<CustomService>,
    driver: Driver,
    host_ip: Option<Ipv4Addr>,
    host: HostNetwork,
    seed: u64,
    previous: Option<state::State>,
}

/// Builds the fleet `args` describe, with `mode`, on top of the fleet in `config`'s
/// state file (unless `--replace`).
fn build_fleet(args: &DeployArgs, config: &Config, mode: Mode) -> anyhow::Result<Built> {
    // A swarm fleet lives on the workers: this host's fleet says nothing about it.
    let previous = match mode {
        Mode::Swarm => None,
        Mode::Unihost => state::load(&state::path_in(&config.home))?,
    };
    let additive = previous.as_ref().filter(|_| !args.replace);
    let seed = args.seed.unwrap_or_else(rng::fresh_seed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let host = HostNetwork::read();
    let flags = NetworkHints {
        interface: args.interface.clone(),
        subnet: args.subnet,
        gateway: args.gateway,
    };
    let fallback = |mut hints: NetworkHints| {
        if let Some(p) = &previous {
            hints.interface = hints.interface.or_else(|| Some(p.config.interface.clone()));
            hints.subnet = hints.subnet.or(Some(p.config.subnet));
            hints.gateway = hints.gateway.or(Some(p.config.gateway));
        }
        hints
    };
    let existing_ips: Vec<Ipv4Addr> = additive
        .map(|p| p.config.deckies.iter().map(|d| d.ip).collect())
        .unwrap_or_default();
    let (network, deckies, custom): (_, _, Vec<CustomService>) = match &args.config {
        Some(path) => {
            let ini = ini::load(path)?;
            let network = resolve_network(&flags, &fallback(ini.network_hints()), &host)?;
            let opts = IniOptions {
                cli_mutate_interval: args.mutate_interval,
                existing_ips,
                seed,
                now,
            };
            let deckies = build::from_ini(&ini, &network, &opts)?;
            (network, deckies, ini.custom_services)
        }
        None => {
            let count = args.deckies.ok_or_else(|| {
                anyhow::anyhow!("give --config INI, or --deckies N with --services, --archetype or --randomize-services")
            })?;
            let network = resolve_network(&flags, &fallback(NetworkHints::default()), &host)?;
            let opts = FlagOptions {
                count,
                services: args.services.clone(),
                randomize_services: args.randomize_services,
                distros: args.distro.clone(),
                randomize_distros: args.randomize_distros,
                archetype: args.archetype.clone(),
                mutate_interval: args.mutate_interval,
                ip_start: args.ip_start,
                existing_ips,
                existing_names: additive
                    .map(|p| p.config.deckies.iter().map(|d| d.name.clone()).collect())
                    .unwrap_or_default(),
                seed,
                now,
            };
            let deckies = build::from_flags(&network, &opts)?;
            (network, deckies, Vec::new())
        }
    };
    let driver = match (args.ipvlan, args.bridge) {
        (true, _) => Driver::Ipvlan,
        (_, true) => Driver::Bridge,
        _ => Driver::Macvlan,
    };
    let mut fleet = DecnetConfig::new(mode, &network, deckies)?;
    fleet.ipvlan = driver == Driver::Ipvlan;
    fleet.mutate_interval = args.mutate_interval.or(fleet.mutate_interval);
    Ok(Built {
        fleet,
        custom,
        driver,
        host_ip: network.host_ip,
        host,
        seed,
        previous,
    })
}

/// The fleet of `decnet swarm deploy` / `decnet deploy --mode swarm` (mode swarm, not
/// yet sharded), its seed, and whether it is a dry run.
pub fn swarm_fleet(args: DeployArgs, config: &Config) -> anyhow::Result<(DecnetConfig, u64, bool)> {
    let built = build_fleet(&args, config, Mode::Swarm)?;
    Ok((built.fleet, built.seed, args.dry_run))
}

/// Runs `decnet deploy`.
pub fn run(args: DeployArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let mode: Mode = args.mode.parse()?;
    if mode == Mode::Swarm {
        return super::swarm::deploy_from_cli(args, config, out);
    }
    let Built {
        fleet,
        custom,
        driver,
        host_ip,
        host,
        seed,
        previous,
    } = build_fleet(&args, config, mode)?;
    let state_path = state::path_in(&config.home);
    let binary = match &config.decky_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this binary")?,
    };
    let req = Request {
        fleet,
        driver,
        names: Names::for_network(&args.network_name),
        host_ip,
        image: ImageSpec {
            tag: image::default_tag(),
            binary,
        },
        custom: &custom,
        replace: args.replace,
        state_path,
        parallel: args.parallel,
        cancel: CancellationToken::new(),
        artifacts_root: config.artifacts_root.clone(),
    };

    if args.dry_run {
        if driver.has_parent() {
            hostnet::require_interface(&req.fleet.interface)?;
        }
        let parent = driver.has_parent().then_some(req.fleet.interface.as_str());
        let links = [
            req.names.macvlan_link.as_str(),
            req.names.ipvlan_link.as_str(),
        ];
        hostnet::require_subnet_free(&host, req.fleet.subnet, req.fleet.gateway, parent, &links)?;
        let plan = deploy::plan(previous.as_ref(), &req, "dry-run")?;
        print_plan(&plan, seed, &req, out)?;
        if let Some(path) = &args.compose {
            // The file must run as is, so it keeps the real secrets: private to the owner.
            crate::fsutil::write_atomic(path, compose::render(&plan).as_bytes(), 0o600)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(
                out,
                "compose file written to {} (mode 0600: it holds the persona secrets)",
                path.display()
            )?;
        }
        return Ok(());
    }
    deploy::preflight(&req, &host)?;
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(async {
        let started = tokio::time::Instant::now();
        let engine = Engine::connect(config.docker_host.as_deref()).await?;
        let cancel = req.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = writeln!(std::io::stderr(), "interrupted: undoing this deploy…");
                cancel.cancel();
            }
        });
        let mut err = std::io::stderr();
        let deployed = deploy::deploy(&engine, &req, &mut |p| {
            let _ = match p {
                Progress::Image(line) => writeln!(err, "  image: {line}"),
                Progress::Step(step) => writeln!(err, "{step}"),
                Progress::Decky { done, total, name } => {
                    writeln!(err, "[{done:>3}/{total}] {name} up")
                }
            };
        })
        .await?;
        let took = started.elapsed().as_secs_f64();
        let rows = teardown::status(&engine, &deployed.state).await?;
        print_table(&rows, out)?;
        writeln!(
            out,
            "deployed {} decky(ies) in {took:.1} s; the fleet has {} (seed {seed})",
            deployed.created.len(),
            deployed.state.config.deckies.len()
        )?;
        Ok(())
    })
}

/// Prints what a deploy would do.
fn print_plan(
    plan: &Plan,
    seed: u64,
    req: &Request<'_>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let net = &plan.network;
    writeln!(out, "dry run: nothing is created (seed {seed})")?;
    writeln!(
        out,
        "network {}: {} on {}, subnet {}, gateway {}, ip_range {}",
        net.names.network,
        net.driver,
        if net.driver.has_parent() {
            net.parent.as_str()
        } else {
            "-"
        },
        net.subnet,
        net.gateway,
        net.ip_range
    )?;
    if let Some(link) = net.names.hairpin(net.driver) {
        let from = net
            .host_ip
            .map_or("no host address".to_owned(), |ip| format!("{ip}/32"));
        writeln!(
            out,
            "hairpin link {link} ({from}), route {} via it",
            net.ip_range
        )?;
    }
    writeln!(
        out,
        "image {} from {}",
        req.image.tag,
        req.image.binary.display()
    )?;
    for d in &plan.deckies {
        let (ip, mac) = match &d.base.attach {
            Attach::Lan { ip, mac } => (ip.to_string(), mac.clone().unwrap_or_else(|| "-".into())),
            Attach::Join(_) => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "decky {}: ip {ip}, mac {mac}, hostname {}, distro {}, os {}",
            d.decky.name, d.decky.hostname, d.decky.distro, d.decky.nmap_os
        )?;
        for c in d.containers() {
            writeln!(
                out,
                "  container {}: {} {}{}",
                c.name,
                c.image,
                c.cmd.join(" "),
                if c.env.is_empty() {
                    String::new()
                } else {
                    format!(" env {}", c.env_masked().join(" "))
                }
            )?;
            if !c.sysctls.is_empty() {
                let s: Vec<String> = c.sysctls.iter().map(|(k, v)| format!("{k}={v}")).collect();
                writeln!(out, "    sysctls {}", s.join(" "))?;
            }
            for m in &c.mounts {
                writeln!(
                    out,
                    "    mount {} -> {} ({})",
                    m.host.display(),
                    m.container,
                    m.mode()
                )?;
            }
        }
    }
    Ok(())
}
