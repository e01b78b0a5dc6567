//! Why the collector could not run: one error type for discovery, the followers' files
//! and the writer, so the submodules share it without depending on the role's `mod.rs`.
use std::path::PathBuf;

use thiserror::Error;

use crate::engine;

/// Why the collector could not run.
#[derive(Debug, Error)]
pub enum Error {
    /// The Docker engine is unreachable.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A log or position file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The saved read positions are not readable.
    #[error(
        "{path}: {reason}; delete it to re-read every container's log from the start \
         (lines already collected will then appear twice)"
    )]
    Cursors {
        /// The position file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The log file's name leaves no room for a `.json` sibling.
    #[error("{0}: the log file must not end in .json (its parsed sibling is written there)")]
    LogFileName(PathBuf),
    /// The writer thread died.
    #[error("the collector's writer stopped: {0}")]
    Writer(#[from] tokio::task::JoinError),
}
