//! Schema migrations, numbered by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and is only ever appended
//! to: a released migration is never edited, and changes are additive (new tables, new
//! nullable columns, new indexes) so an older reader keeps working during an upgrade.
//! Every step runs in an immediate transaction that re-reads the version, so two
//! processes opening the same new database cannot both apply it.
use rusqlite::{Connection, TransactionBehavior};

use super::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: the `logs` table of engine.md §3.4 plus delivery bookkeeping.
const V1: &str = "
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp   TEXT NOT NULL,
    decky       TEXT NOT NULL,
    service     TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    attacker_ip TEXT NOT NULL,
    raw_line    TEXT NOT NULL,
    fields      TEXT NOT NULL,
    msg         TEXT,
    trace_id    TEXT,
    span_id     TEXT,
    worker      TEXT NOT NULL,
    source      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX logs_delivery ON logs (worker, source, seq);
CREATE INDEX logs_timestamp ON logs (timestamp);
CREATE INDEX logs_decky ON logs (decky);
CREATE INDEX logs_service ON logs (service);
CREATE INDEX logs_event_type ON logs (event_type);
CREATE INDEX logs_attacker_ip ON logs (attacker_ip);

CREATE TABLE log_sources (
    worker     TEXT NOT NULL,
    source     TEXT NOT NULL,
    last_seq   INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (worker, source)
);

CREATE TABLE allowed_workers (
    name        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    added_at    TEXT NOT NULL
);
";

/// Every migration, in order; index `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// Applies the migrations `conn`'s database has not seen yet.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let applied = usize::try_from(version)
            .map_err(|_| Error::Corrupt(format!("negative schema version {version}")))?;
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
