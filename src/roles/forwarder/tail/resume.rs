//! Resuming after a restart: which saved sources still have their file, and where.
//!
//! Each unfinished row of `forwarder.db` is matched to a file: the one at the path for
//! the newest source of the path's current inode, a renamed file found by inode for an
//! older one. The file must still hold exactly the bytes before the saved offset (the
//! digest saved with it; the last bytes only, for rows saved without one) and start
//! with the first bytes saved with it (all there is for a source that read nothing
//! yet); if it does not (truncated while the forwarder was down), the rotated copies
//! are searched as on a live truncation. A source with no such file is finished, its
//! unshipped lines lost, and the log says so.
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{State, Stream, Tailer, identity, long_ago, rotated};
use crate::store::{self, Position};

/// Finds a rotated file next to `path` by inode (`decnet.log.1` and the like).
fn find_by_inode(path: &Path, inode: u64) -> Option<File> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.metadata().is_ok_and(|m| m.is_file() && m.ino() == inode))
        .and_then(|e| File::open(e.path()).ok())
}

/// Whether `file` still holds the bytes before the saved offset and the first bytes
/// seen; if so, the digest state over the former, which the resumed source goes on from.
fn verify(file: &File, pos: &Position) -> Option<Sha256> {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size < pos.offset || size < pos.head.len() as u64 {
        return None;
    }
    let mut head = vec![0u8; pos.head.len()];
    if file.read_exact_at(&mut head, 0).is_err() || head != pos.head {
        return None;
    }
    let digest = rotated::hash_prefix(file, pos.offset).ok()?;
    let same = if pos.digest.is_empty() {
        // A position saved without a digest (older release, or after the lag cap):
        // the bytes just before the offset are all there is to compare.
        let len = pos.signature.len() as u64;
        let mut now = vec![0u8; pos.signature.len()];
        len > pos.offset
            || (file.read_exact_at(&mut now, pos.offset - len).is_ok() && now == pos.signature)
    } else {
        digest.clone().finalize().as_slice() == pos.digest.as_slice()
    };
    same.then_some(digest)
}

/// The rotated copy of `path` holding what `row` had shipped and seen, if provable.
fn copy_of(path: &Path, row: &Position) -> Option<rotated::Found> {
    if row.digest.is_empty() {
        return None;
    }
    let unread = usize::try_from(row.offset)
        .ok()
        .and_then(|from| row.head.get(from..))
        .unwrap_or_default();
    rotated::find(
        path,
        &rotated::Want {
            digest: &row.digest,
            through: row.offset,
            tail: unread,
        },
    )
}

impl Tailer {
    /// The sources of `path` to go on with, oldest first.
    pub(super) fn restore(&mut self, path: &Path) -> store::Result<Vec<Stream>> {
        let rows = self.offsets.open_sources(path)?;
        let current = identity(path);
        let last_here = rows.iter().rposition(|r| Some(r.inode) == current);
        let mut streams = Vec::new();
        let drain = State::Draining {
            since: long_ago(self.grace),
        };
        for (i, row) in rows.iter().enumerate() {
            let opened = if Some(i) == last_here {
                File::open(path).ok().map(|f| (f, State::Live))
            } else if Some(row.inode) == current {
                None
            } else {
                find_by_inode(path, row.inode).map(|f| (f, drain))
            };
            let found = opened.is_some();
            let verified =
                opened.and_then(|(file, state)| Some((verify(&file, row)?, file, state)));
            let resumed = match verified {
                Some((digest, file, state)) => Some((file, state, row.inode, digest)),
                None => {
                    if found {
                        tracing::warn!(source = %row.source, "file truncated while the forwarder was down");
                    }
                    copy_of(path, row).map(|copy| {
                        let unread = copy.len.saturating_sub(row.offset);
                        tracing::info!(source = %row.source, copy = %copy.path.display(), offset = row.offset, unread, "continuing in the rotated copy");
                        (copy.file, drain, copy.inode, copy.digest)
                    })
                }
            };
            let Some((file, state, inode, digest)) = resumed else {
                if row.offset > 0 || row.seq > 0 || !row.head.is_empty() {
                    tracing::warn!(source = %row.source, "no file holds what an unfinished source shipped; its unshipped lines are lost");
                }
                self.offsets.finish(&row.source)?;
                continue;
            };
            tracing::info!(source = %row.source, offset = row.offset, seq = row.seq, "resuming");
            let mut stream = Stream::new(row, Some(file), state, Some(digest));
            if inode != row.inode {
                // Saved before any new source of the path: a crash now still finds the copy.
                stream.inode = inode;
                self.offsets.save(&[stream.position()])?;
            }
            streams.push(stream);
        }
        Ok(streams)
    }
}
