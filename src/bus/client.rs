//! [`UnixBus`]: the broker client every worker holds.
//!
//! One socket per bus handle, shared by every clone. Publishing encodes a `PUB` frame and
//! pushes it onto a bounded drop-oldest outbox that a writer task flushes, so `publish`
//! never waits and works from any thread. A reader task fans `EVT` frames out to the
//! local [`Subscription`]s; only one `SUB` per distinct pattern goes to the broker.
//!
//! When the connection is lost (the broker restarted, say), a manager task reconnects
//! with exponential backoff ([`MIN_BACKOFF`] doubling to [`MAX_BACKOFF`]), says `HELLO`
//! again and re-sends every pattern before any new `PUB`, so subscriptions survive a
//! broker restart. Events published while disconnected are refused with
//! [`Error::NotConnected`] and counted: the bus is at-most-once, and replaying stale
//! notifications after a restart would be worse than losing them.
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{oneshot, watch};
use tokio::time;
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use super::envelope::{Message, encode_pub};
use super::queue::{Pushed, Queue};
use super::subscription::{Subscribers, Subscription};
use super::topic::{Pattern, validate_topic};
use super::wire::{self, Frame, FrameReader, Verb};
use super::{Bus, Error};

/// Frames queued for the broker before the oldest are dropped.
pub const OUTBOX_CAPACITY: usize = 1024;
/// First delay before reconnecting.
pub const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest delay between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long closing waits for queued frames to reach the broker.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The state of a client's link to the broker, as [`UnixBus::link`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Connections established so far (1 after the first, 2 after one reconnect…).
    pub established: u64,
    /// Whether a connection is up now.
    pub up: bool,
}

/// Counters of one client since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections established (1 after the first, 2 after one reconnect…).
    pub connections: u64,
    /// Events accepted by `publish`.
    pub published: u64,
    /// Events lost on the way out: published while disconnected, or pushed out of a
    /// full outbox.
    pub dropped: u64,
    /// Events received from the broker.
    pub received: u64,
    /// Events lost because a local subscription's inbox was full.
    pub inbound_dropped: u64,
    /// `ERR` frames received (refused requests).
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    inbound_dropped: AtomicU64,
    refused: AtomicU64,
}

struct Inner {
    path: PathBuf,
    name: String,
    outbox: Queue<Bytes>,
    connected: AtomicBool,
    subs: Arc<Subscribers>,
    pings: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next_ping: AtomicU64,
    link: watch::Sender<Link>,
    counters: Counters,
    shutdown: CancellationToken,
}

/// Cancels the manager when the last [`UnixBus`] clone goes away.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
    }
}

/// A client of the `decnet bus` broker; cheap to clone, all clones share one socket.
#[derive(Clone)]
pub struct UnixBus {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for UnixBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.handle.inner;
        f.debug_struct("UnixBus")
            .field("path", &inner.path)
            .field("name", &inner.name)
            .field("connected", &inner.connected.load(Ordering::Relaxed))
            .finish()
    }
}

