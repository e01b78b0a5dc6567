//! Whether a source's file holds a given line: what a listener's watermark is checked
//! against before the forwarder skips anything because of it.
use std::os::unix::fs::FileExt;

use super::{CHUNK, State, Stream};

impl Stream {
    /// Whether line `seq` of this source exists: already read, or complete in the file
    /// after the read position (an unterminated tail counts only once a replaced file is
    /// being finished, as [`Stream::read`] would then send it).
    ///
    /// Lines are counted exactly as `read` cuts them, so a watermark the real master can
    /// hold (lines this forwarder sent, possibly before a restart) always passes, and one
    /// beyond the file never does. A read error answers `false`: nothing is skipped on a
    /// claim that cannot be checked.
    pub(in crate::roles::forwarder) fn holds(&self, seq: u64, max_line: usize) -> bool {
        let read = self.next_seq.saturating_sub(1);
        if seq <= read {
            return true;
        }
        let Some(file) = &self.file else {
            return false;
        };
        let max_line = max_line.max(1);
        let mut need = seq - read;
        let mut offset = self.read_offset;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let Ok(n) = file.read_at(&mut buf, offset) else {
                return false;
            };
            let chunk = &buf[..n];
            let mut start = 0;
            loop {
                let rest = &chunk[start..];
                let len = match rest.iter().position(|&b| b == b'\n') {
                    Some(nl) if nl <= max_line => nl + 1,
                    Some(_) => max_line,
                    None if rest.len() >= max_line => max_line,
                    None => break,
                };
                start += len;
                need -= 1;
                if need == 0 {
                    return true;
                }
            }
            if n < CHUNK || start == 0 {
                let tail = start < n;
                return need == 1 && tail && matches!(self.state, State::Draining { .. });
            }
            offset += start as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use crate::roles::forwarder::tail::Tailer;
    use crate::store::Offsets;

    #[test]
    fn only_lines_in_the_file_are_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("decnet.log");
        let mut f = std::fs::File::create(&log).expect("create");
        // Four lines (the second is cut in two, being longer than 10 bytes) and a tail.
        f.write_all(b"one\n0123456789abc\nthree\ntail")
            .expect("write");
        let offsets = Offsets::open(&dir.path().join("forwarder.db")).expect("offsets");
        let mut t = Tailer::open(&[log], offsets, 1 << 20, 10, Duration::ZERO).expect("tailer");
        t.poll().expect("poll");
        let stream = t.streams_mut().next().expect("a stream");
        for seq in 0..=4 {
            assert!(stream.holds(seq, 10), "line {seq} is in the file");
        }
        assert!(
            !stream.holds(5, 10),
            "a live file's unterminated tail is no line yet"
        );
        assert!(!stream.holds(u64::MAX, 10));
        let read = t.read(2).len();
        assert_eq!(read, 2);
        let stream = t.streams_mut().next().expect("a stream");
        assert!(stream.holds(4, 10) && !stream.holds(5, 10));
    }
}
