//! Store tests on real SQLite files in temporary directories.
use std::path::Path;

use rusqlite::Connection;

use time::OffsetDateTime;

use super::*;
use crate::pki::Fingerprint;
use crate::syslog::{Message, parse};

fn open(dir: &Path) -> Store {
    Store::open(dir.join("db/decnet.db"), Options::default())
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn record(worker: &str, source: &str, seq: u64) -> LogRecord {
    let line = Message::new(OffsetDateTime::UNIX_EPOCH, "decky-1", "ssh", "auth_attempt")
        .param("src_ip", "203.0.113.5")
        .param("username", format!("user\"{seq}]"))
        .msg("é")
        .to_string();
    LogRecord {
        worker: worker.into(),
        source: source.into(),
        seq,
        received_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(60),
        event: parse(&line).ok(),
    }
}

fn records(worker: &str, source: &str, seqs: std::ops::Range<u64>) -> Vec<LogRecord> {
    seqs.map(|s| record(worker, source, s)).collect()
}

async fn write(writer: &Writer, recs: Vec<LogRecord>) -> Committed {
    writer
        .write(recs)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"))
}

fn mark(worker: &str, source: &str, seq: u64) -> Watermark {
    Watermark {
        worker: worker.into(),
        source: source.into(),
        seq,
    }
}

#[test]
fn migrations_are_idempotent() -> Result<()> {
    let dir = tempdir();
    let first = open(dir.path());
    let again = open(dir.path());
    let reader = again.reader()?;
    let version: i64 = reader
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))?;
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = reader
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    assert_eq!(mode, "wal");
    assert_eq!(first.reader()?.count_logs()?, 0);
    Ok(())
}

#[test]
fn newer_schema_is_refused() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    Connection::open(store.path())?.pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
    match Store::open(store.path(), Options::default()) {
        Err(Error::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn batch_is_committed_and_readable() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, task) = store.spawn_writer()?;
    let mut batch = records("w1", "f1", 1..50);
    let line = b"<134>1 2026-01-02T03:04:05Z decky-1 ssh - e - \xff from 192.0.2.1";
    batch.push(LogRecord::from_line("w1", "f1", 50, line));
    let done = write(&writer, batch).await;
    assert_eq!((done.inserted, done.duplicates, done.unparsed), (50, 0, 0));
    assert_eq!(done.watermarks, vec![mark("w1", "f1", 50)]);

    // A fresh reader connection sees exactly what was committed.
    let reader = store.reader()?;
    assert_eq!(reader.count_logs()?, 50);
    let rows = reader.logs_after(0, 10)?;
    assert_eq!(rows.len(), 10);
    let first = &rows[0];
    assert_eq!(first.timestamp, "1970-01-01 00:00:00");
    assert_eq!(first.received_at, "1970-01-01 00:01:00.000000");
    assert_eq!(
        (first.decky.as_str(), first.service.as_str()),
        ("decky-1", "ssh")
    );
    assert_eq!(first.event_type, "auth_attempt");
    assert_eq!(first.attacker_ip, "203.0.113.5");
    assert_eq!(first.fields.get("username"), Some("user\"1]"));
    assert_eq!(first.msg.as_deref(), Some("é"));
    assert_eq!(
        (first.worker.as_str(), first.source.as_str(), first.seq),
        ("w1", "f1", 1)
    );
    let rest = reader.logs_after(rows[9].id, 100)?;
    assert_eq!(rest.len(), 40);
    let last = &rest[39];
    assert_eq!(last.timestamp, "2026-01-02 03:04:05");
    assert_eq!(last.msg.as_deref(), Some("\u{fffd} from 192.0.2.1"));
    assert_eq!(
        (last.attacker_ip.as_str(), last.fields.to_json().as_str()),
        ("192.0.2.1", "{}")
    );

    drop(writer);
    task.await.unwrap_or_else(|e| panic!("writer task: {e}"));
    Ok(())
}

#[tokio::test]
async fn duplicates_are_skipped_and_counted() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    write(&writer, records("w1", "f1", 1..11)).await;
    // A resend after a lost acknowledgement overlaps what is stored.
    let mut again = records("w1", "f1", 6..16);
    again.push(record("w1", "f1", 15));
    let done = write(&writer, again).await;
    assert_eq!((done.inserted, done.duplicates), (5, 6));
    assert_eq!(done.watermarks, vec![mark("w1", "f1", 15)]);
    assert_eq!(store.reader()?.count_logs()?, 15);
    Ok(())
}