impl UnixBus {
    /// Connects to the broker at `path` now, failing if none answers; reconnects on its
    /// own afterwards. `name` identifies this client in the broker's logs.
    pub async fn connect(path: impl AsRef<Path>, name: &str) -> Result<UnixBus, Error> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| Error::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let bus = UnixBus::new(path, name);
        bus.handle.inner.prelude();
        tokio::spawn(manage(bus.handle.inner.clone(), Some(stream)));
        Ok(bus)
    }

    /// A client that connects in the background and keeps retrying, for workers that may
    /// start before the broker. Must be called inside a Tokio runtime.
    pub fn background(path: impl AsRef<Path>, name: &str) -> UnixBus {
        let bus = UnixBus::new(path.as_ref(), name);
        tokio::spawn(manage(bus.handle.inner.clone(), None));
        bus
    }

    fn new(path: &Path, name: &str) -> UnixBus {
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            name: name.to_owned(),
            outbox: Queue::new(OUTBOX_CAPACITY),
            connected: AtomicBool::new(false),
            subs: Arc::new(Subscribers::default()),
            pings: Mutex::new(HashMap::new()),
            next_ping: AtomicU64::new(0),
            link: watch::Sender::new(Link::default()),
            counters: Counters::default(),
            shutdown: CancellationToken::new(),
        });
        UnixBus {
            handle: Arc::new(Handle { inner }),
        }
    }

    /// Waits until the broker has processed every frame this client sent before (its
    /// subscriptions are in force, its events routed).
    pub async fn sync(&self) -> Result<(), Error> {
        let inner = &self.handle.inner;
        if inner.shutdown.is_cancelled() {
            return Err(Error::Closed);
        }
        if !inner.connected.load(Ordering::Acquire) {
            return Err(Error::NotConnected);
        }
        let token = inner.next_ping.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        inner.lock_pings().insert(token, tx);
        inner.send(Verb::Ping, &token.to_string());
        rx.await.map_err(|_| Error::NotConnected)
    }

    /// Watches the link to the broker: tests wait on it for a reconnect instead of
    /// sleeping.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.handle.inner.link.subscribe()
    }

    /// Whether a connection to the broker is up.
    pub fn is_connected(&self) -> bool {
        self.handle.inner.connected.load(Ordering::Acquire)
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        let inner = &self.handle.inner;
        let c = &inner.counters;
        ClientStats {
            connections: inner.link.borrow().established,
            published: c.published.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            inbound_dropped: c.inbound_dropped.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        }
    }
}

impl Bus for UnixBus {
    fn publish(
        &self,
        topic: &str,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<(), Error> {
        let inner = &self.handle.inner;
        validate_topic(topic)?;
        if inner.shutdown.is_cancelled() {
            return Err(Error::Closed);
        }
        let counters = &inner.counters;
        if !inner.connected.load(Ordering::Acquire) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Error::NotConnected);
        }
        let mut buf = BytesMut::with_capacity(320 + topic.len());
        encode_pub(topic, event_type, payload, &mut buf)?;
        match inner.outbox.push(buf.freeze()) {
            Pushed::Queued => {}
            Pushed::DroppedOldest => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Closed => return Err(Error::Closed),
        }
        counters.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Result<Subscription, Error> {
        let inner = &self.handle.inner;
        let pattern = Pattern::parse(pattern)?;
        let weak: Weak<Inner> = Arc::downgrade(inner);
        inner
            .subs
            .add(
                pattern,
                |p| inner.send_if_connected(Verb::Sub, p.as_str()),
                move |p| {
                    if let Some(inner) = weak.upgrade() {
                        inner.send_if_connected(Verb::Unsub, p.as_str());
                    }
                },
            )
            .ok_or(Error::Closed)
    }

    fn close(&self) {
        self.handle.inner.shutdown.cancel();
    }
}

impl Inner {
    fn lock_pings(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        // Inserts and removals are whole; a poisoned map is still consistent.
        self.pings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control frame; its arguments come from validated patterns or numbers.
    fn send(&self, verb: Verb, arg: &str) {
        match wire::encode_to_bytes(verb, arg, b"") {
            Ok(frame) => {
                self.outbox.push(frame);
            }
            Err(err) => tracing::warn!("bus {verb} frame not sent: {err}"),
        }
    }

    fn send_if_connected(&self, verb: Verb, arg: &str) {
        if self.connected.load(Ordering::Acquire) {
            self.send(verb, arg);
        }
    }

    /// Starts a connection's conversation: `HELLO`, then every pattern, then whatever is
    /// published next. Runs under the subscription lock so no `SUB` can slip past.
    fn prelude(&self) {
        self.subs.with_patterns(|patterns| {
            let stale = self.outbox.clear();
            self.counters.dropped.fetch_add(stale, Ordering::Relaxed);
            // Their PINGs were just discarded: fail those `sync` calls rather than hang.
            self.lock_pings().clear();
            self.send(Verb::Hello, &self.name);
            for pattern in patterns {
                self.send(Verb::Sub, pattern.as_str());
            }
            self.connected.store(true, Ordering::Release);
        });
        self.link.send_modify(|link| {
            link.established += 1;
            link.up = true;
        });
    }

    fn disconnected(&self) {
        self.connected.store(false, Ordering::Release);
        self.link
            .send_if_modified(|link| std::mem::replace(&mut link.up, false));
        // Waiters of `sync` learn the connection is gone.
        self.lock_pings().clear();
    }

    /// Handles one frame from the broker; `false` ends the connection.
    fn on_frame(&self, frame: Frame) -> bool {
        match frame.verb {
            Verb::Evt => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                let msg = Message {
                    topic: frame.arg,
                    body: frame.body,
                };
                let fanout = self.subs.dispatch(&msg);
                if fanout.dropped > 0 {
                    self.counters
                        .inbound_dropped
                        .fetch_add(fanout.dropped, Ordering::Relaxed);
                }
            }
            Verb::Pong => {
                if let Some(tx) = frame
                    .arg
                    .parse()
                    .ok()
                    .and_then(|token| self.lock_pings().remove(&token))
                {
                    let _ = tx.send(());
                }
            }
            Verb::Err => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                let reason = String::from_utf8_lossy(&frame.body);
                tracing::warn!(client = %self.name, "bus broker refused a request: {reason}");
            }
            Verb::Bye => return false,
            other => {
                tracing::warn!(client = %self.name, "bus broker sent an unexpected {other}");
            }
        }
        true
    }
}

