//! `decnet logs …`: the operator's view of the attack log in the store.
//!
//! `tail` prints the newest events (`-n`, default 20), oldest first; `--follow` keeps
//! printing new ones as they are committed (polling the store every half second, which
//! costs one indexed query); `--json` prints one JSON object per line. `count` prints
//! how many events are stored; with `--at-least N` it first waits until there are N
//! (scripts and the benchmark use it).
use super::Flavor;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::{Options, Reader, Store, StoredLog};

/// Arguments of `decnet logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The master's database (default: $DECNET_DB_PATH, else $DECNET_HOME/decnet.db).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: LogsCommand,
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Print the newest events, then (with --follow) new ones as they arrive.
    Tail {
        /// How many of the newest events to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing events as they are stored, until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print the number of stored events.
    Count {
        /// First wait until at least this many events are stored (scripts, benchmarks).
        #[arg(long)]
        at_least: Option<u64>,
        /// Give up waiting after this many seconds (exit 1).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

/// Runs a `decnet logs` command.
pub fn run(args: LogsArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let path = args.db.unwrap_or_else(|| config.db_path.clone());
    if !path.exists() {
        anyhow::bail!(
            "{}: no database yet (the listener creates it on first start)",
            path.display()
        );
    }
    let store = Store::open(&path, Options::default())?;
    let reader = store.reader()?;
    match args.command {
        LogsCommand::Count { at_least, timeout } => {
            if let Some(target) = at_least {
                wait_for(&reader, target, Duration::from_secs(timeout))?;
            }
            writeln!(out, "{}", reader.count_logs()?)?;
        }
        LogsCommand::Tail {
            lines,
            follow,
            json,
        } => {
            let mut cursor = (reader.last_log_id()? - i64::from(lines)).max(0);
            let runtime = super::runtime(Flavor::Current)?;
            loop {
                let batch = reader.logs_after(cursor, 1000)?;
                for log in &batch {
                    print(log, json, out)?;
                    cursor = log.id;
                }
                out.flush()?;
                if batch.len() == 1000 {
                    continue;
                }
                if !follow {
                    break;
                }
                let stop = runtime.block_on(async {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => true,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => false,
                    }
                });
                if stop {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Polls every 50 ms until `target` events are stored. The newest id is the cheap
/// progress signal (one index probe); the exact count is taken only once it is reached.
fn wait_for(reader: &Reader, target: u64, limit: Duration) -> anyhow::Result<()> {
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let newest = u64::try_from(reader.last_log_id()?).unwrap_or(0);
            if newest >= target && reader.count_logs()? >= target {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} events stored after {limit:?}, not {target}",
                    reader.count_logs()?
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn print(log: &StoredLog, json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        let fields: serde_json::Map<String, serde_json::Value> = log
            .fields
            .iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
            .collect();
        let value = serde_json::json!({
            "id": log.id,
            "timestamp": log.timestamp,
            "worker": log.worker,
            "decky": log.decky,
            "service": log.service,
            "event_type": log.event_type,
            "attacker_ip": log.attacker_ip,
            "fields": fields,
            "msg": log.msg,
            "raw_line": log.raw_line,
            "source": log.source,
            "seq": log.seq,
            "received_at": log.received_at,
        });
        writeln!(out, "{value}")
    } else {
        writeln!(
            out,
            "{} {} {}/{} {} {} {}",
            log.timestamp,
            log.worker,
            log.decky,
            log.service,
            log.event_type,
            log.attacker_ip,
            log.msg.as_deref().unwrap_or(&log.raw_line)
        )
    }
}