#[tokio::test]
async fn watermarks_are_per_worker_and_source() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    let mut mixed = records("w1", "a", 1..4);
    mixed.extend(records("w1", "b", 7..9));
    mixed.extend(records("w2", "a", 1..3));
    let done = write(&writer, mixed).await;
    assert_eq!(
        done.inserted, 7,
        "the same (source, seq) of two workers are two lines"
    );
    assert_eq!(
        done.watermarks,
        vec![mark("w1", "a", 3), mark("w1", "b", 8), mark("w2", "a", 2)]
    );

    // A late, lower sequence number never moves a watermark back; below the watermark it
    // is a duplicate (a source's stored lines are the prefix up to its watermark).
    let done = write(&writer, vec![record("w1", "b", 2)]).await;
    assert_eq!((done.inserted, done.duplicates), (0, 1));
    assert_eq!(done.watermarks, vec![mark("w1", "b", 8)]);

    // An unparsable line is delivered: it moves the watermark without storing a row.
    let junk = LogRecord::from_line("w1", "a", 4, b"\xffnot syslog");
    assert_eq!(junk.event, None);
    let done = write(&writer, vec![junk]).await;
    assert_eq!((done.inserted, done.unparsed), (0, 1));
    assert_eq!(done.watermarks, vec![mark("w1", "a", 4)]);

    let reader = store.reader()?;
    assert_eq!(reader.watermark("w1", "a")?, Some(4));
    assert_eq!(reader.watermark("w3", "a")?, None);
    assert_eq!(
        reader.watermarks("w1")?,
        vec![mark("w1", "a", 4), mark("w1", "b", 8)]
    );
    assert_eq!(reader.count_logs()?, 7);
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_all_commit() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, task) = store.spawn_writer()?;
    let mut handles = Vec::new();
    for w in 0..8 {
        let writer = writer.clone();
        handles.push(tokio::spawn(async move {
            for chunk in 0..10u64 {
                let recs = records(&format!("w{w}"), "f", chunk * 10 + 1..chunk * 10 + 11);
                write(&writer, recs).await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap_or_else(|e| panic!("sender: {e}"));
    }
    drop(writer);
    task.await.unwrap_or_else(|e| panic!("writer task: {e}"));
    let reader = store.reader()?;
    assert_eq!(reader.count_logs()?, 800);
    for w in 0..8 {
        assert_eq!(reader.watermark(&format!("w{w}"), "f")?, Some(100));
    }
    Ok(())
}

#[tokio::test]
async fn lingering_writer_still_commits_every_request() -> Result<()> {
    let dir = tempdir();
    let options = Options {
        linger: std::time::Duration::from_millis(5),
        max_batch_rows: 7,
        ..Options::default()
    };
    let store = Store::open(dir.path().join("l.db"), options)?;
    let (writer, _task) = store.spawn_writer()?;
    let (a, b) = tokio::join!(
        writer.write(records("w", "a", 1..6)),
        writer.write(records("w", "b", 1..6))
    );
    assert_eq!(a?.watermarks, vec![mark("w", "a", 5)]);
    assert_eq!(b?.watermarks, vec![mark("w", "b", 5)]);
    Ok(())
}

#[tokio::test]
async fn out_of_range_seq_is_refused_before_queueing() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    let err = writer.write(vec![record("w", "f", u64::MAX)]).await;
    assert!(
        matches!(err, Err(Error::SeqOutOfRange(u64::MAX))),
        "{err:?}"
    );
    assert_eq!(write(&writer, Vec::new()).await, Committed::default());
    Ok(())
}

#[tokio::test]
async fn full_database_fails_the_write_and_stores_nothing() -> Result<()> {
    let dir = tempdir();
    let options = Options {
        max_db_bytes: Some(256 * 1024),
        ..Options::default()
    };
    let store = Store::open(dir.path().join("small.db"), options)?;
    let (writer, _task) = store.spawn_writer()?;
    write(&writer, records("w", "f", 1..11)).await;
    let err = writer
        .write(records("w", "f", 11..5011))
        .await
        .err()
        .unwrap_or_else(|| panic!("a 5000-row batch cannot fit in 256 KiB"));
    assert!(matches!(err, Error::Commit(_)), "{err:?}");
    assert_eq!(
        err.sqlite_code(),
        Some(rusqlite::ErrorCode::DiskFull),
        "{err}"
    );
    let reader = store.reader()?;
    assert_eq!(reader.count_logs()?, 10, "a failed batch leaves no rows");
    assert_eq!(
        reader.watermark("w", "f")?,
        Some(10),
        "nor a watermark to acknowledge"
    );
    // The writer survives the failure and keeps committing what fits.
    let done = write(&writer, records("w", "f", 11..12)).await;
    assert_eq!(done.watermarks, vec![mark("w", "f", 11)]);
    Ok(())
}

/// Makes files read-only for the duration of a test, even for root, and undoes it on drop.
///
/// Root ignores permission bits, so as root the files are marked immutable (`chattr +i`),
/// which also stops writes through descriptors already open; otherwise they are chmod-ed,
/// which only stops new opens. `None` when neither is possible here.
struct ReadOnly {
    paths: Vec<std::path::PathBuf>,
    immutable: bool,
}

impl ReadOnly {
    fn set(paths: Vec<std::path::PathBuf>) -> Option<Self> {
        let mut guard = Self {
            paths: Vec::new(),
            immutable: nix::unistd::geteuid().is_root(),
        };
        for path in paths {
            if !guard.apply(&path, true) {
                return None;
            }
            guard.paths.push(path);
        }
        Some(guard)
    }

    fn apply(&self, path: &Path, read_only: bool) -> bool {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let flag = if read_only { "+i" } else { "-i" };
            std::process::Command::new("chattr")
                .arg(flag)
                .arg(path)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            let mode = match (path.is_dir(), read_only) {
                (true, true) => 0o555,
                (true, false) => 0o755,
                (false, true) => 0o444,
                (false, false) => 0o644,
            };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).is_ok()
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        for path in self.paths.iter().rev() {
            self.apply(path, false);
        }
    }
}

#[tokio::test]
async fn read_only_database_fails_the_write() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (running, _task) = store.spawn_writer()?;
    write(&running, records("w", "f", 1..2)).await;

    let db_dir = dir.path().join("db");
    let mut paths: Vec<_> = std::fs::read_dir(&db_dir)
        .map_err(|e| Error::Corrupt(e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        // The running writer has the shared-memory index mapped: leave it writable
        // (an immutable mapping would fault), the database and its log are enough.
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        .collect();
    paths.push(db_dir);
    let Some(guard) = ReadOnly::set(paths) else {
        #[allow(clippy::disallowed_methods)] // test harness policy, not decnet config
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !in_ci,
            "CI must be able to make files read-only (chattr or chmod)"
        );
        // Straight to stderr: libtest hides println! of passing tests, and scripts/test.sh
        // lists SKIP lines in its summary.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIP: store::tests::read_only_database_fails_the_write: cannot make files read-only here\n",
        );
        return Ok(());
    };
    let from_running = if guard.immutable {
        Some(running.write(records("w", "f", 2..3)).await)
    } else {
        None
    };
    let from_new = match store.spawn_writer() {
        Ok((writer, _task)) => writer.write(records("w", "f", 3..4)).await,
        Err(e) => Err(e),
    };
    drop(guard);
    for result in from_running.into_iter().chain([from_new]) {
        let err = result
            .err()
            .unwrap_or_else(|| panic!("a read-only database accepted a write"));
        println!("read-only write error: {err}");
    }
    assert_eq!(store.reader()?.count_logs()?, 1);
    Ok(())
}

