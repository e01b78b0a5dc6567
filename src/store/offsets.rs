//! `forwarder.db`: where a worker's forwarder stands in each file it ships.
//!
//! A separate small database on the worker (not the master's store): one row per
//! *source*, that is one generation of one file. The row is keyed by the source name and
//! carries the file identity (`path`, `inode`) it was read from, the generation, and the
//! position just after the last **acknowledged** line (`offset`, `seq`). The original kept
//! one row named `default` whatever the file (swarm.md §8.2); here changing or adding
//! files, rotating by rename and truncating each get rows of their own.
//!
//! The row's `inode` is the file the source is *read from*: it starts as the file at the
//! path and moves to the rotated copy when a copytruncate is followed into it, so a
//! restart finds the copy by inode. `digest` is the SHA-256 of every byte before
//! `offset`: it proves at a restart that the file (or a rotated copy) still holds exactly
//! the lines already shipped; `head` (the file's first bytes as seen, maybe beyond
//! `offset`) does the same for a source that had shipped nothing yet.
//!
//! Generations only grow per path ([`Offsets::next_generation`]), so a file that reuses an
//! old inode never gets an old source name, whose committed lines the master would take
//! for duplicates. Rows of finished sources stay to keep that counter; they are a few
//! dozen bytes per rotation.
//!
//! Durability: WAL with `synchronous=NORMAL`. A position lost in a power cut only makes
//! the forwarder re-send lines the master already holds, which it de-duplicates, so the
//! fsync per acknowledgement that `FULL` would cost buys nothing here.
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};
use time::OffsetDateTime;

use super::{Error, Result, create_private, sql_micros};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forwarder_sources (
    source     TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    inode      INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    finished   INTEGER NOT NULL DEFAULT 0,
    signature  BLOB NOT NULL DEFAULT x'',
    digest     BLOB NOT NULL DEFAULT x'',
    head       BLOB NOT NULL DEFAULT x'',
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS forwarder_sources_path ON forwarder_sources (path, generation);
";

/// Columns added after the first release, for databases created before them.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("digest", "BLOB NOT NULL DEFAULT x''"),
    ("head", "BLOB NOT NULL DEFAULT x''"),
];

/// The acknowledged position of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The source name the master stores lines under.
    pub source: String,
    /// The configured path the file was found at.
    pub path: PathBuf,
    /// The inode of the file the source is read from (the rotated copy after a
    /// copytruncate was followed into it).
    pub inode: u64,
    /// Generation of this path (grows with every new file or truncation).
    pub generation: u64,
    /// Byte offset just after the last acknowledged line.
    pub offset: u64,
    /// Sequence number of the last acknowledged line (0: none yet).
    pub seq: u64,
    /// The last bytes before `offset`: if they differ when the forwarder restarts, the
    /// file was truncated (and maybe regrown past `offset`) while it was down.
    pub signature: Vec<u8>,
    /// SHA-256 of the bytes before `offset` (empty: not known, e.g. after the lag cap
    /// dropped bytes); what a rotated copy must match to be read on from `offset`.
    pub digest: Vec<u8>,
    /// The file's first bytes as last seen (up to a few hundred, maybe beyond `offset`).
    pub head: Vec<u8>,
}

/// The forwarder's position database.
#[derive(Debug)]
pub struct Offsets {
    conn: Connection,
}

fn int(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::SeqOutOfRange(v))
}

fn uint(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative position {v}")))
}

