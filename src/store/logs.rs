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
use std::sync::LazyLock;

use rusqlite::{Statement, Transaction, params};
use time::OffsetDateTime;

use super::{Error, Reader, Result, push_sql_time, sql_micros};
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

/// Text columns of a row, in the order of the `INSERT` parameters without `seq`.
const TEXT_COLUMNS: usize = 11;
/// Parameters per row of the `INSERT`: the text columns and `seq`.
const COLUMNS_PER_ROW: usize = TEXT_COLUMNS + 1;
/// Where `seq` sits among a row's parameters (after `source`).
const SEQ_AT: usize = 10;
/// Where `msg`, the one nullable text column, sits.
const MSG_AT: usize = 7;

/// One event of a [`Prepared`] request: its columns are spans of the request's text.
#[derive(Debug)]
struct Row {
    /// Where the row's first column starts in the text.
    start: usize,
    /// Where each text column ends; each starts where the one before ends.
    ends: [usize; TEXT_COLUMNS],
    /// `false` stores `msg` as NULL.
    has_msg: bool,
    seq: i64,
}

impl Row {
    /// Binds the row to parameters `first..first + COLUMNS_PER_ROW` of `stmt`.
    fn bind(&self, text: &str, stmt: &mut Statement<'_>, first: usize) -> Result<()> {
        let mut start = self.start;
        for (j, &end) in self.ends.iter().enumerate() {
            let value = text
                .get(start..end)
                .ok_or_else(|| Error::Corrupt("row text out of bounds".into()))?;
            start = end;
            let param = first + j + usize::from(j >= SEQ_AT);
            if j == MSG_AT && !self.has_msg {
                stmt.raw_bind_parameter(param, rusqlite::types::Null)?;
            } else {
                stmt.raw_bind_parameter(param, value)?;
            }
        }
        stmt.raw_bind_parameter(first + SEQ_AT, self.seq)?;
        Ok(())
    }
}

/// A write request turned into rows, ready for the writer to bind and step.
///
/// [`Prepared::new`] does the per-line work (timestamps as text, the `fields` JSON, the
/// highest `seq` per source) on the caller's task, so it runs beside the writer's
/// transaction instead of inside it: the single writer is the pipeline's bottleneck.
/// Every column text of the request sits in one buffer, so a request is two allocations
/// however many rows it has, which keeps both the listener's memory and the writer's
/// frees small.
#[derive(Debug)]
pub(super) struct Prepared {
    text: String,
    rows: Vec<Row>,
    unparsed: usize,
    highest: Vec<(String, String, i64)>,
}

/// Appends `value` to `text` and returns where it ends.
fn put(text: &mut String, value: &str) -> usize {
    text.push_str(value);
    text.len()
}

impl Prepared {
    /// Checks and formats `records`.
    pub(super) fn new(records: Vec<LogRecord>) -> Result<Self> {
        let mut rows = Vec::with_capacity(records.len());
        let bytes: usize = records
            .iter()
            .filter_map(|r| r.event.as_ref())
            .map(|e| 2 * e.raw.len() + 96)
            .sum();
        let mut text = String::with_capacity(bytes);
        let mut unparsed = 0;
        let mut highest: BTreeMap<(String, String), i64> = BTreeMap::new();
        // A request is nearly always one run of one source: track the run, and touch the
        // map (and copy the names) only where the source changes.
        let mut run: Option<(String, String, i64)> = None;
        let mut merge = |(worker, source, seq): (String, String, i64)| {
            let top = highest.entry((worker, source)).or_insert(seq);
            *top = (*top).max(seq);
        };
        for r in &records {
            let seq = seq_sql(r.seq)?;
            match &mut run {
                Some((w, s, top)) if *w == r.worker && *s == r.source => *top = (*top).max(seq),
                _ => {
                    if let Some(done) = run.replace((r.worker.clone(), r.source.clone(), seq)) {
                        merge(done);
                    }
                }
            }
            let Some(e) = &r.event else {
                unparsed += 1;
                continue;
            };
            let start = text.len();
            let time = e.timestamp.datetime().unwrap_or(r.received_at);
            push_sql_time(&mut text, time, false);
            let ends = [
                text.len(),
                put(&mut text, &e.decky),
                put(&mut text, &e.service),
                put(&mut text, &e.event_type),
                put(&mut text, e.attacker_ip_or_unknown()),
                put(&mut text, &e.raw),
                put(&mut text, &e.fields.to_json()),
                put(&mut text, e.msg.as_deref().unwrap_or_default()),
                put(&mut text, &r.worker),
                put(&mut text, &r.source),
                {
                    push_sql_time(&mut text, r.received_at, true);
                    text.len()
                },
            ];
            rows.push(Row {
                start,
                ends,
                has_msg: e.msg.is_some(),
                seq,
            });
        }
        if let Some(done) = run {
            merge(done);
        }
        Ok(Self {
            text,
            rows,
            unparsed,
            highest: highest.into_iter().map(|((w, s), q)| (w, s, q)).collect(),
        })
    }

