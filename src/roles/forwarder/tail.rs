//! Following log files through rotation: which bytes are lines, and which source they
//! belong to.
//!
//! A *source* is one generation of one configured path: `"<path>:<inode>:<generation>"`.
//! Its lines are numbered from 1 in file order. A path gets a new source when
//! - the file at the path is replaced (rename rotation): the old file stays open and is
//!   read to its end first (its source *drains*), and only then does the new file's
//!   source start sending; after a crash the old file is looked for by inode next to
//!   the path (e.g. `decnet.log.1`);
//! - the file shrinks below the read position, or its first bytes or the bytes just
//!   before the position change (copytruncate, even when the file has grown again
//!   since): the file at the path is a new generation from offset 0.
//!
//! copytruncate without loss: the lines written between the forwarder's last read and
//! the truncation exist only in the copy logrotate made, so on a truncation the source
//! looks for that copy ([`rotated`]: `<file>.1`, `dateext` names, never `.gz`) and, if
//! it holds exactly the bytes the source has read, drains the rest of it under its own
//! name and numbering, as a renamed file is drained, before the new generation sends.
//! The proof is a SHA-256 of every acknowledged byte, kept as lines are acknowledged
//! and persisted with the position, plus the unacknowledged lines still in memory and
//! the file's first bytes recorded at every poll (all there is for a file not read yet,
//! for instance while an older generation still drains). The same holds across a
//! forwarder restart: digest and first bytes are saved with the position, and a source
//! whose file no longer hashes to the saved digest or starts with other bytes is looked
//! for among the rotated copies. A restart therefore hashes each unfinished source's
//! file up to its position once.
//!
//! What is still lost: logrotate's own race (lines written after the copy and before
//! the truncation are in neither file afterwards, for every tailer, unless they were
//! read before the truncation; logrotate's manual documents it); a copy compressed
//! before the forwarder looked (use `delaycompress`); and when two rotations happen
//! before the forwarder notices the first (or while it is down), the generations
//! between the one it was reading and the current file.
//!
//! Lines read are kept (as `Bytes`) until acknowledged, so a reconnect re-sends them even
//! when the file has been truncated meanwhile. A source's position is persisted in
//! `forwarder.db` only up to its last acknowledged line.
//!
//! The lag cap drops the oldest unread bytes when the file is more than `max_lag` ahead
//! (swarm.md §8.2); those lines are lost on purpose and numbering continues after them.
//! The skipped bytes are never hashed, so such a source can no longer be followed into
//! a rotated copy (until a restart re-hashes its file).
mod resume;
mod rotated;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::bytes::Bytes;

use crate::store::{self, Offsets, Position};

mod ahead;

/// Bytes read from a file per call.
const CHUNK: usize = 256 * 1024;
/// Bytes before the read position compared on every poll to spot a truncation.
const SIGNATURE: u64 = 32;
/// Bytes at the start of the file recorded at a poll (even before they are read) and
/// compared on every poll: a truncated file that grew past the read position again,
/// with lines of one length and one ending, still has other first bytes (their
/// timestamp); and they are what identifies the copy of a file not read yet.
const HEAD: usize = 256;

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
    /// The file's first bytes, up to [`HEAD`], as seen at a poll.
    head: Vec<u8>,
    /// SHA-256 of every byte before `acked_offset`; `None` once the lag cap dropped bytes.
    acked_digest: Option<Sha256>,
    pub inflight: VecDeque<Line>,
    /// Index of this source on the current connection, once declared.
    pub idx: Option<u32>,
    dirty: bool,
}

