//! Throughput of the attack-log path: parsing, framing, and commits through the writer.
//!
//! Prints figures only (nothing is asserted): run `scripts/bench-store.sh`.
//! Environment: `BENCH_ROWS` (default 200000), `BENCH_SENDERS` (4), `BENCH_BATCH` (100).
use decnet::store::{LogRecord, Options, Store};
use decnet::syslog::{Message, OctetCodec, parse};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

#[allow(clippy::disallowed_methods)] // a benchmark's knobs, not decnet configuration
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A typical ~200-byte honeypot line.
fn line(seq: u64) -> String {
    Message::new(
        OffsetDateTime::now_utc(),
        "decky-web-01",
        "ssh",
        "auth_attempt",
    )
    .param("src_ip", "203.0.113.77")
    .param("src_port", "51234")
    .param("username", "root")
    .param("secret_printable", format!("hunter{seq:08}"))
    .param("secret_kind", "plaintext")
    .to_string()
}

fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = env("BENCH_ROWS", 200_000);
    let senders = env("BENCH_SENDERS", 4).max(1);
    let batch = env("BENCH_BATCH", 100).max(1);
    let lines: Vec<String> = (0..rows).map(line).collect();
    let avg = lines.iter().map(String::len).sum::<usize>() as f64 / rows.max(1) as f64;
    println!("{rows} lines of {avg:.0} bytes on average");

    let start = Instant::now();
    let events: Vec<_> = lines.iter().map(|l| parse(l).ok()).collect();
    println!("parse:  {:>12.0} lines/s", rate(rows, start));

    let start = Instant::now();
    let mut codec = OctetCodec::default();
    let mut wire = BytesMut::new();
    for l in &lines {
        codec.encode(l.as_bytes(), &mut wire)?;
    }
    let mut frames = 0u64;
    while codec.decode(&mut wire)?.is_some() {
        frames += 1;
    }
    println!(
        "codec:  {:>12.0} frames/s (encode + decode)",
        rate(frames, start)
    );

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.db"), Options::default())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (writer, task) = store.spawn_writer()?;
        let per_sender = rows / senders;
        let start = Instant::now();
        let mut handles = Vec::new();
        for s in 0..senders {
            let writer = writer.clone();
            let mine: Vec<_> = events
                .iter()
                .skip((s * per_sender) as usize)
                .take(per_sender as usize)
                .cloned()
                .collect();
            handles.push(tokio::spawn(async move {
                let mut seq = 0u64;
                for chunk in mine.chunks(batch as usize) {
                    let records = chunk
                        .iter()
                        .map(|event| {
                            seq += 1;
                            LogRecord {
                                worker: format!("worker-{s}"),
                                source: "decnet.log".into(),
                                seq,
                                received_at: OffsetDateTime::now_utc(),
                                event: event.clone(),
                            }
                        })
                        .collect();
                    writer.write(records).await?;
                }
                Ok::<_, decnet::store::Error>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let committed = per_sender * senders;
        println!(
            "store:  {:>12.0} rows/s committed ({senders} senders, {batch} rows per request)",
            rate(committed, start)
        );
        drop(writer);
        task.await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    println!("stored: {} rows", store.reader()?.count_logs()?);
    Ok(())
}