    /// How many lines the request carries (stored or not).
    pub(super) fn len(&self) -> usize {
        self.rows.len() + self.unparsed
    }

    /// Whether the request carries no line at all.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const INSERT_HEAD: &str = "INSERT INTO logs
    (timestamp, decky, service, event_type, attacker_ip, raw_line, fields, msg,
     worker, source, seq, received_at)
    VALUES ";

const INSERT_TAIL: &str = " ON CONFLICT (worker, source, seq) DO NOTHING";

/// Rows per multi-row `INSERT`. One statement per row costs a step, a reset and an
/// update of the `AUTOINCREMENT` counter each; one per 32 rows pays those once, and 384
/// parameters stay far below SQLite's limit of 32766.
const ROWS_PER_INSERT: usize = 32;

/// `INSERT … VALUES (?, …), … ON CONFLICT … DO NOTHING` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let one = format!("({})", ["?"; COLUMNS_PER_ROW].join(", "));
    format!("{INSERT_HEAD}{}{INSERT_TAIL}", vec![one; rows].join(", "))
}

static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));
static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_INSERT));

const MARK: &str = "INSERT INTO log_sources (worker, source, last_seq, updated_at)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (worker, source) DO UPDATE
    SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at";

const WATERMARK: &str = "SELECT last_seq FROM log_sources WHERE worker = ?1 AND source = ?2";

/// Inserts `rows` with one statement; returns how many were new.
fn insert_rows(stmt: &mut Statement<'_>, text: &str, rows: &[Row]) -> Result<usize> {
    for (i, row) in rows.iter().enumerate() {
        row.bind(text, stmt, 1 + i * COLUMNS_PER_ROW)?;
    }
    Ok(stmt.raw_execute()?)
}

/// Inserts one request's rows inside the writer's transaction.
pub(super) fn insert(tx: &Transaction<'_>, request: &Prepared) -> Result<Outcome> {
    let mut inserted = 0;
    let mut chunks = request.rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut many = tx.prepare_cached(&INSERT_MANY)?;
        for chunk in &mut chunks {
            inserted += insert_rows(&mut many, &request.text, chunk)?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut one = tx.prepare_cached(&INSERT_ONE)?;
        for row in chunks.remainder() {
            inserted += insert_rows(&mut one, &request.text, std::slice::from_ref(row))?;
        }
    }
    let mut outcome = Outcome {
        inserted,
        duplicates: request.rows.len() - inserted,
        unparsed: request.unparsed,
        watermarks: Vec::with_capacity(request.highest.len()),
    };
    let now = sql_micros(OffsetDateTime::now_utc());
    let mut mark = tx.prepare_cached(MARK)?;
    let mut read = tx.prepare_cached(WATERMARK)?;
    for (worker, source, seq) in &request.highest {
        mark.execute(params![worker, source, seq, now])?;
        let committed: i64 = read.query_row(params![worker, source], |row| row.get(0))?;
        outcome.watermarks.push(Watermark {
            worker: worker.clone(),
            source: source.clone(),
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

fn stored_log(row: &rusqlite::Row<'_>) -> rusqlite::Result<(StoredLog, String, i64)> {
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
