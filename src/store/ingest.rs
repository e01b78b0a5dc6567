//! The ingester's own connection: committed `logs` rows after a cursor, and one
//! transaction per batch that writes everything derived from them *and* the cursor.
//!
//! Exactly once: the derived rows (credentials, bounties, attacker profiles) and the
//! new cursor commit together, so a crash before the commit re-derives the batch from
//! the old cursor and a crash after it never sees the batch again. Rows are read by id
//! (the rowid, which the single event writer hands out in commit order), so nothing
//! committed is skipped. The connection is separate from the event writer's: the
//! listener's acknowledgements never wait for derivation beyond SQLite's short write
//! lock, which `busy_timeout` serialises.
//!
//! `synchronous=NORMAL` here, unlike the event writer: everything this connection
//! writes can be derived again from `logs`, and a transaction lost to power failure
//! takes its cursor with it.
use rusqlite::{Connection, OptionalExtension, params};

use super::bounty::{self, NewBounty};
use super::credentials::{self, NewCredential};
use super::profiles::{self, ProfileTotals, ProfileUpdate, StoredProfile};
use super::{Error, Result, Store};

/// A committed `logs` row, with the columns derivation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRow {
    /// Row id (the cursor).
    pub id: i64,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Event type.
    pub event_type: String,
    /// Source address or `Unknown`.
    pub attacker_ip: String,
    /// SD parameters as JSON object text.
    pub fields: String,
}

/// Everything one batch derived, and the cursor that says the batch is done.
#[derive(Debug, Default)]
pub struct Changes {
    /// Credentials to upsert.
    pub credentials: Vec<NewCredential>,
    /// Bounties to insert (duplicates are skipped).
    pub bounties: Vec<NewBounty>,
    /// Profile changes. Each profile's `bounty_count` is also raised by the bounties of
    /// this batch that were really new.
    pub attackers: Vec<ProfileUpdate>,
    /// The last log id of the batch.
    pub cursor: i64,
}

/// What a committed batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The attempt count of each credential of [`Changes::credentials`], in order.
    pub attempts: Vec<i64>,
    /// Bounties stored (not already present).
    pub new_bounties: usize,
    /// The totals of each profile of [`Changes::attackers`], in order.
    pub totals: Vec<ProfileTotals>,
}

/// The ingester's connection and the `state` key of its cursor.
#[derive(Debug)]
pub struct Ingest {
    conn: Connection,
    key: String,
}

/// The JSON of the cursor in `state`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    last_log_id: i64,
}

impl Store {
    /// A connection for the ingester whose cursor is `state[key]`.
    pub fn ingest(&self, key: &str) -> Result<Ingest> {
        let conn = self.connect(false)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -i64::from(self.options.cache_kib))?;
        Ok(Ingest {
            conn,
            key: key.to_owned(),
        })
    }
}

impl Ingest {
    /// The last log id already derived (0 before the first batch).
    pub fn cursor(&self) -> Result<i64> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM state WHERE key = ?1",
                params![self.key],
                |r| r.get(0),
            )
            .optional()?;
        let Some(text) = text else {
            return Ok(0);
        };
        serde_json::from_str::<Cursor>(&text)
            .map(|c| c.last_log_id)
            .map_err(|e| Error::Corrupt(format!("state {}: {e}", self.key)))
    }

    /// Up to `limit` committed rows with an id above `after`, in id order.
    pub fn rows_after(&self, after: i64, limit: u32) -> Result<Vec<IngestRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, timestamp, decky, service, event_type, attacker_ip, fields
             FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok(IngestRow {
                id: r.get(0)?,
                timestamp: r.get(1)?,
                decky: r.get(2)?,
                service: r.get(3)?,
                event_type: r.get(4)?,
                attacker_ip: r.get(5)?,
                fields: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the profiler keeps of the stored profile of `ip`, if it has one.
    pub fn profile(&self, ip: &str) -> Result<Option<StoredProfile>> {
        profiles::stored(&self.conn, ip)
    }

    /// Commits `changes` and the cursor in one transaction. Each attacker's
    /// `bounty_count` also counts the new bounties of its address.
    pub fn commit(&mut self, changes: &Changes) -> Result<Applied> {
        let tx = self.conn.transaction()?;
        let mut applied = Applied::default();
        for c in &changes.credentials {
            applied.attempts.push(credentials::upsert(&tx, c)?);
        }
        let mut new_per_ip: std::collections::HashMap<&str, i64> = Default::default();
        for b in &changes.bounties {
            if bounty::insert(&tx, b)? {
                applied.new_bounties += 1;
                *new_per_ip.entry(b.attacker_ip.as_str()).or_default() += 1;
            }
        }
        for a in &changes.attackers {
            let bounties = new_per_ip.get(a.ip.as_str()).copied().unwrap_or(0);
            applied.totals.push(profiles::apply(&tx, a, bounties)?);
        }
        let cursor = serde_json::to_string(&Cursor {
            last_log_id: changes.cursor,
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        tx.execute(
            "INSERT INTO state (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![self.key, cursor],
        )?;
        tx.commit()?;
        Ok(applied)
    }
}
