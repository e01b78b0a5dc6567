//! The attacker profiler (engine.md §3.5): one profile per source address, updated by
//! every event from it.
//!
//! A profile holds the services touched (sorted), the deckies in first-contact order
//! (so `d1 → d2 → d3` is the traversal path), the newest commands, the distinct
//! fingerprints, and the event, credential and bounty counts with first and last seen.
//!
//! The profiler is the only writer of `attackers`, so it keeps recently used profiles in
//! memory ([`Profiler`], bounded by [`CACHE_BYTES`]) instead of re-reading them for every
//! batch. A batch works on copies ([`Working`]); they replace the cached ones only after
//! the batch's transaction committed, so a failed commit leaves nothing half-counted.
use std::collections::HashMap;
use std::net::IpAddr;

use super::{MAX_COMMAND_BYTES, MAX_COMMANDS, MAX_DECKIES, MAX_FINGERPRINTS, MAX_NAME_BYTES};
use super::{MAX_SERVICES, clip};
use crate::store::{AttackerRecord, CommandEntry, FingerprintEntry, Ingest, IngestRow, Result};
use crate::syslog::Fields;

/// Approximate bytes of profiles kept in memory between batches.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Profiles kept between batches.
#[derive(Debug, Default)]
pub struct Profiler {
    cache: HashMap<String, AttackerRecord>,
    bytes: usize,
}

/// The profiles one batch touches, and which of them are new.
#[derive(Debug, Default)]
pub struct Working {
    profiles: HashMap<String, AttackerRecord>,
    new: Vec<String>,
    updated_at: String,
}

/// Whether `ip` is an address a profile is kept for (not `Unknown` or garbage).
pub fn profiled(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok()
}

/// Rough heap size of a profile, to bound the cache.
fn weight(a: &AttackerRecord) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
    256 + strings(&a.services)
        + strings(&a.deckies)
        + a.traversal_path.as_ref().map_or(0, String::len)
        + a.commands
            .iter()
            .map(|c| c.command.len() + c.decky.len() + c.service.len() + 120)
            .sum::<usize>()
        + a.fingerprints
            .iter()
            .map(|f| f.value.len() + f.fingerprint_type.len() + 48)
            .sum::<usize>()
}

impl Profiler {
    /// An empty profiler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies of the profiles of `ips` (cached, else stored) for one batch.
    pub fn begin<'a>(
        &self,
        ingest: &Ingest,
        ips: impl IntoIterator<Item = &'a str>,
        updated_at: String,
    ) -> Result<Working> {
        let mut working = Working {
            updated_at,
            ..Working::default()
        };
        let mut missing = Vec::new();
        for ip in ips {
            if working.profiles.contains_key(ip) {
                continue;
            }
            match self.cache.get(ip) {
                Some(a) => {
                    working.profiles.insert(ip.to_owned(), a.clone());
                }
                None => missing.push(ip),
            }
        }
        for a in ingest.attackers(&missing)? {
            working.profiles.insert(a.ip.clone(), a);
        }
        Ok(working)
    }

    /// Keeps the committed `profiles` for the next batches.
    pub fn finish(&mut self, profiles: Vec<AttackerRecord>) {
        for a in profiles {
            let w = weight(&a);
            if self.bytes + w > CACHE_BYTES {
                self.cache.clear();
                self.bytes = 0;
            }
            self.bytes += w;
            if let Some(old) = self.cache.insert(a.ip.clone(), a) {
                self.bytes = self.bytes.saturating_sub(weight(&old));
            }
        }
    }
}

impl Working {
    /// Counts event `row` into its address's profile; `credential` says it carried a
    /// valid credential, `fingerprints` what it revealed.
    pub fn observe(
        &mut self,
        row: &IngestRow,
        fields: &Fields,
        credential: bool,
        fingerprints: &[FingerprintEntry],
    ) {
        if !profiled(&row.attacker_ip) {
            return;
        }
        let updated_at = &self.updated_at;
        let new = &mut self.new;
        let a = self
            .profiles
            .entry(row.attacker_ip.clone())
            .or_insert_with(|| {
                new.push(row.attacker_ip.clone());
                AttackerRecord {
                    uuid: crate::roles::master::new_uuid(),
                    ip: row.attacker_ip.clone(),
                    first_seen: row.timestamp.clone(),
                    last_seen: row.timestamp.clone(),
                    event_count: 0,
                    services: Vec::new(),
                    deckies: Vec::new(),
                    traversal_path: None,
                    is_traversal: false,
                    bounty_count: 0,
                    credential_count: 0,
                    fingerprints: Vec::new(),
                    commands: Vec::new(),
                    updated_at: updated_at.clone(),
                }
            });
        a.updated_at.clone_from(updated_at);
        a.event_count += 1;
        if row.timestamp < a.first_seen {
            a.first_seen.clone_from(&row.timestamp);
        }
        if row.timestamp > a.last_seen {
            a.last_seen.clone_from(&row.timestamp);
        }
        let service = clip(&row.service, MAX_NAME_BYTES);
        if let Err(at) = a.services.binary_search(&service)
            && a.services.len() < MAX_SERVICES
        {
            a.services.insert(at, service.clone());
        }
        let decky = clip(&row.decky, MAX_NAME_BYTES);
        if !a.deckies.contains(&decky) && a.deckies.len() < MAX_DECKIES {
            a.deckies.push(decky.clone());
            a.is_traversal = a.deckies.len() >= 2;
            a.traversal_path = a.is_traversal.then(|| a.deckies.join(" → "));
        }
        if credential {
            a.credential_count += 1;
        }
        for f in fingerprints {
            if a.fingerprints.len() < MAX_FINGERPRINTS && !a.fingerprints.contains(f) {
                a.fingerprints.push(f.clone());
            }
        }
        if let Some(command) = command_text(row, fields) {
            if a.commands.len() >= MAX_COMMANDS {
                a.commands.remove(0);
            }
            a.commands.push(CommandEntry {
                service,
                decky,
                command,
                timestamp: row.timestamp.clone(),
            });
        }
    }

