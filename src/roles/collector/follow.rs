//! One container's stdout, followed through the Docker API and cut into lines.
//!
//! Docker stores each line a container prints as one log message stamped with the time the
//! daemon read it (nanoseconds), and a line longer than its buffer (16 KiB) as several
//! "partial" messages. The follower asks for `timestamps=true`, so every frame starts with
//! that stamp, and counts its way through the stream as a [`Position`]: the last stamp
//! seen and how many frames carried it. Docker's `since` only takes whole seconds, so a
//! resumed stream starts at the second of the saved position and the frames up to and
//! including the position itself are skipped: nothing is read twice, and nothing is lost
//! because two lines shared a second (or even a nanosecond).
//!
//! A position is only reported once the frame ends a line, so a restart in the middle of
//! a partial line reads that line again from its start. Lines are split on `\n`,
//! right-trimmed, empty ones skipped, and cut at [`MAX_LINE`] bytes (the rest of an
//! overlong line is discarded and counted), so a container cannot make the collector hold
//! an unbounded buffer.
use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::syslog::parse_iso;

/// Longest line kept, in bytes; the rest of a longer line is discarded.
pub const MAX_LINE: usize = 64 * 1024;

/// What the followers and discovery send to the writer.
#[derive(Debug)]
pub enum Msg {
    /// One line of a container's stdout.
    Line {
        /// The container's id.
        container: Arc<str>,
        /// The decky the container belongs to, from its label (see [`super::provenance`]).
        decky: Arc<str>,
        /// The line, right-trimmed, without its newline.
        line: String,
        /// The container's read position once this line is written, if it ends a frame.
        position: Option<Position>,
    },
    /// Save the read positions now (sent about once a second).
    Flush,
    /// Answer once everything sent before has been written.
    Barrier(oneshot::Sender<()>),
}

/// Where a container's log stream was read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Docker's stamp of the last frame, in nanoseconds since the Unix epoch.
    pub nanos: i64,
    /// How many frames carried exactly that stamp.
    pub count: u32,
}

impl Position {
    /// The `since` to ask Docker for: the whole second holding the position.
    pub fn since_secs(&self) -> i32 {
        let secs = self.nanos.div_euclid(1_000_000_000);
        i32::try_from(secs).unwrap_or(if secs < 0 { 0 } else { i32::MAX })
    }

    /// Moves past one more frame stamped `nanos`.
    fn advance(current: Option<Self>, nanos: i64) -> Self {
        match current {
            Some(p) if p.nanos == nanos => Self {
                nanos,
                count: p.count.saturating_add(1),
            },
            _ => Self { nanos, count: 1 },
        }
    }
}

/// Splits Docker log frames into lines, tracking and resuming from a [`Position`].
#[derive(Debug, Default)]
pub struct Splitter {
    /// Frames at or before this position are skipped (a resumed stream).
    resume: Option<Position>,
    /// Position of the last frame taken in.
    current: Option<Position>,
    /// The unfinished line.
    buf: Vec<u8>,
    /// Whether the unfinished line already overflowed [`MAX_LINE`].
    overflow: bool,
    /// Bytes discarded from overlong lines.
    discarded: u64,
}

/// The lines completed by one frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Complete, right-trimmed, non-empty lines, in order.
    pub lines: Vec<String>,
    /// The position to save once these lines are written; `None` mid-line.
    pub position: Option<Position>,
}

impl Splitter {
    /// A splitter skipping everything up to and including `resume`.
    pub fn new(resume: Option<Position>) -> Self {
        Self {
            resume,
            ..Self::default()
        }
    }

    /// Bytes discarded from overlong lines so far.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Takes one frame (`<RFC 3339 stamp> <payload>`) and returns the lines it completes.
    pub fn frame(&mut self, frame: &[u8]) -> Split {
        let (nanos, payload) = stamp(frame);
        if let Some(nanos) = nanos {
            let next = Position::advance(self.current, nanos);
            self.current = Some(next);
            if let Some(resume) = self.resume {
                if (next.nanos, next.count) <= (resume.nanos, resume.count) {
                    return Split::default();
                }
                self.resume = None;
            }
        }
        let mut lines = Vec::new();
        let mut rest = payload;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.push(&rest[..end]);
            let line = String::from_utf8_lossy(&self.buf);
            let line = line.trim_end();
            if !line.is_empty() {
                lines.push(line.to_owned());
            }
            self.buf.clear();
            self.overflow = false;
            rest = &rest[end + 1..];
        }
        self.push(rest);
        let position = if self.buf.is_empty() && !self.overflow {
            self.current
        } else {
            None
        };
        Split { lines, position }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        let take = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..take]);
        if take < bytes.len() {
            self.overflow = true;
            self.discarded += (bytes.len() - take) as u64;
        }
    }
}

