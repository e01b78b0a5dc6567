//! `deploy`: from a validated fleet to running containers, all or nothing.
//!
//! Order of a deploy (engine.md §1.9, decisions engine #1 and #2):
//! 1. Checks that fail before anything exists: the parent interface, `CAP_NET_ADMIN`,
//!    the merge with the deployed fleet ([`merge`]: additive by default, names and
//!    addresses must not collide; `--replace` swaps the whole fleet).
//! 2. The decky image ([`super::image::ensure`]), then the network and the hairpin link.
//! 3. The containers, a few deckies at a time: base first, then its services.
//! 4. Only then the state file, atomically.
//!
//! A failure in 2–3 undoes this deploy's work: every container labelled with this
//! deploy's id is removed (the label also catches a container whose creation answer was
//! lost), a network or hairpin link created now is removed, and a replaced fleet is
//! restored. The previous containers and the state file are never touched before the
//! new fleet runs: a replaced fleet is only stopped and renamed aside until then.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::artifacts;
use super::containers::{self, Found, STOP_GRACE_SECS};
use super::image::{self, ImageSpec};
use super::plan::{DeckyPlan, Driver, LABEL_DEPLOY, Names, Plan, PlanOptions};
use super::state::{self, State};
use super::{Engine, Error, hostnet, network};
use crate::ini::CustomService;
use crate::model::detect::HostNetwork;
use crate::model::{self, DecnetConfig};

/// Deckies brought up at the same time: enough to hide Docker's per-call latency, few
/// enough not to swamp a small host's engine.
pub const DEFAULT_PARALLEL: usize = 8;

/// A step worth showing to an operator watching a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A line of the image build.
    Image(&'a str),
    /// A step of the deploy (network, hairpin, clean-up).
    Step(&'a str),
    /// A decky is up: `done` of `total`.
    Decky {
        /// Deckies up so far.
        done: usize,
        /// Deckies in this deploy.
        total: usize,
        /// The one that just came up.
        name: &'a str,
    },
}

/// Receives [`Progress`] reports.
pub type ProgressFn<'a> = dyn FnMut(Progress<'_>) + Send + 'a;

/// Everything a deploy needs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The deckies to deploy, on their settled network (validated).
    pub fleet: DecnetConfig,
    /// How they attach.
    pub driver: Driver,
    /// Fleet names (Docker network, hairpin links).
    pub names: Names,
    /// This host's address on the parent interface.
    pub host_ip: Option<Ipv4Addr>,
    /// The decky image and the static binary it holds.
    pub image: ImageSpec,
    /// Bring-your-own services of the INI file.
    pub custom: &'a [CustomService],
    /// Replace the deployed fleet instead of adding to it.
    pub replace: bool,
    /// The state file.
    pub state_path: PathBuf,
    /// Deckies brought up at once.
    pub parallel: usize,
    /// Cancelled (e.g. on Ctrl-C): no further decky starts and the deploy is undone.
    pub cancel: CancellationToken,
    /// Host directory of the capturing services' files (`DECNET_ARTIFACTS_ROOT`).
    pub artifacts_root: PathBuf,
}

/// A finished deploy.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The state now on disk (the whole fleet).
    pub state: State,
    /// Names of the deckies this deploy created.
    pub created: Vec<String>,
}

/// The fleet after the deploy and the names of the deckies to create, given the
/// deployed fleet `previous` (engine #1: additive unless `replace`).
pub fn merge(
    previous: Option<&State>,
    req: &Request<'_>,
) -> Result<(DecnetConfig, Vec<String>), Error> {
    let new_names: Vec<String> = req.fleet.deckies.iter().map(|d| d.name.clone()).collect();
    let Some(prev) = previous else {
        return Ok((req.fleet.clone(), new_names));
    };
    let (p, n) = (&prev.config, &req.fleet);
    let same = p.interface == n.interface
        && p.subnet == n.subnet
        && p.gateway == n.gateway
        && prev.driver == req.driver
        && prev.names.network == req.names.network;
    if !same {
        return Err(Error::NetworkChanged {
            deployed: format!(
                "{} {} via {} (gateway {})",
                prev.driver, p.subnet, p.interface, p.gateway
            ),
            asked: format!(
                "{} {} via {} (gateway {})",
                req.driver, n.subnet, n.interface, n.gateway
            ),
        });
    }
    if req.replace {
        return Ok((req.fleet.clone(), new_names));
    }
    for d in &n.deckies {
        if let Some(old) = p.deckies.iter().find(|o| o.name == d.name) {
            return Err(Error::DeckyExists {
                name: old.name.clone(),
            });
        }
        if let Some(old) = p.deckies.iter().find(|o| o.ip == d.ip) {
            return Err(Error::IpInUse {
                ip: d.ip,
                owner: old.name.clone(),
            });
        }
    }
    let mut merged = n.clone();
    merged.deckies = p.deckies.iter().chain(&n.deckies).cloned().collect();
    merged.validate().map_err(Error::Fleet)?;
    Ok((merged, new_names))
}

