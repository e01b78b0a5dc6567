//! The master's database: SQLite through rusqlite, behind decnet's own types.
//!
//! Shape (DESIGN.md "Store"):
//! - **One writer.** [`Store::spawn_writer`] starts the only task that writes events. It is
//!   fed by a bounded channel (back-pressure reaches the listener, never unbounded memory)
//!   and commits whatever is queued, up to [`Options::max_batch_rows`], in one transaction.
//!   Everything per line that is not SQLite (timestamps as text, the `fields` JSON) is
//!   done before a request is queued, on the sender's task, beside the writer.
//! - **Readers use their own connections** ([`Store::reader`]); WAL lets them read while
//!   the writer commits. Rare administrative writes (the worker allow-list) open a
//!   short-lived connection of their own; `busy_timeout` serialises them with the writer.
//! - **Exactly-once delivery.** Every event arrives as a [`LogRecord`] keyed by
//!   `(worker, source, seq)`. The key is unique in `logs`, inserts skip rows already
//!   present, and `log_sources` keeps the highest committed `seq` per source. A writer
//!   reply ([`Committed`]) comes only after the commit and carries those watermarks, so
//!   the listener acknowledges nothing that is not durable, and a re-sent line is counted
//!   as a duplicate instead of stored twice.
//! - **Durability.** WAL with `synchronous=FULL`: an acknowledged batch survives power
//!   loss, which is the promise the acknowledgement makes; batching pays for the fsync.
//! - **Migrations** are additive and numbered by `PRAGMA user_version`; opening twice is
//!   a no-op, and a database from a newer decnet is refused rather than misread.
//! - **Private files.** The database (and so its `-wal` and `-shm`) is created 0600 and
//!   missing directories 0700: it holds attacker data and captured credentials.
//!
//! - **What ingestion derives**: `credentials`, `bounty` and `attackers`, written on
//!   the ingester's own connection ([`Ingest`]) one transaction per batch, cursor
//!   included, and read by the API.
//! - **The master API's reads and accounts**: the search grammar, pages and histogram
//!   of `logs` ([`LogFilter`]), and `users` / `revoked_tokens` / `state` ([`User`]).
//! - **Background decky operations** (`decky_lifecycle`, [`Lifecycle`]): what the
//!   master's fleet routes report through `/deckies/lifecycle`.
//! - **The swarm** (`swarm_hosts`, `decky_shards`, [`SwarmHost`], [`Shard`]): enrolled
//!   workers with their certificate pins, and which host runs which decky.
//! - **The forwarder's positions** live in a small database of their own on the worker
//!   ([`Offsets`], `forwarder.db`), not in this schema.
//!
//! SQL here sticks to what PostgreSQL also accepts (`ON CONFLICT … DO NOTHING/UPDATE`);
//! nothing outside this module sees rusqlite, so another backend can replace it.
mod attackers;
mod bounty;
mod credentials;
mod ingest;
mod lifecycle;
mod logs;
mod migrate;
mod offsets;
mod profiles;
mod search;
mod swarm;
mod users;
mod workers;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;
use time::{OffsetDateTime, UtcOffset};

pub use attackers::{AttackerQuery, AttackerRecord, AttackerSort, CommandEntry, FingerprintEntry};
pub use bounty::{BountyRow, NewBounty};
pub use credentials::{CredentialRow, NewCredential};
pub use ingest::{Applied, Changes, Ingest, IngestRow};
pub use lifecycle::{Lifecycle, LifecycleStatus, RESTARTED};
pub use logs::{Batch, LogRecord, Mark, StoredLog, Watermark};
pub use migrate::SCHEMA_VERSION;
pub use offsets::{Offsets, Position};
pub use profiles::{NewProfile, ProfileLists, ProfileTotals, ProfileUpdate, StoredProfile};
pub use search::{Bucket, FilterError, LogCounts, LogFilter, LogRow, parse_time};
pub use swarm::{Shard, SwarmHost};
pub use users::{Role, Seeded, User};
/// The swarm tables' status words and clock.
pub mod swarm_status {
    pub use super::swarm::{ACTIVE, ENROLLED, UNREACHABLE, now_text};
}
pub use writer::{Committed, Writer};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The database file cannot be created or opened.
    #[error("{path}: cannot open the database: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database directory cannot be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A query failed (read-only or full database, I/O error, lock timeout, …).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer's transaction failed: nothing of the batch is stored.
    #[error("batch not committed: {0}")]
    Commit(#[source] Arc<Error>),
    /// The database was written by a newer decnet.
    #[error(
        "database schema version {found} is newer than this decnet understands ({known}); \
         upgrade decnet or point it at another database"
    )]
    SchemaTooNew {
        /// The database's `user_version`.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A sequence number does not fit the database's signed 64-bit integers.
    #[error("sequence number {0} is out of range (at most 2^63 - 1)")]
    SeqOutOfRange(u64),
    /// A stored value cannot be read back into its type.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The writer task has stopped, so nothing more can be committed.
    #[error("the store writer has stopped")]
    WriterClosed,
}

