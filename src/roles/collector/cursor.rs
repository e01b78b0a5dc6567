//! The saved read positions of every followed container, so a restarted collector goes on
//! where it stopped instead of copying each container's whole history again.
//!
//! The file is a JSON object `{container id: {"nanos": …, "count": …}}` beside the log
//! (`decnet.log` → `decnet.cursors`), replaced atomically. The writer updates a position
//! only after the line it belongs to is in the raw log, and the file is saved about once a
//! second and on shutdown: a clean restart never repeats a line, a crash repeats at most
//! the last second's lines (at-least-once, never a gap). A container with no saved
//! position is read from its first line, so events printed before the collector started
//! (a decky's `startup` line, an attacker who was fast) are not lost. Positions of
//! containers that no longer exist are pruned at each rescan.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::Error;
use super::follow::Position;
use crate::fsutil;

/// The positions, shared by discovery (reads them to start followers) and the writer.
#[derive(Debug, Clone)]
pub struct Cursors {
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    positions: HashMap<String, Position>,
    dirty: bool,
}

impl Cursors {
    /// Loads `path`; a missing file is an empty set, an unreadable one is an error (so an
    /// operator decides rather than the collector silently copying every history again).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let positions = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Cursors {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(Self {
            path: path.to_owned(),
            state: Arc::new(Mutex::new(State {
                positions,
                dirty: false,
            })),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The saved position of container `id`.
    pub fn get(&self, id: &str) -> Option<Position> {
        self.state().positions.get(id).copied()
    }

    /// Records that container `id` was read up to `position`.
    pub fn set(&self, id: &str, position: Position) {
        let mut state = self.state();
        state.positions.insert(id.to_owned(), position);
        state.dirty = true;
    }

    /// Forgets every container not in `existing`.
    pub fn retain(&self, existing: &HashSet<String>) {
        let mut state = self.state();
        let before = state.positions.len();
        state.positions.retain(|id, _| existing.contains(id));
        if state.positions.len() != before {
            state.dirty = true;
        }
    }

    /// Writes the file if anything changed since the last save.
    pub fn save(&self) -> Result<(), Error> {
        let json = {
            let mut state = self.state();
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            serde_json::to_vec(&state.positions).map_err(|e| Error::Cursors {
                path: self.path.clone(),
                reason: e.to_string(),
            })?
        };
        fsutil::write_atomic(&self.path, &json, 0o640).map_err(|source| {
            self.state().dirty = true;
            Error::Io {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_reload_and_prune() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decnet.cursors");
        let c = Cursors::load(&path).expect("missing is empty");
        assert_eq!(c.get("a"), None);
        let p = Position {
            nanos: 1_795_953_600_000_000_001,
            count: 2,
        };
        c.set("a", p);
        c.set("b", p);
        c.save().expect("save");
        let c = Cursors::load(&path).expect("reload");
        assert_eq!(c.get("a"), Some(p));
        c.retain(&HashSet::from(["b".to_owned()]));
        c.save().expect("save");
        let c = Cursors::load(&path).expect("reload");
        assert_eq!((c.get("a"), c.get("b")), (None, Some(p)));

        std::fs::write(&path, b"{not json").expect("write");
        let err = Cursors::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("decnet.cursors"), "{err}");
    }
}
