//! A worker taken off the allow-list, or re-pinned to another certificate, is cut off
//! within 30 s without restarting the listener; with the new certificate in place it
//! ships again, since the forwarder re-reads its bundle on every connection.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{LIMIT, Site, event_line, nap, wait_until};

fn write_lines(path: &std::path::Path, range: std::ops::Range<u64>) {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    for n in range {
        writeln!(out, "{}", event_line(n)).expect("write");
    }
}

fn stored_above(site: &Site, floor: u64) -> usize {
    site.all_logs()
        .iter()
        .filter_map(|l| l.fields.get("n").and_then(|v| v.parse::<u64>().ok()))
        .filter(|&n| n >= floor)
        .count()
}

#[test]
fn removed_or_repinned_workers_are_cut_off_without_a_restart() {
    let site = Site::new();
    let agent = site.home().join("agent");
    let cert = site.issue_worker("w1", &agent);
    site.allow("w1", &cert);
    fs::create_dir_all(site.log_dir()).expect("log dir");
    let log = site.log_dir().join("decnet.log");

    let mut listener = site.listener("listener", &["--recheck-interval", "2"]);
    let mut forwarder = site.forwarder("forwarder", &agent, &log, &[]);
    write_lines(&log, 0..100);
    wait_until(LIMIT, "the first lines", || site.count() == 100);

    // Removed from the allow-list: the live connection is closed at the next recheck.
    let out = site.run(&["listener", "revoke", "w1"]);
    assert!(out.status.success(), "{}", super::text(&out.stderr));
    wait_until(
        Duration::from_secs(30),
        "the live connection to be cut",
        || listener.output().contains("no longer enrolled"),
    );
    write_lines(&log, 1000..1100);
    wait_until(LIMIT, "the reconnect to be refused", || {
        listener
            .output()
            .contains("connection refused: no enrolled worker")
    });
    nap(1500);
    assert_eq!(
        stored_above(&site, 1000),
        0,
        "lines of a removed worker were stored"
    );

    // Re-pinned to another certificate: the old one is still refused.
    let other = site.home().join("agent-new");
    let new_cert = site.issue_worker("w1", &other);
    site.allow("w1", &new_cert);
    let refusals = listener.output().matches("connection refused").count();
    wait_until(LIMIT, "a refusal under the new pin", || {
        listener.output().matches("connection refused").count() > refusals
    });
    assert_eq!(
        stored_above(&site, 1000),
        0,
        "lines under a stale pin were stored"
    );

    // The worker receives its new bundle: picked up at the next connect, backlog shipped.
    for file in ["ca.crt", "worker.crt", "worker.key"] {
        fs::copy(other.join(file), agent.join(file)).expect("install the new bundle");
    }
    wait_until(LIMIT, "the backlog under the new certificate", || {
        stored_above(&site, 1000) == 100
    });
    assert_eq!(site.count(), 200);
    forwarder.stop(Signal::SIGTERM);
    listener.stop(Signal::SIGTERM);
}
