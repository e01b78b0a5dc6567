//! Uploads: a bounded buffer per file, and on completion the `file_captured` event and,
//! with an artifacts directory, the file kept under the quarantine name of engine.md §2.8
//! (`<UTC time>_<sha256[:12]>_<basename>`). The legacy scp sink (`scp -t`) lives here
//! too; sftp (and scp over sftp) is in [`super::sftp`].
use std::net::SocketAddr;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::super::Emitter;
use super::super::quarantine::{basename, store, stored_name};

/// Largest upload kept (engine.md §2.8); the rest is counted and dropped.
pub const MAX_UPLOAD: usize = 50 * 1024 * 1024;

/// Where uploads of one connection are reported and kept.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The service's emitter.
    pub emitter: Emitter,
    /// The attacker.
    pub peer: SocketAddr,
    /// The account logged in to.
    pub user: String,
    /// The artifacts directory, if uploads are kept.
    pub dir: Option<PathBuf>,
}

/// One file being uploaded.
#[derive(Debug, Default)]
pub struct Upload {
    /// Where the client said it goes.
    pub path: String,
    /// The bytes kept, at most [`MAX_UPLOAD`].
    pub kept: Vec<u8>,
    /// Every byte received.
    pub total: u64,
}

impl Upload {
    /// A new upload to `path`.
    pub fn new(path: String) -> Self {
        Upload {
            path,
            ..Upload::default()
        }
    }

    /// Adds `data` at the end, keeping at most [`MAX_UPLOAD`] bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        let room = MAX_UPLOAD.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Writes `data` at `offset` (sftp writes are positioned), within the cap.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        let Ok(start) = usize::try_from(offset) else {
            return;
        };
        if start >= MAX_UPLOAD {
            return;
        }
        let end = start.saturating_add(data.len()).min(MAX_UPLOAD);
        if self.kept.len() < end {
            self.kept.resize(end, 0);
        }
        self.kept[start..end].copy_from_slice(&data[..end - start]);
    }
}

impl Sink {
    /// Reports (and keeps) a finished upload; `how` is `sftp` or `scp`.
    pub async fn finish(&self, upload: &Upload, how: &str) {
        let sha = hex::encode(Sha256::digest(&upload.kept));
        let stored_as = stored_name(OffsetDateTime::now_utc(), &sha, &basename(&upload.path));
        let truncated = upload.total > upload.kept.len() as u64;
        let mut event = self
            .emitter
            .peer_event("file_captured", self.peer)
            .param("stored_as", stored_as.clone())
            .param("sha256", sha)
            .param("size", upload.total.to_string())
            .param("orig_path", upload.path.clone())
            .param("ssh_user", self.user.clone())
            .param("attribution", how.to_owned())
            .param("truncated", if truncated { "1" } else { "0" });
        if let Some(dir) = &self.dir
            && let Err(e) = store(dir, &stored_as, &upload.kept).await
        {
            event = event.param("store_error", e.to_string());
        }
        self.emitter.emit(event).await;
    }
}

/// Where a legacy scp sink is in its protocol (`scp.c`, `sink()`).
#[derive(Debug)]
enum ScpState {
    /// Reading a control line (`C…`, `D…`, `E`, `T…`).
    Header(Vec<u8>),
    /// Reading a file's bytes; `left` more to come, then its `\0`.
    Body { upload: Upload, left: u64 },
    /// Reading the `\0` after a file's bytes.
    Trailer(Upload),
    /// The client sent something that is not scp: ignore the rest.
    Broken,
}

/// The remote end of `scp -t <dir>`: answers `\0` to every step and captures files.
#[derive(Debug)]
pub struct Scp {
    target: String,
    target_is_dir: bool,
    dirs: Vec<String>,
    state: ScpState,
}

/// Longest scp control line.
const SCP_LINE: usize = 4096;

/// What one chunk of client bytes produced.
#[derive(Debug, Default)]
pub struct ScpStep {
    /// Bytes to send back (acknowledgements).
    pub reply: Vec<u8>,
    /// Files completed.
    pub done: Vec<Upload>,
}

