//! The broker: accepts clients on an already-bound UNIX listener and routes events.
//!
//! Each connection gets a reader (this task) and a writer task joined by a bounded
//! drop-oldest outbox of [`BrokerSettings::queue_capacity`] encoded frames. A `PUB` is
//! turned into one `EVT` frame, encoded once, and its `Bytes` handle is pushed onto the
//! outbox of every other connection with a matching pattern; pushing never waits, so a
//! subscriber that stops reading only fills its own outbox, and the frames it then loses
//! are counted ([`BrokerStats::dropped`]). Writers send everything queued in one `write`,
//! which is what keeps the per-event cost low under load.
//!
//! Routing scans the connections and their patterns linearly under a read lock: a host
//! has tens of workers, not thousands, and `SUB`/`UNSUB` (the only writers of the table)
//! are rare. Connections are capped by a semaphore; at the cap `accept` waits.
//!
//! Shutdown: cancelling the token stops `accept`, every connection queues `BYE` and
//! closes, and [`Broker::serve`] waits up to [`BrokerSettings::grace`] for the writers to
//! flush.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::Semaphore;
use tokio::time::{self, Instant};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::envelope::{Published, encode_evt};
use super::queue::{Pushed, Queue};
use super::topic::{Pattern, validate_topic};
use super::topics::SYSTEM_BUS_HEALTH;
use super::wire::{self, Frame, FrameReader, Verb, WireError};

/// Patterns one connection may hold; a `SUB` beyond this is refused.
pub const MAX_PATTERNS: usize = 1024;

/// Tunables of a broker; the defaults are the production values.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Frames queued per connection before the oldest are dropped (1024).
    pub queue_capacity: usize,
    /// Simultaneous connections; further clients wait in `accept` (512).
    pub max_connections: usize,
    /// Period of the `system.bus.health` heartbeat (10 s).
    pub health_interval: Duration,
    /// How long shutdown waits for connections to flush (2 s).
    pub grace: Duration,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            queue_capacity: 1024,
            max_connections: 512,
            health_interval: Duration::from_secs(10),
            grace: Duration::from_secs(2),
        }
    }
}

/// Counters since the broker started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted in total.
    pub accepted: u64,
    /// Events accepted from publishers (and the broker's own heartbeats).
    pub published: u64,
    /// Event frames queued for subscribers.
    pub delivered: u64,
    /// Event frames discarded because a subscriber's outbox was full.
    pub dropped: u64,
    /// Requests refused with an `ERR` frame.
    pub errors: u64,
}

struct Conn {
    id: u64,
    outbox: Arc<Queue<Bytes>>,
    patterns: Vec<Pattern>,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    /// Drops of connections that have closed (open ones are read from their outbox).
    retired_drops: AtomicU64,
    errors: AtomicU64,
}

struct Shared {
    settings: BrokerSettings,
    conns: RwLock<Vec<Conn>>,
    next_id: AtomicU64,
    counters: Counters,
}

/// A broker; clone it freely (clones share state), serve it once.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("settings", &self.shared.settings)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What the reader does after a frame.
enum Flow {
    Continue,
    Close,
}

