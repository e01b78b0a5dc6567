//! `decky_lifecycle` (engine.md §1.10): one row per decky operation the master runs in the
//! background (deploy, mutate), so a client that got a 202 can poll for the outcome.
//!
//! Statuses move `pending → running → succeeded | failed` and never back. Times are
//! UTC text with microseconds, like `logs.received_at`. A master that stops mid-operation
//! cannot finish its rows, so [`Store::fail_stale_lifecycle`] marks those older than an
//! hour failed at the next start instead of leaving them pending forever.
use rusqlite::{OptionalExtension, params, params_from_iter};
use time::OffsetDateTime;

use super::{Reader, Result, Store, sql_micros};

/// The error of rows a restart interrupted.
pub const RESTARTED: &str = "master restarted during operation";

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStatus {
    /// Accepted, not started.
    Pending,
    /// Under way.
    Running,
    /// Done.
    Succeeded,
    /// Gave up; `error` says why.
    Failed,
}

impl LifecycleStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One stored operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// Opaque id (a UUID).
    pub id: String,
    /// The decky operated on.
    pub decky_name: String,
    /// The swarm host running it; `None` on this host.
    pub host_uuid: Option<String>,
    /// `deploy`, `mutate`, …
    pub operation: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was accepted.
    pub started_at: String,
    /// Last status change.
    pub updated_at: String,
    /// When it succeeded or failed.
    pub completed_at: Option<String>,
}

const COLUMNS: &str =
    "id, decky_name, host_uuid, operation, status, error, started_at, updated_at, completed_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lifecycle> {
    Ok(Lifecycle {
        id: r.get(0)?,
        decky_name: r.get(1)?,
        host_uuid: r.get(2)?,
        operation: r.get(3)?,
        status: r.get(4)?,
        error: r.get(5)?,
        started_at: r.get(6)?,
        updated_at: r.get(7)?,
        completed_at: r.get(8)?,
    })
}

