//! The `logs` table (engine.md §3.4) and its delivery bookkeeping, `log_sources`.
//!
//! A row is an [`Event`] plus where it came from: the `worker` (the TLS peer's CN, never
//! the attacker-influenced HOSTNAME), the `source` (one log file of that worker, as the
//! forwarder names it) and `seq` (the line's position in that source, strictly growing).
//! `(worker, source, seq)` is unique, so a line re-sent after a lost acknowledgement is
//! recognised and skipped. Putting `worker` in the key means one worker cannot claim
//! another's sequence numbers and suppress its lines.
//!
//! `log_sources` holds the highest `seq` committed per source, including lines that did
//! not parse (they are kept in the raw file only, but still count as delivered), so an
//! acknowledgement never stalls on an unparsable line at the end of a file.
use std::collections::BTreeMap;

use rusqlite::{Row, Transaction, params};
use time::OffsetDateTime;

use super::{Error, Reader, Result, sql_micros, sql_seconds};
use crate::syslog::{Event, Fields, parse_bytes};

/// One line delivered to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Who sent it: the peer certificate's CN (`local` for the master's own collector).
    pub worker: String,
    /// Which stream of that worker: the forwarder's name for one log file.
    pub source: String,
    /// Position of the line in its source; at most `2^63 - 1`.
    pub seq: u64,
    /// When the master received it.
    pub received_at: OffsetDateTime,
    /// The parsed line, or `None` for a line that did not parse (only its `seq` counts).
    pub event: Option<Event>,
}

impl LogRecord {
    /// A record for a line just received: parsed (invalid UTF-8 decoded lossily) and
    /// stamped with the current time; a line that does not parse gets no event.
    pub fn from_line(
        worker: impl Into<String>,
        source: impl Into<String>,
        seq: u64,
        line: &[u8],
    ) -> Self {
        Self {
            worker: worker.into(),
            source: source.into(),
            seq,
            received_at: OffsetDateTime::now_utc(),
            event: parse_bytes(line).ok(),
        }
    }
}

/// The highest committed sequence number of one source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watermark {
    /// The sending worker.
    pub worker: String,
    /// The source within that worker.
    pub source: String,
    /// Every line up to this one is committed (or was never sent).
    pub seq: u64,
}

