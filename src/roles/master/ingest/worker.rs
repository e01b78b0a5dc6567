//! The ingestion loop: read committed rows after the cursor, derive, commit with the
//! cursor, publish, repeat; sleep [`Tuning::idle_poll`] when there is nothing new.
//!
//! SQLite work runs on a blocking thread with the connection moved in and out, as the
//! store's writer does, so the async runtime never stalls. A failed batch (the database
//! busy past its timeout, full, …) is retried from the same cursor after
//! [`Tuning::retry`]; since nothing of it committed, nothing is derived twice. The
//! profile changes the profiler held are dropped with it and derived again from the
//! profiles' own cursor, as after a restart.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::credentials::Dropped;
use super::profiler::{Flush, Profiler, profiled};
use super::{BATCH_ROWS, CURSOR_KEY, PROFILE_CURSOR_KEY, bounty, credentials};
use crate::bus::{Bus, publish_safely, topics};
use crate::roles::master::health::TaskResult;
use crate::store::{Applied, Changes, Ingest, Store};
use crate::syslog::Fields;

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Rows per batch.
    pub batch_rows: u32,
    /// Sleep when no new row is committed.
    pub idle_poll: Duration,
    /// Sleep after a failed batch or an unreachable database.
    pub retry: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            batch_rows: BATCH_ROWS,
            idle_poll: Duration::from_millis(250),
            retry: Duration::from_secs(1),
        }
    }
}

/// A bus notification of a committed batch: topic, event type, payload.
pub type Notice = (&'static str, &'static str, serde_json::Value);

/// Committed batches the publisher may hold before the loop waits for it.
const PUBLISH_QUEUE: usize = 8;

/// What one batch did.
#[derive(Debug, Default)]
pub struct Step {
    /// Rows derived.
    pub rows: usize,
    /// The cursor after the batch.
    pub cursor: i64,
    /// What was committed, for the notifications.
    committed: Option<(Changes, Applied)>,
}

impl Step {
    /// The batch's bus notifications. Built here rather than in [`Pipeline::step`], so
    /// the loop builds them on the runtime while the next batch derives.
    pub fn notices(&self) -> Vec<Notice> {
        self.committed
            .as_ref()
            .map(|(changes, applied)| notices(changes, applied))
            .unwrap_or_default()
    }
}

/// Credentials dropped for a bad `secret_b64`, for rate-limited warnings.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The ingester's connection, cursors and profiler.
#[derive(Debug)]
pub struct Pipeline {
    ingest: Ingest,
    /// Last log id whose credentials and bounties are committed.
    cursor: i64,
    /// Last log id the stored profiles cover.
    profile_cursor: i64,
    /// Last log id the profiler observed.
    read: i64,
    profiler: Profiler,
}

impl Pipeline {
    /// Opens the ingester's connection on `store`, loads the cursors and flushes
    /// profiles at [`Flush::default`].
    pub fn open(store: &Store) -> crate::store::Result<Self> {
        Self::open_with(store, Flush::default())
    }

    /// [`Self::open`] with profile flushes at `flush`.
    pub fn open_with(store: &Store, flush: Flush) -> crate::store::Result<Self> {
        let mut ingest = store.ingest(CURSOR_KEY, PROFILE_CURSOR_KEY)?;
        let cursor = ingest.cursor()?;
        let profile_cursor = ingest.profile_cursor()?.min(cursor);
        Ok(Self {
            ingest,
            cursor,
            profile_cursor,
            read: profile_cursor,
            profiler: Profiler::new(flush),
        })
    }

    /// The last log id derived.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Derives and commits the next batch of at most `limit` rows.
    ///
    /// After a restart or a failed commit the profiler is behind the cursor: the batch
    /// then holds only rows already derived, whose profile changes are derived again.
    pub fn step(&mut self, limit: u32) -> crate::store::Result<Step> {
        let mut rows = self.ingest.rows_after(self.read, limit)?;
        let mut replay = self.read < self.cursor;
        if replay {
            match rows.partition_point(|r| r.id <= self.cursor) {
                0 => {
                    self.read = self.cursor;
                    replay = false;
                }
                n => rows.truncate(n),
            }
        }
        let now = crate::store::sql_micros(OffsetDateTime::now_utc());
        let Some(last) = rows.last().map(|r| r.id) else {
            return self.flush_only(now);
        };
        let ips = rows
            .iter()
            .map(|r| r.attacker_ip.as_str())
            .filter(|ip| profiled(ip));
        let ingest = &self.ingest;
        self.profiler.load(ips, |ip| ingest.profile(ip))?;
        let mut changes = Changes {
            cursor: (!replay).then_some(last),
            ..Changes::default()
        };
        for row in &rows {
            // Fields that do not parse are treated as none: the row still counts.
            let fields = Fields::from_json(&row.fields).unwrap_or_default();
            let credential = match credentials::extract(row, &fields) {
                Some(Ok(c)) => {
                    if !replay {
                        changes.credentials.push(c);
                    }
                    true
                }
                Some(Err(why)) => {
                    if !replay {
                        warn_dropped(row.id, why);
                    }
                    false
                }
                None => false,
            };
            let found = bounty::extract(row, &fields);
            let prints: Vec<_> = found.iter().filter_map(|f| f.fingerprint.clone()).collect();
            self.profiler
                .observe(row, &fields, credential, &prints, replay);
            if !replay {
                changes.bounties.extend(found.into_iter().map(|f| f.bounty));
            }
        }
        for c in &mut changes.credentials {
            c.attacker_uuid = self.profiler.uuid_of(&c.attacker_ip).map(str::to_owned);
        }
        let caught_up = !replay && rows.len() < limit as usize;
        if self.profiler.flush_due(caught_up) {
            changes.attackers = self.profiler.take(&now);
            changes.profile_cursor = Some(last);
        } else if replay {
            // Nothing to write yet: the rows' credentials and bounties are stored.
            self.read = last;
            return Ok(Step {
                rows: rows.len(),
                cursor: self.cursor,
                committed: None,
            });
        } else {
            changes.created = self.profiler.take_created(&now);
        }
        let applied = self.commit(&changes)?;
        self.read = last;
        Ok(Step {
            rows: rows.len(),
            cursor: self.cursor,
            committed: Some((changes, applied)),
        })
    }

