//! SSE tickets (engine.md §7.1): an `EventSource` cannot send an `Authorization` header,
//! so a client trades its token for a ticket and puts that in the stream's URL instead.
//!
//! A ticket is 32 random bytes as hex, lives [`TICKET_TTL`], works once, and is bound
//! to the account and role that asked for it. It stands in for the token that asked, so
//! the stream it opens ends when that token would stop working (logout, password or role
//! change). Tickets live in this process only: a master restart voids them, which costs
//! a client one more request. At most [`MAX_TICKETS`] are held; when full, expired ones
//! are swept, and if that frees nothing the request is refused (429) rather than an
//! unexpired ticket dropped.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::Role;

/// How long a ticket is good for.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// Most tickets held at once.
pub const MAX_TICKETS: usize = 10_000;

/// What a ticket stands for.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The account.
    pub uuid: String,
    /// Its role when the ticket was issued.
    pub role: Role,
    /// The token that asked for it, re-checked while its stream runs.
    pub token: String,
}

/// The live tickets.
#[derive(Debug)]
pub struct Tickets {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<String, (Instant, Grant)>>,
}

impl Tickets {
    /// An empty store of tickets living `ttl`, at most `max` at once.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new ticket for `grant`; `None` when the store is full of live tickets.
    pub fn issue(&self, grant: Grant) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max {
                return None;
            }
        }
        let ticket = crate::roles::master::random_hex(32);
        map.insert(ticket.clone(), (Instant::now(), grant));
        Some(ticket)
    }

    /// The grant of `ticket` if it is live; the ticket is used up either way.
    pub fn redeem(&self, ticket: &str) -> Option<Grant> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (at, grant) = map.remove(ticket)?;
        (at.elapsed() < self.ttl).then_some(grant)
    }

    /// How long a ticket lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Tickets held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Open streams per account, capped (`DECNET_SSE_MAX_PER_USER`).
#[derive(Debug, Default)]
pub struct Slots {
    open: std::sync::Arc<Mutex<HashMap<String, u32>>>,
}

/// One open stream; its slot is given back when dropped (the client went away).
#[derive(Debug)]
pub struct Slot {
    open: std::sync::Arc<Mutex<HashMap<String, u32>>>,
    uuid: String,
}

impl Slots {
    /// A slot for `uuid` unless it already holds `max`.
    pub fn take(&self, uuid: &str, max: u32) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(uuid.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.open.clone(),
            uuid: uuid.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.uuid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.uuid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            uuid: "u".into(),
            role: Role::Viewer,
            token: "t".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tickets_work_once_expire_and_stay_bounded() {
        let t = Tickets::new(Duration::from_secs(60), 2);
        let a = t.issue(grant()).unwrap_or_default();
        assert_eq!(a.len(), 64);
        assert!(t.redeem(&a).is_some());
        assert!(t.redeem(&a).is_none(), "single use");
        let b = t.issue(grant()).unwrap_or_default();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(t.redeem(&b).is_none(), "expired");
        let _ = t.issue(grant());
        let _ = t.issue(grant());
        assert!(t.issue(grant()).is_none(), "full of live tickets");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(t.issue(grant()).is_some(), "expired ones are swept");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn slots_are_capped_and_given_back() {
        let s = Slots::default();
        let a = s.take("u", 2);
        let b = s.take("u", 2);
        assert!(a.is_some() && b.is_some());
        assert!(s.take("u", 2).is_none());
        assert!(s.take("other", 2).is_some());
        drop(a);
        assert!(s.take("u", 2).is_some());
    }
}