/// Splits `<stamp> <payload>`; a frame without a readable stamp is all payload.
fn stamp(frame: &[u8]) -> (Option<i64>, &[u8]) {
    let Some(space) = frame.iter().position(|b| *b == b' ') else {
        return (None, frame);
    };
    let nanos = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(parse_iso)
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok());
    match nanos {
        Some(n) => (Some(n), &frame[space + 1..]),
        None => (None, frame),
    }
}

/// Follows container `id` of decky `decky` from `resume` until its stream ends or
/// `shutdown` fires, sending each line to the writer. Returns once every line sent has been
/// written, so a follower started later for the same container sees the saved position.
pub async fn follow(
    engine: Engine,
    id: Arc<str>,
    decky: Arc<str>,
    resume: Option<Position>,
    lines: mpsc::Sender<Msg>,
    shutdown: CancellationToken,
) {
    let mut options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(false)
        .timestamps(true);
    if let Some(p) = resume {
        options = options.since(p.since_secs());
    }
    let mut stream = engine.docker().logs(&id, Some(options.build()));
    let mut splitter = Splitter::new(resume);
    loop {
        let item = tokio::select! {
            _ = shutdown.cancelled() => break,
            item = stream.next() => item,
        };
        let frame = match item {
            Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => message,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::warn!(container = %id, error = %e, "log stream failed; the next rescan resumes it");
                break;
            }
            None => break,
        };
        let split = splitter.frame(&frame);
        let last = split.lines.len().checked_sub(1);
        for (i, line) in split.lines.into_iter().enumerate() {
            let msg = Msg::Line {
                container: id.clone(),
                decky: decky.clone(),
                line,
                position: split.position.filter(|_| Some(i) == last),
            };
            if lines.send(msg).await.is_err() {
                return;
            }
        }
    }
    if splitter.discarded() > 0 {
        tracing::warn!(container = %id, bytes = splitter.discarded(), "discarded the tail of overlong lines");
    }
    let (done, written) = oneshot::channel();
    if lines.send(Msg::Barrier(done)).await.is_ok() {
        let _ = written.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(split: &Split) -> Vec<&str> {
        split.lines.iter().map(String::as_str).collect()
    }

    #[test]
    fn frames_become_trimmed_lines_with_a_position() {
        let mut s = Splitter::new(None);
        let out = s.frame(b"2026-11-29T12:00:00.5Z <134>1 a b c - d -  \n");
        assert_eq!(lines(&out), ["<134>1 a b c - d -"]);
        let first = out.position.expect("a complete line");
        assert_eq!(first.count, 1);
        assert_eq!(first.since_secs(), 1_795_953_600);
        let out = s.frame(b"2026-11-29T12:00:00.500000000Z x\n\n  \ny\r\n");
        assert_eq!(lines(&out), ["x", "y"], "empty lines are skipped");
        assert_eq!(
            out.position,
            Some(Position {
                nanos: first.nanos,
                count: 2
            }),
            "the same stamp, spelled differently, counts up"
        );
    }

    #[test]
    fn partial_frames_join_and_hold_the_position_back() {
        let mut s = Splitter::new(None);
        let out = s.frame(b"2026-11-29T12:00:01Z hel");
        assert_eq!(out, Split::default(), "no line and no position mid-line");
        let out = s.frame(b"2026-11-29T12:00:02Z lo\n");
        assert_eq!(lines(&out), ["hello"]);
        assert_eq!(out.position.map(|p| p.since_secs()), Some(1_795_953_602));
        let out = s.frame(b"not-a-stamp\n");
        assert_eq!(lines(&out), ["not-a-stamp"]);
    }

    #[test]
    fn a_resumed_stream_skips_what_was_read() {
        let frames: [&[u8]; 4] = [
            b"2026-11-29T12:00:01.1Z a\n",
            b"2026-11-29T12:00:01.1Z b\n",
            b"2026-11-29T12:00:01.1Z c\n",
            b"2026-11-29T12:00:01.2Z d\n",
        ];
        let mut first = Splitter::new(None);
        let mut saved = None;
        for f in &frames[..2] {
            saved = first.frame(f).position;
        }
        let mut resumed = Splitter::new(saved);
        let out: Vec<String> = frames.iter().flat_map(|f| resumed.frame(f).lines).collect();
        assert_eq!(out, ["c", "d"]);
    }

    #[test]
    fn overlong_lines_are_cut() {
        let mut s = Splitter::new(None);
        let mut frame = b"2026-11-29T12:00:01Z ".to_vec();
        frame.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        assert_eq!(s.frame(&frame), Split::default());
        let out = s.frame(b"2026-11-29T12:00:01Z more\nnext\n");
        assert_eq!(out.lines.len(), 2);
        assert_eq!(out.lines[0].len(), MAX_LINE);
        assert_eq!(out.lines[1], "next");
        assert_eq!(s.discarded(), 14);
        assert!(out.position.is_some());
    }
}
