//! Finding the rotated copy of a truncated file, so that copytruncate loses nothing.
//!
//! logrotate's `copytruncate` copies the live file to its rotated name, then truncates
//! the original in place. The inode stays, so the tailer sees the file shrink (or its
//! first or last bytes change) rather than a new file, and the lines it had not read
//! yet exist only in the copy. [`find`] looks next to the path for that copy and proves
//! it is the same generation before the tailer reads on in it.
//!
//! Candidates are regular files in the same directory named `<name>` plus a rotation
//! suffix: `.N` (`.1` is where `delaycompress` leaves the newest copy), or `-`, `_` or `.`
//! followed by digits and separators (logrotate's `dateext`: `-YYYYMMDD` by default,
//! `-YYYYMMDDHH` when hourly, `-YYYY-MM-DD` or `-%Y%m%d-%s` with a `dateformat`). A
//! suffix holding anything else is not a copy: a compressed one (`.gz`, `.xz`, …) cannot
//! be read on, and the collector's own `.json` and `.cursors` files live next to the
//! log. logrotate's `extension` option (the date before `.log`) is not recognised.
//!
//! A candidate is the copy only if it holds exactly the bytes the source knows: the
//! SHA-256 of its first `through` bytes equals the digest of what was acknowledged, and
//! the bytes after those equal the lines still waiting for their acknowledgement (and
//! the file's first bytes, where little or nothing was read yet). An
//! older generation's `.1`, a copy of another file, or a copy shorter than what was read
//! is skipped. Candidates are tried newest first, so the real copy is usually the only
//! one hashed; hashing reads the copy once, at disk or page-cache speed.
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Bytes hashed per read.
const HASH_CHUNK: usize = 1 << 20;

/// What the copy must hold: `digest` over its first `through` bytes, then `tail`.
#[derive(Debug)]
pub(in crate::roles::forwarder) struct Want<'a> {
    /// SHA-256 of the acknowledged bytes.
    pub digest: &'a [u8],
    /// How many bytes `digest` covers.
    pub through: u64,
    /// The bytes known to follow `through`: read and not acknowledged yet, or seen.
    pub tail: &'a [u8],
}

/// The copy, open, with the hasher state after its first `through` bytes.
#[derive(Debug)]
pub(in crate::roles::forwarder) struct Found {
    /// Where it was found (for the log).
    pub path: PathBuf,
    /// The copy, to read on from.
    pub file: File,
    /// Its inode, which the source is read from from now on.
    pub inode: u64,
    /// Its size when found.
    pub len: u64,
    /// SHA-256 state over its first `through` bytes.
    pub digest: Sha256,
}

/// Whether `name` is `base` plus a rotation suffix (see the module doc).
pub(in crate::roles::forwarder) fn is_rotated_name(base: &OsStr, name: &OsStr) -> bool {
    let Some(suffix) = name.as_bytes().strip_prefix(base.as_bytes()) else {
        return false;
    };
    let Some((&sep, rest)) = suffix.split_first() else {
        return false;
    };
    matches!(sep, b'.' | b'-' | b'_')
        && rest.first().is_some_and(u8::is_ascii_digit)
        && rest
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

/// SHA-256 state over the first `len` bytes of `file`.
pub(in crate::roles::forwarder) fn hash_prefix(file: &File, len: u64) -> io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(HASH_CHUNK, |n| n.min(HASH_CHUNK));
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher)
}

