//! Speed of the master API over a store of 1,000,000 events, next to a minimal hyper
//! "hello JSON" server as the reference: run `scripts/bench-api.sh`.
//!
//! The master is the real `decnet master` binary (this build's, so `cargo bench` builds
//! it in release once) in a process of its own, so its memory can be read from `/proc`.
//! Scenarios, each for a fixed time over `BENCH_CONNS` keep-alive connections:
//! the reference, `/api/v1/logs?limit=50`, `/api/v1/stats`, the dashboard's own mix
//! (stats, logs page, histogram, health, config), the uncached second `/logs` page
//! (what any page but the polled one costs) and login (argon2id, CPU-bound by
//! design, so reported apart). Each route's rate is also printed as a ratio to the
//! reference's, the figure that survives a noisy machine. The scenarios start once the
//! master's ingester has derived the stored events (a fresh store is a backlog to it),
//! so they measure a master in its steady state. Prints figures and the targets;
//! asserts nothing.
//!
//! Environment: `BENCH_ROWS` (1000000), `BENCH_SECS` (10, per scenario), `BENCH_CONNS`
//! (256), `BENCH_DB` (a store file to reuse, built there if missing or of another size).
mod fixture;
mod load;
mod master;
mod reference;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use load::{Call, Summary};

/// Errors of the benchmark, boxed: it only reports them.
type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[allow(clippy::disallowed_methods)] // a benchmark's knobs, not decnet configuration
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn knob(name: &str, default: u64) -> u64 {
    env(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The dashboard's overview and logs page, as it polls them.
fn dashboard_mix() -> Vec<Call> {
    [
        "/api/v1/stats",
        "/api/v1/logs?limit=50&offset=0",
        "/api/v1/logs/histogram",
        "/api/v1/health",
        "/api/v1/config",
    ]
    .iter()
    .map(|p| Call::get(p))
    .collect()
}

fn print_row(name: &str, s: &Summary, reference: f64) {
    println!(
        "{name:<34} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>7.3}",
        s.rps,
        s.p50_ms,
        s.p99_ms,
        s.errors,
        s.rps / reference.max(1e-9)
    );
}

async fn bench() -> BenchResult<()> {
    let rows = knob("BENCH_ROWS", 1_000_000);
    let secs = Duration::from_secs(knob("BENCH_SECS", 10));
    let conns = knob("BENCH_CONNS", 256) as usize;
    let dir = tempfile::tempdir()?;
    let db = env("BENCH_DB").map_or_else(|| dir.path().join("bench.db"), PathBuf::from);
    if db.exists() && fixture::count(&db)? == rows {
        println!("store: reusing {} ({rows} events)", db.display());
    } else {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let rate = fixture::build(&db, rows).await?;
        println!("store: {rows} events written through the store writer at {rate:.0} rows/s");
    }

    let (reference_proc, port) = reference::start()?;
    let reference_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut m = master::Master::start(dir.path(), &db)?;
    m.wait_ready().await?;
    let took = fixture::wait_derived(&db, Duration::from_secs(1800)).await?;
    if took >= 1.0 {
        println!(
            "ingester: derived the {rows} stored events in {took:.0} s ({:.0} events/s)",
            rows as f64 / took
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = m.memory()?;
    let token: Arc<str> = m.admin_token().await?.into();

    println!(
        "\n{conns} connections, {} s per scenario, {rows} stored events\n",
        secs.as_secs()
    );
    println!(
        "{:<34} {:>10} {:>9} {:>9} {:>8} {:>7}",
        "scenario", "req/s", "p50 ms", "p99 ms", "errors", "× ref"
    );
    let hello: Arc<[Call]> = vec![Call::get("/")].into();
    let reference = load::run(reference_addr, None, hello, conns, secs).await?;
    print_row("reference (hyper hello JSON)", &reference, reference.rps);
    let base = reference.rps;

    // One short untimed pass fills the master's caches and reader pool.
    let mix: Arc<[Call]> = dashboard_mix().into();
    load::run(
        m.addr,
        Some(token.clone()),
        mix.clone(),
        conns,
        Duration::from_secs(1),
    )
    .await?;
    let mut results = Vec::new();
    for (name, plan) in [
        (
            "/api/v1/logs?limit=50",
            vec![Call::get("/api/v1/logs?limit=50")],
        ),
        ("/api/v1/stats", vec![Call::get("/api/v1/stats")]),
        ("dashboard mix (5 routes)", dashboard_mix()),
        // The second page is never cached: what any page but the polled one costs.
        (
            "/api/v1/logs?limit=50&offset=50",
            vec![Call::get("/api/v1/logs?limit=50&offset=50")],
        ),
    ] {
        let s = load::run(m.addr, Some(token.clone()), plan.into(), conns, secs).await?;
        print_row(name, &s, base);
        results.push((name, s));
    }
    let read_peak = m.memory()?;
    let login: Arc<[Call]> = vec![Call::post(
        "/api/v1/auth/login",
        &serde_json::json!({ "username": "admin", "password": master::NEW_PASSWORD }),
    )]
    .into();
    let logins = load::run(m.addr, None, login, conns, secs).await?;
    print_row("login (argon2id, CPU-bound)", &logins, base);
    let login_peak = m.memory()?;
    drop(reference_proc);

    println!("\nmaster memory (from /proc/<pid>/status):");
    println!(
        "  idle after start, {rows} events stored: {:.1} MiB RSS",
        idle.rss_mib
    );
    println!(
        "  peak through the read scenarios:        {:.1} MiB (VmHWM)",
        read_peak.hwm_mib
    );
    println!(
        "  peak after {conns} concurrent logins:    {:.1} MiB (VmHWM)",
        login_peak.hwm_mib
    );

    let [logs, stats, mix] = [&results[0].1, &results[1].1, &results[2].1];
    println!("\ntargets:");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  /stats ≥ 20000 req/s:            {:.0} — {}",
        stats.rps,
        verdict(stats.rps >= 20_000.0)
    );
    println!(
        "  /logs ≥ 5000 req/s, p99 ≤ 50 ms: {:.0}, {:.1} ms — {}",
        logs.rps,
        logs.p99_ms,
        verdict(logs.rps >= 5_000.0 && logs.p99_ms <= 50.0)
    );
    println!(
        "  mix ≥ 0.3 × reference:           {:.3} — {}",
        mix.rps / base,
        verdict(mix.rps >= 0.3 * base)
    );
    println!(
        "  RSS idle ≤ 64 MiB:               {:.1} — {}",
        idle.rss_mib,
        verdict(idle.rss_mib <= 64.0)
    );
    println!(
        "  RSS peak ≤ 128 MiB:              {:.1} — {}",
        login_peak.hwm_mib,
        verdict(login_peak.hwm_mib <= 128.0)
    );
    Ok(())
}

fn main() -> BenchResult<()> {
    if std::env::args().any(|a| a == reference::FLAG) {
        return reference::serve();
    }
    // The load generator gets its own two workers, as the master and the reference do.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}
