//! Throughput of the attack-log path: parsing, framing, and commits through the writer,
//! against the raw rate of the same rows inserted with plain SQL.
//!
//! Prints figures only (nothing is asserted): run `scripts/bench-store.sh`.
//!
//! The *raw* rate is the yardstick of the store's overhead: the same rows (every column
//! already formatted, outside the timing), one prepared single-row `INSERT` each, in
//! transactions of [`Options::max_batch_rows`] rows, into a database with the same schema
//! and the same SQLite settings as the writer's connection (WAL, `synchronous=FULL`, page
//! cache, checkpoint interval), on one thread, with no decnet code in the loop. Store and
//! raw rounds alternate on fresh databases so that a noisy machine disturbs both alike;
//! the ratio of each round is the robust figure.
//!
//! Environment: `BENCH_ROWS` (default 200000), `BENCH_SENDERS` (4), `BENCH_BATCH` (500,
//! the forwarder's batch), `BENCH_ROUNDS` (3), and `BENCH_ONLY` (`store`, `raw` or
//! `none`) to run one side only: under callgrind, the difference of two runs that differ
//! in `BENCH_ROWS` gives the instructions per row of that side, plus line generation and
//! parsing, which `none` measures alone.
use decnet::store::{LogRecord, Options, Store};
use decnet::syslog::{Event, Message, OctetCodec, parse};
use rusqlite::{Connection, params};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
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

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Commits `events` through the store's writer from `senders` tasks; returns rows/s.
#[inline(never)]
fn store_round(
    runtime: &tokio::runtime::Runtime,
    events: &[Option<Event>],
    senders: u64,
    batch: u64,
) -> BenchResult<f64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.db"), Options::default())?;
    let per_sender = events.len() as u64 / senders;
    let rate = runtime.block_on(async {
        let (writer, task) = store.spawn_writer()?;
        let mut handles = Vec::new();
        let mut shares = Vec::new();
        for s in 0..senders {
            let mine: Vec<_> = events
                .iter()
                .skip((s * per_sender) as usize)
                .take(per_sender as usize)
                .cloned()
                .collect();
            shares.push(mine);
        }
        let start = Instant::now();
        for (s, mine) in shares.into_iter().enumerate() {
            let writer = writer.clone();
            handles.push(tokio::spawn(async move {
                let mut seq = 0u64;
                let mut mine = mine.into_iter();
                loop {
                    let records: Vec<_> = mine
                        .by_ref()
                        .take(batch as usize)
                        .map(|event| {
                            seq += 1;
                            LogRecord {
                                worker: format!("worker-{s}"),
                                source: "decnet.log".into(),
                                seq,
                                received_at: OffsetDateTime::now_utc(),
                                event,
                            }
                        })
                        .collect();
                    if records.is_empty() {
                        break;
                    }
                    writer.write(records).await?;
                }
                Ok::<_, decnet::store::Error>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        let rate = rate(per_sender * senders, start);
        drop(writer);
        task.await?;
        Ok::<_, Box<dyn std::error::Error>>(rate)
    })?;
    let stored = store.reader()?.count_logs()?;
    if stored != per_sender * senders {
        return Err(format!(
            "store holds {stored} rows, expected {}",
            per_sender * senders
        )
        .into());
    }
    Ok(rate)
}

/// One row with every column already formatted, as plain SQL would insert it.
struct RawRow {
    timestamp: String,
    decky: String,
    service: String,
    event_type: String,
    attacker_ip: String,
    raw: String,
    fields: String,
    msg: Option<String>,
    worker: String,
    seq: i64,
    received_at: String,
}

fn sql_time(t: OffsetDateTime, micros: bool) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut s = t.format(&Rfc3339).unwrap_or_default();
    s.truncate(19);
    s = s.replacen('T', " ", 1);
    if micros {
        s.push_str(&format!(".{:06}", t.microsecond()));
    }
    s
}

fn raw_rows(events: &[Option<Event>], senders: u64) -> Vec<RawRow> {
    let per_sender = (events.len() as u64 / senders).max(1);
    let now = OffsetDateTime::now_utc();
    events
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| RawRow {
            timestamp: sql_time(e.timestamp.datetime().unwrap_or(now), false),
            decky: e.decky.clone(),
            service: e.service.clone(),
            event_type: e.event_type.clone(),
            attacker_ip: e.attacker_ip_or_unknown().to_owned(),
            raw: e.raw.clone(),
            fields: e.fields.to_json(),
            msg: e.msg.clone(),
            worker: format!("worker-{}", i as u64 / per_sender),
            seq: (i as u64 % per_sender + 1) as i64,
            received_at: sql_time(now, true),
        })
        .collect()
}

const RAW_INSERT: &str = "INSERT INTO logs
    (timestamp, decky, service, event_type, attacker_ip, raw_line, fields, msg,
     worker, source, seq, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Inserts `rows` with plain rusqlite into a fresh database of the same schema; rows/s.
#[inline(never)]
fn raw_round(rows: &[RawRow], per_tx: usize) -> BenchResult<f64> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raw.db");
    drop(Store::open(&path, Options::default())?);
    let options = Options::default();
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))?;
    conn.pragma_update(None, "wal_autocheckpoint", options.wal_checkpoint_pages)?;
    let start = Instant::now();
    for chunk in rows.chunks(per_tx.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(RAW_INSERT)?;
            for r in chunk {
                insert.execute(params![
                    r.timestamp,
                    r.decky,
                    r.service,
                    r.event_type,
                    r.attacker_ip,
                    r.raw,
                    r.fields,
                    r.msg,
                    r.worker,
                    "decnet.log",
                    r.seq,
                    r.received_at,
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rate(rows.len() as u64, start))
}

fn main() -> BenchResult<()> {
    let rows = env("BENCH_ROWS", 200_000);
    let senders = env("BENCH_SENDERS", 4).max(1);
    let batch = env("BENCH_BATCH", 500).max(1);
    let rounds = env("BENCH_ROUNDS", 3).max(1);
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

    let runtime = tokio::runtime::Runtime::new()?;
    let per_tx = Options::default().max_batch_rows;
    let used = (rows / senders * senders) as usize;
    let (mut stores, mut raws, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    #[allow(clippy::disallowed_methods)] // a benchmark's knob, as in `env`
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    match only.as_str() {
        "store" => {
            let s = store_round(&runtime, &events[..used], senders, batch)?;
            println!("store:  {s:>12.0} rows/s committed");
            return Ok(());
        }
        "raw" => {
            let r = raw_round(&raw_rows(&events[..used], senders), per_tx)?;
            println!("raw:    {r:>12.0} rows/s plain batched SQL");
            return Ok(());
        }
        "none" => return Ok(()),
        _ => {}
    }
    let raw = raw_rows(&events[..used], senders);
    for round in 1..=rounds {
        let s = store_round(&runtime, &events[..used], senders, batch)?;
        let r = raw_round(&raw, per_tx)?;
        println!(
            "round {round}: store {s:>9.0} rows/s ({senders} senders, {batch} rows per \
             request), raw {r:>9.0} rows/s ({per_tx} rows per transaction), ratio {:.2}",
            s / r
        );
        stores.push(s);
        raws.push(r);
        ratios.push(s / r);
    }
    println!(
        "store:  {:>12.0} rows/s committed (median of {rounds})",
        median(&mut stores)
    );
    println!(
        "raw:    {:>12.0} rows/s plain batched SQL (median of {rounds})",
        median(&mut raws)
    );
    println!(
        "ratio:  {:>12.2} store / raw (median of the per-round ratios)",
        median(&mut ratios)
    );
    Ok(())
}
