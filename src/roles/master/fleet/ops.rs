//! The fleet operations the routes start: deploy and mutate run in the background and
//! report through `decky_lifecycle` rows (`pending → running → succeeded | failed`);
//! removing a decky is quick and runs in the request.
//!
//! Every operation holds [`super::Fleet::lock`] while it reads and rewrites the state
//! file, and is cancelled by the master's shutdown token (the engine then undoes the
//! deploy in progress). Failures are recorded with the error and its causes, which name
//! Docker objects and addresses, never persona secrets.
//!
//! Mutation: the engine has no in-place mutation yet, so a mutate re-rolls the decky's
//! services from its archetype and redeploys it: the decky is torn down (its base and
//! service containers; the whole fleet when it is the only decky) and deployed again
//! with the same name, address, hostname, distro and seed. If the redeploy fails, the
//! decky stays removed and the row says why.
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::deploy::{self, DEFAULT_PARALLEL, Request};
use crate::engine::image::{self, ImageSpec};
use crate::engine::plan::{Driver, Names};
use crate::engine::state;
use crate::engine::teardown::{self, Target};
use crate::engine::{Engine, Error};
use crate::ini::CustomService;
use crate::model::DecnetConfig;
use crate::model::detect::HostNetwork;
use crate::roles::master::state::AppState;
use crate::store::LifecycleStatus;

/// A deploy accepted by `POST /deckies/deploy`.
#[derive(Debug, Clone)]
pub struct DeployJob {
    /// The INI's deckies on their settled network.
    pub fleet: DecnetConfig,
    /// Bring-your-own services of the INI.
    pub custom: Vec<CustomService>,
    /// How the deckies attach.
    pub driver: Driver,
    /// Fleet names.
    pub names: Names,
    /// This host's address on the parent interface.
    pub host_ip: Option<Ipv4Addr>,
    /// Replace the fleet instead of adding to it.
    pub replace: bool,
    /// Its lifecycle rows.
    pub ids: Vec<String>,
}

/// A mutation accepted by `POST /deckies/{name}/mutate`.
#[derive(Debug, Clone)]
pub struct MutateJob {
    /// The decky.
    pub name: String,
    /// Its new services.
    pub services: Vec<String>,
    /// Its lifecycle row.
    pub id: String,
}

/// Seconds since the epoch, for `last_mutated`.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `e` and its causes, `: `-separated.
fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Moves rows `ids` to `status`; a failed write is logged (the operation goes on).
async fn mark(state: &AppState, ids: &[String], status: LifecycleStatus, error: Option<String>) {
    let ids = ids.to_vec();
    let r = state
        .db
        .write(move |s| s.set_lifecycle(&ids, status, error.as_deref()))
        .await;
    if let Err(e) = r {
        tracing::error!(error = ?e, "recording a decky operation's status");
    }
}

/// Runs `work` in the background as the operation of rows `ids`, under the fleet lock.
fn spawn<F, Fut>(state: &AppState, ids: Vec<String>, work: F)
where
    F: FnOnce(AppState, Engine) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>>,
{
    let state = state.clone();
    let tasks = state.fleet.tasks.clone();
    tasks.spawn(async move {
        let Some(engine) = state.fleet.engine.clone() else {
            mark(
                &state,
                &ids,
                LifecycleStatus::Failed,
                Some(super::NO_DOCKER.into()),
            )
            .await;
            return;
        };
        let _held = state.fleet.lock.lock().await;
        mark(&state, &ids, LifecycleStatus::Running, None).await;
        let s = state.clone();
        let outcome =
            crate::engine::off_task(
                move || async move { work(s, engine).await.map_err(|e| chain(&e)) },
            )
            .await
            .unwrap_or_else(|| Err("the operation panicked".into()));
        state.fleet_changed().await;
        match outcome {
            Ok(()) => mark(&state, &ids, LifecycleStatus::Succeeded, None).await,
            Err(why) => {
                tracing::warn!(error = %why, "decky operation failed");
                mark(&state, &ids, LifecycleStatus::Failed, Some(why)).await;
            }
        }
    });
}

/// Deploys `req`'s fleet through the engine.
async fn run(state: &AppState, engine: &Engine, job: &DeployJob) -> Result<(), Error> {
    let binary = match &state.fleet.options.decky_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|source| Error::Io {
            path: "/proc/self/exe".into(),
            source,
        })?,
    };
    let req = Request {
        fleet: job.fleet.clone(),
        driver: job.driver,
        names: job.names.clone(),
        host_ip: job.host_ip,
        image: ImageSpec {
            tag: image::default_tag(),
            binary,
        },
        custom: &job.custom,
        replace: job.replace,
        state_path: state::path_in(&state.settings.home),
        parallel: DEFAULT_PARALLEL,
        cancel: state.shutdown.child_token(),
        artifacts_root: state.fleet.options.artifacts_root.clone(),
    };
    deploy::deploy(engine, &req, &mut |_| {}).await.map(|_| ())
}

/// Starts `job` in the background.
pub fn start_deploy(state: &AppState, job: DeployJob) {
    spawn(state, job.ids.clone(), move |state, engine| async move {
        run(&state, &engine, &job).await
    });
}

/// Starts `job` in the background (see the module doc).
pub fn start_mutate(state: &AppState, job: MutateJob) {
    spawn(
        state,
        vec![job.id.clone()],
        move |state, engine| async move {
            let path = state::path_in(&state.settings.home);
            let prev = state::load(&path)?.ok_or(Error::NoDeployment)?;
            let Some(mut decky) = prev
                .config
                .deckies
                .iter()
                .find(|d| d.name == job.name)
                .cloned()
            else {
                return Err(Error::UnknownDecky {
                    name: job.name.clone(),
                    known: Vec::new(),
                });
            };
            decky.services = job.services.clone();
            decky.last_mutated = now_secs();
            teardown::teardown(&engine, &path, &Target::Decky(job.name.clone())).await?;
            let mut fleet = prev.config.clone();
            fleet.deckies = vec![decky];
            let host_ip = HostNetwork::read()
                .address(&fleet.interface)
                .map(|a| a.addr);
            let redeploy = DeployJob {
                fleet,
                custom: Vec::new(),
                driver: prev.driver,
                names: prev.names.clone(),
                host_ip,
                replace: false,
                ids: Vec::new(),
            };
            run(&state, &engine, &redeploy).await
        },
    );
}