impl Offsets {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        for (name, decl) in ADDED_COLUMNS {
            let present: bool = conn.query_row(
                "SELECT count(*) > 0 FROM pragma_table_info('forwarder_sources') WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE forwarder_sources ADD COLUMN {name} {decl}"
                ))?;
            }
        }
        Ok(Self { conn })
    }

    /// Unfinished sources of `path`, oldest generation first.
    pub fn open_sources(&self, path: &Path) -> Result<Vec<Position>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source, inode, generation, offset, seq, signature, digest, head FROM forwarder_sources
             WHERE path = ?1 AND finished = 0 ORDER BY generation",
        )?;
        let rows = stmt.query_map(params![path.to_string_lossy()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Vec<u8>>(5)?,
                row.get::<_, Vec<u8>>(6)?,
                row.get::<_, Vec<u8>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (source, inode, generation, offset, seq, signature, digest, head) = row?;
            out.push(Position {
                source,
                path: path.to_path_buf(),
                inode: uint(inode)?,
                generation: uint(generation)?,
                offset: uint(offset)?,
                seq: uint(seq)?,
                signature,
                digest,
                head,
            });
        }
        Ok(out)
    }

    /// The generation a new source of `path` gets: one above any ever used.
    pub fn next_generation(&self, path: &Path) -> Result<u64> {
        let top: Option<i64> = self.conn.query_row(
            "SELECT max(generation) FROM forwarder_sources WHERE path = ?1",
            params![path.to_string_lossy()],
            |row| row.get(0),
        )?;
        top.map_or(Ok(0), |g| uint(g).map(|g| g + 1))
    }

    /// Records positions (new sources included) in one transaction.
    pub fn save(&mut self, positions: &[Position]) -> Result<()> {
        let now = sql_micros(OffsetDateTime::now_utc());
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO forwarder_sources
                 (source, path, inode, generation, offset, seq, signature, digest, head,
                  updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (source) DO UPDATE
                 SET inode = excluded.inode, offset = excluded.offset, seq = excluded.seq,
                     signature = excluded.signature, digest = excluded.digest,
                     head = excluded.head, updated_at = excluded.updated_at",
            )?;
            for p in positions {
                stmt.execute(params![
                    p.source,
                    p.path.to_string_lossy(),
                    int(p.inode)?,
                    int(p.generation)?,
                    int(p.offset)?,
                    int(p.seq)?,
                    p.signature,
                    p.digest,
                    p.head,
                    now,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks a source as done: its file is gone or fully shipped and acknowledged.
    pub fn finish(&self, source: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE forwarder_sources SET finished = 1, updated_at = ?2 WHERE source = ?1",
            params![source, sql_micros(OffsetDateTime::now_utc())],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(path: &Path, generation: u64, offset: u64, seq: u64) -> Position {
        Position {
            source: format!("{}:7:{generation}", path.display()),
            path: path.to_path_buf(),
            inode: 7,
            generation,
            offset,
            seq,
            signature: b"line\n".to_vec(),
            digest: vec![generation as u8; 32],
            head: b"line\n".to_vec(),
        }
    }

    #[test]
    fn positions_survive_reopening_and_generations_only_grow() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: PathBuf::from("tmp"),
            source,
        })?;
        let db = dir.path().join("agent/forwarder.db");
        let log = Path::new("/var/log/decnet/decnet.log");
        let mut offsets = Offsets::open(&db)?;
        assert_eq!(offsets.next_generation(log)?, 0);
        offsets.save(&[pos(log, 0, 0, 0)])?;
        offsets.save(&[pos(log, 0, 420, 3), pos(log, 1, 0, 0)])?;
        offsets.finish(&pos(log, 0, 0, 0).source)?;
        drop(offsets);

        let offsets = Offsets::open(&db)?;
        assert_eq!(offsets.open_sources(log)?, vec![pos(log, 1, 0, 0)]);
        assert_eq!(offsets.next_generation(log)?, 2);
        assert!(offsets.open_sources(Path::new("/other"))?.is_empty());
        Ok(())
    }

    #[test]
    fn a_source_followed_into_its_rotated_copy_keeps_the_copys_inode() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: PathBuf::from("tmp"),
            source,
        })?;
        let db = dir.path().join("forwarder.db");
        let log = Path::new("/var/log/decnet/decnet.log");
        let mut offsets = Offsets::open(&db)?;
        let mut moved = pos(log, 0, 420, 3);
        offsets.save(std::slice::from_ref(&moved))?;
        moved.inode = 99;
        moved.digest = vec![1; 32];
        moved.head = b"line\nnext line\n".to_vec();
        offsets.save(std::slice::from_ref(&moved))?;
        assert_eq!(offsets.open_sources(log)?, vec![moved]);
        Ok(())
    }

    #[test]
    fn a_database_from_before_the_digest_column_is_upgraded() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: PathBuf::from("tmp"),
            source,
        })?;
        let db = dir.path().join("forwarder.db");
        Connection::open(&db)?.execute_batch(
            "CREATE TABLE forwarder_sources (
                source TEXT PRIMARY KEY, path TEXT NOT NULL, inode INTEGER NOT NULL,
                generation INTEGER NOT NULL, offset INTEGER NOT NULL, seq INTEGER NOT NULL,
                finished INTEGER NOT NULL DEFAULT 0, signature BLOB NOT NULL DEFAULT x'',
                updated_at TEXT NOT NULL);
             INSERT INTO forwarder_sources VALUES ('/l:7:0', '/l', 7, 0, 10, 2, 0, x'0a', 'x');",
        )?;
        let offsets = Offsets::open(&db)?;
        let rows = offsets.open_sources(Path::new("/l"))?;
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].offset, rows[0].seq), (10, 2));
        assert!(rows[0].digest.is_empty(), "unknown digest of an old row");
        assert!(rows[0].head.is_empty());
        drop(offsets);
        Offsets::open(&db)?;
        Ok(())
    }
}