/// Owns the connection: drives it, reconnects with backoff, and ends subscriptions when
/// the bus is closed.
async fn manage(inner: Arc<Inner>, mut first: Option<UnixStream>) {
    loop {
        let stream = match first.take() {
            Some(stream) => stream,
            None => match reconnect(&inner).await {
                Some(stream) => {
                    inner.prelude();
                    stream
                }
                None => break,
            },
        };
        drive(&inner, stream).await;
        inner.disconnected();
        if inner.shutdown.is_cancelled() {
            break;
        }
        tracing::info!(client = %inner.name, "lost the bus broker; reconnecting");
    }
    inner.disconnected();
    inner.outbox.close();
    inner.subs.close_all();
}

/// Connects with exponential backoff; `None` once the bus is closed.
async fn reconnect(inner: &Inner) -> Option<UnixStream> {
    let mut delay = MIN_BACKOFF;
    loop {
        match UnixStream::connect(&inner.path).await {
            Ok(stream) => return Some(stream),
            Err(err) => {
                tracing::debug!(path = %inner.path.display(), "bus connect failed: {err}");
            }
        }
        tokio::select! {
            _ = inner.shutdown.cancelled() => return None,
            _ = time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Runs one connection until the broker leaves, the socket fails, or the bus closes.
async fn drive(inner: &Arc<Inner>, stream: UnixStream) {
    let (rd, wr) = stream.into_split();
    let lost = CancellationToken::new();
    let mut writer = tokio::spawn(write_loop(wr, inner.clone(), lost.clone()));
    let mut reader = FrameReader::new(rd);
    let closing = loop {
        let next = tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => break true,
            _ = lost.cancelled() => break false,
            next = reader.next() => next,
        };
        match next {
            Ok(Some(frame)) => {
                if !inner.on_frame(frame) {
                    break false;
                }
            }
            Ok(None) => break false,
            Err(err) => {
                tracing::warn!(client = %inner.name, "bus connection failed: {err}");
                break false;
            }
        }
    };
    if closing {
        // Flush what was published before `close`, then say goodbye.
        inner.send(Verb::Bye, "");
        inner.outbox.close();
        if time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
            writer.abort();
        }
    } else {
        lost.cancel();
        writer.abort();
    }
}

/// Sends everything queued in one write, until the connection is lost or the outbox
/// closes.
async fn write_loop(mut wr: OwnedWriteHalf, inner: Arc<Inner>, lost: CancellationToken) {
    let mut batch = VecDeque::new();
    let mut buf = BytesMut::new();
    loop {
        let more = tokio::select! {
            _ = lost.cancelled() => return,
            more = inner.outbox.take_all(&mut batch) => more,
        };
        if !more {
            let _ = wr.shutdown().await;
            return;
        }
        buf.clear();
        for frame in batch.drain(..) {
            buf.extend_from_slice(&frame);
        }
        if let Err(err) = wr.write_all(&buf).await {
            tracing::debug!(client = %inner.name, "bus write failed: {err}");
            lost.cancel();
            return;
        }
    }
}