#[test]
fn allowed_workers_add_replace_revoke() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let old = Fingerprint::of_der(b"old certificate");
    let new = Fingerprint::of_der(b"new certificate");
    let reader = store.reader()?;
    assert!(!reader.is_worker_allowed("worker-1", &old)?);

    store.allow_worker("worker-1", &old)?;
    assert!(reader.is_worker_allowed("worker-1", &old)?);
    assert!(
        !reader.is_worker_allowed("worker-2", &old)?,
        "the CN must match"
    );

    store.allow_worker("worker-1", &new)?;
    assert!(!reader.is_worker_allowed("worker-1", &old)?, "re-pinned");
    assert_eq!(reader.worker_fingerprint("worker-1")?, Some(new.clone()));
    assert_eq!(
        reader.allowed_workers()?,
        vec![("worker-1".to_owned(), new.clone())]
    );

    assert!(store.revoke_worker("worker-1")?);
    assert!(!store.revoke_worker("worker-1")?);
    assert!(!reader.is_worker_allowed("worker-1", &new)?);
    Ok(())
}

#[test]
fn readers_cannot_write() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let reader = store.reader()?;
    let err = reader.conn.execute("DELETE FROM logs", []);
    assert!(err.is_err(), "query_only connection wrote");
    Ok(())
}