/// The plan a deploy of `req` would carry out on top of `previous` (for `--dry-run`).
pub fn plan(previous: Option<&State>, req: &Request<'_>, deploy_id: &str) -> Result<Plan, Error> {
    let (merged, create) = merge(previous, req)?;
    Ok(Plan::new(&merged, &create, &plan_options(req, deploy_id)))
}

fn plan_options<'a>(req: &Request<'a>, deploy_id: &str) -> PlanOptions<'a> {
    PlanOptions {
        driver: req.driver,
        names: req.names.clone(),
        image: req.image.tag.clone(),
        host_ip: req.host_ip,
        custom: req.custom,
        deploy_id: deploy_id.to_owned(),
        artifacts_root: req.artifacts_root.clone(),
    }
}

/// Checks that need no Docker: the parent interface exists, the host does not use the
/// subnet elsewhere, and the hairpin can be made.
pub fn preflight(req: &Request<'_>, host: &HostNetwork) -> Result<(), Error> {
    let parent = req
        .driver
        .has_parent()
        .then_some(req.fleet.interface.as_str());
    if let Some(parent) = parent {
        hostnet::require_interface(parent)?;
    }
    let links = [
        req.names.macvlan_link.as_str(),
        req.names.ipvlan_link.as_str(),
    ];
    hostnet::require_subnet_free(host, req.fleet.subnet, req.fleet.gateway, parent, &links)?;
    if parent.is_some() {
        hostnet::require_net_admin()?;
    }
    Ok(())
}

/// Deploys `req`: image, network, hairpin, containers, state. On failure nothing of
/// this deploy remains and the previous fleet and state are as they were.
pub async fn deploy(
    engine: &Engine,
    req: &Request<'_>,
    progress: &mut ProgressFn<'_>,
) -> Result<Deployed, Error> {
    req.fleet.validate().map_err(Error::Fleet)?;
    preflight(req, &HostNetwork::read())?;
    let previous = state::load(&req.state_path)?;
    let (mut merged, create) = merge(previous.as_ref(), req)?;
    merged.ipvlan = req.driver == Driver::Ipvlan;

    image::ensure(engine, &req.image, &mut |line| {
        progress(Progress::Image(line))
    })
    .await?;

    if req.cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    let deploy_id = hex::encode(model::rng::fresh_seed().to_be_bytes());
    let plan = Plan::new(&merged, &create, &plan_options(req, &deploy_id));
    let mut undo = Undo {
        deploy_id: deploy_id.clone(),
        network: None,
        hairpin: None,
        stashed: Vec::new(),
    };
    let result = bring_up(engine, req, previous.as_ref(), &plan, &mut undo, progress).await;
    let mut hairpin = match result {
        Ok(hairpin) => hairpin,
        Err(e) => {
            progress(Progress::Step("deploy failed: removing what it created"));
            undo.run(engine).await;
            return Err(e);
        }
    };
    if let Some(h) = &mut hairpin {
        // A widened range takes its route only now that the deckies run; the state
        // records the new route before it exists, which teardown tolerates.
        h.route = h.route.map(|_| plan.network.ip_range);
    }
    let state = State {
        config: merged,
        compose_path: previous.as_ref().and_then(|p| p.compose_path.clone()),
        driver: req.driver,
        names: req.names.clone(),
        hairpin,
        image: req.image.tag.clone(),
    };
    if let Err(e) = state::save(&req.state_path, &state) {
        progress(Progress::Step(
            "saving the state failed: removing what the deploy created",
        ));
        undo.run(engine).await;
        return Err(e);
    }
    let previous_route = previous.as_ref().and_then(|p| p.hairpin.as_ref());
    if let (Some(old), Some(new)) = (previous_route, &state.hairpin) {
        hostnet::reroute(old, new).await;
    }
    if !undo.stashed.is_empty() {
        // After the state: the new fleet runs either way, and a replaced container left
        // behind still carries the fleet's label, so `teardown --all` finds it.
        progress(Progress::Step("removing the replaced fleet"));
        containers::remove_all(engine, &undo.stashed, req.parallel).await?;
    }
    Ok(Deployed {
        state,
        created: create,
    })
}

/// What a failing deploy must undo.
struct Undo {
    deploy_id: String,
    /// The network, when this deploy created it.
    network: Option<String>,
    /// The hairpin, when this deploy created its link.
    hairpin: Option<hostnet::Hairpin>,
    /// The replaced fleet's containers, stopped and renamed aside.
    stashed: Vec<Found>,
}

