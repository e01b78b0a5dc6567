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

use rusqlite::{OptionalExtension, Statement, Transaction, params};
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

/// Text columns of a row: those of the `INSERT` but `worker`, `source` and `seq`.
const TEXT_COLUMNS: usize = 9;
/// Parameters per row of the `INSERT`: the text columns and `seq`. `worker` and `source`
/// are the same for every row of a statement and bound once, as `?1` and `?2`.
const COLUMNS_PER_ROW: usize = TEXT_COLUMNS + 1;
/// Parameters shared by the rows of a statement (`worker`, `source`).
const SHARED: usize = 2;
/// Where `seq` sits among a row's parameters (after `msg`).
const SEQ_AT: usize = 8;
/// Where `msg`, the one nullable text column, sits.
const MSG_AT: usize = 7;

/// One event of a [`Batch`]: its columns are spans of the batch's text.
#[derive(Debug)]
struct Row {
    /// Where the row's first column starts in the text.
    start: usize,
    /// Where each text column ends; each starts where the one before ends.
    ends: [usize; TEXT_COLUMNS],
    /// `false` stores `msg` as NULL.
    has_msg: bool,
    seq: i64,
    /// Index of the row's run (its worker and source) in the batch.
    run: usize,
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

/// Consecutive lines of one source: the names are copied once per run, not per line.
#[derive(Debug)]
struct Run {
    worker: String,
    source: String,
    /// The highest `seq` of the run, unparsed lines included.
    top: i64,
}

/// Lines turned into rows as they arrive: one write request, committed all or nothing by
/// [`Writer::write_batch`](super::Writer::write_batch).
///
/// [`Batch::push`] does the per-line work (timestamps as text, the `fields` JSON, the
/// highest `seq` per source) on the caller's task, so it runs beside the writer's
/// transaction instead of inside it: the single writer is the pipeline's bottleneck.
/// Every column text of the batch sits in one buffer, so the event a line was parsed
/// into can be dropped at once and a batch is two allocations however many rows it has,
/// which keeps both the listener's memory and the writer's frees small.
#[derive(Debug, Default)]
pub struct Batch {
    text: String,
    rows: Vec<Row>,
    unparsed: usize,
    /// Runs in order; a batch is nearly always a single one.
    runs: Vec<Run>,
    /// Bytes of the runs' names.
    names: usize,
}

/// Where a [`Batch`] stood before a line was pushed: [`Batch::rollback`] takes it out.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    text: usize,
    rows: usize,
    runs: usize,
    names: usize,
    unparsed: usize,
    top: Option<i64>,
}

/// Appends `value` to `text` and returns where it ends.
fn put(text: &mut String, value: &str) -> usize {
    text.push_str(value);
    text.len()
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch of `records`, checked and formatted.
    pub fn of(records: &[LogRecord]) -> Result<Self> {
        let mut batch = Self::new();
        for r in records {
            batch.push(&r.worker, &r.source, r.seq, r.received_at, r.event.as_ref())?;
        }
        Ok(batch)
    }

    /// Adds line `seq` of `worker`'s `source`, received at `received_at`; `None` for a
    /// line that did not parse (only its `seq` counts). Nothing is added on error.
    pub fn push(
        &mut self,
        worker: &str,
        source: &str,
        seq: u64,
        received_at: OffsetDateTime,
        event: Option<&Event>,
    ) -> Result<()> {
        let seq = seq_sql(seq)?;
        match self.runs.last_mut() {
            Some(run) if run.worker == worker && run.source == source => {
                run.top = run.top.max(seq);
            }
            _ => {
                self.names += worker.len() + source.len();
                self.runs.push(Run {
                    worker: worker.to_owned(),
                    source: source.to_owned(),
                    top: seq,
                });
            }
        }
        let run = self.runs.len() - 1;
        let Some(e) = event else {
            self.unparsed += 1;
            return Ok(());
        };
        let text = &mut self.text;
        let start = text.len();
        let time = e.timestamp.datetime().unwrap_or(received_at);
        push_sql_time(text, time, false);
        let ends = [
            text.len(),
            put(text, &e.decky),
            put(text, &e.service),
            put(text, &e.event_type),
            put(text, e.attacker_ip_or_unknown()),
            put(text, &e.raw),
            {
                e.fields.write_json(text);
                text.len()
            },
            put(text, e.msg.as_deref().unwrap_or_default()),
            {
                push_sql_time(text, received_at, true);
                text.len()
            },
        ];
        self.rows.push(Row {
            start,
            ends,
            has_msg: e.msg.is_some(),
            seq,
            run,
        });
        Ok(())
    }

    /// How many lines the batch carries (stored or not).
    pub fn len(&self) -> usize {
        self.rows.len() + self.unparsed
    }

    /// Whether the batch carries no line at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the rows take (their text, their index entries and their runs' names): what
    /// a memory budget charges for them.
    pub fn bytes(&self) -> usize {
        self.text.len() + self.rows.len() * std::mem::size_of::<Row>() + self.names
    }

    /// Where the batch stands now.
    pub fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            rows: self.rows.len(),
            runs: self.runs.len(),
            names: self.names,
            unparsed: self.unparsed,
            top: self.runs.last().map(|r| r.top),
        }
    }

    /// Takes out every line pushed since `mark` was taken (the latest mark only).
    pub fn rollback(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.rows.truncate(mark.rows);
        self.runs.truncate(mark.runs);
        self.names = mark.names;
        self.unparsed = mark.unparsed;
        if let (Some(run), Some(top)) = (self.runs.last_mut(), mark.top) {
            run.top = top;
        }
    }

    /// The highest `seq` of every source in the batch.
    fn highest(&self) -> BTreeMap<(&str, &str), i64> {
        let mut highest = BTreeMap::new();
        for run in &self.runs {
            let top = highest
                .entry((run.worker.as_str(), run.source.as_str()))
                .or_insert(run.top);
            *top = (*top).max(run.top);
        }
        highest
    }
}

