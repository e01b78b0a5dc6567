//! `/health` (engine.md §7.3): the database, Docker and every background task the
//! master runs, each `ok` or `failing` with a reason.
//!
//! Background tasks register themselves ([`Health::register`]); a task the master
//! expects but that has not registered reports "not started" ([`Health::expect`]). A
//! finished task reports how it ended: "cancelled", "exited unexpectedly" (it returned)
//! or "exited with error". `database`, `docker` and `ingestion_worker` are critical:
//! any of them failing makes the whole `unhealthy` (503); another failing component
//! makes it `degraded` (200). The database probe is cached 1 s, the Docker ping 5 s.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::cache::Cached;

/// Components whose failure makes the master unhealthy.
pub const CRITICAL: &[&str] = &["database", "docker", "ingestion_worker"];

/// How long the Docker ping may take.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(3);

/// One component's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Component {
    /// `ok` or `failing`.
    pub status: &'static str,
    /// Why it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Component {
    /// A working component.
    pub fn ok() -> Self {
        Self {
            status: "ok",
            detail: None,
        }
    }

    /// A failing component and why.
    pub fn failing(why: impl Into<String>) -> Self {
        Self {
            status: "failing",
            detail: Some(why.into()),
        }
    }
}

/// What a background task returns when it stops.
pub type TaskResult = Result<(), String>;

#[derive(Debug)]
enum Task {
    Expected,
    Running(JoinHandle<TaskResult>),
    Ended(&'static str),
}

/// The states `/health` reports.
#[derive(Debug)]
pub struct Health {
    tasks: Mutex<BTreeMap<&'static str, Task>>,
    database: Cached<Component>,
    docker: Cached<Component>,
    docker_host: Option<String>,
}

impl Health {
    /// Nothing registered yet; Docker reached at `docker_host` (or the local socket).
    pub fn new(docker_host: Option<String>) -> Self {
        Self {
            tasks: Mutex::new(BTreeMap::new()),
            database: Cached::new(Duration::from_secs(1)),
            docker: Cached::new(Duration::from_secs(5)),
            docker_host,
        }
    }

    /// Declares task `name`, reported "not started" until it registers.
    pub fn expect(&self, name: &'static str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.entry(name).or_insert(Task::Expected);
    }

    /// Watches the running task `name`.
    pub fn register(&self, name: &'static str, handle: JoinHandle<TaskResult>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.insert(name, Task::Running(handle));
    }

    /// The background tasks' states.
    fn tasks(&self) -> Vec<(&'static str, Component)> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (name, task) in tasks.iter_mut() {
            if let Task::Running(handle) = task
                && handle.is_finished()
            {
                let how = match handle.now_or_never() {
                    Some(Ok(Ok(()))) => "exited unexpectedly",
                    Some(Err(e)) if e.is_cancelled() => "cancelled",
                    _ => "exited with error",
                };
                *task = Task::Ended(how);
            }
            let state = match task {
                Task::Expected => Component::failing("not started"),
                Task::Running(_) => Component::ok(),
                Task::Ended(how) => Component::failing(*how),
            };
            out.push((*name, state));
        }
        out
    }

    /// Every component, by name.
    pub async fn components(&self, db: &super::db::Db) -> BTreeMap<&'static str, Component> {
        let database = self
            .database
            .get_or_load(|| async move {
                Ok::<_, ()>(match db.read(|r| r.ping()).await {
                    Ok(()) => Component::ok(),
                    Err(_) => Component::failing("database unavailable"),
                })
            })
            .await
            .unwrap_or_else(|()| Component::failing("database unavailable"));
        let host = self.docker_host.clone();
        let docker = self
            .docker
            .get_or_load(|| async move {
                let probe = crate::engine::Engine::connect(host.as_deref());
                Ok::<_, ()>(match tokio::time::timeout(DOCKER_TIMEOUT, probe).await {
                    Ok(Ok(_)) => Component::ok(),
                    _ => Component::failing("docker daemon unavailable"),
                })
            })
            .await
            .unwrap_or_else(|()| Component::failing("docker daemon unavailable"));
        let mut all: BTreeMap<_, _> = self.tasks().into_iter().collect();
        all.insert("database", database);
        all.insert("docker", docker);
        all
    }
}

/// The overall status of `components`: `unhealthy`, `degraded` or `healthy`.
pub fn overall(components: &BTreeMap<&'static str, Component>) -> &'static str {
    let failing = |c: &Component| c.status != "ok";
    if components
        .iter()
        .any(|(name, c)| CRITICAL.contains(name) && failing(c))
    {
        "unhealthy"
    } else if components.values().any(failing) {
        "degraded"
    } else {
        "healthy"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_report_how_they_ended() {
        let h = Health::new(None);
        h.expect("collector_worker");
        h.register("ok_worker", tokio::spawn(std::future::pending()));
        h.register("done", tokio::spawn(async { Ok(()) }));
        h.register("broken", tokio::spawn(async { Err("boom".to_owned()) }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got: BTreeMap<_, _> = h.tasks().into_iter().collect();
        assert_eq!(got["collector_worker"], Component::failing("not started"));
        assert_eq!(got["ok_worker"], Component::ok());
        assert_eq!(got["done"], Component::failing("exited unexpectedly"));
        assert_eq!(got["broken"], Component::failing("exited with error"));
        let mut all = got.clone();
        all.insert("database", Component::ok());
        all.insert("docker", Component::ok());
        assert_eq!(overall(&all), "degraded");
        all.insert("docker", Component::failing("x"));
        assert_eq!(overall(&all), "unhealthy");
    }
}
