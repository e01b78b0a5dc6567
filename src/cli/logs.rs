//! `decnet logs …`: the operator's view of the attack log in the store.
//!
//! `tail` prints the newest events (`-n`, default 20), oldest first; `--follow` keeps
//! printing new ones as they are committed (polling the store every half second, which
//! costs one indexed query); `--json` prints one JSON object per line. `count` prints
//! how many events are stored; with `--at-least N` it first waits until there are N
//! (scripts and the benchmark use it).
//!
//! Every field is attacker-influenced, so both forms pass through [`crate::term`]: the
//! text form shows control characters as `\x1b`-style escapes, the JSON form writes the
//! ones JSON allows raw (DEL, C1, bidi) as `\uNNNN`.
use super::Flavor;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::{Options, Reader, Store, StoredLog};
use crate::term::{escape, escape_json};

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
        writeln!(out, "{}", escape_json(&value.to_string()))
    } else {
        writeln!(
            out,
            "{} {} {}/{} {} {} {}",
            escape(&log.timestamp),
            escape(&log.worker),
            escape(&log.decky),
            escape(&log.service),
            escape(&log.event_type),
            escape(&log.attacker_ip),
            escape(log.msg.as_deref().unwrap_or(&log.raw_line))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::Fields;

    #[test]
    fn attacker_bytes_reach_the_terminal_escaped() {
        let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J\rfake\u{9b}1m";
        let log = StoredLog {
            id: 1,
            timestamp: "2026-11-29 12:00:00".into(),
            decky: "decky\u{1b}[31m".into(),
            service: "ssh".into(),
            event_type: "command".into(),
            attacker_ip: "198.51.100.7".into(),
            raw_line: evil.into(),
            fields: Fields::from_iter([("cmd", evil)]),
            msg: Some(evil.into()),
            worker: "w1".into(),
            source: "decnet.log".into(),
            seq: 1,
            received_at: "2026-11-29 12:00:00.000000".into(),
        };
        for json in [false, true] {
            let mut out = Vec::new();
            print(&log, json, &mut out).expect("print");
            let text = String::from_utf8(out).expect("utf-8");
            assert!(
                !text.trim_end_matches('\n').chars().any(char::is_control),
                "{text:?}"
            );
            if json {
                let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                assert_eq!(value["msg"], evil, "the JSON value is unchanged");
            } else {
                assert!(text.contains("decky\\x1b[31m/ssh"), "{text}");
                assert!(
                    text.contains("\\x1b]0;owned\\x07\\x1b[2J\\x0dfake\\x9b1m"),
                    "{text}"
                );
            }
        }
    }
}