    /// With no new row: writes the profile changes still held, if any.
    fn flush_only(&mut self, now: String) -> crate::store::Result<Step> {
        let mut step = Step {
            cursor: self.cursor,
            ..Step::default()
        };
        if self.profile_cursor == self.read {
            return Ok(step);
        }
        let changes = Changes {
            attackers: self.profiler.take(&now),
            profile_cursor: Some(self.read),
            ..Changes::default()
        };
        let applied = self.commit(&changes)?;
        step.committed = Some((changes, applied));
        Ok(step)
    }

    /// Commits `changes` and moves the cursors; on failure forgets everything held, so
    /// the next step derives again from the committed cursors.
    fn commit(&mut self, changes: &Changes) -> crate::store::Result<Applied> {
        let applied = match self.ingest.commit(changes) {
            Ok(applied) => applied,
            Err(e) => {
                self.profiler.forget();
                self.read = self.profile_cursor;
                return Err(e);
            }
        };
        if let Some(id) = changes.cursor {
            self.cursor = id;
        }
        if let Some(id) = changes.profile_cursor {
            self.profile_cursor = id;
            self.profiler.finish();
        } else {
            self.profiler
                .committed(&changes.created, &applied.new_bounties);
        }
        Ok(applied)
    }
}

/// The bus notifications of a committed batch.
fn notices(changes: &Changes, applied: &Applied) -> Vec<Notice> {
    let mut notices = Vec::new();
    for (c, attempts) in changes.credentials.iter().zip(&applied.attempts) {
        notices.push((
            topics::CREDENTIAL_CAPTURED,
            "credential_captured",
            json!({
                "secret_sha256": c.secret_sha256, "secret_kind": c.secret_kind,
                "attacker_ip": c.attacker_ip, "decky": c.decky_name,
                "service": c.service, "attempt_count": attempts,
            }),
        ));
    }
    let observed = |uuid: &str, ip: &str, first_seen: &str| {
        (
            topics::ATTACKER_OBSERVED,
            "attacker_observed",
            json!({"uuid": uuid, "ip": ip, "first_seen": first_seen}),
        )
    };
    for p in &changes.created {
        notices.push(observed(&p.uuid, &p.ip, &p.seen));
    }
    for (a, t) in changes.attackers.iter().zip(&applied.totals) {
        if a.is_new {
            notices.push(observed(&a.uuid, &a.ip, &a.first_seen));
        }
        notices.push((
            topics::ATTACKER_SCORED,
            "attacker_scored",
            json!({
                "uuid": a.uuid, "ip": a.ip, "event_count": t.event_count,
                "service_count": t.service_count, "decky_count": t.decky_count,
                "is_traversal": t.is_traversal, "credential_count": t.credential_count,
                "bounty_count": t.bounty_count, "last_seen": t.last_seen,
            }),
        ));
    }
    notices
}

/// Logs a dropped credential on the 1st, 2nd, 4th… time, never with the secret.
fn warn_dropped(id: i64, why: Dropped) {
    let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(log_id = id, reason = ?why, dropped = n, "credential dropped");
    }
}

/// Runs the loop on `store` until `shutdown`, publishing on `bus`.
pub async fn run(
    store: Store,
    bus: Arc<dyn Bus>,
    tuning: Tuning,
    shutdown: CancellationToken,
) -> TaskResult {
    let pause = |d: Duration| {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown.cancelled() => false,
                () = tokio::time::sleep(d) => true,
            }
        }
    };
    let mut pipeline = loop {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || Pipeline::open(&s)).await {
            Ok(Ok(p)) => break p,
            Ok(Err(e)) => tracing::warn!(error = %e, "ingestion: database not ready"),
            Err(e) => return Err(format!("ingestion: {e}")),
        }
        if !pause(tuning.retry).await {
            return Ok(());
        }
    };
    tracing::info!(cursor = pipeline.cursor(), "ingestion started");
    // One publisher, in commit order, beside the derivation of the next batch.
    let (publish, mut committed) = tokio::sync::mpsc::channel::<Step>(PUBLISH_QUEUE);
    let publisher = tokio::spawn(async move {
        while let Some(step) = committed.recv().await {
            for (topic, event_type, payload) in &step.notices() {
                publish_safely(Some(bus.as_ref()), topic, payload, event_type);
            }
        }
    });
    while !shutdown.is_cancelled() {
        let limit = tuning.batch_rows;
        let (back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = pipeline.step(limit);
            (pipeline, outcome)
        })
        .await
        .map_err(|e| format!("ingestion: {e}"))?;
        pipeline = back;
        let wait = match outcome {
            Ok(step) => {
                let rows = step.rows;
                if step.committed.is_some() && publish.send(step).await.is_err() {
                    return Err("ingestion: the publisher stopped".into());
                }
                if rows > 0 {
                    continue;
                }
                tuning.idle_poll
            }
            Err(e) => {
                tracing::warn!(error = %e, cursor = pipeline.cursor(), "ingestion batch failed");
                tuning.retry
            }
        };
        if !pause(wait).await {
            break;
        }
    }
    drop(publish);
    publisher
        .await
        .map_err(|e| format!("ingestion publisher: {e}"))
}
