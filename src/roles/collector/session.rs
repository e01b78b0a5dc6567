//! The session aggregator: an attacker's shell commands, published as one
//! `attacker.session.ended` event when the honeypot reports the session over.
//!
//! ssh and telnet deckies log each command (`command`, from the bash hook) and, when the
//! session closes, one `session_recorded` line (APP-NAME `sessrec`, fields `sid`,
//! `service`, `src_ip`, `duration_s`, `bytes`, `truncated`). The aggregator keeps the
//! admitted `command` events per attacker IP for the configured TTL; on `session_recorded`
//! it hands out that IP's commands on the same decky as
//! `{session_id, attacker_uuid: null, attacker_ip, decky_id, service, ended_at, duration_s,
//! commands: [{id, command_text, ts, decky, service, uid?, user?, src?, pwd?}], shard_path}`.
//!
//! Choices where engine.md §3.1 is silent: a command's `id` is the first 16 hex digits of
//! the SHA-256 of its raw line (stable, so consumers can de-duplicate); `shard_path` is the
//! event's `shard_path` field or `null`; commands without an attacker address (the telnet
//! hook logs none) cannot be attributed and are not kept. Memory is bounded: at most
//! [`MAX_IPS`] addresses and [`MAX_COMMANDS`] commands each (the oldest go first).
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::syslog::{COMMAND_EVENT, Event};

/// Event type that ends a session.
pub const SESSION_RECORDED: &str = "session_recorded";
/// Most attacker addresses with pending commands.
pub const MAX_IPS: usize = 10_000;
/// Most pending commands per attacker address.
pub const MAX_COMMANDS: usize = 1_000;
/// Keys of the bash hook's `CMD …` message copied into a command record.
const HOOK_KEYS: [&str; 4] = ["uid", "user", "src", "pwd"];

/// Pending commands per attacker address.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    pending: HashMap<String, VecDeque<(Instant, String, Value)>>,
}

impl Sessions {
    /// An aggregator keeping commands for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            pending: HashMap::new(),
        }
    }

    /// Takes one admitted event seen at `now`; returns the `attacker.session.ended` payload
    /// when it ends a session.
    pub fn observe(&mut self, event: &Event, now: Instant) -> Option<Value> {
        let ip = event.attacker_ip.as_deref()?;
        match event.event_type.as_str() {
            COMMAND_EVENT => {
                self.remember(ip, event, now);
                None
            }
            SESSION_RECORDED => Some(self.ended(ip, event, now)),
            _ => None,
        }
    }

    /// How many commands are pending.
    pub fn pending(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }

    fn remember(&mut self, ip: &str, event: &Event, now: Instant) {
        if !self.pending.contains_key(ip) && self.pending.len() >= MAX_IPS {
            let ttl = self.ttl;
            self.pending.retain(|_, cmds| {
                cmds.retain(|(seen, _, _)| now.saturating_duration_since(*seen) < ttl);
                !cmds.is_empty()
            });
            if self.pending.len() >= MAX_IPS {
                tracing::debug!(ip, "session aggregator full; command not kept");
                return;
            }
        }
        let cmds = self.pending.entry(ip.to_owned()).or_default();
        if cmds.len() >= MAX_COMMANDS {
            cmds.pop_front();
        }
        cmds.push_back((now, event.decky.clone(), command(event)));
    }

    fn ended(&mut self, ip: &str, event: &Event, now: Instant) -> Value {
        let mut commands = Vec::new();
        if let Some(cmds) = self.pending.get_mut(ip) {
            let ttl = self.ttl;
            cmds.retain(|(seen, decky, cmd)| {
                let live = now.saturating_duration_since(*seen) < ttl;
                if live && *decky == event.decky {
                    commands.push(cmd.clone());
                    return false;
                }
                live
            });
            if cmds.is_empty() {
                self.pending.remove(ip);
            }
        }
        let field = |k: &str| event.fields.get(k).map(str::to_owned);
        json!({
            "session_id": field("sid"),
            "attacker_uuid": null,
            "attacker_ip": ip,
            "decky_id": event.decky,
            "service": field("service").unwrap_or_else(|| event.service.clone()),
            "ended_at": event.timestamp.display(),
            "duration_s": field("duration_s").and_then(|d| d.parse::<f64>().ok()),
            "commands": commands,
            "shard_path": field("shard_path"),
        })
    }
}

