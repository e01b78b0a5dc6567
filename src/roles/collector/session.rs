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
//! hook logs none) cannot be attributed and are not kept.
//!
//! # Bounds
//! The keys are attacker-supplied addresses and the commands attacker-supplied text, so
//! memory is capped in entries and in bytes: at most [`MAX_IPS`] addresses,
//! [`MAX_COMMANDS`] commands and [`MAX_IP_BYTES`] per address, [`MAX_BYTES`] in all. A
//! command's size is the text it holds plus a fixed overhead (`cost`), kept in running
//! totals so no check walks the map. Addresses sit in a linked hash map in order of their
//! last command: the least recently active one is evicted first, and since it is also the
//! first to expire, the TTL is enforced by popping from the same end. Every insertion,
//! expiry and eviction is O(1) (an evicted address frees its commands in one go, each of
//! which was inserted once).
use std::collections::VecDeque;
use std::time::Duration;

use hashlink::LinkedHashMap;
use hashlink::linked_hash_map::RawEntryMut;
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
/// Most bytes of pending commands in all.
pub const MAX_BYTES: usize = 32 << 20;
/// Most bytes of pending commands per attacker address, so one address cannot take the
/// whole budget.
pub const MAX_IP_BYTES: usize = MAX_BYTES / 8;
/// Bookkeeping counted per command besides its text (map slot, deque slot, JSON nodes).
const COMMAND_OVERHEAD: usize = 256;
/// Keys of the bash hook's `CMD …` message copied into a command record.
const HOOK_KEYS: [&str; 4] = ["uid", "user", "src", "pwd"];

/// One remembered command.
#[derive(Debug)]
struct Command {
    seen: Instant,
    decky: String,
    record: Value,
    bytes: usize,
}

/// The pending commands of one address, oldest first, and their size.
#[derive(Debug, Default)]
struct Pending {
    commands: VecDeque<Command>,
    bytes: usize,
}

impl Pending {
    fn pop_front(&mut self) -> Option<Command> {
        let cmd = self.commands.pop_front()?;
        self.bytes -= cmd.bytes;
        Some(cmd)
    }

    /// When the newest command was seen.
    fn last_seen(&self) -> Option<Instant> {
        self.commands.back().map(|c| c.seen)
    }
}

/// Pending commands per attacker address.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    /// Addresses, least recently active first.
    pending: LinkedHashMap<String, Pending>,
    /// Commands held, over every address.
    commands: usize,
    /// Bytes held, over every address.
    bytes: usize,
}