impl Broker {
    /// A broker with no connections yet.
    pub fn new(settings: BrokerSettings) -> Self {
        Broker {
            shared: Arc::new(Shared {
                settings,
                conns: RwLock::new(Vec::new()),
                next_id: AtomicU64::new(1),
                counters: Counters::default(),
            }),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> BrokerStats {
        let conns = self.shared.read();
        let c = &self.shared.counters;
        let live_drops: u64 = conns.iter().map(|conn| conn.outbox.dropped()).sum();
        BrokerStats {
            connections: conns.len(),
            accepted: c.accepted.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.retired_drops.load(Ordering::Relaxed) + live_drops,
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Serves clients on `listener` until `shutdown` is cancelled, then drains.
    pub async fn serve(&self, listener: UnixListener, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let limit = Arc::new(Semaphore::new(self.shared.settings.max_connections.max(1)));
        let started = Instant::now();
        tracker.spawn(self.clone().heartbeat(started, shutdown.clone()));
        // Connections are told to close only once the listener is gone, so a client that
        // reconnects on `BYE` cannot land in the backlog of a listener about to vanish.
        let closing = CancellationToken::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Usually EMFILE: let connections close before trying again.
                        tracing::warn!("bus accept failed: {err}");
                        time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            self.shared
                .counters
                .accepted
                .fetch_add(1, Ordering::Relaxed);
            let broker = self.clone();
            let closing = closing.clone();
            tracker.spawn(async move {
                broker.connection(stream, closing).await;
                drop(permit);
            });
        }
        drop(listener);
        closing.cancel();
        tracker.close();
        let grace = self.shared.settings.grace + Duration::from_millis(500);
        if time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("bus connections did not close within the grace period");
        }
    }

    async fn heartbeat(self, started: Instant, shutdown: CancellationToken) {
        let period = self.shared.settings.health_interval;
        let mut ticks = time::interval_at(started + period, period);
        let mut scratch = BytesMut::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let stats = self.stats();
            let body = json!({
                "type": "health",
                "payload": {
                    "pid": std::process::id(),
                    "uptime_sec": started.elapsed().as_secs(),
                    "ts": super::envelope::now_epoch(),
                    "connections": stats.connections,
                    "published": stats.published,
                    "dropped": stats.dropped,
                },
            });
            let body = body.to_string();
            let sent = Published::parse(body.as_bytes())
                .and_then(|p| self.publish(None, SYSTEM_BUS_HEALTH, &p, &mut scratch));
            if let Err(err) = sent {
                tracing::warn!("bus heartbeat not sent: {err}");
            }
        }
    }

    async fn connection(self, stream: UnixStream, closing: CancellationToken) {
        let shared = &self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Queue::new(shared.settings.queue_capacity));
        shared.write().push(Conn {
            id,
            outbox: outbox.clone(),
            patterns: Vec::new(),
        });
        let (rd, wr) = stream.into_split();
        let mut writer = tokio::spawn(write_loop(wr, outbox.clone()));
        let mut reader = FrameReader::new(rd);
        let mut name = String::new();
        let mut scratch = BytesMut::new();
        loop {
            let next = tokio::select! {
                biased;
                _ = closing.cancelled() => {
                    outbox.push(bare(Verb::Bye, ""));
                    break;
                }
                next = reader.next() => next,
            };
            match next {
                Ok(Some(frame)) => {
                    if let Flow::Close = self.handle(id, frame, &outbox, &mut name, &mut scratch) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err @ (WireError::Io(_) | WireError::Truncated)) => {
                    tracing::debug!(conn = id, client = %name, "bus read failed: {err}");
                    break;
                }
                Err(err) => {
                    self.refuse(&outbox, &name, "frame", &err.to_string());
                    break;
                }
            }
        }
        {
            let mut conns = shared.write();
            if let Some(pos) = conns.iter().position(|c| c.id == id) {
                let conn = conns.swap_remove(pos);
                let drops = conn.outbox.dropped();
                shared
                    .counters
                    .retired_drops
                    .fetch_add(drops, Ordering::Relaxed);
            }
        }
        outbox.close();
        // The last frames (ERR, BYE) go out unless the peer stopped reading.
        if time::timeout(shared.settings.grace, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        tracing::debug!(conn = id, client = %name, "bus client disconnected");
    }

    fn handle(
        &self,
        id: u64,
        frame: Frame,
        outbox: &Queue<Bytes>,
        name: &mut String,
        scratch: &mut BytesMut,
    ) -> Flow {
        match frame.verb {
            Verb::Hello => {
                tracing::debug!(conn = id, client = %frame.arg, "bus client connected");
                *name = frame.arg;
            }
            Verb::Pub => {
                if let Err(err) = validate_topic(&frame.arg) {
                    self.refuse(outbox, name, "PUB", &err.to_string());
                    return Flow::Continue;
                }
                match Published::parse(&frame.body) {
                    Ok(published) => {
                        if let Err(err) = self.publish(Some(id), &frame.arg, &published, scratch) {
                            self.refuse(outbox, name, "PUB", &err.to_string());
                        }
                    }
                    Err(err) => self.refuse(outbox, name, "PUB", &err.to_string()),
                }
            }
            Verb::Sub | Verb::Unsub => match Pattern::parse(&frame.arg) {
                Ok(pattern) => {
                    let mut conns = self.shared.write();
                    if let Some(conn) = conns.iter_mut().find(|c| c.id == id) {
                        let known = conn.patterns.iter().position(|p| *p == pattern);
                        match (frame.verb, known) {
                            (Verb::Sub, None) if conn.patterns.len() >= MAX_PATTERNS => {
                                drop(conns);
                                let reason = format!("more than {MAX_PATTERNS} patterns");
                                self.refuse(outbox, name, "SUB", &reason);
                            }
                            (Verb::Sub, None) => conn.patterns.push(pattern),
                            (Verb::Unsub, Some(pos)) => {
                                conn.patterns.swap_remove(pos);
                            }
                            _ => {}
                        }
                    }
                }
                Err(err) => self.refuse(outbox, name, frame.verb.as_str(), &err.to_string()),
            },
            Verb::Ping => {
                outbox.push(bare(Verb::Pong, &frame.arg));
            }
            Verb::Bye => return Flow::Close,
            Verb::Evt | Verb::Pong | Verb::Err => {
                let reason = format!("{} is sent by the broker, not to it", frame.verb);
                self.refuse(outbox, name, frame.verb.as_str(), &reason);
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    /// Encodes one `EVT` and queues it for every matching connection except `from`.
    fn publish(
        &self,
        from: Option<u64>,
        topic: &str,
        published: &Published<'_>,
        scratch: &mut BytesMut,
    ) -> Result<(), super::Error> {
        if scratch.capacity() < 4096 {
            scratch.reserve(64 * 1024);
        }
        encode_evt(topic, published, scratch)?;
        let frame = scratch.split().freeze();
        let counters = &self.shared.counters;
        counters.published.fetch_add(1, Ordering::Relaxed);
        let mut delivered = 0;
        for conn in self.shared.read().iter() {
            if Some(conn.id) == from || !conn.patterns.iter().any(|p| p.matches(topic)) {
                continue;
            }
            if conn.outbox.push(frame.clone()) != Pushed::Closed {
                delivered += 1;
            }
        }
        counters.delivered.fetch_add(delivered, Ordering::Relaxed);
        Ok(())
    }

    /// Answers a refused request with an `ERR` frame and counts it.
    fn refuse(&self, outbox: &Queue<Bytes>, client: &str, verb: &str, reason: &str) {
        tracing::debug!(client, verb, "bus request refused: {reason}");
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "error": reason, "verb": verb }).to_string();
        if let Ok(frame) = wire::encode_to_bytes(Verb::Err, "", body.as_bytes()) {
            outbox.push(frame);
        }
    }
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Vec<Conn>> {
        // The table is only changed by whole pushes and removals; a poisoned lock is intact.
        self.conns.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Conn>> {
        self.conns.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn bare(verb: Verb, arg: &str) -> Bytes {
    // PONG echoes a token that arrived in a valid header, so it always re-encodes.
    wire::encode_to_bytes(verb, arg, b"").unwrap_or_default()
}

/// Sends everything queued in one write until the outbox is closed and drained.
async fn write_loop(mut wr: OwnedWriteHalf, outbox: Arc<Queue<Bytes>>) {
    let mut batch = VecDeque::new();
    let mut buf = BytesMut::new();
    while outbox.take_all(&mut batch).await {
        buf.clear();
        for frame in batch.drain(..) {
            buf.extend_from_slice(&frame);
        }
        if wr.write_all(&buf).await.is_err() {
            // The peer is gone; stop queueing for it. The reader sees the end shortly.
            outbox.close();
            return;
        }
    }
    let _ = wr.shutdown().await;
}