impl Undo {
    /// Best effort: every step runs even if an earlier one failed.
    async fn run(self, engine: &Engine) {
        if let Ok(ours) = containers::list(engine, &[(LABEL_DEPLOY, &self.deploy_id)]).await {
            let _ = containers::remove_all(engine, &ours, DEFAULT_PARALLEL).await;
        }
        if let Some(h) = &self.hairpin {
            let _ = hostnet::remove_hairpin(h).await;
        }
        if let Some(net) = &self.network {
            let _ = network::remove(engine, net).await;
        }
        let docker = engine.docker();
        for f in &self.stashed {
            let opts = RenameContainerOptionsBuilder::new().name(&f.name).build();
            let _ = docker.rename_container(&f.id, opts).await;
        }
        let (bases, services): (Vec<&Found>, Vec<&Found>) =
            self.stashed.iter().partition(|f| f.is_base());
        for f in bases.into_iter().chain(services) {
            let _ = docker
                .start_container(&f.id, None::<StartContainerOptions>)
                .await;
        }
    }
}

/// Steps 2–3 of a deploy, recording in `undo` what they create.
async fn bring_up(
    engine: &Engine,
    req: &Request<'_>,
    previous: Option<&State>,
    plan: &Plan,
    undo: &mut Undo,
    progress: &mut ProgressFn<'_>,
) -> Result<Option<hostnet::Hairpin>, Error> {
    let net = &plan.network;
    if let (true, Some(prev)) = (req.replace, previous) {
        progress(Progress::Step("stopping the fleet being replaced"));
        stash(
            engine,
            &prev.names.network,
            &undo.deploy_id,
            &mut undo.stashed,
        )
        .await?;
    }
    progress(Progress::Step(&format!(
        "network {} ({} on {}, {})",
        net.names.network, net.driver, net.parent, net.subnet
    )));
    if network::ensure(engine, net).await? == network::Ensured::Created {
        undo.network = Some(net.names.network.clone());
    }
    let hairpin = match net.names.hairpin(net.driver) {
        None => None,
        Some(link) => {
            let other = match net.driver {
                Driver::Ipvlan => &net.names.macvlan_link,
                _ => &net.names.ipvlan_link,
            };
            match previous.and_then(|p| p.hairpin.clone()) {
                Some(h) if h.link == link && hostnet::link_exists(link) => Some(h),
                _ => {
                    progress(Progress::Step(&format!("hairpin link {link}")));
                    let (h, created) = hostnet::setup_hairpin(
                        net.driver,
                        link,
                        other,
                        &net.parent,
                        net.host_ip,
                        net.ip_range,
                    )
                    .await?;
                    if created {
                        undo.hairpin = Some(h.clone());
                    }
                    Some(h)
                }
            }
        }
    };
    // After a failure (or Ctrl-C) no new container is started, but the stream is drained:
    // a request dropped in flight could still create a container after the undo looked.
    let stop = req.cancel.child_token();
    let total = plan.deckies.len();
    let mut ups = futures_util::stream::iter(&plan.deckies)
        .map(|d| start_decky(engine, &net.names.network, &req.artifacts_root, d, &stop))
        .buffer_unordered(req.parallel.max(1));
    let (mut done, mut first_error) = (0, None);
    while let Some(result) = ups.next().await {
        match result {
            Ok(Some(name)) => {
                done += 1;
                progress(Progress::Decky { done, total, name });
            }
            Ok(None) => {}
            Err(e) => {
                stop.cancel();
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if req.cancel.is_cancelled() => Err(Error::Interrupted),
        None => Ok(hairpin),
    }
}

/// Creates and starts one decky's base, then its services (their artifact directories
/// first); returns its name, or `None` when it stopped early because another decky
/// failed or the deploy was interrupted.
async fn start_decky<'p>(
    engine: &Engine,
    network: &str,
    artifacts_root: &Path,
    d: &'p DeckyPlan,
    stop: &CancellationToken,
) -> Result<Option<&'p str>, Error> {
    for c in d.containers() {
        if stop.is_cancelled() {
            return Ok(None);
        }
        for m in &c.mounts {
            artifacts::prepare(artifacts_root, &d.decky.name, m)?;
        }
        containers::create_and_start(engine, network, c).await?;
    }
    Ok(Some(&d.decky.name))
}

/// Stops the containers of fleet `network` and renames them aside, so a new fleet can
/// take their names and addresses while they wait to be restored or removed. Each one
/// is recorded in `stashed` before it is touched, so a failure halfway restores it too.
async fn stash(
    engine: &Engine,
    network: &str,
    deploy_id: &str,
    stashed: &mut Vec<Found>,
) -> Result<(), Error> {
    let found = containers::of_fleet(engine, network, None).await?;
    let docker = engine.docker();
    let (bases, services): (Vec<&Found>, Vec<&Found>) = found.iter().partition(|f| f.is_base());
    for f in services.into_iter().chain(bases) {
        stashed.push(f.clone());
        let stop = StopContainerOptionsBuilder::new()
            .t(STOP_GRACE_SECS)
            .build();
        docker
            .stop_container(&f.id, Some(stop))
            .await
            .map_err(|source| Error::Container {
                name: f.name.clone(),
                source,
            })?;
        let aside = format!("{}.replaced-{deploy_id}", f.name);
        let rename = RenameContainerOptionsBuilder::new().name(&aside).build();
        docker
            .rename_container(&f.id, rename)
            .await
            .map_err(|source| Error::Container {
                name: f.name.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