#[tokio::test]
async fn multi_row_inserts_count_duplicates_and_keep_order() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    write(&writer, records("w", "a", 1..41)).await;
    // Overlaps the stored lines inside one multi-row statement, then runs of two
    // sources that alternate, so both the batched and the single-row paths meet
    // duplicates and each source's watermark is its own highest line.
    let mut mixed = records("w", "a", 30..70);
    mixed.extend(records("w", "b", 1..5));
    mixed.extend(records("w", "a", 70..75));
    mixed.push(record("w", "b", 3));
    let done = write(&writer, mixed).await;
    assert_eq!((done.inserted, done.duplicates), (29 + 4 + 5, 11 + 1));
    assert_eq!(done.watermarks, vec![mark("w", "a", 74), mark("w", "b", 4)]);

    let rows = store.reader()?.logs_after(0, 1000)?;
    let order: Vec<(&str, u64)> = rows.iter().map(|r| (r.source.as_str(), r.seq)).collect();
    let mut expected: Vec<(&str, u64)> = (1..70).map(|s| ("a", s)).collect();
    expected.extend((1..5).map(|s| ("b", s)));
    expected.extend((70..75).map(|s| ("a", s)));
    assert_eq!(
        order, expected,
        "rows are stored in the order they were sent"
    );
    assert_eq!(rows[45].fields.get("username"), Some("user\"46]"));
    Ok(())
}

/// A line taken back out of a batch (the listener does it when the memory budget cannot
/// pay for the line's row) leaves no row, no watermark and no bytes behind.
#[tokio::test]
async fn a_rolled_back_line_leaves_nothing_behind() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    let mut batch = Batch::new();
    let push = |batch: &mut Batch, r: &LogRecord| {
        batch.push(&r.worker, &r.source, r.seq, r.received_at, r.event.as_ref())
    };
    push(&mut batch, &record("w", "a", 1))?;
    push(&mut batch, &record("w", "a", 2))?;
    let (kept, bytes) = (batch.len(), batch.bytes());
    for r in [record("w", "a", 9), record("w", "b", 5)] {
        let before = batch.mark();
        push(&mut batch, &r)?;
        assert!(batch.bytes() > bytes);
        batch.rollback(before);
        assert_eq!((batch.len(), batch.bytes()), (kept, bytes));
    }
    push(&mut batch, &record("w", "a", 3))?;
    let done = writer.write_batch(batch).await?;
    assert_eq!(done.inserted, 3);
    assert_eq!(done.watermarks, vec![mark("w", "a", 3)]);
    assert_eq!(store.reader()?.watermark("w", "b")?, None);
    Ok(())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn store_files_are_owner_only() -> Result<()> {
    let dir = tempdir();
    let store = open(dir.path());
    let (writer, _task) = store.spawn_writer()?;
    write(&writer, records("w", "a", 1..3)).await;
    // The writer's connection is still open, so the WAL and its index exist.
    let db = store.path();
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    assert_eq!(mode(&dir.path().join("db")), 0o700);
    for file in [db.to_path_buf(), with("-wal"), with("-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    let positions = dir.path().join("agent/state/forwarder.db");
    drop(Offsets::open(&positions)?);
    assert_eq!(mode(&dir.path().join("agent")), 0o700);
    assert_eq!(mode(&dir.path().join("agent/state")), 0o700);
    assert_eq!(mode(&positions), 0o600);
    Ok(())
}

#[test]
fn sql_times_match_the_formatted_form() {
    let offset = time::UtcOffset::from_hms(5, 30, 0).unwrap_or_else(|e| panic!("{e}"));
    for (secs, micros) in [(0, 0), (1_767_323_045, 7), (4_102_444_799, 999_999)] {
        let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or_else(|e| panic!("{e}"))
            + time::Duration::microseconds(micros);
        let utc = t.to_offset(time::UtcOffset::UTC);
        let expected = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second(),
            utc.microsecond()
        );
        // The line's own offset never shows: stored times are UTC.
        assert_eq!(sql_micros(t.to_offset(offset)), expected);
        let mut seconds = String::new();
        push_sql_time(&mut seconds, t, false);
        assert_eq!(seconds, expected[..19]);
    }
}
