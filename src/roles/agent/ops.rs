//! What the agent does to its fleet: deploy and mutate in the background (§4.3, §4.5),
//! teardown in the request (§4.6). Every change holds the agent's fleet lock, so two
//! never interleave, and runs through the engine on a thread of its own
//! ([`off_task`]: the engine's futures are not `Send`).
//!
//! Each background operation ends with exactly one lifecycle push: one delta per decky
//! of the request, `succeeded`, or `failed` with the error and its causes (≤ 2000
//! characters). A dry-run deploy checks the fleet and plans it (names, addresses,
//! merge with the deployed fleet) without Docker or host checks, and reports
//! `succeeded` when the plan holds. `no_cache` has nothing to refresh: the decky image
//! is built from this very binary and tagged by version.
//!
//! Mutation re-deploys the decky with its new services: it is torn down (its base and
//! service containers; the whole fleet when it is the only decky) and deployed again
//! with the same name, address, hostname, distro and seed, as the master's own mutate.
use std::time::{SystemTime, UNIX_EPOCH};

use super::AgentState;
use super::api::{NO_DEPLOYMENT, unknown_decky};
use super::relocal::relocalise;
use crate::engine::deploy::{self, DEFAULT_PARALLEL, Request};
use crate::engine::image::{self, ImageSpec};
use crate::engine::plan::{DEFAULT_NETWORK, Driver, Names};
use crate::engine::teardown::{self, Target};
use crate::engine::{Error, off_task, state};
use crate::model::detect::HostNetwork;
use crate::model::swarm::{DeployRequest, LifecycleDelta, MutateRequest};
use crate::model::{DecnetConfig, Mode};

/// Why a dry-run mutation is refused.
#[derive(Debug)]
pub enum Refused {
    /// No fleet, or no such decky (404).
    NotFound(String),
    /// The new services do not make a valid decky (422).
    Invalid(String),
    /// The state file could not be read (500).
    Failed(String),
}

/// `e` and its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Runs `work` in the background under the fleet lock, then pushes one delta of
/// `operation` per name of `deckies`.
fn spawn<F, Fut>(state: &AgentState, operation: &'static str, deckies: Vec<String>, work: F)
where
    F: FnOnce(AgentState) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let state = state.clone();
    let tasks = state.inner.tasks.clone();
    tasks.spawn(async move {
        let outcome = {
            let _held = state.inner.lock.lock().await;
            let s = state.clone();
            off_task(move || work(s))
                .await
                .unwrap_or_else(|| Err(format!("the {operation} panicked")))
        };
        if let Err(why) = &outcome {
            tracing::warn!(operation, error = %why, "fleet operation failed");
        }
        let deltas: Vec<LifecycleDelta> = deckies
            .iter()
            .map(|d| {
                LifecycleDelta::finished(d, operation, outcome.as_ref().err().map(String::as_str))
            })
            .collect();
        super::heartbeat::push(&state, &deltas).await;
    });
}

/// The engine request deploying `fleet` on this host.
fn request(
    state: &AgentState,
    fleet: DecnetConfig,
    driver: Driver,
    names: Names,
) -> Result<Request<'static>, Error> {
    let s = state.settings();
    let binary = match &s.decky_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|source| Error::Io {
            path: "/proc/self/exe".into(),
            source,
        })?,
    };
    let host_ip = HostNetwork::read()
        .address(&fleet.interface)
        .map(|a| a.addr);
    Ok(Request {
        fleet,
        driver,
        names,
        host_ip,
        image: ImageSpec {
            tag: image::default_tag(),
            binary,
        },
        custom: &[],
        replace: false,
        state_path: state.state_path(),
        parallel: DEFAULT_PARALLEL,
        cancel: state.inner.shutdown.child_token(),
        artifacts_root: s.artifacts_root.clone(),
    })
}