/// Rotated names next to `path`, newest modification first.
fn candidates(path: &Path) -> Vec<PathBuf> {
    let Some(base) = path.file_name() else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| is_rotated_name(base, &e.file_name()))
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((modified, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The rotated copy of `path` that holds what `want` says, if any.
pub(in crate::roles::forwarder) fn find(path: &Path, want: &Want<'_>) -> Option<Found> {
    let need = want.through + want.tail.len() as u64;
    // Nothing known of the file: any file would "match".
    if need == 0 {
        return None;
    }
    candidates(path).into_iter().find_map(|candidate| {
        check(&candidate, want, need).unwrap_or_else(|err| {
            tracing::debug!(candidate = %candidate.display(), "unreadable rotated copy: {err}");
            None
        })
    })
}

fn check(candidate: &Path, want: &Want<'_>, need: u64) -> io::Result<Option<Found>> {
    let file = File::open(candidate)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() < need {
        return Ok(None);
    }
    // The cheap comparison first: the unacknowledged bytes are in memory.
    let mut tail = vec![0u8; want.tail.len()];
    file.read_exact_at(&mut tail, want.through)?;
    if tail != want.tail {
        return Ok(None);
    }
    let digest = hash_prefix(&file, want.through)?;
    if digest.clone().finalize().as_slice() != want.digest {
        return Ok(None);
    }
    Ok(Some(Found {
        path: candidate.to_path_buf(),
        file,
        inode: meta.ino(),
        len: meta.len(),
        digest,
    }))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::*;

    fn rotated(name: &str) -> bool {
        is_rotated_name(OsStr::new("decnet.log"), OsStr::new(name))
    }

    #[test]
    fn rotation_suffixes_are_recognised_and_compressed_or_foreign_files_are_not() {
        for name in [
            "decnet.log.1",
            "decnet.log.12",
            "decnet.log-20261129",
            "decnet.log-2026112913",
            "decnet.log-2026-11-29",
            "decnet.log-20261129-1764417600",
            "decnet.log_20261129",
        ] {
            assert!(rotated(name), "{name} is a rotated copy");
        }
        for name in [
            "decnet.log",
            "decnet.log.1.gz",
            "decnet.log-20261129.gz",
            "decnet.log.2.xz",
            "decnet.log.json",
            "decnet.log.cursors",
            "decnet.log.old",
            "decnet.log.",
            "decnet.log-",
            "decnet.logx1",
            "other.log.1",
            "decnet.lo.1",
        ] {
            assert!(!rotated(name), "{name} is not a rotated copy");
        }
    }

    /// Writes `text` to `dir/name` with a modification time `age` seconds in the past.
    fn put(dir: &Path, name: &str, text: &[u8], age: u64) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write");
        let when = SystemTime::now() - Duration::from_secs(age);
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
        path
    }

    fn digest(bytes: &[u8]) -> Vec<u8> {
        Sha256::digest(bytes).to_vec()
    }

    /// What a tailer has read of one generation: 3 acknowledged lines, 1 in flight.
    const SHIPPED: &[u8] = b"gen2 line 1\ngen2 line 2\ngen2 line 3\n";
    const IN_FLIGHT: &[u8] = b"gen2 line 4\n";

    fn want(digest: &[u8]) -> Want<'_> {
        Want {
            digest,
            through: SHIPPED.len() as u64,
            tail: IN_FLIGHT,
        }
    }

    #[test]
    fn the_copy_holding_what_was_read_is_found_among_decoys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = put(dir.path(), "decnet.log", b"", 0);
        let copy = [SHIPPED, IN_FLIGHT, b"gen2 line 5 never read\n"].concat();
        // A wrong-content `.1` as new as can be, the same length, the same last bytes.
        let decoy = [&b"gen1"[..], &copy[4..]].concat();
        put(dir.path(), "decnet.log.1", &decoy, 0);
        // The real copy's bytes, compressed name: never a candidate however new.
        put(dir.path(), "decnet.log.1.gz", &copy, 0);
        // The collector's sidecar with the same bytes: not a rotated name either.
        put(dir.path(), "decnet.log.json", &copy, 0);
        // The real copy, dateext-named, older than the decoys.
        let real = put(dir.path(), "decnet.log-20261129", &copy, 60);
        // Another generation, older still.
        put(dir.path(), "decnet.log.2", b"gen0 line 1\n", 120);

        let d = digest(SHIPPED);
        let found = find(&log, &want(&d)).expect("the dateext copy");
        assert_eq!(found.path, real);
        assert_eq!(found.digest.finalize().as_slice(), d.as_slice());
        assert_eq!(found.inode, fs::metadata(&real).expect("meta").ino());
    }

    #[test]
    fn a_copy_shorter_than_what_was_read_or_differing_in_flight_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = put(dir.path(), "decnet.log", b"", 0);
        let d = digest(SHIPPED);
        put(dir.path(), "decnet.log.1", SHIPPED, 0);
        put(
            dir.path(),
            "decnet.log.2",
            &[SHIPPED, b"gen2 line 4?\n"].concat(),
            0,
        );
        assert!(find(&log, &want(&d)).is_none());

        // Right bytes, wrong digest (another file that happens to end the same way).
        let real = put(
            dir.path(),
            "decnet.log.3",
            &[SHIPPED, IN_FLIGHT].concat(),
            0,
        );
        assert!(find(&log, &want(&digest(b"something else"))).is_none());
        assert_eq!(find(&log, &want(&d)).map(|f| f.path), Some(real));
    }

    #[test]
    fn nothing_known_means_no_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = put(dir.path(), "decnet.log", b"", 0);
        put(dir.path(), "decnet.log.1", b"anything\n", 0);
        let empty = digest(b"");
        let want = Want {
            digest: &empty,
            through: 0,
            tail: b"",
        };
        assert!(find(&log, &want).is_none());
    }
}
