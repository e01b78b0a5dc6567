//! Client-side subscriptions: the handle a caller reads events from, and the table that
//! fans incoming events out to the handles.
//!
//! Each [`Subscription`] owns a bounded drop-oldest inbox ([`SUBSCRIPTION_QUEUE`] events),
//! so a consumer that falls behind loses its oldest events instead of stalling the
//! connection every other subscription shares. Dropping the handle unsubscribes; the
//! table reports when the last local subscription to a pattern goes, so a network client
//! sends one `SUB`/`UNSUB` per distinct pattern whatever the number of local handles.
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::envelope::Message;
use super::queue::{Pushed, Queue};
use super::topic::Pattern;

/// Events buffered per subscription before the oldest are dropped.
pub const SUBSCRIPTION_QUEUE: usize = 1024;

type OnDrop = Box<dyn FnOnce() + Send + Sync>;

/// A stream of events matching one pattern; ends when the bus closes or loses the broker
/// for good.
pub struct Subscription {
    pattern: String,
    queue: Arc<Queue<Message>>,
    buf: VecDeque<Message>,
    on_drop: Option<OnDrop>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("pattern", &self.pattern)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// A subscription that has already ended (what a disabled bus hands out).
    pub fn ended(pattern: &str) -> Self {
        let queue = Arc::new(Queue::new(1));
        queue.close();
        Subscription {
            pattern: pattern.to_owned(),
            queue,
            buf: VecDeque::new(),
            on_drop: None,
        }
    }

    /// The next event, or `None` once the subscription has ended and is drained.
    pub async fn recv(&mut self) -> Option<Message> {
        if self.buf.is_empty() && !self.queue.take_all(&mut self.buf).await {
            return None;
        }
        self.buf.pop_front()
    }

    /// The next event if one is already here; never waits.
    pub fn try_recv(&mut self) -> Option<Message> {
        if self.buf.is_empty() {
            self.queue.try_take_all(&mut self.buf);
        }
        self.buf.pop_front()
    }

    /// The pattern as subscribed.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Events this subscription lost because its inbox was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

struct Entry {
    id: u64,
    pattern: Pattern,
    queue: Arc<Queue<Message>>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: Vec<Entry>,
    closed: bool,
}

/// What a dispatch did, for the owner's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Subscriptions the event was queued for.
    pub delivered: u64,
    /// Older events discarded to make room.
    pub dropped: u64,
}

/// The local subscriptions of one bus handle.
#[derive(Default)]
pub struct Subscribers {
    table: Mutex<Table>,
}

impl fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscribers")
            .field("count", &self.lock().entries.len())
            .finish()
    }
}

impl Subscribers {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Entries are pushed and removed whole; a poisoned lock holds a consistent table.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscription; `first` runs under the table lock when no other local
    /// subscription has this pattern. `None` when the table is closed.
    pub fn add(
        self: &Arc<Self>,
        pattern: Pattern,
        first: impl FnOnce(&Pattern),
        last: impl FnOnce(&Pattern) + Send + Sync + 'static,
    ) -> Option<Subscription> {
        let mut table = self.lock();
        if table.closed {
            return None;
        }
        if !table.entries.iter().any(|e| e.pattern == pattern) {
            first(&pattern);
        }
        let id = table.next_id;
        table.next_id += 1;
        let queue = Arc::new(Queue::new(SUBSCRIPTION_QUEUE));
        table.entries.push(Entry {
            id,
            pattern: pattern.clone(),
            queue: queue.clone(),
        });
        let weak = Arc::downgrade(self);
        let on_drop: OnDrop = Box::new(move || {
            if let Some(subs) = weak.upgrade() {
                subs.remove(id, last);
            }
        });
        Some(Subscription {
            pattern: pattern.as_str().to_owned(),
            queue,
            buf: VecDeque::new(),
            on_drop: Some(on_drop),
        })
    }

    fn remove(&self, id: u64, last: impl FnOnce(&Pattern)) {
        let mut table = self.lock();
        let Some(pos) = table.entries.iter().position(|e| e.id == id) else {
            return;
        };
        let entry = table.entries.swap_remove(pos);
        entry.queue.close();
        if !table.closed && !table.entries.iter().any(|e| e.pattern == entry.pattern) {
            last(&entry.pattern);
        }
    }

    /// Runs `f` over the distinct patterns, under the table lock (a reconnect re-sends
    /// them while no subscription can come or go).
    pub fn with_patterns<R>(&self, f: impl FnOnce(&[&Pattern]) -> R) -> R {
        let table = self.lock();
        let mut distinct: Vec<&Pattern> = Vec::new();
        for entry in &table.entries {
            if !distinct.contains(&&entry.pattern) {
                distinct.push(&entry.pattern);
            }
        }
        f(&distinct)
    }

    /// Queues `msg` for every subscription whose pattern matches its topic.
    pub fn dispatch(&self, msg: &Message) -> Fanout {
        let table = self.lock();
        let mut fanout = Fanout::default();
        for entry in table
            .entries
            .iter()
            .filter(|e| e.pattern.matches(&msg.topic))
        {
            match entry.queue.push(msg.clone()) {
                Pushed::Queued => fanout.delivered += 1,
                Pushed::DroppedOldest => {
                    fanout.delivered += 1;
                    fanout.dropped += 1;
                }
                Pushed::Closed => {}
            }
        }
        fanout
    }

    /// Ends every subscription (they drain what is queued, then return `None`) and
    /// refuses new ones.
    pub fn close_all(&self) {
        let mut table = self.lock();
        table.closed = true;
        for entry in &table.entries {
            entry.queue.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_util::bytes::Bytes;

    fn msg(topic: &str) -> Message {
        Message {
            topic: topic.into(),
            body: Bytes::from_static(b"{}"),
        }
    }

    #[tokio::test]
    async fn first_and_last_fire_once_per_pattern() {
        let subs = Arc::new(Subscribers::default());
        let firsts = AtomicUsize::new(0);
        let lasts = Arc::new(AtomicUsize::new(0));
        let pat = Pattern::parse("a.>").expect("pattern");
        let add = |subs: &Arc<Subscribers>| {
            let lasts = lasts.clone();
            subs.add(
                pat.clone(),
                |_| {
                    firsts.fetch_add(1, Ordering::SeqCst);
                },
                move |_| {
                    lasts.fetch_add(1, Ordering::SeqCst);
                },
            )
            .expect("open")
        };
        let mut one = add(&subs);
        let two = add(&subs);
        assert_eq!(firsts.load(Ordering::SeqCst), 1);
        assert_eq!(subs.dispatch(&msg("a.b")).delivered, 2);
        assert_eq!(subs.dispatch(&msg("b.a")).delivered, 0);
        drop(two);
        assert_eq!(lasts.load(Ordering::SeqCst), 0);
        assert_eq!(one.recv().await.map(|m| m.topic), Some("a.b".into()));
        drop(one);
        assert_eq!(lasts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn closing_ends_subscriptions_after_draining() {
        let subs = Arc::new(Subscribers::default());
        let pat = Pattern::parse("x").expect("pattern");
        let mut sub = subs.add(pat.clone(), |_| {}, |_| {}).expect("open");
        subs.dispatch(&msg("x"));
        subs.close_all();
        assert!(sub.recv().await.is_some());
        assert!(sub.recv().await.is_none());
        assert!(subs.add(pat, |_| {}, |_| {}).is_none());
        let mut ended = Subscription::ended("y");
        assert!(ended.recv().await.is_none());
    }
}
