//! Following log files through rotation: which bytes are lines, and which source they
//! belong to.
//!
//! A *source* is one generation of one configured path: `"<path>:<inode>:<generation>"`.
//! Its lines are numbered from 1 in file order. A path gets a new source when
//! - the file at the path is replaced (rename rotation): the old file stays open and is
//!   read to its end first (its source *drains*), and only then does the new file's
//!   source start sending; after a crash the old file is looked for by inode next to
//!   the path (e.g. `decnet.log.1`);
//! - the file shrinks below the read position, or the bytes just before the position
//!   change (copytruncate, even when the file has grown again since; the bytes before
//!   the acknowledged position are saved too, so this holds across a forwarder restart):
//!   the new generation starts at offset 0. Lines written between the forwarder's last read and
//!   the truncation exist only in the copy: copytruncate loses them for every tailer.
//!
//! Lines read are kept (as `Bytes`) until acknowledged, so a reconnect re-sends them even
//! when the file has been truncated meanwhile. A source's position is persisted in
//! `forwarder.db` only up to its last acknowledged line.
//!
//! The lag cap drops the oldest unread bytes when the file is more than `max_lag` ahead
//! (swarm.md §8.2); those lines are lost on purpose and numbering continues after them.
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::bytes::{Bytes, BytesMut};

use crate::store::{self, Offsets, Position};

/// Bytes read from a file per call.
const CHUNK: usize = 256 * 1024;
/// Bytes before the read position compared on every poll to spot a truncation.
const SIGNATURE: u64 = 32;

/// One line read, waiting for its acknowledgement.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// Line number within its source.
    pub seq: u64,
    /// Offset just after the line (where the source resumes once it is acknowledged).
    pub end: u64,
    /// The line without its terminator.
    pub bytes: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The file at the path; may grow.
    Live,
    /// Replaced at the path; read to its end, then finished.
    Draining { since: Instant },
    /// Truncated or vanished: nothing more to read, only acknowledgements to await.
    Closed,
}

/// One source being read.
#[derive(Debug)]
pub(super) struct Stream {
    pub source: String,
    path: PathBuf,
    inode: u64,
    generation: u64,
    file: Option<File>,
    state: State,
    read_offset: u64,
    next_seq: u64,
    acked_offset: u64,
    acked_seq: u64,
    /// The master already committed every line up to this seq.
    skip_through: u64,
    at_eof: bool,
    signature: Option<Vec<u8>>,
    pub inflight: VecDeque<Line>,
    /// Index of this source on the current connection, once declared.
    pub idx: Option<u32>,
    dirty: bool,
}

impl Stream {
    fn new(pos: &Position, file: Option<File>, state: State) -> Self {
        Self {
            source: pos.source.clone(),
            path: pos.path.clone(),
            inode: pos.inode,
            generation: pos.generation,
            file,
            state,
            read_offset: pos.offset,
            next_seq: pos.seq + 1,
            acked_offset: pos.offset,
            acked_seq: pos.seq,
            skip_through: pos.seq,
            at_eof: false,
            signature: None,
            inflight: VecDeque::new(),
            idx: None,
            dirty: false,
        }
    }

    fn position(&self) -> Position {
        let len = self.acked_offset.min(SIGNATURE);
        let mut signature = vec![0u8; len as usize];
        let readable = self.file.as_ref().is_some_and(|f| {
            f.read_exact_at(&mut signature, self.acked_offset - len)
                .is_ok()
        });
        if !readable {
            signature.clear();
        }
        Position {
            signature,
            source: self.source.clone(),
            path: self.path.clone(),
            inode: self.inode,
            generation: self.generation,
            offset: self.acked_offset,
            seq: self.acked_seq,
        }
    }

    /// Everything up to `seq` is committed on the master.
    pub fn ack(&mut self, seq: u64) {
        while self.inflight.front().is_some_and(|l| l.seq <= seq) {
            if let Some(line) = self.inflight.pop_front() {
                self.acked_offset = line.end;
                self.acked_seq = line.seq;
                self.dirty = true;
            }
        }
        self.skip_through = self.skip_through.max(seq);
    }

    /// Nothing more will ever be read and everything read is acknowledged.
    fn done(&self) -> bool {
        let exhausted = match self.state {
            State::Live => false,
            State::Draining { .. } => self.file.is_none(),
            State::Closed => true,
        };
        exhausted && self.inflight.is_empty()
    }

    fn eof_or_closed(&self) -> bool {
        self.at_eof || self.file.is_none()
    }

    /// Whether the bytes before the read position are still those we read.
    fn truncated(&self, file: &File) -> io::Result<bool> {
        let size = file.metadata()?.len();
        if size < self.read_offset {
            return Ok(true);
        }
        let Some(sig) = &self.signature else {
            return Ok(false);
        };
        let mut now = vec![0u8; sig.len()];
        file.read_exact_at(&mut now, self.read_offset - sig.len() as u64)?;
        Ok(&now != sig)
    }