/// A row of `logs` as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLog {
    /// Row id: increasing, the cursor of live streams.
    pub id: i64,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS` (reception time if the line had none).
    pub timestamp: String,
    /// HOSTNAME of the line.
    pub decky: String,
    /// APP-NAME of the line.
    pub service: String,
    /// MSGID (or `command`).
    pub event_type: String,
    /// Attacker address or `Unknown`.
    pub attacker_ip: String,
    /// The line as received.
    pub raw_line: String,
    /// SD parameters.
    pub fields: Fields,
    /// Free text.
    pub msg: Option<String>,
    /// Sending worker.
    pub worker: String,
    /// Source within the worker.
    pub source: String,
    /// Sequence number within the source.
    pub seq: u64,
    /// Reception time, UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub received_at: String,
}

/// What one write request did, before the commit makes it true.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub inserted: usize,
    pub duplicates: usize,
    pub unparsed: usize,
    pub watermarks: Vec<Watermark>,
}

/// `seq` as SQLite's signed integer.
pub(super) fn seq_sql(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::SeqOutOfRange(seq))
}

const INSERT: &str = "INSERT INTO logs
    (timestamp, decky, service, event_type, attacker_ip, raw_line, fields, msg,
     worker, source, seq, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (worker, source, seq) DO NOTHING";

const MARK: &str = "INSERT INTO log_sources (worker, source, last_seq, updated_at)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (worker, source) DO UPDATE
    SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at";

const WATERMARK: &str = "SELECT last_seq FROM log_sources WHERE worker = ?1 AND source = ?2";

/// Inserts one request's records inside the writer's transaction.
pub(super) fn insert(tx: &Transaction<'_>, records: &[LogRecord]) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut highest: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut insert = tx.prepare_cached(INSERT)?;
    for r in records {
        let seq = seq_sql(r.seq)?;
        let top = highest
            .entry((r.worker.as_str(), r.source.as_str()))
            .or_insert(seq);
        *top = (*top).max(seq);
        let Some(e) = &r.event else {
            outcome.unparsed += 1;
            continue;
        };
        let timestamp = sql_seconds(e.timestamp.datetime().unwrap_or(r.received_at));
        let changed = insert.execute(params![
            timestamp,
            e.decky,
            e.service,
            e.event_type,
            e.attacker_ip_or_unknown(),
            e.raw,
            e.fields.to_json(),
            e.msg,
            r.worker,
            r.source,
            seq,
            sql_micros(r.received_at),
        ])?;
        if changed == 0 {
            outcome.duplicates += 1;
        } else {
            outcome.inserted += 1;
        }
    }
    let now = sql_micros(OffsetDateTime::now_utc());
    let mut mark = tx.prepare_cached(MARK)?;
    let mut read = tx.prepare_cached(WATERMARK)?;
    for ((worker, source), seq) in highest {
        mark.execute(params![worker, source, seq, now])?;
        let committed: i64 = read.query_row(params![worker, source], |row| row.get(0))?;
        outcome.watermarks.push(Watermark {
            worker: worker.to_owned(),
            source: source.to_owned(),
            seq: seq_u64(committed)?,
        });
    }
    Ok(outcome)
}

fn seq_u64(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| Error::Corrupt(format!("negative sequence number {seq}")))
}

const COLUMNS: &str = "id, timestamp, decky, service, event_type, attacker_ip, raw_line, fields,
    msg, worker, source, seq, received_at";

fn stored_log(row: &Row<'_>) -> rusqlite::Result<(StoredLog, String, i64)> {
    Ok((
        StoredLog {
            id: row.get(0)?,
            timestamp: row.get(1)?,
            decky: row.get(2)?,
            service: row.get(3)?,
            event_type: row.get(4)?,
            attacker_ip: row.get(5)?,
            raw_line: row.get(6)?,
            fields: Fields::new(),
            msg: row.get(8)?,
            worker: row.get(9)?,
            source: row.get(10)?,
            seq: 0,
            received_at: row.get(12)?,
        },
        row.get(7)?,
        row.get(11)?,
    ))
}

impl Reader {
    /// The highest committed `seq` of one source, if it ever sent anything.
    pub fn watermark(&self, worker: &str, source: &str) -> Result<Option<u64>> {
        let mut stmt = self.conn.prepare_cached(WATERMARK)?;
        let mut rows = stmt.query(params![worker, source])?;
        match rows.next()? {
            Some(row) => Ok(Some(seq_u64(row.get(0)?)?)),
            None => Ok(None),
        }
    }

    /// Every source of `worker` with its committed watermark (what a reconnecting
    /// forwarder is told to resume after).
    pub fn watermarks(&self, worker: &str) -> Result<Vec<Watermark>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source, last_seq FROM log_sources WHERE worker = ?1 ORDER BY source",
        )?;
        let rows = stmt.query_map(params![worker], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (source, seq) = row?;
            out.push(Watermark {
                worker: worker.to_owned(),
                source,
                seq: seq_u64(seq)?,
            });
        }
        Ok(out)
    }

    /// How many events are stored.
    pub fn count_logs(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM logs", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The id of the newest event (0 when empty): where a live tail starts.
    pub fn last_log_id(&self) -> Result<i64> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM logs", [], |row| row.get(0))?;
        Ok(id.unwrap_or(0))
    }

    /// Up to `limit` events with an id above `after_id`, oldest first (a stream cursor).
    pub fn logs_after(&self, after_id: i64, limit: u32) -> Result<Vec<StoredLog>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after_id, limit], stored_log)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut log, fields, seq) = row?;
            log.fields = Fields::from_json(&fields)
                .ok_or_else(|| Error::Corrupt(format!("log {}: fields are not JSON", log.id)))?;
            log.seq = seq_u64(seq)?;
            out.push(log);
        }
        Ok(out)
    }
}
