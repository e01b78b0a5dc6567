//! Speed of the master's swarm controller: run `scripts/bench-swarm.sh`.
//!
//! The controller is the real one (`swarm::serve_controller` over mutual TLS with the
//! `swarmctl` certificate, its flush and liveness tasks, a SQLite store file) on a tokio
//! runtime of its own; the simulated agents run on another, so the figures are the
//! server's. The process allocates as `decnet master` does (mimalloc, also for SQLite).
//! Every agent is enrolled through the controller's own enrolment (store row, worker
//! certificate from the real CA code). Scenarios:
//! 1. heartbeats: `BENCH_AGENTS` agents, each on one mTLS connection of its own (its
//!    worker certificate, the controller pinned), send a realistic snapshot of 3 deckies
//!    back to back for `BENCH_SECS` (closed loop, reconnecting if the connection drops):
//!    beats/s, p50/p99/max latency, errors.
//! 2. the reconnect storm: the controller is stopped (its shutdown token), the agents
//!    retry every 100 ms with a fresh connection, and a new controller state over the same
//!    store file (a fresh registry, as a restarted master) starts on the same port: the
//!    time until every agent had a 204 again.
//! 3. deploy: `BENCH_DEPLOY_AGENTS` agents, each a small mTLS server answering `/deploy`
//!    202 and `/status` like `decnet agent`, get 3 deckies each in one sharded
//!    `swarm::dispatch::deploy`: wall time and deckies/s.
//!
//! With 256 agents in a closed loop, latency is agents ÷ rate (Little's law): p99 ≤ 50 ms
//! needs about 5,000 beats/s or more. Prints figures and the targets; asserts nothing.
//!
//! Environment: `BENCH_AGENTS` (256), `BENCH_SECS` (10), `BENCH_DEPLOY_AGENTS` (32).
mod agents;
#[path = "../../src/allocator.rs"]
mod allocator;
mod controller;
mod fleet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agents::{Agent, Tally};
use controller::Controller;
use decnet::roles::master::swarm::dispatch;
use decnet::roles::master::swarm::dto::DeployBody;
use fleet::FakeAgent;
use futures_util::future::join_all;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Errors of the benchmark, boxed: it only reports them.
type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long the master stays down before it restarts, the agents retrying meanwhile.
const DOWNTIME: Duration = Duration::from_secs(1);

