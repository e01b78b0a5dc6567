//! Bus throughput and latency, printed as figures (no assertions: machines differ).
//!
//! A broker serves a socket in a temp directory; publisher and subscribers are real
//! `UnixBus` clients, each on its own connection, all in this process on a 2-worker Tokio
//! runtime (the broker, clients and kernel share the same two cores). Every `PUB` body is
//! 256 bytes.
//!
//! - Throughput: the publisher keeps at most [`WINDOW`] events in flight ahead of the
//!   slowest subscriber, so no queue on the path overflows and the figure is a sustained
//!   rate with nothing dropped (drops are printed anyway).
//! - Latency: 10,000 events/s (10 per 1 ms timer tick), each carrying its publish time;
//!   the subscriber records receive time minus publish time.
//!
//! Run with `scripts/bench-bus.sh` (release build).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use decnet::bus::{Broker, BrokerSettings, Bus, UnixBus};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Events in flight ahead of the slowest subscriber.
const WINDOW: u64 = 512;
/// Size of every PUB body.
const BODY: usize = 256;

struct Progress {
    received: Vec<AtomicU64>,
    wake: Notify,
}

impl Progress {
    fn slowest(&self) -> u64 {
        self.received
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

/// A payload whose PUB body (`{"type":"bench","payload":{…}}`) is [`BODY`] bytes.
fn payload(seq: u64, t: u64) -> Value {
    let mut p = json!({ "seq": seq, "t": t, "pad": "" });
    let body_len = json!({ "type": "bench", "payload": p }).to_string().len();
    p["pad"] = Value::String("x".repeat(BODY.saturating_sub(body_len)));
    p
}

async fn throughput(path: &std::path::Path, subscribers: usize, total: u64) {
    let progress = Arc::new(Progress {
        received: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
        wake: Notify::new(),
    });
    let mut clients = Vec::new();
    let mut readers = Vec::new();
    for i in 0..subscribers {
        let bus = UnixBus::connect(path, &format!("sub{i}"))
            .await
            .expect("connect");
        let mut sub = bus
            .subscribe(&format!("bench{subscribers}.>"))
            .expect("subscribe");
        bus.sync().await.expect("sync");
        let progress = progress.clone();
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while n < total {
                match time::timeout(Duration::from_secs(2), sub.recv()).await {
                    Ok(Some(_)) => {
                        n += 1;
                        if n.is_multiple_of(128) || n == total {
                            progress.received[i].store(n, Ordering::Release);
                            progress.wake.notify_one();
                        }
                    }
                    _ => break,
                }
            }
            n
        }));
        clients.push(bus);
    }
    let publisher = UnixBus::connect(path, "pub").await.expect("connect");
    publisher.sync().await.expect("sync");
    let topic = format!("bench{subscribers}.load");
    let template = payload(0, 0);
    let started = Instant::now();
    let publishing = {
        let publisher = publisher.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            for n in 0..total {
                while n >= progress.slowest() + WINDOW {
                    progress.wake.notified().await;
                }
                publisher
                    .publish(&topic, "bench", &template)
                    .expect("publish");
            }
        })
    };
    publishing.await.expect("publisher");
    let mut delivered = 0;
    for reader in readers {
        delivered += reader.await.expect("reader");
    }
    let secs = started.elapsed().as_secs_f64();
    let dropped: u64 = clients
        .iter()
        .map(|c| c.stats().inbound_dropped)
        .sum::<u64>()
        + publisher.stats().dropped;
    println!(
        "1 -> {subscribers:<2}: {:>9.0} msg/s published, {:>9.0} msg/s delivered \
         ({total} events in {secs:.2} s, {delivered} deliveries, client drops {dropped})",
        total as f64 / secs,
        delivered as f64 / secs,
    );
}

async fn latency(path: &std::path::Path, rate_per_ms: u64, seconds: u64) {
    let total = rate_per_ms * 1000 * seconds;
    let base = Instant::now();
    let subscriber = UnixBus::connect(path, "lat-sub").await.expect("connect");
    let mut sub = subscriber.subscribe("lat.>").expect("subscribe");
    subscriber.sync().await.expect("sync");
    let reader = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        while (samples.len() as u64) < total {
            match time::timeout(Duration::from_secs(2), sub.recv()).await {
                Ok(Some(msg)) => {
                    let now = base.elapsed().as_nanos() as u64;
                    let env = msg.envelope().expect("envelope");
                    let sent = env.payload["t"].as_u64().expect("t");
                    samples.push(now.saturating_sub(sent));
                }
                _ => break,
            }
        }
        samples
    });
    let publisher = UnixBus::connect(path, "lat-pub").await.expect("connect");
    publisher.sync().await.expect("sync");
    let mut ticks = time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut seq = 0;
    while seq < total {
        ticks.tick().await;
        for _ in 0..rate_per_ms {
            let t = base.elapsed().as_nanos() as u64;
            publisher
                .publish("lat.tick", "bench", &payload(seq, t))
                .expect("publish");
            seq += 1;
        }
    }
    let mut samples = reader.await.expect("reader");
    samples.sort_unstable();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1000.0
    };
    println!(
        "latency @ {} msg/s, 1 -> 1: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs \
         ({} of {total} events received)",
        rate_per_ms * 1000,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        samples.len(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bus.sock");
        let listener = decnet::roles::bus::bind(&path, "decnet")
            .await
            .expect("bind");
        let broker = Broker::new(BrokerSettings::default());
        let stop = CancellationToken::new();
        let serving = {
            let (broker, stop) = (broker.clone(), stop.clone());
            tokio::spawn(async move { broker.serve(listener, stop).await })
        };
        println!("bus benchmark: {BODY}-byte PUB bodies, in-process broker, 2 worker threads");
        throughput(&path, 1, 1_000_000).await;
        throughput(&path, 10, 200_000).await;
        latency(&path, 10, 3).await;
        let stats = broker.stats();
        println!(
            "broker: {} published, {} delivered, {} dropped",
            stats.published, stats.delivered, stats.dropped
        );
        stop.cancel();
        serving.await.expect("broker");
    });
}