    /// Reads up to `max` complete lines; a drained file's unterminated tail counts too.
    fn read(&mut self, max: usize, max_line: usize, grace: Duration, out: &mut Vec<Line>) {
        let Some(file) = &self.file else {
            return;
        };
        let mut buf = BytesMut::zeroed(CHUNK);
        let n = match file.read_at(&mut buf, self.read_offset) {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(source = %self.source, "read failed: {err}");
                return;
            }
        };
        buf.truncate(n);
        let chunk = buf.freeze();
        let mut start = 0;
        let mut taken = 0;
        while taken < max {
            let rest = &chunk[start..];
            let (len, skip) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) if nl <= max_line => (nl, 1),
                Some(_) => (max_line, 0),
                None if rest.len() >= max_line => (max_line, 0),
                None => break,
            };
            if skip == 0 {
                tracing::warn!(source = %self.source, max_line, "line longer than a frame; split");
            }
            // A copy, not a slice: a slice would keep the whole 256 KiB chunk alive until
            // its last line is acknowledged, for the ~100 KiB of lines a batch takes, and
            // a full window of such chunks was most of the forwarder's memory.
            self.emit(
                Bytes::copy_from_slice(&chunk[start..start + len]),
                (start + len + skip) as u64,
                out,
            );
            start += len + skip;
            taken += 1;
        }
        self.read_offset += start as u64;
        self.at_eof = taken < max && n < CHUNK;
        if let State::Draining { since } = self.state
            && self.at_eof
            && since.elapsed() >= grace
        {
            let tail = Bytes::copy_from_slice(&chunk[start..]);
            if !tail.is_empty() {
                self.emit(tail.clone(), tail.len() as u64, out);
                self.read_offset += tail.len() as u64;
            }
            tracing::info!(source = %self.source, "rotated file read to its end");
            self.file = None;
        }
        if start > 0 {
            let from = start.saturating_sub(SIGNATURE as usize);
            self.signature = Some(chunk[from..start].to_vec());
        }
    }

    /// Numbers a line: queued for sending, or acknowledged at once if already committed.
    fn emit(&mut self, bytes: Bytes, advance: u64, out: &mut Vec<Line>) {
        let line = Line {
            seq: self.next_seq,
            end: self.read_offset + advance,
            bytes,
        };
        self.next_seq += 1;
        if line.seq <= self.skip_through && self.inflight.is_empty() {
            self.acked_offset = line.end;
            self.acked_seq = line.seq;
            self.dirty = true;
            return;
        }
        self.inflight.push_back(line.clone());
        out.push(line);
    }
}

/// One configured path and its sources, oldest first (only the last may be live).
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    streams: Vec<Stream>,
}

/// Every configured file, with the position database.
#[derive(Debug)]
pub(super) struct Tailer {
    files: Vec<Watched>,
    offsets: Offsets,
    max_lag: u64,
    max_line: usize,
    grace: Duration,
}

fn identity(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.ino())
}

/// Finds a rotated file next to `path` by inode (`decnet.log.1` and the like).
fn find_by_inode(path: &Path, inode: u64) -> Option<File> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.metadata().is_ok_and(|m| m.is_file() && m.ino() == inode))
        .and_then(|e| File::open(e.path()).ok())
}

/// Whether `file` still holds, just before the saved offset, the bytes saved with it.
fn still_there(file: &File, pos: &Position) -> bool {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size < pos.offset {
        return false;
    }
    let len = pos.signature.len() as u64;
    if len == 0 || len > pos.offset {
        return true;
    }
    let mut now = vec![0u8; pos.signature.len()];
    file.read_exact_at(&mut now, pos.offset - len).is_ok() && now == pos.signature
}

impl Tailer {
    /// Restores every path's sources from `offsets`.
    pub fn open(
        paths: &[PathBuf],
        offsets: Offsets,
        max_lag: u64,
        max_line: usize,
        grace: Duration,
    ) -> store::Result<Self> {
        let mut tailer = Self {
            files: Vec::new(),
            offsets,
            max_lag,
            max_line,
            grace,
        };
        for path in paths {
            let streams = tailer.restore(path)?;
            tailer.files.push(Watched {
                path: path.clone(),
                streams,
            });
        }
        Ok(tailer)
    }

