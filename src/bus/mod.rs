//! The service bus: host-local publish/subscribe between decnet's workers.
//!
//! Inside one host the ingester, profiler, reconciler, mutator and the dashboard's event
//! stream notify each other through a small broker on a UNIX socket (`decnet bus`). The
//! database stays the source of truth; the bus only says "look again". Delivery is
//! therefore at-most-once and fire-and-forget, and every hop is a bounded drop-oldest
//! queue ([`queue`]): a slow or absent subscriber loses events, it never slows a
//! publisher, and the losses are counted.
//!
//! # Layout
//! - [`wire`]: the frame codec (verb line, big-endian length, JSON body) and its limits.
//! - [`topic`]: topic validation and `*` / `>` wildcard matching.
//! - [`topics`]: the canonical topic names and builders.
//! - [`envelope`]: the event envelope the broker issues, and [`Message`].
//! - [`queue`]: the bounded drop-oldest queue every hop uses.
//! - [`broker`]: the broker, serving an already-bound listener.
//! - [`client`]: [`UnixBus`], the broker client, reconnecting with backoff.
//! - [`local`]: [`NullBus`] (bus disabled) and [`LocalBus`] (in-process).
//! - [`subscription`]: [`Subscription`], what a subscriber reads from.
//!
//! # Where this differs from the original
//! - A refused request is answered with an `ERR` frame (`{"error": …}`) before anything
//!   else happens. Requests whose frame is intact (a malformed topic or pattern, a body
//!   that is not a JSON object) leave the connection open; a broken frame (oversized,
//!   unknown verb, non-ASCII header, or a client sending `EVT`) closes it, since the byte
//!   stream can no longer be trusted.
//! - `PING token` / `PONG token` let a client wait until the broker has processed every
//!   frame it sent before ([`UnixBus::sync`]): tests and `decnet bus pub` use it instead
//!   of sleeping.
//! - The client reconnects with backoff when the broker goes away and re-sends its
//!   subscriptions; events published in the gap are dropped and counted.
pub mod broker;
pub mod client;
pub mod envelope;
pub mod local;
pub mod queue;
pub mod subscription;
pub mod topic;
pub mod topics;
pub mod wire;

pub use broker::{Broker, BrokerSettings, BrokerStats};
pub use client::{ClientStats, Link, UnixBus};
pub use envelope::{Envelope, Message};
pub use local::{LocalBus, NullBus};
pub use subscription::Subscription;
pub use topic::{Pattern, TopicError};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::config::{BusConfig, BusKind};

/// Why a bus operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The topic or pattern is malformed.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// A body or envelope is not the JSON expected.
    #[error("invalid event JSON: {0}")]
    BadEnvelope(serde_json::Error),
    /// The bus handle was closed.
    #[error("the bus is closed")]
    Closed,
    /// The client is between connections to the broker; the event was dropped.
    #[error("not connected to the bus broker")]
    NotConnected,
    /// No broker answers on the socket.
    #[error("cannot reach the bus broker at {path}: {source} (is `decnet bus` running?)")]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// Why connecting failed.
        source: std::io::Error,
    },
    /// Another broker already serves this socket.
    #[error("another bus broker is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket path is taken by something that is not a socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// A filesystem or socket operation on the broker's path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// What every bus implementation offers. Methods never wait, so they can be called from
/// async tasks and blocking threads alike.
pub trait Bus: Send + Sync + fmt::Debug {
    /// Publishes `payload` on `topic` as an event of type `event_type`. `Ok` means
    /// accepted for delivery, not delivered.
    fn publish(
        &self,
        topic: &str,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<(), Error>;

    /// Starts receiving events whose topic matches `pattern`.
    fn subscribe(&self, pattern: &str) -> Result<Subscription, Error>;

    /// Ends every subscription and refuses further use.
    fn close(&self);
}

static SAFE_PUBLISH_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Publishes and never fails: a missing bus is a no-op, an error is logged and counted
/// ([`publish_failures`]). Warnings are logged on the 1st, 2nd, 4th, 8th… failure so a
/// broker outage cannot flood the log; the rest go to debug.
pub fn publish_safely(
    bus: Option<&dyn Bus>,
    topic: &str,
    payload: &serde_json::Value,
    event_type: &str,
) {
    let Some(bus) = bus else {
        return;
    };
    if let Err(err) = bus.publish(topic, event_type, payload) {
        let failures = SAFE_PUBLISH_FAILURES.fetch_add(1, Ordering::Relaxed) + 1;
        if failures.is_power_of_two() {
            tracing::warn!(topic, failures, "bus publish failed: {err}");
        } else {
            tracing::debug!(topic, failures, "bus publish failed: {err}");
        }
    }
}

/// How many [`publish_safely`] calls failed in this process.
pub fn publish_failures() -> u64 {
    SAFE_PUBLISH_FAILURES.load(Ordering::Relaxed)
}

/// The bus a worker should use, as configured: disabled, the broker client (connecting
/// in the background, so the broker may start later), or in-process. Needs a Tokio
/// runtime for the broker client.
pub fn from_config(config: &BusConfig, client_name: &str) -> Arc<dyn Bus> {
    if !config.enabled {
        return Arc::new(NullBus);
    }
    match config.kind {
        BusKind::Unix => Arc::new(UnixBus::background(&config.socket, client_name)),
        BusKind::Fake => Arc::new(LocalBus::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_safely_swallows_and_counts() {
        let bus = LocalBus::new();
        let mut all = bus.subscribe(">").expect("subscribe");
        publish_safely(None, "a.b", &serde_json::json!({}), "t");
        publish_safely(Some(&bus), "a.b", &serde_json::json!({"n": 1}), "t");
        assert_eq!(all.try_recv().map(|m| m.topic), Some("a.b".into()));
        assert!(all.try_recv().is_none());
        let before = publish_failures();
        publish_safely(Some(&bus), "bad topic", &serde_json::json!({}), "t");
        bus.close();
        publish_safely(Some(&bus), "a.b", &serde_json::json!({}), "t");
        assert!(publish_failures() >= before + 2);
    }

    #[tokio::test]
    async fn factory_follows_the_configuration() {
        let mut config = BusConfig {
            socket: PathBuf::from("/nonexistent/bus.sock"),
            group: "decnet".into(),
            enabled: false,
            kind: BusKind::Fake,
        };
        let mut sub = from_config(&config, "t").subscribe("a").expect("null bus");
        assert!(
            sub.recv().await.is_none(),
            "a disabled bus ends subscriptions"
        );
        config.enabled = true;
        let bus = from_config(&config, "t");
        let mut sub = bus.subscribe("a.*").expect("fake bus");
        bus.publish("a.b", "t", &serde_json::json!({}))
            .expect("publish");
        assert_eq!(sub.recv().await.map(|m| m.topic), Some("a.b".into()));
    }
}