impl Store {
    /// Records pending operations: `(id, decky_name)` each, all of `operation`, run by
    /// swarm host `host_uuid` (`None`: this host).
    pub fn create_lifecycle(
        &self,
        operation: &str,
        host_uuid: Option<&str>,
        rows: &[(String, String)],
    ) -> Result<()> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction()?;
        let now = sql_micros(OffsetDateTime::now_utc());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO decky_lifecycle (id, decky_name, host_uuid, operation, status,
                 started_at, updated_at) VALUES (?1, ?2, ?5, ?3, 'pending', ?4, ?4)",
            )?;
            for (id, name) in rows {
                stmt.execute(params![id, name, operation, now, host_uuid])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Moves the rows `ids` to `status` (with `error` when failed); finished rows get
    /// `completed_at`, and rows already finished are left alone.
    pub fn set_lifecycle(
        &self,
        ids: &[String],
        status: LifecycleStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let conn = self.connect(false)?;
        let now = sql_micros(OffsetDateTime::now_utc());
        let done = matches!(status, LifecycleStatus::Succeeded | LifecycleStatus::Failed);
        let mut stmt = conn.prepare_cached(
            "UPDATE decky_lifecycle SET status = ?1, error = ?2, updated_at = ?3,
             completed_at = CASE WHEN ?4 THEN ?3 ELSE completed_at END
             WHERE id = ?5 AND status IN ('pending', 'running')",
        )?;
        for id in ids {
            stmt.execute(params![status.as_str(), error, now, done, id])?;
        }
        Ok(())
    }

    /// Applies a worker's report on its operation: the latest open (`pending`/`running`)
    /// row of `decky`, `operation` and `host_uuid` moves to `status`, with `error` and,
    /// for a finished one, `completed_at` (now when not given). The row's id, or `None`
    /// when no row is open (a stale duplicate report).
    pub fn report_lifecycle(
        &self,
        decky: &str,
        operation: &str,
        host_uuid: &str,
        status: LifecycleStatus,
        error: Option<&str>,
        completed_at: Option<&str>,
    ) -> Result<Option<String>> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<String> = tx
            .query_row(
                "SELECT id FROM decky_lifecycle WHERE decky_name = ?1 AND operation = ?2
                 AND host_uuid = ?3 AND status IN ('pending', 'running')
                 ORDER BY started_at DESC LIMIT 1",
                params![decky, operation, host_uuid],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = &id {
            let now = sql_micros(OffsetDateTime::now_utc());
            let done = matches!(status, LifecycleStatus::Succeeded | LifecycleStatus::Failed);
            tx.execute(
                "UPDATE decky_lifecycle SET status = ?1, error = COALESCE(?2, error),
                 updated_at = ?3,
                 completed_at = CASE WHEN ?4 THEN COALESCE(?5, ?3) ELSE completed_at END
                 WHERE id = ?6",
                params![status.as_str(), error, now, done, completed_at, id],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Fails the rows still pending or running that were accepted before `before`
    /// (a restart interrupted them); how many.
    pub fn fail_stale_lifecycle(&self, before: OffsetDateTime) -> Result<usize> {
        let conn = self.connect(false)?;
        let now = sql_micros(OffsetDateTime::now_utc());
        Ok(conn.execute(
            "UPDATE decky_lifecycle SET status = 'failed', error = ?1, updated_at = ?2,
             completed_at = ?2 WHERE status IN ('pending', 'running') AND started_at < ?3",
            params![RESTARTED, now, sql_micros(before)],
        )?)
    }
}

impl Reader {
    /// The rows of `ids` that exist, in the order asked.
    pub fn lifecycle(&self, ids: &[String]) -> Result<Vec<Lifecycle>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One placeholder per id; the ids themselves are bound, never spliced.
        let marks = vec!["?"; ids.len()].join(", ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM decky_lifecycle WHERE id IN ({marks})"
        ))?;
        let found: Vec<Lifecycle> = stmt
            .query_map(params_from_iter(ids.iter()), row)?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(found.len());
        for id in ids {
            if let Some(r) = found.iter().find(|r| &r.id == id)
                && !out.iter().any(|o: &Lifecycle| &o.id == id)
            {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    /// The row `id`, if it exists.
    pub fn lifecycle_row(&self, id: &str) -> Result<Option<Lifecycle>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM decky_lifecycle WHERE id = ?1"
        ))?;
        Ok(stmt.query_row(params![id], row).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Options;

    #[test]
    fn rows_move_forward_and_stale_ones_fail() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::store::Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        let ids = ["a".to_owned(), "b".to_owned()];
        store.create_lifecycle(
            "deploy",
            None,
            &[
                (ids[0].clone(), "web".into()),
                (ids[1].clone(), "db".into()),
            ],
        )?;
        store.set_lifecycle(&ids[..1], LifecycleStatus::Running, None)?;
        store.set_lifecycle(&ids[..1], LifecycleStatus::Succeeded, None)?;
        // A finished row does not move again.
        store.set_lifecycle(&ids[..1], LifecycleStatus::Failed, Some("late"))?;
        let r = store.reader()?;
        let rows = r.lifecycle(&["b".into(), "a".into(), "zz".into()])?;
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].id.as_str(), rows[0].status.as_str()),
            ("b", "pending")
        );
        assert_eq!(rows[1].status, "succeeded");
        assert!(rows[1].completed_at.is_some() && rows[1].error.is_none());

        assert_eq!(store.fail_stale_lifecycle(OffsetDateTime::UNIX_EPOCH)?, 0);
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(store.fail_stale_lifecycle(later)?, 1);
        let b = r
            .lifecycle_row("b")?
            .ok_or(crate::store::Error::Corrupt("b".into()))?;
        assert_eq!(
            (b.status.as_str(), b.error.as_deref()),
            ("failed", Some(RESTARTED))
        );
        Ok(())
    }

    #[test]
    fn a_worker_report_finishes_the_latest_open_row_of_its_host() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::store::Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        store.create_lifecycle("deploy", Some("h1"), &[("a".into(), "web".into())])?;
        store.create_lifecycle("deploy", Some("h2"), &[("b".into(), "web".into())])?;
        let got = store.report_lifecycle(
            "web",
            "deploy",
            "h1",
            LifecycleStatus::Failed,
            Some("boom"),
            Some("2024-01-02 03:04:05.000000"),
        )?;
        assert_eq!(got.as_deref(), Some("a"));
        let again = store.report_lifecycle(
            "web",
            "deploy",
            "h1",
            LifecycleStatus::Succeeded,
            None,
            None,
        )?;
        assert_eq!(again, None, "a finished row is not reopened");
        let r = store.reader()?;
        let a = r
            .lifecycle_row("a")?
            .ok_or(crate::store::Error::Corrupt("a".into()))?;
        assert_eq!(
            (
                a.status.as_str(),
                a.error.as_deref(),
                a.completed_at.as_deref()
            ),
            ("failed", Some("boom"), Some("2024-01-02 03:04:05.000000"))
        );
        let b = r
            .lifecycle_row("b")?
            .ok_or(crate::store::Error::Corrupt("b".into()))?;
        assert_eq!(
            (b.status.as_str(), b.host_uuid.as_deref()),
            ("pending", Some("h2"))
        );
        Ok(())
    }
}
