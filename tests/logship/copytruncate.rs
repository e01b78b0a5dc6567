//! logrotate's `copytruncate`, five times under a writer that never stops (once while
//! the forwarder is down): every line stored exactly once, each generation under one
//! source numbered 1…n in file order.
//!
//! The writer appends numbered lines in small bursts while holding a mutex; a rotation
//! takes the same mutex to copy the file and truncate it, as logrotate does with nothing
//! written in between (what is written in between is lost for every tailer, which this
//! test does not model). Copies are named as logrotate names them: `.1` with older
//! copies moved up (`rotate 3`), and `dateext`'s `-YYYYMMDDHH`, so every rotation leaves
//! older copies of other generations next to the one that matters.
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;

use super::{LIMIT, Site, event_line, nap, tail, wait_until};

const ROTATIONS: usize = 5;
/// The rotation done with the forwarder killed, found at its start-up.
const WHILE_DOWN: usize = 3;
/// Lines per burst of the writer, and its pause after each.
const BURST: u64 = 5;
const PAUSE_MS: u64 = 2;
/// What the forwarder logs each time it goes on in a copy (live or at start-up).
const FOLLOWED: &str = "continuing in the rotated copy";

/// Copies `log` to `to` and truncates it, like logrotate's copytruncate.
fn copytruncate(log: &Path, live: &File, to: &Path) {
    fs::copy(log, to).expect("copy");
    live.set_len(0).expect("truncate");
}

/// The number logged as `name=…` on a diagnostics line (ANSI colours stripped).
fn field(line: &str, name: &str) -> u64 {
    let mut plain = String::new();
    let mut escape = false;
    for c in line.chars() {
        match (escape, c) {
            (false, '\u{1b}') => escape = true,
            (true, 'm') => escape = false,
            (false, c) => plain.push(c),
            (true, _) => {}
        }
    }
    let at = plain
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name} in {plain}"));
    plain[at + name.len() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {plain}"))
}

#[test]
fn copytruncate_under_a_steady_writer_stores_every_line_exactly_once() {
    let site = Site::new();
    let agent = site.home().join("agent");
    let cert = site.issue_worker("w1", &agent);
    site.allow("w1", &cert);
    let dir = site.log_dir();
    fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join("decnet.log");
    let live = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("open the log");
    let live = Arc::new(Mutex::new(live));

    let mut listener = site.listener("listener", &[]);
    let mut forwarder = site.forwarder("forwarder", &agent, &log, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (live, stop) = (Arc::clone(&live), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                {
                    let mut out = live.lock().expect("writer lock");
                    for _ in 0..BURST {
                        out.write_all(format!("{}\n", event_line(n)).as_bytes())
                            .expect("write a line");
                        n += 1;
                    }
                }
                nap(PAUSE_MS);
            }
            n
        })
    };

    for round in 1..=ROTATIONS {
        nap(800);
        if round == WHILE_DOWN {
            forwarder.stop(Signal::SIGKILL);
            nap(300);
        }
        {
            let out = live.lock().expect("rotation lock");
            let to = if round % 2 == 1 {
                for n in (1..3).rev() {
                    let older = dir.join(format!("decnet.log.{n}"));
                    if older.exists() {
                        fs::rename(&older, dir.join(format!("decnet.log.{}", n + 1)))
                            .expect("shift a copy");
                    }
                }
                dir.join("decnet.log.1")
            } else {
                dir.join(format!("decnet.log-202611290{round}"))
            };
            copytruncate(&log, &out, &to);
        }
        if round == WHILE_DOWN {
            // The truncated file grows again before the forwarder is back.
            nap(500);
            forwarder = site.forwarder("forwarder", &agent, &log, &[]);
        }
        // A rotation every few hundred milliseconds is far more than logrotate does;
        // two before the forwarder looked once would lose the generation between them.
        wait_until(LIMIT, "the forwarder to follow the rotation", || {
            forwarder.output().matches(FOLLOWED).count() >= round
        });
    }
    nap(800);
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().expect("writer thread");
    assert!(total > 1_000, "the writer wrote only {total} lines");

    let caught_up = std::panic::catch_unwind(|| {
        wait_until(LIMIT, "every line stored", || site.count() >= total);
    });
    if caught_up.is_err() {
        panic!(
            "stored {} of {total}\n--- listener\n{}\n--- forwarder\n{}",
            site.count(),
            tail(&listener),
            tail(&forwarder)
        );
    }
    // Give stragglers (a duplicate would be one) a moment to arrive before counting.
    nap(500);
    let logs = site.all_logs();
    assert_eq!(logs.len() as u64, total, "row count");
    let mut seen = HashSet::new();
    let mut by_source: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for row in &logs {
        let n: u64 = row
            .fields
            .get("n")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("row without n: {}", row.raw_line));
        assert!(seen.insert(n), "line {n} stored twice");
        assert_eq!(row.raw_line, event_line(n), "content of line {n}");
        assert_eq!(row.worker, "w1");
        by_source.entry(&row.source).or_default().push((row.seq, n));
    }
    assert_eq!(seen.len() as u64, total, "no line missing");
    assert_eq!(
        by_source.len(),
        ROTATIONS + 1,
        "one source per generation: {:?}",
        by_source.keys()
    );
    for (source, rows) in &mut by_source {
        rows.sort_unstable();
        let first = rows[0].1;
        for (i, &(seq, n)) in rows.iter().enumerate() {
            assert_eq!(
                seq,
                i as u64 + 1,
                "{source}: seq numbered from 1 without gaps"
            );
            assert_eq!(n, first + i as u64, "{source}: lines in file order");
        }
    }
    let said = forwarder.output();
    let unread: Vec<u64> = said
        .lines()
        .filter(|l| l.contains(FOLLOWED))
        .map(|l| field(l, "unread"))
        .collect();
    eprintln!("{total} lines; bytes read from the copies after each truncation: {unread:?}");
    assert!(
        unread.iter().sum::<u64>() > 0,
        "some lines must have been unread at a truncation, or the copies were never needed"
    );
    assert!(
        !said.contains("lost"),
        "the forwarder reported a loss:\n{}",
        tail(&forwarder)
    );
    assert!(said.contains("file truncated while the forwarder was down"));
    forwarder.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
