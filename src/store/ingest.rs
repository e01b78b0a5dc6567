//! The ingester's own connection: committed `logs` rows after a cursor, and one
//! transaction per batch that writes everything derived from them *and* the cursors.
//!
//! Exactly once: the derived rows (credentials, bounties) and the new cursor commit
//! together, so a crash before the commit re-derives the batch from the old cursor and a
//! crash after it never sees the batch again. Attacker profiles have a cursor of their
//! own, committed with the profile changes it covers: the profiler may hold changes of
//! several committed batches before it writes them, and after a crash it derives the
//! profiles again from its own cursor. Rows are read by id
//! (the rowid, which the single event writer hands out in commit order), so nothing
//! committed is skipped. The connection is separate from the event writer's: the
//! listener's acknowledgements never wait for derivation beyond SQLite's short write
//! lock, which `busy_timeout` serialises. Its transactions are `IMMEDIATE`, as the
//! writer's: each takes the write lock before it reads, so the two queue for it instead
//! of one failing at once with "database is locked".
//!
//! `synchronous=NORMAL` here, unlike the event writer: everything this connection
//! writes can be derived again from `logs`, and a transaction lost to power failure
//! takes its cursor with it.
use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::bounty::{self, NewBounty};
use super::credentials::{self, NewCredential};
use super::profiles::{self, NewProfile, ProfileTotals, ProfileUpdate, StoredProfile};
use super::{Error, Result, Store};

/// WAL pages after which the ingester's commit checkpoints. Derived rows land in large
/// indexes keyed by address and hash, so every batch dirties pages all over them; a WAL
/// five times the writer's lets a page rewritten by several batches reach the database
/// file once (catching up on 1,000,000 events: 7.7 → 6.1 KB written per event).
const INGEST_WAL_PAGES: u32 = 20_000;

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

/// Everything one batch derived, and the cursors that say what is done.
#[derive(Debug, Default)]
pub struct Changes {
    /// Credentials to upsert.
    pub credentials: Vec<NewCredential>,
    /// Bounties to insert (duplicates are skipped).
    pub bounties: Vec<NewBounty>,
    /// Profiles first seen by this batch whose changes wait for a later flush.
    pub created: Vec<NewProfile>,
    /// Profile changes flushed with this batch. Each profile's `bounty_count` is also
    /// raised by the bounties of this batch that were really new.
    pub attackers: Vec<ProfileUpdate>,
    /// The last log id of the batch (none for a batch that only derives profiles again).
    pub cursor: Option<i64>,
    /// The last log id [`Self::attackers`] cover, when this batch flushes profiles.
    pub profile_cursor: Option<i64>,
}

/// What a committed batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The attempt count of each credential of [`Changes::credentials`], in order.
    pub attempts: Vec<i64>,
    /// Bounties stored (not already present), per address.
    pub new_bounties: HashMap<String, i64>,
    /// The totals of each profile of [`Changes::attackers`], in order.
    pub totals: Vec<ProfileTotals>,
}

/// The ingester's connection and the `state` keys of its cursors.
#[derive(Debug)]
pub struct Ingest {
    conn: Connection,
    key: String,
    profile_key: String,
}

/// The JSON of the cursor in `state`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    last_log_id: i64,
}

impl Store {
    /// A connection for the ingester whose cursor is `state[key]`, and the profiles'
    /// `state[profile_key]`.
    pub fn ingest(&self, key: &str, profile_key: &str) -> Result<Ingest> {
        let conn = self.connect(false)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -i64::from(self.options.cache_kib))?;
        conn.pragma_update(None, "wal_autocheckpoint", INGEST_WAL_PAGES)?;
        Ok(Ingest {
            conn,
            key: key.to_owned(),
            profile_key: profile_key.to_owned(),
        })
    }
}

impl Ingest {
    /// The last log id already derived (0 before the first batch).
    pub fn cursor(&self) -> Result<i64> {
        Ok(read_cursor(&self.conn, &self.key)?.unwrap_or(0))
    }

    /// The last log id the stored profiles cover. A store from before profiles had a
    /// cursor of their own committed them with each batch: there it starts at
    /// [`Self::cursor`], stored now so that batches whose profile changes are held (and
    /// may die with the process) cannot move it.
    pub fn profile_cursor(&mut self) -> Result<i64> {
        if let Some(id) = read_cursor(&self.conn, &self.profile_key)? {
            return Ok(id);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = read_cursor(&tx, &self.key)?.unwrap_or(0);
        write_cursor(&tx, &self.profile_key, id)?;
        tx.commit()?;
        Ok(id)
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

    /// Commits `changes` and the cursors in one transaction. Each flushed attacker's
    /// `bounty_count` also counts the new bounties of its address.
    pub fn commit(&mut self, changes: &Changes) -> Result<Applied> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut applied = Applied::default();
        for p in &changes.created {
            profiles::create(&tx, p)?;
        }
        for c in &changes.credentials {
            applied.attempts.push(credentials::upsert(&tx, c)?);
        }
        for b in &changes.bounties {
            if bounty::insert(&tx, b)? {
                *applied
                    .new_bounties
                    .entry(b.attacker_ip.clone())
                    .or_default() += 1;
            }
        }
        for a in &changes.attackers {
            let bounties = applied.new_bounties.get(&a.ip).copied().unwrap_or(0);
            applied.totals.push(profiles::apply(&tx, a, bounties)?);
        }
        if let Some(id) = changes.cursor {
            write_cursor(&tx, &self.key, id)?;
        }
        if let Some(id) = changes.profile_cursor {
            write_cursor(&tx, &self.profile_key, id)?;
        }
        tx.commit()?;
        Ok(applied)
    }
}

/// The cursor stored under `key`, if any.
fn read_cursor(conn: &Connection, key: &str) -> Result<Option<i64>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT value FROM state WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?;
    text.map(|text| {
        serde_json::from_str::<Cursor>(&text)
            .map(|c| c.last_log_id)
            .map_err(|e| Error::Corrupt(format!("state {key}: {e}")))
    })
    .transpose()
}

/// Stores cursor `id` under `key`.
fn write_cursor(tx: &Transaction<'_>, key: &str, id: i64) -> Result<()> {
    let cursor = serde_json::to_string(&Cursor { last_log_id: id })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, cursor])?;
    Ok(())
}
