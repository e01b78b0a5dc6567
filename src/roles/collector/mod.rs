//! The log collector (engine.md §3.1): decky service containers' stdout → the local log.
//!
//! Every honeypot event leaves a decky as one RFC 5424 line on a service container's
//! stdout. The collector finds those containers through the Docker API, follows their
//! logs, and appends each line to the raw log `F` the forwarder ships; parsed events that
//! pass the filter also go to `F.json` (the ingester's input) and to `system.log` on the
//! bus. It is a library module so `decnet collect`, the agent and `decnet up` run the same
//! code.
//!
//! # Shape
//! - Discovery (this module): an initial scan of running containers, a Docker events
//!   watcher for `start` (re-connecting with backoff from 1 s doubling to 30 s, and
//!   rescanning after every reconnect, since starts in the gap were missed), and a full
//!   rescan every `DECNET_COLLECTOR_RECONCILE_S` that also restarts streams that broke and
//!   prunes finished ones. A container is a service container when its label
//!   `decnet.fleet.service` or `decnet.topology.service` is `true`.
//! - [`follow`]: one task per container (at most [`MAX_STREAMS`]), stdout only, resuming
//!   from the saved [`cursor`] position so a restart never copies a line twice.
//! - [`sink`]: one writer thread owning the files, the [`filter`], the [`session`]
//!   aggregator and the positions.
//! - [`provenance`]: each line is stored under the decky its container's label names
//!   (`decnet.fleet.decky`), never under the HOSTNAME the decky wrote; a line claiming
//!   another name is rewritten and flagged. A service container without that label is
//!   not followed.
//!
//! # Where this differs from the original
//! - Legacy discovery by container name from the state file is not done: every container
//!   decnet creates carries the labels.
//! - The original re-read each container's whole log on every start, duplicating lines;
//!   here read positions persist beside the log ([`cursor`]).
//! - `--daemon` is not offered: systemd (or `decnet up`) supervises the process.
//! - The health heartbeat `system.collector.health` is `{worker, ts, streams}`. A
//!   `{"action":"stop"}` on `system.collector.control` ends [`serve`] the way a shutdown
//!   does (the original sent itself SIGTERM).
//! - The original took the decky from the line's HOSTNAME, so one compromised decky could
//!   write events in another's name; see [`provenance`].
//! - [`session`] summarises shell sessions on `attacker.session.ended`; where the spec is
//!   silent on its fields, the module says what it chose.
pub mod cursor;
mod error;
pub mod filter;
pub mod follow;
pub mod provenance;
pub mod session;
pub mod sink;

pub use error::Error;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Subscription, topics};
use crate::config::{CollectorConfig, Config};
use crate::engine::Engine;
use cursor::Cursors;
use filter::Filter;
use follow::Msg;
use sink::{Sink, Stats};

/// Label that marks a fleet service container (value `true`).
pub const LABEL_FLEET_SERVICE: &str = crate::engine::plan::LABEL_SERVICE;
/// Label that marks a MazeNET topology service container (value `true`).
pub const LABEL_TOPOLOGY_SERVICE: &str = "decnet.topology.service";
/// Label naming the decky a fleet service container belongs to: the name its lines are
/// stored under, whatever HOSTNAME they claim ([`provenance`]).
pub const LABEL_DECKY: &str = crate::engine::plan::LABEL_DECKY;
/// Label naming the decky a MazeNET topology service container belongs to.
pub const LABEL_TOPOLOGY_DECKY: &str = "decnet.topology.decky";
/// Label naming the service a container runs.
pub const LABEL_SERVICE_NAME: &str = crate::engine::plan::LABEL_SERVICE_NAME;

