//! The one task that writes events, and the cloneable [`Writer`] handle that feeds it.
//!
//! Each [`Writer::write`] call is one request: a slice of a connection's stream that is
//! committed all or nothing. The task takes the first queued request, adds whatever else
//! is queued (up to [`Options::max_batch_rows`](super::Options), waiting at most
//! `linger` for more), and commits the lot in one transaction on a blocking thread. Only
//! then does each caller get its [`Committed`] reply; if the transaction fails (full or
//! read-only database, I/O error) every caller in the batch gets the error and nothing of
//! the batch is stored, so a listener that acknowledges on `Ok` never acknowledges a line
//! the database does not hold.
//!
//! The writer is the one thread every event passes through, so it does as little as it
//! can: [`Writer::write`] turns records into ready column values on the caller's task
//! (each listener connection runs its own), and the transaction only binds and steps
//! cached multi-row statements.
//!
//! The task ends once every [`Writer`] is dropped and the queue is drained.
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::logs::{self, Batch, LogRecord, Outcome, Watermark};
use super::{Error, Result, Store};

/// What a committed write request did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Events stored by this request.
    pub inserted: usize,
    /// Events skipped because their `(worker, source, seq)` was already stored.
    pub duplicates: usize,
    /// Records without an event (unparsable lines): not stored, but delivered.
    pub unparsed: usize,
    /// After the commit, the watermark of every source the request touched: what the
    /// listener may acknowledge.
    pub watermarks: Vec<Watermark>,
}

impl From<Outcome> for Committed {
    fn from(o: Outcome) -> Self {
        Self {
            inserted: o.inserted,
            duplicates: o.duplicates,
            unparsed: o.unparsed,
            watermarks: o.watermarks,
        }
    }
}

/// A queued request and where its reply goes.
struct Request {
    rows: Batch,
    reply: oneshot::Sender<Result<Committed>>,
}

/// Handle to the writer task; clone it freely (one per listener connection).
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Commits `records` (all or nothing) and returns once they are durable.
    ///
    /// Waits while the writer's queue is full: that is the back-pressure that slows
    /// senders down instead of growing memory. The rows are formatted here, on the
    /// caller's task, so the writer itself only binds and steps.
    pub async fn write(&self, records: Vec<LogRecord>) -> Result<Committed> {
        self.write_batch(Batch::of(&records)?).await
    }

    /// Commits `rows` (all or nothing) and returns once they are durable: what
    /// [`Writer::write`] does for lines already formatted into a [`Batch`] as they came.
    pub async fn write_batch(&self, rows: Batch) -> Result<Committed> {
        if rows.is_empty() {
            return Ok(Committed::default());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { rows, reply })
            .await
            .map_err(|_| Error::WriterClosed)?;
        rx.await.map_err(|_| Error::WriterClosed)?
    }
}

impl Store {
    /// Starts the writer task on the current tokio runtime (call it from inside one).
    ///
    /// The returned handle finishes when every [`Writer`] clone is dropped and the queued
    /// requests are committed.
    pub fn spawn_writer(&self) -> Result<(Writer, JoinHandle<()>)> {
        let conn = self.writer_connection()?;
        let (tx, rx) = mpsc::channel(self.options.queue_depth.max(1));
        let task = tokio::spawn(run(
            conn,
            rx,
            self.options.max_batch_rows.max(1),
            self.options.linger,
        ));
        Ok((Writer { tx }, task))
    }
}

async fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Request>,
    max_rows: usize,
    linger: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        gather(&mut rx, &mut batch, max_rows, linger).await;
        let (requests, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (r.rows, r.reply)).unzip();
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = commit(&mut conn, &requests);
            (conn, outcome)
        })
        .await;
        let outcome = match joined {
            Ok((back, outcome)) => {
                conn = back;
                outcome
            }
            Err(e) => {
                // The connection went down with the thread; dropping `replies` tells
                // every waiting caller `WriterClosed`.
                tracing::error!(error = %e, "store writer thread failed; no more writes");
                return;
            }
        };
        match outcome {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that gave up waiting is no reason to stop.
                    let _ = reply.send(Ok(outcome.into()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "store batch not committed");
                let shared = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(Error::Commit(shared.clone())));
                }
            }
        }
    }
}

/// Adds queued requests to `batch` until `max_rows` or the queue stays empty for `linger`.
async fn gather(
    rx: &mut mpsc::Receiver<Request>,
    batch: &mut Vec<Request>,
    max_rows: usize,
    linger: Duration,
) {
    let mut rows: usize = batch.iter().map(|r| r.rows.len()).sum();
    let deadline = tokio::time::Instant::now() + linger;
    while rows < max_rows {
        let next = match rx.try_recv() {
            Ok(request) => request,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if linger.is_zero() => break,
            Err(TryRecvError::Empty) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(request)) => request,
                Ok(None) | Err(_) => break,
            },
        };
        rows += next.rows.len();
        batch.push(next);
    }
}

/// One transaction for every request of the batch. `IMMEDIATE` takes the write lock
/// first, waiting for it under `busy_timeout`: a deferred transaction that read first
/// fails at once with "database is locked" when the ingester commits in between.
fn commit(conn: &mut Connection, requests: &[Batch]) -> Result<Vec<Outcome>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for rows in requests {
        outcomes.push(logs::insert(&tx, rows)?);
    }
    tx.commit()?;
    Ok(outcomes)
}