    fn restore(&mut self, path: &Path) -> store::Result<Vec<Stream>> {
        let rows = self.offsets.open_sources(path)?;
        let current = identity(path);
        let last_here = rows.iter().rposition(|r| Some(r.inode) == current);
        let mut streams = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let opened = if Some(i) == last_here {
                File::open(path).ok().map(|f| (f, State::Live))
            } else if Some(row.inode) == current {
                None
            } else {
                let long_ago = Instant::now()
                    .checked_sub(self.grace)
                    .unwrap_or_else(Instant::now);
                find_by_inode(path, row.inode).map(|f| (f, State::Draining { since: long_ago }))
            };
            let Some((file, state)) = opened else {
                if row.offset > 0 || row.seq > 0 {
                    tracing::warn!(source = %row.source, "file of an unfinished source is gone; its unshipped lines are lost");
                }
                self.offsets.finish(&row.source)?;
                continue;
            };
            if !still_there(&file, row) {
                tracing::warn!(source = %row.source, "file truncated while the forwarder was down");
                self.offsets.finish(&row.source)?;
                continue;
            }
            tracing::info!(source = %row.source, offset = row.offset, seq = row.seq, "resuming");
            streams.push(Stream::new(row, Some(file), state));
        }
        Ok(streams)
    }

    /// Starts a new source for the file now at `path`, persisted before any line.
    fn start(&mut self, file_idx: usize, file: File, inode: u64) -> store::Result<()> {
        let path = self.files[file_idx].path.clone();
        let generation = self.offsets.next_generation(&path)?;
        let pos = Position {
            source: format!("{}:{inode}:{generation}", path.display()),
            path,
            inode,
            generation,
            offset: 0,
            seq: 0,
            signature: Vec::new(),
        };
        self.offsets.save(std::slice::from_ref(&pos))?;
        tracing::info!(source = %pos.source, "following a new file");
        self.files[file_idx]
            .streams
            .push(Stream::new(&pos, Some(file), State::Live));
        Ok(())
    }

    /// Notices replaced, truncated, lagging and new files.
    pub fn poll(&mut self) -> store::Result<()> {
        for i in 0..self.files.len() {
            let current = identity(&self.files[i].path);
            let mut restart = None;
            for stream in &mut self.files[i].streams {
                if stream.state != State::Live {
                    continue;
                }
                if current != Some(stream.inode) {
                    tracing::info!(source = %stream.source, "file replaced at its path; finishing the old one first");
                    stream.state = State::Draining {
                        since: Instant::now(),
                    };
                    continue;
                }
                let Some(file) = &stream.file else { continue };
                if stream.truncated(file).unwrap_or(false) {
                    tracing::warn!(source = %stream.source, "file truncated (copytruncate); starting a new generation");
                    stream.state = State::Closed;
                    stream.file = None;
                    restart = Some(stream.inode);
                    continue;
                }
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                if size.saturating_sub(stream.read_offset) > self.max_lag {
                    let skipped = size - self.max_lag - stream.read_offset;
                    tracing::warn!(source = %stream.source, skipped, "forwarder lags more than the cap; dropping the oldest bytes");
                    stream.read_offset = size - self.max_lag;
                    stream.signature = None;
                    if stream.inflight.is_empty() {
                        stream.acked_offset = stream.read_offset;
                        stream.dirty = true;
                    }
                }
            }
            let has_live = self.files[i].streams.iter().any(|s| s.state == State::Live);
            if let (false, Some(inode)) = (has_live, current)
                && (restart == Some(inode)
                    || !self.files[i].streams.iter().any(|s| s.inode == inode))
                && let Ok(file) = File::open(&self.files[i].path)
            {
                self.start(i, file, inode)?;
            }
        }
        Ok(())
    }

    /// Reads up to `max` lines, older sources of a path first.
    pub fn read(&mut self, max: usize) -> Vec<(usize, usize, Line)> {
        let mut out = Vec::new();
        for (f, watched) in self.files.iter_mut().enumerate() {
            for (s, stream) in watched.streams.iter_mut().enumerate() {
                let budget = max.saturating_sub(out.len());
                if budget == 0 {
                    return out;
                }
                let mut lines = Vec::new();
                stream.read(budget, self.max_line, self.grace, &mut lines);
                out.extend(lines.into_iter().map(|l| (f, s, l)));
                if !stream.eof_or_closed() {
                    break;
                }
            }
        }
        out
    }

    /// The stream at `(file, stream)` as returned by [`Tailer::read`].
    pub fn stream_mut(&mut self, f: usize, s: usize) -> Option<&mut Stream> {
        self.files.get_mut(f)?.streams.get_mut(s)
    }

    /// Every stream, in a stable order.
    pub fn streams_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.files.iter_mut().flat_map(|w| w.streams.iter_mut())
    }

    /// Lines read and not yet acknowledged, over every stream.
    pub fn unacked(&self) -> (usize, usize) {
        self.files
            .iter()
            .flat_map(|w| &w.streams)
            .flat_map(|s| &s.inflight)
            .fold((0, 0), |(n, b), l| (n + 1, b + l.bytes.len()))
    }

    /// Saves positions that moved and retires finished sources.
    pub fn persist(&mut self) -> store::Result<()> {
        let moved: Vec<Position> = self
            .files
            .iter()
            .flat_map(|w| &w.streams)
            .filter(|s| s.dirty)
            .map(Stream::position)
            .collect();
        if !moved.is_empty() {
            self.offsets.save(&moved)?;
        }
        for watched in &mut self.files {
            for stream in &mut watched.streams {
                stream.dirty = false;
                if stream.done() {
                    self.offsets.finish(&stream.source)?;
                    tracing::info!(source = %stream.source, "source finished");
                }
            }
            watched.streams.retain(|s| !s.done());
        }
        Ok(())
    }
}
