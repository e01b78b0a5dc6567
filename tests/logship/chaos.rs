//! 100,000 lines through listener kills, forwarder SIGKILLs and both kinds of rotation:
//! every line must be stored exactly once.
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use nix::sys::signal::Signal;

use super::{LIMIT, Site, event_line, nap, tail, wait_until};

const TOTAL: u64 = 100_000;
const CHUNK: u64 = 1_000;

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log")
}

#[test]
fn every_line_is_stored_exactly_once_through_kills_and_rotations() {
    let site = Site::new();
    let agent = site.home().join("agent");
    let cert = site.issue_worker("w1", &agent);
    site.allow("w1", &cert);
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");

    let mut out = append(&log);
    let mut listener = site.listener("listener", &[]);
    let mut forwarder = site.forwarder("forwarder", &agent, &log, &[]);
    let mut listener_kills = 0;
    let mut forwarder_kills = 0;
    let mut listener_down_until = None;
    let mut forwarder_down_until = None;

    for chunk in 0..TOTAL / CHUNK {
        let written = chunk * CHUNK;
        match chunk {
            // (a) the listener is killed three times and comes back a few chunks later.
            10 | 40 | 70 => {
                listener.stop(Signal::SIGKILL);
                listener_kills += 1;
                listener_down_until = Some(chunk + 3);
            }
            // (b) the forwarder is killed twice, mid-stream.
            20 | 62 => {
                forwarder.stop(Signal::SIGKILL);
                forwarder_kills += 1;
                forwarder_down_until = Some(chunk + 2);
            }
            // (c1) rotation by rename: the writer moves on to a fresh file at the path.
            30 => {
                fs::rename(&log, site.log_dir().join("decnet.log.1")).expect("rename");
                out = append(&log);
            }
            // (c2) copytruncate as logrotate does it, right after a chunk was written
            // (so the forwarder has not read it all): `.1`, the renamed generation, moves
            // up to `.2`, the copy becomes `.1`, and the forwarder must read the rest of
            // it there. Nothing is written between copy and truncate.
            50 => {
                let dir = site.log_dir();
                fs::rename(dir.join("decnet.log.1"), dir.join("decnet.log.2")).expect("shift");
                fs::copy(&log, dir.join("decnet.log.1")).expect("copy");
                out.set_len(0).expect("truncate");
            }
            _ => {}
        }
        if listener_down_until == Some(chunk) {
            listener = site.listener("listener", &[]);
            listener_down_until = None;
        }
        if forwarder_down_until == Some(chunk) {
            forwarder = site.forwarder("forwarder", &agent, &log, &[]);
            forwarder_down_until = None;
        }
        let mut text = String::with_capacity(CHUNK as usize * 202);
        for n in written..written + CHUNK {
            text.push_str(&event_line(n));
            text.push('\n');
        }
        out.write_all(text.as_bytes()).expect("write lines");
        nap(60);
    }
    assert_eq!((listener_kills, forwarder_kills), (3, 2));

    let caught_up = std::panic::catch_unwind(|| {
        wait_until(LIMIT, "all lines stored", || site.count() >= TOTAL);
    });
    if caught_up.is_err() {
        panic!(
            "stored {} of {TOTAL}\n--- listener\n{}\n--- forwarder\n{}",
            site.count(),
            tail(&listener),
            tail(&forwarder)
        );
    }
    // Give stragglers (a duplicate would be one) a moment to arrive before counting.
    nap(500);
    let logs = site.all_logs();
    assert_eq!(logs.len() as u64, TOTAL, "row count");
    let mut seen = HashSet::new();
    for row in &logs {
        let n: u64 = row
            .fields
            .get("n")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("row without n: {}", row.raw_line));
        assert!(seen.insert(n), "line {n} stored twice");
        assert_eq!(row.raw_line, event_line(n), "content of line {n}");
        assert_eq!(row.worker, "w1");
    }
    assert_eq!(seen.len() as u64, TOTAL);
    let sources: HashSet<&str> = logs.iter().map(|l| l.source.as_str()).collect();
    assert_eq!(
        sources.len(),
        3,
        "one source per file generation: {sources:?}"
    );
    // The forwarder saw what the test did to it, rather than getting lucky.
    let seen_by_forwarder = forwarder.output();
    for event in [
        "file replaced at its path",
        "rotated file read to its end",
        "file truncated (copytruncate); continuing in the rotated copy",
        "resuming",
    ] {
        assert!(
            seen_by_forwarder.contains(event),
            "forwarder never logged {event:?}"
        );
    }
    assert!(
        !seen_by_forwarder.contains("lost"),
        "the forwarder reported a loss:\n{}",
        tail(&forwarder)
    );
    forwarder.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
