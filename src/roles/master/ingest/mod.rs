//! Ingestion (engine.md §3.3, §3.5): everything the master derives from stored events.
//!
//! The listener and the collector only append to `logs` through the store's writer and
//! acknowledge after that commit. This module follows the committed rows on a
//! connection of its own, by id cursor (`state["ingest_worker_cursor"]`), and turns each
//! batch into credentials ([`credentials`]), bounties ([`bounty`], with user agents
//! classified by [`useragent`], forwarding headers that leak another address by
//! [`proxy`]) and attacker profiles ([`profiler`]). One batch is one
//! transaction that also advances the cursor ([`worker`]), so every event is derived
//! exactly once, across crashes and restarts, and never slows an acknowledgement.
//! Profiles have a second cursor (`state["attacker_worker_cursor"]`), committed with the
//! profile changes it covers: caught up, that is every batch; under a backlog, about once
//! a second.
//!
//! Where this differs from the original:
//! - The original's ingester tailed a JSON file and its profiler ran every 30 s on a
//!   second cursor. Here both stages run in one task: an event shows in `/credentials`
//!   and `/attackers` within one poll (250 ms idle) of its commit, and under a backlog
//!   its profile's counts within a second more. Health reports the task under both names
//!   it had, `ingestion_worker` and `attacker_worker`.
//! - `credential_count` counts credential attempts from the address (the original's
//!   counted a bounty type it never wrote, so it was always 0).
//! - Events whose address is not an IP (`Unknown`) give credentials and bounties but no
//!   profile.
//!
//! Everything is bounded: batches ([`BATCH_ROWS`]), per-profile lists ([`MAX_COMMANDS`],
//! [`MAX_DECKIES`], …), and every stored string by bytes ([`clip`]). Event fields are
//! attacker-influenced data: they are parsed with size caps, and a field that does not
//! parse is ignored, never trusted. Bus notifications (`credential.captured`,
//! `attacker.observed`, `attacker.scored`) are best effort: publishing never waits, and
//! ingestion goes on without a broker.
pub mod bounty;
pub mod credentials;
pub mod profiler;
pub mod proxy;
pub mod useragent;
pub mod worker;

use std::sync::Arc;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::state::AppState;
use crate::bus::{Bus, NullBus};

/// The `state` key of the cursor: `{"last_log_id": n}`.
pub const CURSOR_KEY: &str = "ingest_worker_cursor";
/// The `state` key of the profiles' cursor, the same shape.
pub const PROFILE_CURSOR_KEY: &str = "attacker_worker_cursor";
/// Most rows derived per transaction.
pub const BATCH_ROWS: u32 = 2000;
/// Commands kept per attacker (the newest).
pub const MAX_COMMANDS: usize = 200;
/// Deckies kept per attacker (the first contacted).
pub const MAX_DECKIES: usize = 64;
/// Services kept per attacker.
pub const MAX_SERVICES: usize = 64;
/// Distinct fingerprints kept per attacker (the first seen).
pub const MAX_FINGERPRINTS: usize = 64;
/// Longest command text kept, in bytes.
pub const MAX_COMMAND_BYTES: usize = 1024;
/// Longest decky or service name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// `text` cut to at most `max` bytes, at a character boundary, as an owned string.
pub fn clip(text: &str, max: usize) -> String {
    crate::text::cap_str(text, max).to_owned()
}

/// Starts the ingestion task for `state`'s store and registers it with `/health`; it
/// stops when `shutdown` is cancelled.
pub fn spawn(state: &AppState, shutdown: CancellationToken) {
    let bus: Arc<dyn Bus> = match &state.settings.bus {
        Some(config) => crate::bus::from_config(config, "ingester"),
        None => Arc::new(NullBus),
    };
    let task = tokio::spawn(worker::run(
        state.db.store().clone(),
        bus,
        worker::Tuning::default(),
        shutdown,
    ));
    // One task, two health components: each watches the same outcome.
    let outcome = task
        .map(|joined| joined.unwrap_or_else(|e| Err(format!("ingestion task: {e}"))))
        .shared();
    for name in ["ingestion_worker", "attacker_worker"] {
        state.health.register(name, tokio::spawn(outcome.clone()));
    }
}

/// Rows and fields for the unit tests of the stages.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::store::IngestRow;
    use crate::syslog::Fields;

    /// A row of `service`'s `event` from 203.0.113.5 on `web-1`.
    pub fn row(service: &str, event: &str) -> IngestRow {
        IngestRow {
            id: 1,
            timestamp: "2026-03-04 10:00:00".into(),
            decky: "web-1".into(),
            service: service.into(),
            event_type: event.into(),
            attacker_ip: "203.0.113.5".into(),
            fields: String::new(),
        }
    }

    /// Fields of `pairs`, in order.
    pub fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_whole_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("", 0), "");
    }
}