    /// The profile id of `ip`, if it has one.
    pub fn uuid_of(&self, ip: &str) -> Option<&str> {
        self.profiles.get(ip).map(|a| a.uuid.as_str())
    }

    /// The touched profiles (to write) and the addresses first seen in this batch.
    pub fn into_parts(self) -> (Vec<AttackerRecord>, Vec<String>) {
        (self.profiles.into_values().collect(), self.new)
    }
}

/// The command of a `command` event: the shell's `command`, or a protocol's `cmd` and
/// its `args` (redis).
fn command_text(row: &IngestRow, fields: &Fields) -> Option<String> {
    if row.event_type != "command" {
        return None;
    }
    let text = match (fields.get("command"), fields.get("cmd")) {
        (Some(c), _) => c.to_owned(),
        (None, Some(cmd)) => match fields.get("args").filter(|a| !a.is_empty() && *a != "[]") {
            Some(args) => format!("{cmd} {args}"),
            None => cmd.to_owned(),
        },
        (None, None) => return None,
    };
    Some(clip(&text, MAX_COMMAND_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ip: &str, decky: &str, service: &str, event: &str, t: &str) -> IngestRow {
        IngestRow {
            id: 1,
            timestamp: t.into(),
            decky: decky.into(),
            service: service.into(),
            event_type: event.into(),
            attacker_ip: ip.into(),
            fields: String::new(),
        }
    }

    #[test]
    fn traversal_services_commands_and_bounds() {
        let mut w = Working::default();
        let none = Fields::new();
        let cmd: Fields = [("command", "id")].into_iter().collect();
        let ip = "203.0.113.5";
        w.observe(
            &row(ip, "d1", "ssh", "connect", "2026-01-01 00:00:02"),
            &none,
            false,
            &[],
        );
        w.observe(
            &row(ip, "d2", "http", "request", "2026-01-01 00:00:01"),
            &none,
            true,
            &[],
        );
        w.observe(
            &row(ip, "d1", "ssh", "command", "2026-01-01 00:00:03"),
            &cmd,
            false,
            &[],
        );
        w.observe(
            &row(ip, "d3", "ssh", "connect", "2026-01-01 00:00:04"),
            &none,
            false,
            &[],
        );
        w.observe(
            &row("Unknown", "d3", "ftp", "user", "2026-01-01 00:00:04"),
            &none,
            false,
            &[],
        );
        let (profiles, new) = w.into_parts();
        assert_eq!(new, [ip]);
        let a = &profiles[0];
        assert_eq!(a.deckies, ["d1", "d2", "d3"]);
        assert_eq!(a.traversal_path.as_deref(), Some("d1 → d2 → d3"));
        assert!(a.is_traversal);
        assert_eq!(a.services, ["http", "ssh"]);
        assert_eq!(a.event_count, 4);
        assert_eq!(a.credential_count, 1);
        assert_eq!(a.first_seen, "2026-01-01 00:00:01");
        assert_eq!(a.last_seen, "2026-01-01 00:00:04");
        assert_eq!(a.commands.len(), 1);
        assert_eq!(a.commands[0].command, "id");

        let mut w = Working::default();
        for i in 0..(MAX_COMMANDS + 5) {
            let c: Fields = [("command", format!("c{i}"))].into_iter().collect();
            let d = format!("d{i}");
            w.observe(
                &row(ip, &d, "ssh", "command", "2026-01-01 00:00:00"),
                &c,
                false,
                &[],
            );
        }
        let (profiles, _) = w.into_parts();
        assert_eq!(profiles[0].commands.len(), MAX_COMMANDS);
        assert_eq!(profiles[0].commands[0].command, "c5");
        assert_eq!(profiles[0].deckies.len(), MAX_DECKIES);
    }
}