async fn run_deploy(state: &AgentState, req: DeployRequest) -> Result<(), String> {
    let fleet = match req.config.mode {
        Mode::Swarm => relocalise(&HostNetwork::read(), req.config).map_err(|e| chain(&e))?,
        Mode::Unihost => req.config,
    };
    let driver = if fleet.ipvlan {
        Driver::Ipvlan
    } else {
        state.settings().driver
    };
    let req_ = request(state, fleet, driver, Names::for_network(DEFAULT_NETWORK))
        .map_err(|e| chain(&e))?;
    if req.dry_run {
        req_.fleet.validate().map_err(|e| chain(&e))?;
        let previous = state::load(&req_.state_path).map_err(|e| chain(&e))?;
        deploy::plan(previous.as_ref(), &req_, "dry-run").map_err(|e| chain(&e))?;
        return Ok(());
    }
    let engine = state.engine().await.map_err(|e| chain(&e))?;
    deploy::deploy(&engine, &req_, &mut |_| {})
        .await
        .map(|_| ())
        .map_err(|e| chain(&e))
}

/// Starts the deploy of `req` in the background.
pub fn start_deploy(state: &AgentState, req: DeployRequest) {
    let names = req.config.deckies.iter().map(|d| d.name.clone()).collect();
    spawn(state, "deploy", names, move |s| async move {
        run_deploy(&s, req).await
    });
}

/// Checks a mutation against the state file without touching Docker.
pub fn check_mutate(state: &AgentState, req: &MutateRequest) -> Result<(), Refused> {
    let st = state::load(&state.state_path())
        .map_err(|e| Refused::Failed(chain(&e)))?
        .ok_or_else(|| Refused::NotFound(NO_DEPLOYMENT.into()))?;
    let mut fleet = st.config;
    let Some(decky) = fleet.deckies.iter_mut().find(|d| d.name == req.decky_id) else {
        return Err(Refused::NotFound(unknown_decky(&req.decky_id)));
    };
    decky.services = req.services.clone();
    fleet
        .validate()
        .map_err(|e| Refused::Invalid(e.to_string()))
}

async fn run_mutate(state: &AgentState, req: MutateRequest) -> Result<(), String> {
    let path = state.state_path();
    let prev = state::load(&path)
        .map_err(|e| chain(&e))?
        .ok_or_else(|| NO_DEPLOYMENT.to_owned())?;
    let Some(mut decky) = prev
        .config
        .deckies
        .iter()
        .find(|d| d.name == req.decky_id)
        .cloned()
    else {
        return Err(unknown_decky(&req.decky_id));
    };
    decky.services = req.services;
    decky.last_mutated = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut fleet = prev.config.clone();
    fleet.deckies = vec![decky];
    fleet.validate().map_err(|e| chain(&e))?;
    let engine = state.engine().await.map_err(|e| chain(&e))?;
    teardown::teardown(&engine, &path, &Target::Decky(req.decky_id.clone()))
        .await
        .map_err(|e| chain(&e))?;
    let redeploy = request(state, fleet, prev.driver, prev.names.clone()).map_err(|e| chain(&e))?;
    deploy::deploy(&engine, &redeploy, &mut |_| {})
        .await
        .map(|_| ())
        .map_err(|e| chain(&e))
}

/// Starts the mutation of `req` in the background.
pub fn start_mutate(state: &AgentState, req: MutateRequest) {
    let names = vec![req.decky_id.clone()];
    spawn(state, "mutate", names, move |s| async move {
        run_mutate(&s, req).await
    });
}

/// Tears down decky `decky`, or the whole host when `None`; no fleet or no such decky
/// is not an error (§4.6: the original's deployer just says so).
pub async fn teardown(state: &AgentState, decky: Option<String>) -> Result<(), String> {
    let _held = state.inner.lock.lock().await;
    let path = state.state_path();
    let Some(st) = state::load(&path).map_err(|e| chain(&e))? else {
        return Ok(());
    };
    if let Some(d) = &decky
        && !st.config.deckies.iter().any(|x| x.name == *d)
    {
        tracing::info!(decky = %d, "teardown of a decky this worker does not run");
        return Ok(());
    }
    let target = decky.map_or(Target::All, Target::Decky);
    let s = state.clone();
    let done = off_task(move || async move {
        let engine = s.engine().await?;
        teardown::teardown(&engine, &path, &target)
            .await
            .map(|_| ())
    })
    .await;
    match done {
        None => Err("the teardown panicked".into()),
        Some(Ok(()) | Err(Error::NoDeployment | Error::UnknownDecky { .. })) => Ok(()),
        Some(Err(e)) => Err(chain(&e)),
    }
}