/// Most container logs followed at once; more wait for a free slot at the next rescan.
pub const MAX_STREAMS: usize = 64;
/// Lines buffered between the followers and the writer: typically a few hundred KiB,
/// at most 64 MiB when every line is cut at [`follow::MAX_LINE`].
const LINE_QUEUE: usize = 1024;
/// How often read positions are saved.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the health heartbeat is published.
const HEALTH_EVERY: Duration = Duration::from_secs(30);
/// First and largest wait before re-connecting the events stream.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// What a collector needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw log `F`; `F.json` and `F.cursors` sit beside it.
    pub log_file: PathBuf,
    /// Filter and rescan settings.
    pub collector: CollectorConfig,
    /// Most streams at once ([`MAX_STREAMS`]).
    pub max_streams: usize,
}

impl Settings {
    /// The configured settings, writing `log_file` if given, else `DECNET_INGEST_LOG_FILE`.
    pub fn from_config(config: &Config, log_file: Option<PathBuf>) -> Self {
        Self {
            log_file: log_file.unwrap_or_else(|| config.ingest_log_file.clone()),
            collector: config.collector.clone(),
            max_streams: MAX_STREAMS,
        }
    }
}

/// Whether `labels` mark a decnet service container.
pub fn is_service(labels: &HashMap<String, String>) -> bool {
    [LABEL_FLEET_SERVICE, LABEL_TOPOLOGY_SERVICE]
        .iter()
        .any(|key| labels.get(*key).is_some_and(|v| v == "true"))
}

/// The decky a service container with `labels` belongs to, if the labels name one.
pub fn decky_of(labels: &HashMap<String, String>) -> Option<&str> {
    [LABEL_DECKY, LABEL_TOPOLOGY_DECKY]
        .iter()
        .find_map(|key| labels.get(*key))
        .map(String::as_str)
        .filter(|d| !d.is_empty())
}

/// The decky of service container `id`, or `None` (with a warning) when its labels name
/// none: its lines could not be attributed, so it is not followed.
fn attributable(id: &str, labels: &HashMap<String, String>) -> Option<Arc<str>> {
    let decky = decky_of(labels).map(Arc::from);
    if decky.is_none() {
        tracing::warn!(
            container = %id,
            "service container without a {LABEL_DECKY} label; not followed, since its lines could not be attributed"
        );
    }
    decky
}

/// Connects to Docker and the configured bus and collects until `shutdown` fires.
pub async fn run(
    config: &Config,
    log_file: Option<PathBuf>,
    shutdown: CancellationToken,
) -> Result<Stats, Error> {
    let engine = Engine::connect(config.docker_host.as_deref()).await?;
    let bus = crate::bus::from_config(&config.bus, "collector");
    let settings = Settings::from_config(config, log_file);
    tracing::info!(log_file = %settings.log_file.display(), "collector started");
    let result = serve(engine, settings, Some(bus.clone()), shutdown).await;
    bus.close();
    result
}

/// Collects into `settings.log_file` until `shutdown` fires (or a stop request arrives on
/// the bus), publishing admitted events on `bus` when there is one. Returns once every
/// line read has been written.
pub async fn serve(
    engine: Engine,
    settings: Settings,
    bus: Option<Arc<dyn Bus>>,
    shutdown: CancellationToken,
) -> Result<Stats, Error> {
    let sink = Sink::with_sessions(
        &settings.log_file,
        Filter::new(&settings.collector),
        bus.clone(),
        settings.collector.session_ttl,
    )?;
    let cursors = Cursors::load(&sink::cursor_path(&settings.log_file))?;
    let shutdown = shutdown.child_token();
    if let Some(control) = bus.as_deref().and_then(control) {
        tokio::spawn(obey(control, shutdown.clone()));
    }
    let (tx, rx) = mpsc::channel(LINE_QUEUE);
    let writer = tokio::task::spawn_blocking({
        let cursors = cursors.clone();
        move || sink::write_loop(sink, cursors, rx)
    });
    let (found_tx, found) = mpsc::channel(256);
    let watcher = tokio::spawn(watch_events(engine.clone(), found_tx, shutdown.clone()));
    let mut discovery = Discovery {
        engine,
        settings,
        cursors,
        tx,
        running: HashSet::new(),
        restarted: HashMap::new(),
        followers: JoinSet::new(),
        shutdown,
    };
    discovery.run(found, bus.as_deref()).await;
    let _ = watcher.await;
    while discovery.followers.join_next().await.is_some() {}
    drop(discovery);
    let stats = writer.await?;
    tracing::debug!(?stats, "collector drained");
    Ok(stats)
}

