//! A bounded, drop-oldest, many-producer single-consumer queue.
//!
//! Every hop of the bus (a client's outbound frames, the broker's per-connection outbox,
//! a client's per-subscription inbox) goes through one of these. Pushing never waits:
//! when the queue is full the oldest item is discarded and counted, so the freshest state
//! wins and a stalled consumer costs its producers nothing. The consumer takes everything
//! queued at once ([`Queue::take_all`]), which lets a writer turn a burst of frames into
//! one `write` call.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// What happened to a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued with room to spare.
    Queued,
    /// Queued, and the oldest item was discarded to make room.
    DroppedOldest,
    /// The queue is closed; the item was discarded.
    Closed,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// The queue; share it behind an `Arc`.
#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    notify: Notify,
    dropped: AtomicU64,
}

impl<T> Queue<T> {
    /// An open queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
            notify: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the deque inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `item`, discarding the oldest one if full; never waits.
    pub fn push(&self, item: T) -> Pushed {
        let outcome = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed;
            }
            let outcome = if state.items.len() >= self.capacity {
                state.items.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Pushed::DroppedOldest
            } else {
                Pushed::Queued
            };
            state.items.push_back(item);
            outcome
        };
        self.notify.notify_one();
        outcome
    }

    /// Moves every queued item into `into` (which should be empty), waiting for at least
    /// one; returns `false` once the queue is closed and drained.
    pub async fn take_all(&self, into: &mut VecDeque<T>) -> bool {
        loop {
            match self.try_take_all(into) {
                Some(taken) => return taken,
                None => self.notify.notified().await,
            }
        }
    }

    /// Like [`Queue::take_all`] without waiting: `None` when open but empty.
    pub fn try_take_all(&self, into: &mut VecDeque<T>) -> Option<bool> {
        let mut state = self.lock();
        if !state.items.is_empty() {
            if into.is_empty() {
                std::mem::swap(&mut state.items, into);
            } else {
                into.append(&mut state.items);
            }
            return Some(true);
        }
        if state.closed { Some(false) } else { None }
    }

    /// Discards everything queued, returning how many items went (not counted as drops:
    /// the owner decides what a discard means).
    pub fn clear(&self) -> u64 {
        let mut state = self.lock();
        let n = state.items.len();
        state.items.clear();
        n as u64
    }

    /// Refuses further pushes and wakes the consumer; queued items can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Whether [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many items were discarded because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_drops_the_oldest_and_counts() {
        let q = Queue::new(2);
        assert_eq!(q.push(1), Pushed::Queued);
        assert_eq!(q.push(2), Pushed::Queued);
        assert_eq!(q.push(3), Pushed::DroppedOldest);
        assert_eq!(q.dropped(), 1);
        let mut out = VecDeque::new();
        assert!(q.take_all(&mut out).await);
        assert_eq!(out, [2, 3]);
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let q = Queue::new(4);
        q.push("a");
        q.close();
        assert_eq!(q.push("b"), Pushed::Closed);
        let mut out = VecDeque::new();
        assert!(q.take_all(&mut out).await);
        assert_eq!(out, ["a"]);
        out.clear();
        assert!(!q.take_all(&mut out).await);
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken() {
        let q = std::sync::Arc::new(Queue::new(4));
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut out = VecDeque::new();
                q.take_all(&mut out).await;
                out
            })
        };
        tokio::task::yield_now().await;
        q.push(7);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), consumer)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(got, [7]);
    }
}
