//! The two buses that need no broker: [`NullBus`] for a disabled bus and [`FakeBus`] for
//! tests.
//!
//! `FakeBus` routes in-process with the same topic rules, envelope and drop-oldest
//! subscription queues as the real client, and records every accepted event so a test can
//! assert on what a component published. Unlike the broker it also delivers to
//! subscriptions of the publishing handle: in one process there is no "publishing
//! connection" to exclude.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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

/// An in-process bus that records what is published.
#[derive(Debug, Clone, Default)]
pub struct FakeBus {
    inner: Arc<FakeInner>,
}

#[derive(Debug, Default)]
struct FakeInner {
    subs: Arc<Subscribers>,
    published: Mutex<Vec<Message>>,
    closed: AtomicBool,
}

impl FakeBus {
    /// An open, empty bus.
    pub fn new() -> Self {
        FakeBus::default()
    }

    /// Every event accepted so far, oldest first.
    pub fn published(&self) -> Vec<Message> {
        self.inner
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Bus for FakeBus {
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
        self.inner
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
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
    async fn fake_bus_routes_records_and_closes() {
        let bus = FakeBus::new();
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
        assert_eq!(bus.published().len(), 2);
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