impl Scp {
    /// A sink for `scp -t target`; a directory target gets each file's own name.
    pub fn new(target: String, target_is_dir: bool) -> Self {
        Scp {
            target,
            target_is_dir,
            dirs: Vec::new(),
            state: ScpState::Header(Vec::new()),
        }
    }

    fn path_of(&self, name: &str) -> String {
        if self.dirs.is_empty() && !self.target_is_dir {
            return self.target.clone();
        }
        let mut path = self.target.trim_end_matches('/').to_owned();
        for d in &self.dirs {
            path = format!("{path}/{d}");
        }
        format!("{path}/{}", basename(name))
    }

    /// Feeds client bytes.
    pub fn feed(&mut self, mut data: &[u8]) -> ScpStep {
        let mut step = ScpStep::default();
        while !data.is_empty() {
            match std::mem::replace(&mut self.state, ScpState::Broken) {
                ScpState::Broken => return step,
                ScpState::Header(mut line) => {
                    let nl = data.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(data.len(), |i| i + 1);
                    line.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if line.len() > SCP_LINE {
                        return step;
                    }
                    if nl.is_none() {
                        self.state = ScpState::Header(line);
                        continue;
                    }
                    self.state = self.header(&line, &mut step);
                }
                ScpState::Body { mut upload, left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    upload.push(&data[..n]);
                    data = &data[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ScpState::Trailer(upload)
                    } else {
                        ScpState::Body { upload, left }
                    };
                }
                ScpState::Trailer(upload) => {
                    data = &data[1..];
                    step.reply.push(0);
                    step.done.push(upload);
                    self.state = ScpState::Header(Vec::new());
                }
            }
        }
        step
    }

    fn header(&mut self, line: &[u8], step: &mut ScpStep) -> ScpState {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
        let mut parts = text.splitn(3, ' ');
        let kind = parts.next().unwrap_or_default();
        match kind.as_bytes().first() {
            Some(b'C') | Some(b'D') => {
                let size = parts.next().and_then(|s| s.parse::<u64>().ok());
                let name = parts.next().unwrap_or_default();
                let Some(size) = size else {
                    return ScpState::Broken;
                };
                step.reply.push(0);
                if kind.starts_with('D') {
                    self.dirs.push(basename(name));
                    return ScpState::Header(Vec::new());
                }
                let upload = Upload::new(self.path_of(name));
                if size == 0 {
                    ScpState::Trailer(upload)
                } else {
                    ScpState::Body { upload, left: size }
                }
            }
            Some(b'E') => {
                self.dirs.pop();
                step.reply.push(0);
                ScpState::Header(Vec::new())
            }
            Some(b'T') => {
                step.reply.push(0);
                ScpState::Header(Vec::new())
            }
            _ => ScpState::Broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_files_arrive_whole_in_any_chunking() {
        let mut wire = b"C0644 5 a.sh\nhello\0".to_vec();
        wire.extend_from_slice(b"C0600 3 b\nxyz\0");
        for chunk in [1, 3, 7, 100] {
            let mut scp = Scp::new("/tmp".to_owned(), true);
            let mut done = Vec::new();
            let mut acks = 0;
            for c in wire.chunks(chunk) {
                let step = scp.feed(c);
                acks += step.reply.len();
                done.extend(step.done);
            }
            assert_eq!(acks, 4);
            assert_eq!(done.len(), 2);
            assert_eq!(done[0].kept, b"hello");
            assert_eq!(done[0].path, "/tmp/a.sh");
            assert_eq!(done[1].kept, b"xyz");
        }
        let name = stored_name(
            OffsetDateTime::UNIX_EPOCH,
            "abcdef0123456789",
            &basename("/tmp/../x y"),
        );
        assert_eq!(name, "1970-01-01T00:00:00Z_abcdef012345_x_y");
    }

    #[test]
    fn positioned_writes_stay_in_the_cap() {
        let mut u = Upload::new("/tmp/f".to_owned());
        u.write_at(3, b"def");
        u.write_at(0, b"abc");
        assert_eq!(u.kept, b"abcdef");
        u.write_at(u64::MAX, b"zz");
        assert_eq!(u.total, 8);
        assert_eq!(u.kept.len(), 6);
    }
}
