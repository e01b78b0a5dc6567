//! Failed ssh logins per second against one decky: `scripts/bench-services.sh` starts the
//! decky and runs this with its address.
//!
//! `BENCH_CONNS` tasks each repeat, for `BENCH_SECS`, a full failed login ([`login`]: new
//! TCP connection, key exchange, one wrong password, disconnect) with a password of its
//! own each time. Prints the rate of rejections, their latency (connect to rejection)
//! at p50 and p99, and the attempts that ended otherwise, by kind. Asserts nothing.
//!
//! Environment: `BENCH_SSH_ADDR` (required, e.g. `127.0.0.1:2222`), `BENCH_SECS` (10),
//! `BENCH_CONNS` (512), `BENCH_SSH_USER` (`root`), `BENCH_SSH_KEX` (russh's default
//! preference unless set; comma-separated names).
mod login;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Errors of the benchmark, boxed: it only reports them.
type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[allow(clippy::disallowed_methods)] // a benchmark's knobs, not decnet configuration
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn knob(name: &str, default: u64) -> u64 {
    env(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one task measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failures: BTreeMap<login::Failure, u64>,
}

/// The `p` quantile of sorted `latencies_us`, in milliseconds.
fn quantile(latencies_us: &[u32], p: f64) -> f64 {
    let n = latencies_us.len();
    if n == 0 {
        return 0.0;
    }
    let at = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
    f64::from(latencies_us[at]) / 1000.0
}

async fn bench() -> BenchResult<()> {
    let Some(addr) = env("BENCH_SSH_ADDR") else {
        println!("ssh bench: set BENCH_SSH_ADDR (scripts/bench-services.sh does)");
        return Ok(());
    };
    let addr: SocketAddr = addr.parse()?;
    let duration = Duration::from_secs(knob("BENCH_SECS", 10));
    let conns = knob("BENCH_CONNS", 512) as usize;
    let user = env("BENCH_SSH_USER").unwrap_or_else(|| "root".to_owned());
    let config = login::config(env("BENCH_SSH_KEX").as_deref())?;

    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let (config, user) = (config.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let password = format!("wrong password {c}-{i}");
                let t = Instant::now();
                let outcome = login::attempt(config.clone(), addr, &user, password).await;
                // What ends after the deadline is not counted: the rate is over `duration`.
                if Instant::now() > deadline {
                    break;
                }
                match outcome {
                    Ok(()) => {
                        let us = t.elapsed().as_micros();
                        tally
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Err(f) => {
                        *tally.failures.entry(f).or_default() += 1;
                        // A refused connection fails at once; don't spin on it.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        all.latencies_us.extend(t.latencies_us);
        for (f, n) in t.failures {
            *all.failures.entry(f).or_default() += n;
        }
    }
    all.latencies_us.sort_unstable();
    let secs = duration.as_secs_f64();
    let errors: u64 = all.failures.values().sum();
    println!(
        "ssh-load: {:.0} failed logins/s ({} rejected in {secs:.0} s, {conns} connections, \
         full handshake each), p50 {:.1} ms, p99 {:.1} ms, errors {errors} {:?}",
        all.latencies_us.len() as f64 / secs,
        all.latencies_us.len(),
        quantile(&all.latencies_us, 0.50),
        quantile(&all.latencies_us, 0.99),
        all.failures,
    );
    Ok(())
}

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}