impl Sessions {
    /// An aggregator keeping commands for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            pending: LinkedHashMap::new(),
            commands: 0,
            bytes: 0,
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
        self.commands
    }

    /// How many addresses have pending commands.
    pub fn addresses(&self) -> usize {
        self.pending.len()
    }

    /// How many bytes the pending commands count for (see [`MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn expired(&self, seen: Instant, now: Instant) -> bool {
        now.saturating_duration_since(seen) >= self.ttl
    }

    /// Drops the addresses whose newest command has expired: they are at the front.
    fn expire(&mut self, now: Instant) {
        while let Some((_, p)) = self.pending.front() {
            if !p.last_seen().is_none_or(|seen| self.expired(seen, now)) {
                break;
            }
            self.evict_front();
        }
    }

    fn evict_front(&mut self) {
        if let Some((_, p)) = self.pending.pop_front() {
            self.commands -= p.commands.len();
            self.bytes -= p.bytes;
        }
    }

    fn remember(&mut self, ip: &str, event: &Event, now: Instant) {
        self.expire(now);
        let record = command(event);
        let bytes = cost(&record, &event.decky);
        if bytes > MAX_IP_BYTES {
            tracing::debug!(ip, bytes, "command too large for the session aggregator");
            return;
        }
        let pending = match self.pending.raw_entry_mut().from_key(ip) {
            RawEntryMut::Occupied(mut slot) => {
                slot.to_back();
                slot.into_mut()
            }
            RawEntryMut::Vacant(slot) => slot.insert(ip.to_owned(), Pending::default()).1,
        };
        pending.commands.push_back(Command {
            seen: now,
            decky: event.decky.clone(),
            record,
            bytes,
        });
        pending.bytes += bytes;
        self.commands += 1;
        self.bytes += bytes;
        while pending.commands.len() > MAX_COMMANDS || pending.bytes > MAX_IP_BYTES {
            let Some(old) = pending.pop_front() else {
                break;
            };
            self.commands -= 1;
            self.bytes -= old.bytes;
        }
        // This address is now at the back and within MAX_IP_BYTES < MAX_BYTES, so the loop
        // evicts other addresses before it could reach this one.
        while self.pending.len() > MAX_IPS || self.bytes > MAX_BYTES {
            self.evict_front();
        }
    }

    fn ended(&mut self, ip: &str, event: &Event, now: Instant) -> Value {
        let mut commands = Vec::new();
        let ttl = self.ttl;
        if let Some(pending) = self.pending.get_mut(ip) {
            let mut kept = VecDeque::with_capacity(pending.commands.len());
            for cmd in pending.commands.drain(..) {
                let live = now.saturating_duration_since(cmd.seen) < ttl;
                if live && cmd.decky != event.decky {
                    kept.push_back(cmd);
                    continue;
                }
                pending.bytes -= cmd.bytes;
                self.commands -= 1;
                self.bytes -= cmd.bytes;
                if live {
                    commands.push(cmd.record);
                }
            }
            pending.commands = kept;
            if pending.commands.is_empty() {
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

/// What a command counts for against [`MAX_BYTES`]: its strings (record keys and values,
/// and the decky it was seen on) plus [`COMMAND_OVERHEAD`].
fn cost(record: &Value, decky: &str) -> usize {
    let strings: usize = record
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or_default();
    strings + decky.len() + COMMAND_OVERHEAD
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
        assert_eq!(s.addresses(), MAX_IPS);
        assert_eq!(s.bytes(), recount(&s));
        // Once the window has passed, expired addresses make room again.
        s.observe(&cmd("d1", "192.0.2.77", "id"), late);
        assert_eq!((s.addresses(), s.pending()), (1, 1));
        assert_eq!(s.bytes(), recount(&s));
    }

    /// The bytes held, summed the slow way.
    fn recount(s: &Sessions) -> usize {
        s.pending
            .values()
            .flat_map(|p| p.commands.iter())
            .map(|c| c.bytes)
            .sum()
    }

    /// A command of about `len` bytes.
    fn big(ip: &str, len: usize) -> Event {
        cmd("d1", ip, &"x".repeat(len))
    }

    #[test]
    fn memory_is_bounded_in_bytes_and_the_least_recently_active_go_first() {
        let mut s = Sessions::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        // One address cannot hold more than its share.
        for _ in 0..200 {
            s.observe(&big("198.51.100.1", 60_000), t0);
        }
        assert!(s.bytes() <= MAX_IP_BYTES, "{}", s.bytes());
        assert!(s.pending() < 200 && s.pending() > 1);
        assert_eq!(s.bytes(), recount(&s));

        // Many addresses: the total stays within MAX_BYTES, the oldest are evicted first,
        // and an address that keeps typing stays.
        let ip = |i: usize| format!("203.0.113.{}", i % 250 + 1) + &format!("-{}", i / 250);
        for i in 0..2_000 {
            s.observe(&big(&ip(i), 60_000), t0);
            s.observe(&cmd("d1", "198.51.100.1", "still here"), t0);
        }
        assert!(s.bytes() <= MAX_BYTES, "{}", s.bytes());
        assert!(s.bytes() > MAX_BYTES / 2, "the budget is used, not wasted");
        assert_eq!(s.bytes(), recount(&s));
        assert!(
            !s.pending.contains_key(&ip(0)),
            "the oldest address went first"
        );
        assert!(s.pending.contains_key(&ip(1_999)), "the newest stays");
        assert!(
            s.pending.contains_key("198.51.100.1"),
            "an active address stays"
        );

        // A session's end releases its bytes.
        let before = s.bytes();
        s.observe(&ended("d1", &ip(1_999)), t0).expect("ended");
        assert!(s.bytes() < before);
        assert_eq!(s.bytes(), recount(&s));
        assert_eq!(
            s.pending(),
            s.pending.values().map(|p| p.commands.len()).sum::<usize>()
        );
    }
}
