//! What the live stream shares between requests (engine.md §7.4): the SSE tickets and
//! the per-user stream slots. Streams also watch [`super::AppState`]'s shutdown token (a
//! stream never ends by itself, so graceful shutdown would otherwise wait on it). The
//! `/stream` and `/auth/sse-ticket` handlers are in [`super::routes::stream`].
pub mod tickets;

use std::time::Duration;

use tickets::{MAX_TICKETS, Slots, Tickets};

/// Tickets, slots and the stop signal of the live stream.
#[derive(Debug)]
pub struct Live {
    /// Outstanding SSE tickets.
    pub tickets: Tickets,
    /// Open streams per account.
    pub slots: Slots,
    /// Streams one account may hold at once (`DECNET_SSE_MAX_PER_USER`).
    pub max_per_user: u32,
}

impl Live {
    /// The live-stream state with `max_per_user` streams per account and tickets
    /// living `ticket_ttl`.
    pub fn new(max_per_user: u32, ticket_ttl: Duration) -> Self {
        Self {
            tickets: Tickets::new(ticket_ttl, MAX_TICKETS),
            slots: Slots::default(),
            max_per_user,
        }
    }
}