/// The record of one `command` event.
fn command(event: &Event) -> Value {
    let mut record = Map::new();
    let id = hex::encode(Sha256::digest(event.raw.as_bytes()));
    record.insert("id".into(), json!(id[..16]));
    let text = event
        .fields
        .get(COMMAND_EVENT)
        .or(event.msg.as_deref())
        .unwrap_or_default();
    record.insert("command_text".into(), json!(text));
    record.insert("ts".into(), json!(event.timestamp.display()));
    record.insert("decky".into(), json!(event.decky));
    record.insert("service".into(), json!(event.service));
    // `CMD uid=0 user=root src=… pwd=/root cmd=…`: the words before `cmd=`.
    let hook = event
        .msg
        .as_deref()
        .and_then(|m| m.strip_prefix("CMD "))
        .map(|m| m.split_once(" cmd=").map_or(m, |(head, _)| head))
        .unwrap_or_default();
    for word in hook.split_whitespace() {
        if let Some((k, v)) = word.split_once('=')
            && HOOK_KEYS.contains(&k)
        {
            record.insert(k.into(), json!(v));
        }
    }
    for key in HOOK_KEYS {
        if let Some(v) = event.fields.get(key) {
            record.entry(key).or_insert_with(|| json!(v));
        }
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;

    fn event(line: &str) -> Event {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn cmd(decky: &str, ip: &str, cmd: &str) -> Event {
        event(&format!(
            "<14>1 2026-11-29T12:00:0{}Z {decky} bash - - - CMD uid=0 user=root src={ip} pwd=/root cmd={cmd}",
            cmd.len() % 10
        ))
    }

    fn ended(decky: &str, ip: &str) -> Event {
        event(&format!(
            "<134>1 2026-11-29T12:05:00Z {decky} sessrec - session_recorded [relay@55555 sid=\"s-1\" service=\"ssh\" src_ip=\"{ip}\" duration_s=\"12.5\" bytes=\"900\" truncated=\"false\"]"
        ))
    }

    #[test]
    fn commands_of_one_ip_and_decky_make_the_session() {
        let mut s = Sessions::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        assert_eq!(s.observe(&cmd("d1", "192.0.2.9", "id"), t0), None);
        assert_eq!(s.observe(&cmd("d1", "192.0.2.9", "ls -la"), t0), None);
        assert_eq!(s.observe(&cmd("d2", "192.0.2.9", "whoami"), t0), None);
        assert_eq!(s.observe(&cmd("d1", "192.0.2.10", "uname"), t0), None);
        assert_eq!(s.pending(), 4);

        let out = s.observe(&ended("d1", "192.0.2.9"), t0).expect("ended");
        assert_eq!(out["session_id"], "s-1");
        assert_eq!(out["attacker_uuid"], Value::Null);
        assert_eq!(out["attacker_ip"], "192.0.2.9");
        assert_eq!(out["decky_id"], "d1");
        assert_eq!(out["service"], "ssh");
        assert_eq!(out["ended_at"], "2026-11-29 12:05:00");
        assert_eq!(out["duration_s"], 12.5);
        assert_eq!(out["shard_path"], Value::Null);
        let commands = out["commands"].as_array().expect("list");
        let texts: Vec<&str> = commands
            .iter()
            .filter_map(|c| c["command_text"].as_str())
            .collect();
        assert_eq!(texts, ["id", "ls -la"]);
        assert_eq!(commands[1]["user"], "root");
        assert_eq!(commands[1]["src"], "192.0.2.9");
        assert_eq!(commands[1]["pwd"], "/root");
        assert_eq!(commands[1]["uid"], "0");
        assert_eq!(commands[1]["decky"], "d1");
        assert_eq!(commands[1]["service"], "bash");
        assert_eq!(commands[0]["id"].as_str().map(str::len), Some(16));
        assert_ne!(commands[0]["id"], commands[1]["id"]);
        assert_eq!(s.pending(), 2, "other deckies and addresses stay");
    }

    #[test]
    fn old_commands_expire_and_memory_is_bounded() {
        let mut s = Sessions::new(Duration::from_secs(10));
        let t0 = Instant::now();
        s.observe(&cmd("d1", "192.0.2.9", "id"), t0);
        let late = t0 + Duration::from_secs(10);
        let out = s.observe(&ended("d1", "192.0.2.9"), late).expect("ended");
        assert_eq!(out["commands"], json!([]));
        assert_eq!(s.pending(), 0);

        for i in 0..MAX_COMMANDS + 5 {
            s.observe(&cmd("d1", "192.0.2.9", &format!("echo {i}")), t0);
        }
        assert_eq!(s.pending(), MAX_COMMANDS);
        for i in 0..MAX_IPS + 5 {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            s.observe(&cmd("d1", &ip, "id"), t0);
        }
        assert!(s.pending.len() <= MAX_IPS);
        // Once the window has passed, expired addresses make room again.
        s.observe(&cmd("d1", "192.0.2.77", "id"), late);
        assert_eq!(s.pending.len(), 1);
    }
}
