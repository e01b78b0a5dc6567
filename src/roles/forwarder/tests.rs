//! The tailer against real files: rename and copytruncate rotation, restarts.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::tail::Tailer;
use crate::store::Offsets;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("write");
}

fn tailer(dir: &Path, log: &Path) -> Tailer {
    let offsets = Offsets::open(&dir.join("forwarder.db")).expect("offsets");
    Tailer::open(&[log.to_path_buf()], offsets, 1 << 20, 1000, Duration::ZERO).expect("tailer")
}

/// Reads everything available: (source, seq, line).
fn read_all(t: &mut Tailer) -> Vec<(String, u64, String)> {
    let lines = t.read(1000);
    lines
        .into_iter()
        .map(|(f, s, l)| {
            let source = t
                .stream_mut(f, s)
                .map(|x| x.source.clone())
                .unwrap_or_default();
            (
                source,
                l.seq,
                String::from_utf8_lossy(&l.bytes).into_owned(),
            )
        })
        .collect()
}

fn ack_all(t: &mut Tailer) {
    for stream in t.streams_mut() {
        if let Some(last) = stream.inflight.back().map(|l| l.seq) {
            stream.ack(last);
        }
    }
    t.persist().expect("persist");
}

fn lines(got: &[(String, u64, String)]) -> Vec<&str> {
    got.iter().map(|(_, _, l)| l.as_str()).collect()
}

#[test]
fn rename_rotation_finishes_the_old_file_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "a1\na2\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let first = read_all(&mut t);
    assert_eq!(lines(&first), ["a1", "a2"]);
    assert_eq!((first[0].1, first[1].1), (1, 2));

    fs::rename(&log, dir.path().join("decnet.log.1")).expect("rename");
    append(&dir.path().join("decnet.log.1"), "a3\nunterminated");
    append(&log, "b1\n");
    t.poll().expect("poll");
    let second = read_all(&mut t);
    assert_eq!(lines(&second), ["a3", "unterminated", "b1"]);
    assert_eq!(second[0].0, first[0].0, "the old file keeps its source");
    assert_ne!(second[2].0, first[0].0, "the new file gets a new source");
    assert_eq!((second[1].1, second[2].1), (4, 1));
    ack_all(&mut t);
    drop(t);

    // After a restart only the new file is followed, from where it was acknowledged.
    append(&log, "b2\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let third = read_all(&mut t);
    assert_eq!(lines(&third), ["b2"]);
    assert_eq!((third[0].0.clone(), third[0].1), (second[2].0.clone(), 2));
}

#[test]
fn truncation_is_seen_even_when_the_file_regrew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "one\ntwo\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let before = read_all(&mut t);
    ack_all(&mut t);

    // copytruncate, then more bytes than were read before the next poll.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(&log, "three-is-longer\n");
    t.poll().expect("poll");
    let after = read_all(&mut t);
    assert_eq!(lines(&after), ["three-is-longer"]);
    assert_ne!(after[0].0, before[0].0, "a truncated file is a new source");
    assert_eq!(after[0].1, 1);
    ack_all(&mut t);
    drop(t);

    // The same while the forwarder is down: the saved signature no longer matches.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(&log, "four-is-much-longer-than-before\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let restarted = read_all(&mut t);
    assert_eq!(lines(&restarted), ["four-is-much-longer-than-before"]);
    assert_eq!(restarted[0].1, 1);
    assert_ne!(restarted[0].0, after[0].0);
}

#[test]
fn lines_the_master_already_holds_are_not_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "l1\nl2\nl3\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    // WELCOME said seq 2 is committed.
    for stream in t.streams_mut() {
        stream.ack(2);
    }
    let got = read_all(&mut t);
    assert_eq!(lines(&got), ["l3"]);
    assert_eq!(got[0].1, 3);
}