/// What the events watcher tells discovery.
#[derive(Debug)]
enum Found {
    /// A service container started: its id and decky.
    Started(String, Arc<str>),
    /// The events stream was re-connected: starts may have been missed.
    Rescan,
}

/// Discovery state: which containers are followed.
struct Discovery {
    engine: Engine,
    settings: Settings,
    cursors: Cursors,
    tx: mpsc::Sender<Msg>,
    running: HashSet<String>,
    /// Followed containers that started again before their old stream was reaped, with
    /// their decky.
    restarted: HashMap<String, Arc<str>>,
    followers: JoinSet<String>,
    shutdown: CancellationToken,
}

impl Discovery {
    async fn run(&mut self, mut found: mpsc::Receiver<Found>, bus: Option<&dyn Bus>) {
        let mut reconcile = tokio::time::interval(self.settings.collector.reconcile);
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut health = tokio::time::interval(HEALTH_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = reconcile.tick() => self.rescan().await,
                // A full queue means the writer is busy; the next tick saves instead.
                _ = flush.tick() => {
                    let _ = self.tx.try_send(Msg::Flush);
                }
                _ = health.tick() => self.heartbeat(bus),
                Some(found) = found.recv() => match found {
                    Found::Started(id, decky) if self.running.contains(&id) => {
                        self.restarted.insert(id, decky);
                    }
                    Found::Started(id, decky) => self.start(id, decky),
                    Found::Rescan => self.rescan().await,
                },
                Some(done) = self.followers.join_next() => {
                    if let Ok(id) = done {
                        self.running.remove(&id);
                        if let Some(decky) = self.restarted.remove(&id) {
                            self.start(id, decky);
                        }
                    }
                }
            }
        }
    }

    /// Follows every running service container not followed yet, and forgets the
    /// positions of containers that no longer exist.
    async fn rescan(&mut self) {
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let containers = match self.engine.docker().list_containers(Some(options)).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "collector rescan failed; retrying at the next one");
                return;
            }
        };
        let mut existing = HashSet::new();
        for c in containers {
            let (Some(id), Some(labels)) = (c.id, c.labels) else {
                continue;
            };
            if !is_service(&labels) {
                continue;
            }
            existing.insert(id.clone());
            let running = c.state.is_some_and(|s| s.to_string() == "running");
            if running
                && !self.running.contains(&id)
                && let Some(decky) = attributable(&id, &labels)
            {
                self.start(id, decky);
            }
        }
        self.cursors.retain(&existing);
    }

    /// Starts following container `id` of decky `decky` unless it already is or every
    /// slot is taken.
    fn start(&mut self, id: String, decky: Arc<str>) {
        if self.running.contains(&id) || self.shutdown.is_cancelled() {
            return;
        }
        if self.running.len() >= self.settings.max_streams {
            tracing::warn!(
                container = %id,
                max = self.settings.max_streams,
                "too many container streams; this one waits for a free slot"
            );
            return;
        }
        let resume = self.cursors.get(&id);
        tracing::debug!(container = %id, %decky, resumed = resume.is_some(), "following");
        self.running.insert(id.clone());
        let task = follow::follow(
            self.engine.clone(),
            Arc::from(id.as_str()),
            decky,
            resume,
            self.tx.clone(),
            self.shutdown.clone(),
        );
        self.followers.spawn(async move {
            task.await;
            id
        });
    }

    fn heartbeat(&self, bus: Option<&dyn Bus>) {
        let Ok(topic) = topics::system_health("collector") else {
            return;
        };
        let payload = serde_json::json!({
            "worker": "collector",
            "ts": time::OffsetDateTime::now_utc().unix_timestamp(),
            "streams": self.running.len(),
        });
        crate::bus::publish_safely(bus, &topic, &payload, "health");
    }
}

