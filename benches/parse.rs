//! Cost of parsing one line per byte, for a 1 KiB and a 64 KiB line full of SD-PARAMs.
//!
//! A parser that rescans its parameter list for each new key is quadratic in the number
//! of parameters, so its per-byte cost grows with the line; a linear one costs about the
//! same per byte at both sizes (ratio near 1). Prints figures only (nothing is
//! asserted): run `scripts/bench-parse.sh`. `BENCH_SECONDS` (default 1) per size.
use decnet::syslog::parse;
use tokio::time::Instant;

#[allow(clippy::disallowed_methods)] // a benchmark's knob, not decnet configuration
fn seconds() -> f64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// A line of about `target` bytes: `relay@55555` with as many short params as fit,
/// every tenth key a repeat of an earlier one.
fn line(target: usize) -> String {
    let mut line = String::from(
        r#"<134>1 2026-11-29T12:00:00Z decky-01 ssh - flood [relay@55555 src_ip="10.0.0.1""#,
    );
    let mut i = 0u64;
    while line.len() < target.saturating_sub(40) {
        let key = if i % 10 == 9 { i - 9 } else { i };
        line.push_str(&format!(r#" p{key}="v{i}""#));
        i += 1;
    }
    line.push_str("] msg");
    line
}

/// Nanoseconds per byte of parsing `text`, over about `budget` seconds.
fn ns_per_byte(text: &str, budget: f64) -> (f64, usize, u64) {
    let params = parse(text).map(|e| e.fields.len()).unwrap_or(0);
    let start = Instant::now();
    let mut runs = 0u64;
    while runs < 3 || start.elapsed().as_secs_f64() < budget {
        let event = parse(std::hint::black_box(text));
        std::hint::black_box(&event);
        runs += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / runs as f64;
    (ns / text.len() as f64, params, runs)
}

fn main() {
    let budget = seconds();
    let mut costs = Vec::new();
    for size in [1024, 64 * 1024] {
        let text = line(size);
        let (cost, params, runs) = ns_per_byte(&text, budget);
        println!(
            "{:>6} bytes, {params:>5} params: {cost:>7.2} ns/byte ({runs} runs)",
            text.len()
        );
        costs.push(cost);
    }
    if let [small, large] = costs[..] {
        println!(
            "ratio 64k/1k: {:.2} (1 = linear)",
            large / small.max(f64::MIN_POSITIVE)
        );
    }
}