const INSERT_HEAD: &str = "INSERT INTO logs
    (timestamp, decky, service, event_type, attacker_ip, raw_line, fields, msg,
     worker, source, seq, received_at)
    VALUES ";

/// Rows per multi-row `INSERT`. One statement per row costs a step, a reset and an
/// update of the `AUTOINCREMENT` counter each; one per 32 rows pays those once, and 322
/// parameters stay far below SQLite's limit of 32766.
const ROWS_PER_INSERT: usize = 32;

/// `INSERT … VALUES (…), …` for `rows` rows: `?1` and `?2`
/// are every row's `worker` and `source`, row `i`'s own parameters follow from
/// `3 + i * COLUMNS_PER_ROW` in [`Row::bind`]'s order.
fn insert_sql(rows: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|i| {
            let first = SHARED + 1 + i * COLUMNS_PER_ROW;
            let own = |j: usize| format!("?{}", first + j);
            let mut params: Vec<String> = (0..SEQ_AT).map(own).collect();
            params.extend([
                "?1".to_owned(),
                "?2".to_owned(),
                own(SEQ_AT),
                own(SEQ_AT + 1),
            ]);
            format!("({})", params.join(", "))
        })
        .collect();
    format!("{INSERT_HEAD}{}", tuples.join(", "))
}

static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));
static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_INSERT));

const MARK: &str = "INSERT INTO log_sources (worker, source, last_seq, updated_at)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (worker, source) DO UPDATE
    SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at";

const WATERMARK: &str = "SELECT last_seq FROM log_sources WHERE worker = ?1 AND source = ?2";

/// Inserts `rows`, all of `run`, with one statement.
fn insert_rows(stmt: &mut Statement<'_>, text: &str, run: &Run, rows: &[&Row]) -> Result<()> {
    stmt.raw_bind_parameter(1, run.worker.as_str())?;
    stmt.raw_bind_parameter(2, run.source.as_str())?;
    for (i, row) in rows.iter().enumerate() {
        row.bind(text, stmt, SHARED + 1 + i * COLUMNS_PER_ROW)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

/// Inserts one request's rows inside the writer's transaction.
///
/// A source's lines are numbered from 1 without gaps and every connection sends them in
/// order from the committed watermark on, so what the store holds of a source is always
/// the prefix up to its `log_sources.last_seq`: a row at or below it is a re-sent
/// duplicate. Checking that here, once per run, replaces a unique index on
/// `(worker, source, seq)` that every row paid a B-tree insert for.
pub(super) fn insert(tx: &Transaction<'_>, request: &Batch) -> Result<Outcome> {
    let mut inserted = 0;
    let mut read = tx.prepare_cached(WATERMARK)?;
    let mut fresh: Vec<&Row> = Vec::with_capacity(request.rows.len());
    // What is held of each source so far, this request's earlier runs included.
    let mut held: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for group in request.rows.chunk_by(|a, b| a.run == b.run) {
        let run = group
            .first()
            .and_then(|row| request.runs.get(row.run))
            .ok_or_else(|| Error::Corrupt("row of no run".into()))?;
        let key = (run.worker.as_str(), run.source.as_str());
        let held = match held.get_mut(&key) {
            Some(held) => held,
            None => {
                let stored: i64 = read
                    .query_row(params![run.worker, run.source], |row| row.get(0))
                    .optional()?
                    .unwrap_or(0);
                held.entry(key).or_insert(stored)
            }
        };
        fresh.clear();
        for row in group {
            if row.seq > *held {
                *held = row.seq;
                fresh.push(row);
            }
        }
        let mut chunks = fresh.chunks_exact(ROWS_PER_INSERT);
        if chunks.len() > 0 {
            let mut many = tx.prepare_cached(&INSERT_MANY)?;
            for chunk in &mut chunks {
                insert_rows(&mut many, &request.text, run, chunk)?;
            }
        }
        if !chunks.remainder().is_empty() {
            let mut one = tx.prepare_cached(&INSERT_ONE)?;
            for row in chunks.remainder() {
                insert_rows(&mut one, &request.text, run, std::slice::from_ref(row))?;
            }
        }
        inserted += fresh.len();
    }
    let highest = request.highest();
    let mut outcome = Outcome {
        inserted,
        duplicates: request.rows.len() - inserted,
        unparsed: request.unparsed,
        watermarks: Vec::with_capacity(highest.len()),
    };
    let now = sql_micros(OffsetDateTime::now_utc());
    let mut mark = tx.prepare_cached(MARK)?;
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
