//! The two buses that need no broker: [`NullBus`] for a disabled bus and [`LocalBus`] for
//! one process (`DECNET_BUS_TYPE=fake`, and tests).
//!
//! `LocalBus` routes in-process with the same topic rules, envelope and drop-oldest
//! subscription queues as the real client. Unlike the broker it also delivers to
//! subscriptions of the publishing handle: in one process there is no "publishing
//! connection" to exclude. It keeps nothing beyond the subscriptions' bounded queues (the
//! original's FakeBus also recorded every event, which in a long-running process is a
//! leak); a test that wants to see what was published subscribes to `>` first.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::envelope::{Message, envelope_body};
use super::subscription::{Subscribers, Subscription};
use super::topic::{Pattern, validate_topic};
use super::{Bus, Error};

/// The bus when `DECNET_BUS_ENABLED=false`: publishing does nothing, subscriptions end at
/// once.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullBus;

impl Bus for NullBus {
    fn publish(&self, _: &str, _: &str, _: &serde_json::Value) -> Result<(), Error> {
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Result<Subscription, Error> {
        Ok(Subscription::ended(pattern))
    }

    fn close(&self) {}
}

/// An in-process bus: what is published goes to this process's subscriptions only.
#[derive(Debug, Clone, Default)]
pub struct LocalBus {
    inner: Arc<LocalInner>,
}

#[derive(Debug, Default)]
struct LocalInner {
    subs: Arc<Subscribers>,
    closed: AtomicBool,
}

impl LocalBus {
    /// An open bus without subscriptions.
    pub fn new() -> Self {
        LocalBus::default()
    }
}

impl Bus for LocalBus {
    fn publish(
        &self,
        topic: &str,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        validate_topic(topic)?;
        let msg = Message {
            topic: topic.to_owned(),
            body: envelope_body(topic, event_type, payload)?,
        };
        self.inner.subs.dispatch(&msg);
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Result<Subscription, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let pattern = Pattern::parse(pattern)?;
        self.inner
            .subs
            .add(pattern, |_| {}, |_| {})
            .ok_or(Error::Closed)
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.subs.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn local_bus_routes_and_closes() {
        let bus = LocalBus::new();
        let mut star = bus.subscribe("decky.*.state").expect("sub");
        let mut tail = bus.subscribe("decky.>").expect("sub");
        bus.publish("decky.h:w1.state", "state", &json!({"state": "running"}))
            .expect("pub");
        bus.publish("decky.h:w1.lifecycle", "lifecycle", &json!({}))
            .expect("pub");
        let got = star.recv().await.expect("event");
        let env = got.envelope().expect("envelope");
        assert_eq!(env.topic, "decky.h:w1.state");
        assert_eq!(env.payload, json!({"state": "running"}));
        assert_eq!(
            tail.recv().await.map(|m| m.topic),
            Some("decky.h:w1.state".into())
        );
        assert_eq!(
            tail.recv().await.map(|m| m.topic),
            Some("decky.h:w1.lifecycle".into())
        );
        assert!(matches!(
            bus.publish("bad..topic", "t", &json!({})),
            Err(Error::Topic(_))
        ));
        bus.close();
        assert!(star.recv().await.is_none());
        assert!(matches!(
            bus.publish("a", "t", &json!({})),
            Err(Error::Closed)
        ));
        assert!(matches!(bus.subscribe("a"), Err(Error::Closed)));
    }

    #[tokio::test]
    async fn null_bus_accepts_and_ends() {
        let bus = NullBus;
        bus.publish("a", "t", &json!({})).expect("no-op");
        let mut sub = bus.subscribe("a.>").expect("sub");
        assert!(sub.recv().await.is_none());
    }
}