impl Error {
    /// SQLite's primary error code, to tell a full disk from a read-only database.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        let err = match self {
            Self::Open { source, .. } => source,
            Self::Sqlite(e) => e,
            Self::Commit(inner) => return inner.sqlite_code(),
            _ => return None,
        };
        err.sqlite_error_code()
    }
}

/// Shorthand for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tunables of the store; the defaults suit a master ingesting from a fleet.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a connection waits for another one's lock before failing.
    pub busy_timeout: Duration,
    /// Most rows committed in one writer transaction.
    pub max_batch_rows: usize,
    /// Write requests the writer's channel holds before senders wait.
    pub queue_depth: usize,
    /// How long the writer waits for more requests after the first one of a batch. Zero
    /// commits as soon as the queue is empty: batches still form under load, while the
    /// previous commit runs, without adding latency when idle.
    pub linger: Duration,
    /// Cap on the database size; writes past it fail as "database or disk is full".
    pub max_db_bytes: Option<u64>,
    /// The writer connection's page cache, in KiB.
    pub cache_kib: u32,
    /// WAL pages after which the writer checkpoints into the database file.
    pub wal_checkpoint_pages: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_batch_rows: 1000,
            queue_depth: 256,
            linger: Duration::ZERO,
            max_db_bytes: None,
            cache_kib: 8192,
            wal_checkpoint_pages: 4000,
        }
    }
}

/// A migrated database on disk; hands out the writer and reader connections.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    options: Options,
}

impl Store {
    /// Creates or opens the database at `path` and brings its schema up to date.
    pub fn open(path: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let path = path.into();
        create_private(&path)?;
        let store = Self { path, options };
        let mut conn = store.connect(true)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrate::migrate(&mut conn)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// A connection for queries only (it refuses writes).
    pub fn reader(&self) -> Result<Reader> {
        let conn = self.connect(false)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Reader { conn })
    }

    /// Opens a connection with the common settings; `create` allows creating the file.
    fn connect(&self, create: bool) -> Result<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?;
        conn.busy_timeout(self.options.busy_timeout)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        Ok(conn)
    }

    /// The writer's connection: durable commits and the optional size cap.
    fn writer_connection(&self) -> Result<Connection> {
        let conn = self.connect(false)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A page cache that holds the indexes' hot pages saves re-reads,
        // and a longer WAL lets a page rewritten by several commits reach the database
        // file once per checkpoint instead of once per commit.
        conn.pragma_update(None, "cache_size", -i64::from(self.options.cache_kib))?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            self.options.wal_checkpoint_pages,
        )?;
        if let Some(bytes) = self.options.max_db_bytes {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page.max(1);
            conn.pragma_update(None, "max_page_count", pages.max(1))?;
        }
        Ok(conn)
    }
}

/// Creates the database file `path` owner-only (0600), and every missing directory above
/// it 0700, before SQLite opens it.
///
/// The store holds attacker data and credentials, so no other local user may read it.
/// SQLite gives the `-wal` and `-shm` files it creates the database file's mode, so they
/// are private too. Files and directories that already exist keep their modes: an
/// operator who loosened them on purpose is not overruled.
pub(crate) fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// A read-only connection of its own; cheap to open, not shared between threads.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

/// `t` in UTC as `YYYY-MM-DD HH:MM:SS.ffffff`.
pub(crate) fn sql_micros(t: OffsetDateTime) -> String {
    let mut out = String::with_capacity(26);
    push_sql_time(&mut out, t, true);
    out
}

/// Appends `t` in UTC as `YYYY-MM-DD HH:MM:SS` (the `logs.timestamp` form, which sorts
/// as text) to `out`, or with `micros` as [`sql_micros`] does.
pub(crate) fn push_sql_time(out: &mut String, t: OffsetDateTime, micros: bool) {
    // By hand rather than through `format!`: this runs twice per stored line, and
    // `core::fmt` made it a tenth of the store's per-line instructions.
    fn digits(out: &mut String, mut value: u32, width: usize) {
        let mut text = [b'0'; 6];
        let width = width.min(text.len());
        for slot in text[..width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out.extend(text[..width].iter().map(|&b| char::from(b)));
    }
    let t = t.to_offset(UtcOffset::UTC);
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, micro) = t.to_hms_micro();
    // Years before 0 or after 9999 do not occur in a log; they keep the digits they fit.
    digits(out, year.clamp(0, 9999).unsigned_abs(), 4);
    out.push('-');
    digits(out, u32::from(u8::from(month)), 2);
    out.push('-');
    digits(out, u32::from(day), 2);
    out.push(' ');
    digits(out, u32::from(hour), 2);
    out.push(':');
    digits(out, u32::from(minute), 2);
    out.push(':');
    digits(out, u32::from(second), 2);
    if micros {
        out.push('.');
        digits(out, micro, 6);
    }
}