/// logrotate's copytruncate: copy the bytes to `rotated`, then truncate in place.
fn copytruncate(log: &Path, rotated: &Path) {
    fs::copy(log, rotated).expect("copy");
    OpenOptions::new()
        .write(true)
        .open(log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
}

fn seqs(got: &[(String, u64, String)]) -> Vec<u64> {
    got.iter().map(|(_, seq, _)| *seq).collect()
}

#[test]
fn copytruncate_is_followed_into_the_copy_under_the_same_source_and_numbering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    // An older generation's copy, which must not be taken for this one's.
    append(&dir.path().join("decnet.log.2"), "o1\no2\no3\no4\no5\no6\n");
    append(&log, "l1\nl2\nl3\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let first = read_all(&mut t);
    assert_eq!(lines(&first), ["l1", "l2", "l3"]);
    let old = first[0].0.clone();
    // The master has committed l1 and l2; l3 is in flight.
    t.streams_mut().for_each(|s| s.ack(2));
    t.persist().expect("persist");

    // l4 and l5 are written but not read when logrotate runs.
    append(&log, "l4\nl5\n");
    copytruncate(&log, &dir.path().join("decnet.log.1"));
    append(&log, "n1\n");
    t.poll().expect("poll");
    let second = read_all(&mut t);
    assert_eq!(lines(&second), ["l4", "l5", "n1"]);
    assert_eq!(seqs(&second), [4, 5, 1]);
    assert_eq!((&second[0].0, &second[1].0), (&old, &old));
    assert_ne!(second[2].0, old, "the truncated file is a new generation");
    let new = second[2].0.clone();
    drop(t);

    // Killed before any acknowledgement: the copy is found again, by its inode, and the
    // lines get the numbers they had.
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let again = read_all(&mut t);
    assert_eq!(lines(&again), ["l3", "l4", "l5", "n1"]);
    assert_eq!(seqs(&again), [3, 4, 5, 1]);
    assert_eq!((&again[0].0, &again[3].0), (&old, &new));
    ack_all(&mut t);
    drop(t);

    // The old source is finished; only the new file is followed.
    append(&log, "n2\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let last = read_all(&mut t);
    assert_eq!(lines(&last), ["n2"]);
    assert_eq!((&last[0].0, last[0].1), (&new, 2));
}

#[test]
fn a_copytruncate_while_the_forwarder_is_down_is_found_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "l1\nl2\nl3\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let first = read_all(&mut t);
    ack_all(&mut t);
    drop(t);

    // Written and rotated (dateext) while the forwarder is down; the truncated file
    // grows past the old position again before it comes back.
    append(&log, "l4\nl5\n");
    copytruncate(&log, &dir.path().join("decnet.log-20261129"));
    append(&log, "n1 is longer than everything before it\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let got = read_all(&mut t);
    assert_eq!(
        lines(&got),
        ["l4", "l5", "n1 is longer than everything before it"]
    );
    assert_eq!(seqs(&got), [4, 5, 1]);
    assert_eq!((&got[0].0, &got[1].0), (&first[0].0, &first[0].0));
    assert_ne!(got[2].0, first[0].0);
}

#[test]
fn a_truncated_file_regrown_with_lines_of_the_same_shape_is_still_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    let line = |n: u32| format!("2026-11-29T12:00:{n:02} event {n:03} {:x<40}\n", "");
    let text = |range: std::ops::Range<u32>| range.map(line).collect::<String>();
    append(&log, &text(0..3));
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let before = read_all(&mut t);
    ack_all(&mut t);

    // Same length and last bytes at the old position: only the start tells.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    append(&log, &text(10..15));
    t.poll().expect("poll");
    let after = read_all(&mut t);
    assert_eq!(after.len(), 5, "every line of the new generation");
    assert_eq!(after[0].2, line(10).trim_end());
    assert_eq!(after[0].1, 1);
    assert_ne!(after[0].0, before[0].0);
}

#[test]
fn a_file_copytruncated_before_any_of_it_was_read_is_found_by_its_first_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "a1\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let first = read_all(&mut t);

    // Rename rotation; the old file still has a line to drain when the new one starts.
    fs::rename(&log, dir.path().join("decnet.log.1")).expect("rename");
    append(&dir.path().join("decnet.log.1"), "a2\n");
    append(&log, "b1\nb2\n");
    t.poll().expect("poll");
    // Then the new file is copytruncated (`.1` moves up first) before a line of it is read.
    fs::rename(
        dir.path().join("decnet.log.1"),
        dir.path().join("decnet.log.2"),
    )
    .expect("shift");
    copytruncate(&log, &dir.path().join("decnet.log.1"));
    append(&log, "c1\n");
    t.poll().expect("poll");
    let got = read_all(&mut t);
    assert_eq!(lines(&got), ["a2", "b1", "b2", "c1"]);
    assert_eq!(seqs(&got), [2, 1, 2, 1]);
    assert_eq!(got[0].0, first[0].0);
    let sources: std::collections::HashSet<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        sources.len(),
        3,
        "old file, copied generation, truncated file"
    );
    assert_eq!(got[1].0, got[2].0);
}

#[test]
fn a_file_not_read_yet_and_copytruncated_while_the_forwarder_is_down_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("decnet.log");
    append(&log, "b1\nb2\n");
    let mut t = tailer(dir.path(), &log);
    // Seen at a poll, never read: offset 0, only its first bytes are known.
    t.poll().expect("poll");
    t.persist().expect("persist");
    drop(t);

    copytruncate(&log, &dir.path().join("decnet.log.1"));
    append(&log, "c1 longer than b1 and b2 together\n");
    let mut t = tailer(dir.path(), &log);
    t.poll().expect("poll");
    let got = read_all(&mut t);
    assert_eq!(
        lines(&got),
        ["b1", "b2", "c1 longer than b1 and b2 together"]
    );
    assert_eq!(seqs(&got), [1, 2, 1]);
    assert_eq!(got[0].0, got[1].0);
    assert_ne!(got[1].0, got[2].0, "the truncated file is a new generation");
}