/// The subscription to `system.collector.control`, when the bus takes one.
fn control(bus: &dyn Bus) -> Option<Subscription> {
    let topic = topics::system_control("collector").ok()?;
    bus.subscribe(&topic)
        .inspect_err(|e| tracing::debug!(error = %e, "no control subscription"))
        .ok()
}

/// Cancels `shutdown` when a `{"action":"stop"}` request arrives on `control`.
async fn obey(mut control: Subscription, shutdown: CancellationToken) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            msg = control.recv() => msg,
        };
        let Some(msg) = msg else { return };
        let Ok(envelope) = msg.envelope() else {
            continue;
        };
        if envelope.payload["action"] == "stop" {
            tracing::info!(requested_by = %envelope.payload["requested_by"], "collector stop requested on the bus");
            shutdown.cancel();
            return;
        }
    }
}

/// Watches Docker for service containers starting, re-connecting with backoff.
async fn watch_events(engine: Engine, found: mpsc::Sender<Found>, shutdown: CancellationToken) {
    let filters = HashMap::from([("type", vec!["container"]), ("event", vec!["start"])]);
    let mut backoff = BACKOFF.0;
    loop {
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        let mut events = engine.docker().events(Some(options));
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.next() => event,
            };
            match event {
                Some(Ok(event)) => {
                    backoff = BACKOFF.0;
                    let Some(actor) = event.actor else { continue };
                    let labels = actor.attributes.unwrap_or_default();
                    let Some(id) = actor.id.filter(|_| is_service(&labels)) else {
                        continue;
                    };
                    let Some(decky) = attributable(&id, &labels) else {
                        continue;
                    };
                    if found.send(Found::Started(id, decky)).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "Docker events stream failed");
                    break;
                }
                None => {
                    tracing::warn!(retry_in = ?backoff, "Docker events stream ended");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF.1);
        if found.send(Found::Rescan).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_containers_are_told_by_their_labels() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(is_service(&labels(&[(LABEL_FLEET_SERVICE, "true")])));
        assert!(is_service(&labels(&[(LABEL_TOPOLOGY_SERVICE, "true")])));
        assert!(!is_service(&labels(&[(LABEL_FLEET_SERVICE, "false")])));
        assert!(!is_service(&labels(&[(LABEL_DECKY, "decky-01")])));
    }

    #[test]
    fn the_decky_comes_from_the_labels() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            decky_of(&labels(&[(LABEL_DECKY, "decky-01")])),
            Some("decky-01")
        );
        assert_eq!(
            decky_of(&labels(&[(LABEL_TOPOLOGY_DECKY, "t-web")])),
            Some("t-web")
        );
        assert_eq!(decky_of(&labels(&[(LABEL_DECKY, "")])), None);
        assert_eq!(decky_of(&labels(&[(LABEL_FLEET_SERVICE, "true")])), None);
    }

    #[tokio::test]
    async fn a_stop_request_on_the_bus_ends_the_collector() {
        let bus = crate::bus::LocalBus::new();
        let sub = control(&bus).expect("subscribed");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(obey(sub, shutdown.clone()));
        let topic = topics::system_control("collector").expect("topic");
        let publish = |action: &str| {
            bus.publish(&topic, "control", &serde_json::json!({"action": action}))
                .expect("publish");
        };
        publish("start");
        tokio::task::yield_now().await;
        assert!(!shutdown.is_cancelled(), "only stop stops");
        publish("stop");
        tokio::time::timeout(Duration::from_secs(5), shutdown.cancelled())
            .await
            .expect("stopped");
        task.await.expect("control task");
    }
}