#[allow(clippy::disallowed_methods)] // a benchmark's knobs, not decnet configuration
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn knob(name: &str, default: u64) -> u64 {
    env(name).and_then(|v| v.parse().ok()).unwrap_or(default)
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

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Scenario 1: every agent beats back to back for `secs`.
async fn heartbeats(agents: &[Arc<Agent>], secs: Duration) -> BenchResult<()> {
    let start = Instant::now();
    let until = start + secs;
    let tasks: Vec<_> = agents
        .iter()
        .map(|a| tokio::spawn(agents::closed_loop(a.clone(), until)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let one = t.await?;
        all.latencies_us.extend(one.latencies_us);
        all.errors += one.errors;
    }
    let took = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let rate = all.latencies_us.len() as f64 / took;
    let (p50, p99) = (
        quantile(&all.latencies_us, 0.50),
        quantile(&all.latencies_us, 0.99),
    );
    let max = f64::from(all.latencies_us.last().copied().unwrap_or(0)) / 1000.0;
    println!(
        "heartbeats: {rate:.0}/s from {} agents over {took:.1} s ({} beats), p50 {p50:.2} ms, \
         p99 {p99:.2} ms, max {max:.2} ms, {} errors (target ≥ 2000/s, p99 ≤ 50 ms: {})",
        agents.len(),
        all.latencies_us.len(),
        all.errors,
        verdict(rate >= 2000.0 && p99 <= 50.0)
    );
    Ok(())
}

/// Scenario 2: the controller stops, the agents retry, a fresh one starts on its port.
async fn storm(
    rt: &Handle,
    home: &std::path::Path,
    old: Controller,
    agents: &[Arc<Agent>],
) -> BenchResult<Controller> {
    let addr = old.addr;
    old.stop().await?;
    let retrying: Vec<_> = agents
        .iter()
        .map(|a| {
            let a = a.clone();
            tokio::spawn(async move { (a.until_accepted().await, Instant::now()) })
        })
        .collect();
    tokio::time::sleep(DOWNTIME).await;
    let restart = Instant::now();
    let new = Controller::start(rt, home, addr).await?;
    let listening = restart.elapsed().as_secs_f64();
    let (mut failed, mut last) = (0, restart);
    for t in retrying {
        let (f, at) = t.await?;
        failed += f;
        last = last.max(at);
    }
    println!(
        "reconnect storm: all {} agents had a 204 again {:.2} s after the master restarted \
         (listening after {listening:.2} s; down {:.1} s before, {failed} refused attempts at \
         100 ms intervals) (no target)",
        agents.len(),
        (last - restart).as_secs_f64(),
        DOWNTIME.as_secs_f64()
    );
    Ok(new)
}

/// Scenario 3: 3 deckies to each of `count` agents in one sharded deploy.
async fn deploy(rt: &Handle, ctl: &Controller, count: usize) -> BenchResult<()> {
    let stop = CancellationToken::new();
    let mut fakes = Vec::with_capacity(count);
    for _ in 0..count {
        fakes.push(FakeAgent::bind().await?);
    }
    let ports: Vec<u16> = fakes.iter().map(|f| f.port).collect();
    let hosts = ctl.enroll(rt, "fleet", count, |i| ports[i]).await?;
    for (f, h) in fakes.iter_mut().zip(&hosts) {
        f.serve(&h.bundle, stop.clone())?;
    }
    let config = fleet::fleet(&hosts)?;
    let total = config.deckies.len();
    let state = ctl.state.clone();
    let start = Instant::now();
    let results = rt
        .spawn(async move {
            let body = DeployBody {
                config,
                dry_run: false,
                no_cache: false,
            };
            dispatch::deploy(&state, body).await
        })
        .await?
        .map_err(|e| format!("deploy: {e:?}"))?;
    let took = start.elapsed().as_secs_f64();
    stop.cancel();
    let ok = results.iter().filter(|r| r.ok).count();
    let received: usize = fakes.iter().map(FakeAgent::deckies).sum();
    println!(
        "deploy: {total} deckies to {count} agents in {took:.3} s ({:.0} deckies/s; {ok}/{count} \
         hosts accepted, {received} deckies received) (no target)",
        total as f64 / took
    );
    Ok(())
}

async fn bench(rt: Handle, cores: usize) -> BenchResult<()> {
    let count = knob("BENCH_AGENTS", 256) as usize;
    let secs = Duration::from_secs(knob("BENCH_SECS", 10));
    let deploy_count = knob("BENCH_DEPLOY_AGENTS", 32) as usize;
    println!(
        "bench-swarm: {cores} cores; the controller and the agents on tokio runtimes of their \
         own ({cores} workers each)"
    );
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let ctl = Controller::start(&rt, home, SocketAddr::from(([127, 0, 0, 1], 0))).await?;

    let start = Instant::now();
    let hosts = ctl.enroll(&rt, "beat", count, |_| 8765).await?;
    let took = start.elapsed().as_secs_f64();
    println!(
        "enrolment: {count} hosts in {took:.2} s ({:.0}/s, one at a time)",
        count as f64 / took
    );
    let port = ctl.addr.port();
    let agents = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Agent::new(i, h, port, &ctl.pin).map(Arc::new))
        .collect::<BenchResult<Vec<_>>>()?;
    let start = Instant::now();
    let refused: u64 = join_all(agents.iter().map(|a| a.until_accepted()))
        .await
        .into_iter()
        .sum();
    println!(
        "first beats: {count} handshakes and beats in {:.2} s ({refused} refused), {} bytes a beat",
        start.elapsed().as_secs_f64(),
        agents.first().map_or(0, |a| a.body_len())
    );

    heartbeats(&agents, secs).await?;
    let ctl = storm(&rt, home, ctl, &agents).await?;
    drop(agents);
    deploy(&rt, &ctl, deploy_count).await?;
    ctl.stop().await?;
    println!("bench-swarm: done");
    Ok(())
}

fn main() -> BenchResult<()> {
    // The allocators `decnet master` runs with.
    if !allocator::configure() {
        return Err("SQLite refused the allocator".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let controller = tokio::runtime::Builder::new_multi_thread()
        .thread_name("swarmctl")
        .enable_all()
        .build()?;
    let load = tokio::runtime::Builder::new_multi_thread()
        .thread_name("agents")
        .enable_all()
        .build()?;
    let handle = controller.handle().clone();
    let result = load.block_on(bench(handle, cores));
    controller.shutdown_timeout(Duration::from_secs(5));
    result
}