impl Stream {
    fn new(pos: &Position, file: Option<File>, state: State, digest: Option<Sha256>) -> Self {
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
            head: pos.head.clone(),
            acked_digest: digest,
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
            digest: self
                .acked_digest
                .as_ref()
                .map(|d| d.clone().finalize().to_vec())
                .unwrap_or_default(),
            head: self.head.clone(),
        }
    }

    /// Moves the acknowledged position past `line`, the next one in the file.
    fn acked(&mut self, line: &Line) {
        // Lines are contiguous in the file; a line's terminator is the gap to its end.
        let gap = line
            .end
            .checked_sub(self.acked_offset + line.bytes.len() as u64);
        if let Some(digest) = &mut self.acked_digest {
            digest.update(&line.bytes);
            match gap {
                Some(0) => {}
                Some(1) => digest.update(b"\n"),
                _ => self.acked_digest = None,
            }
        }
        self.acked_offset = line.end;
        self.acked_seq = line.seq;
        self.dirty = true;
    }

    /// The file bytes of the lines in flight (`acked_offset..read_offset`).
    fn inflight_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = self.acked_offset;
        for line in &self.inflight {
            out.extend_from_slice(&line.bytes);
            if line.end > at + line.bytes.len() as u64 {
                out.push(b'\n');
            }
            at = line.end;
        }
        out
    }

    /// Looks for the rotated copy of this truncated file holding what was read (or, if
    /// little or nothing was read yet, the first bytes seen).
    fn find_copy(&self) -> Option<rotated::Found> {
        let digest = self.acked_digest.as_ref()?.clone().finalize();
        let mut tail = self.inflight_bytes();
        if let Some(unread) = usize::try_from(self.read_offset)
            .ok()
            .and_then(|from| self.head.get(from..))
        {
            tail.extend_from_slice(unread);
        }
        rotated::find(
            &self.path,
            &rotated::Want {
                digest: &digest,
                through: self.acked_offset,
                tail: &tail,
            },
        )
    }

    /// Reads on in `copy` from where the truncated file was left.
    fn follow_into(&mut self, copy: rotated::Found, grace: Duration) {
        self.file = Some(copy.file);
        self.inode = copy.inode;
        // The copy is complete (logrotate truncates after copying): drain it at once.
        self.state = State::Draining {
            since: long_ago(grace),
        };
        self.at_eof = false;
        self.dirty = true;
    }

    /// Everything up to `seq` is committed on the master.
    pub fn ack(&mut self, seq: u64) {
        while self.inflight.front().is_some_and(|l| l.seq <= seq) {
            if let Some(line) = self.inflight.pop_front() {
                self.acked(&line);
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
        if size < self.read_offset || size < self.head.len() as u64 {
            return Ok(true);
        }
        if !self.head.is_empty() {
            let mut now = vec![0u8; self.head.len()];
            file.read_exact_at(&mut now, 0)?;
            if now != self.head {
                return Ok(true);
            }
        }
        let Some(sig) = &self.signature else {
            return Ok(false);
        };
        let mut now = vec![0u8; sig.len()];
        file.read_exact_at(&mut now, self.read_offset - sig.len() as u64)?;
        Ok(&now != sig)
    }

    /// Reads up to `max` complete lines into `out`, through the reusable `buf`; a drained
    /// file's unterminated tail counts too.
    fn read(
        &mut self,
        max: usize,
        max_line: usize,
        grace: Duration,
        buf: &mut Vec<u8>,
        out: &mut Vec<Line>,
    ) {
        let Some(file) = &self.file else {
            return;
        };
        buf.resize(CHUNK, 0);
        let n = match file.read_at(buf, self.read_offset) {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(source = %self.source, "read failed: {err}");
                return;
            }
        };
        let chunk = &buf[..n];
        // Where each line ends and how many terminator bytes follow it.
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        while cuts.len() < max {
            let rest = &chunk[start..];
            let (len, skip) = match memchr::memchr(b'\n', rest) {
                Some(nl) if nl <= max_line => (nl, 1),
                Some(_) => (max_line, 0),
                None if rest.len() >= max_line => (max_line, 0),
                None => break,
            };
            if skip == 0 {
                tracing::warn!(source = %self.source, max_line, "line longer than a frame; split");
            }
            cuts.push((start + len, skip));
            start += len + skip;
        }
        // One copy of exactly the bytes taken, which the lines slice: one allocation per
        // read instead of one per line, and nothing of the rest of the chunk kept alive
        // while the lines wait for their acknowledgements.
        let taken = Bytes::copy_from_slice(&chunk[..start]);
        let mut from = 0;
        for &(end, skip) in &cuts {
            self.emit(taken.slice(from..end), (end + skip) as u64, out);
            from = end + skip;
        }
        self.read_offset += start as u64;
        self.at_eof = cuts.len() < max && n < CHUNK;
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
            self.acked(&line);
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
    /// The read buffer every stream reads through, allocated once.
    buf: Vec<u8>,
}

fn identity(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.ino())
}

/// An instant `grace` ago: a drain that starts there may close the file at its end.
fn long_ago(grace: Duration) -> Instant {
    Instant::now()
        .checked_sub(grace)
        .unwrap_or_else(Instant::now)
}

/// The first bytes of `file`, up to [`HEAD`] and not past `limit`.
fn read_head(file: &File, limit: u64) -> Vec<u8> {
    let mut head = vec![0u8; limit.min(HEAD as u64) as usize];
    if file.read_exact_at(&mut head, 0).is_err() {
        head.clear();
    }
    head
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
            buf: Vec::new(),
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

    /// Starts a new source for the file now at `path`, persisted before any line.
    fn start(&mut self, file_idx: usize, file: File, inode: u64) -> store::Result<()> {
        let path = self.files[file_idx].path.clone();
        let generation = self.offsets.next_generation(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let pos = Position {
            source: format!("{}:{inode}:{generation}", path.display()),
            path,
            inode,
            generation,
            offset: 0,
            seq: 0,
            signature: Vec::new(),
            digest: Sha256::digest(b"").to_vec(),
            head: read_head(&file, size),
        };
        self.offsets.save(std::slice::from_ref(&pos))?;
        tracing::info!(source = %pos.source, "following a new file");
        self.files[file_idx].streams.push(Stream::new(
            &pos,
            Some(file),
            State::Live,
            Some(Sha256::new()),
        ));
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
                    restart = Some(stream.inode);
                    if let Some(copy) = stream.find_copy() {
                        let unread = copy.len.saturating_sub(stream.read_offset);
                        tracing::info!(source = %stream.source, copy = %copy.path.display(), offset = stream.read_offset, unread, "file truncated (copytruncate); continuing in the rotated copy, then a new generation");
                        stream.follow_into(copy, self.grace);
                        // Saved before the new source: a crash now still finds the copy.
                        self.offsets.save(&[stream.position()])?;
                    } else {
                        tracing::warn!(source = %stream.source, "file truncated (copytruncate) and no rotated copy holds what was read; lines not read yet are lost; starting a new generation");
                        stream.state = State::Closed;
                        stream.file = None;
                    }
                    continue;
                }
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                if size.saturating_sub(stream.read_offset) > self.max_lag {
                    let skipped = size - self.max_lag - stream.read_offset;
                    tracing::warn!(source = %stream.source, skipped, "forwarder lags more than the cap; dropping the oldest bytes");
                    stream.read_offset = size - self.max_lag;
                    stream.signature = None;
                    // The skipped bytes are not hashed: no copy can be proven any more.
                    stream.acked_digest = None;
                    if stream.inflight.is_empty() {
                        stream.acked_offset = stream.read_offset;
                        stream.dirty = true;
                    }
                }
                // Checked against above: an unchanged head only grows.
                if stream.head.len() < HEAD && size > stream.head.len() as u64 {
                    stream.head = read_head(file, size);
                    stream.dirty = true;
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
                stream.read(budget, self.max_line, self.grace, &mut self.buf, &mut lines);
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
