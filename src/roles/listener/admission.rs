//! Who gets a place, and how many bytes all connections may hold together.
//!
//! Anyone who can reach the port can open TCP connections; only enrolled workers can
//! finish the mTLS handshake. So the two kinds get separate budgets:
//!
//! - [`Doorway`]: at most [`Settings::max_unauthenticated`] connections that have not
//!   yet sent a valid first frame (TLS handshake, allow-list check and HELLO included),
//!   each with the short [`Settings::auth_timeout`]. The accept loop never waits for a
//!   place: when the doorway is full, the newcomer takes the place of the oldest
//!   connection that has not sent a single byte yet, or else of the oldest one. A real
//!   forwarder speaks at once (its ClientHello) and finishes in a few round trips, so an
//!   idle flood keeps evicting itself and cannot hold the door shut; an attacker would
//!   have to open connections faster than a handshake completes.
//! - Authenticated workers hold one of [`Settings::max_workers`] places (a semaphore in
//!   the listener), which unauthenticated connections never touch.
//! - [`Budget`]: the bytes of received lines buffered by every connection together
//!   (pending and committing batches), a semaphore of bytes. A connection that cannot get
//!   bytes for its next line stops reading until other batches commit, so TCP pushes back.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the listener says, at most, that it is dropping unauthenticated connections.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The places for connections that have not authenticated yet.
#[derive(Debug)]
pub(super) struct Doorway {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    /// In accept order, oldest first.
    waiting: VecDeque<Entry>,
    evicted_since_warning: u64,
    warned_at: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    quiet: bool,
    evict: CancellationToken,
}

impl Doorway {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            inner: Mutex::new(Inner {
                next_id: 0,
                waiting: VecDeque::new(),
                evicted_since_warning: 0,
                warned_at: None,
            }),
        })
    }

    /// A place for a connection just accepted, evicting another if the doorway is full.
    pub(super) fn admit(self: &Arc<Self>) -> Ticket {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.waiting.len() >= self.cap {
            let victim = inner.waiting.iter().position(|e| e.quiet).unwrap_or(0);
            if let Some(entry) = inner.waiting.remove(victim) {
                entry.evict.cancel();
                inner.evicted_since_warning += 1;
            }
            let now = Instant::now();
            if inner
                .warned_at
                .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
            {
                tracing::warn!(
                    cap = self.cap,
                    evicted = inner.evicted_since_warning,
                    "unauthenticated connections at their cap: dropping the oldest silent ones"
                );
                inner.warned_at = Some(now);
                inner.evicted_since_warning = 0;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = CancellationToken::new();
        inner.waiting.push_back(Entry {
            id,
            quiet: true,
            evict: evict.clone(),
        });
        Ticket {
            doorway: self.clone(),
            id,
            evict,
        }
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut VecDeque<Entry>, usize)) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = inner.waiting.iter().position(|e| e.id == id) {
            f(&mut inner.waiting, i);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .len()
    }
}

/// One connection's place in the [`Doorway`]; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Ticket {
    doorway: Arc<Doorway>,
    id: u64,
    evict: CancellationToken,
}

impl Ticket {
    /// The peer has sent its first bytes: it is no longer the first to be evicted.
    pub(super) fn spoke(&self) {
        self.doorway
            .update(self.id, |waiting, i| waiting[i].quiet = false);
    }

    /// Resolves when a newer connection took this place.
    pub(super) async fn evicted(&self) {
        self.evict.cancelled().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.doorway.update(self.id, |waiting, i| {
            waiting.remove(i);
        });
    }
}

/// The shared byte budget of buffered lines (the rows they were formatted into).
#[derive(Debug, Clone)]
pub(super) struct Budget {
    free: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    /// A budget of `bytes`, never less than `floor`.
    pub(super) fn new(bytes: usize, floor: usize) -> Self {
        let total = bytes.max(floor).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            free: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Permits for `bytes`: a charge larger than the whole budget takes all of it, so
    /// one line always fits once nothing else is held.
    fn permits(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.clamp(1, self.total)).unwrap_or(u32::MAX)
    }

    /// `bytes` from the budget if they are free now.
    pub(super) fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.free
            .clone()
            .try_acquire_many_owned(self.permits(bytes))
            .ok()
    }

    /// `bytes` from the budget once they are free (cancel-safe: nothing is taken if dropped).
    pub(super) async fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.free
            .clone()
            .acquire_many_owned(self.permits(bytes))
            .await
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_doorway_evicts_the_oldest_silent_connection_first() {
        let door = Doorway::new(3);
        let a = door.admit();
        let b = door.admit();
        let c = door.admit();
        a.spoke();
        let d = door.admit();
        assert!(!a.evict.is_cancelled(), "a spoke: kept");
        assert!(b.evict.is_cancelled(), "b: the oldest silent one");
        assert!(!c.evict.is_cancelled());
        assert_eq!(door.len(), 3);
        for t in [&c, &d] {
            t.spoke();
        }
        let e = door.admit();
        assert!(a.evict.is_cancelled(), "nobody silent: the oldest goes");
        drop((b, c, d, e));
        assert_eq!(door.len(), 0, "dropping tickets frees their places");
    }

    #[test]
    fn the_budget_is_returned_when_a_charge_drops() {
        let budget = Budget::new(100, 10);
        let first = budget.try_take(60);
        assert!(first.is_some());
        assert!(budget.try_take(60).is_none(), "only 40 left");
        drop(first);
        assert!(budget.try_take(100).is_some());
        assert!(
            Budget::new(1, 64).try_take(64).is_some(),
            "a frame always fits"
        );
        let small = Budget::new(100, 10);
        let all = small.try_take(1000);
        assert!(
            all.is_some(),
            "a charge above the whole budget takes all of it"
        );
        assert!(small.try_take(1).is_none());
        drop(all);
    }
}
