//! The attacker profiler (engine.md §3.5): one profile per source address, updated by
//! every event from it.
//!
//! A profile holds the services touched (sorted), the deckies in first-contact order
//! (so `d1 → d2 → d3` is the traversal path), the newest commands, the distinct
//! fingerprints, and the event, credential and bounty counts with first and last seen.
//!
//! A batch produces, per touched address, a [`ProfileUpdate`]: what the batch adds
//! (counts, time range, new commands and fingerprints, the lists if they changed), which
//! the store applies in place; profiles are never rewritten whole. To know what is new
//! without reading the profile back, the profiler is the only writer of `attackers` and
//! keeps a lean copy of each recently used profile ([`Profiler`]): its id, lists, stored
//! command count and hashes of its stored fingerprints — not the commands, not the
//! counters. The copies are least-recently-used, bounded by [`CACHE_BYTES`] and
//! [`CACHE_ENTRIES`]; a miss reads the profile from the store.
//!
//! A batch changes the copies as it goes; if its transaction fails, [`Profiler::forget`]
//! drops them all, and the next batch reloads the committed truth, so a failed commit
//! leaves nothing half-counted.
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use hashlink::LinkedHashMap;

use super::{MAX_COMMAND_BYTES, MAX_COMMANDS, MAX_DECKIES, MAX_FINGERPRINTS, MAX_NAME_BYTES};
use super::{MAX_SERVICES, clip};
use crate::store::{
    CommandEntry, FingerprintEntry, IngestRow, ProfileLists, ProfileUpdate, Result, StoredProfile,
};
use crate::syslog::Fields;

/// Approximate bytes of profile copies kept in memory between batches.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Most profile copies kept in memory between batches.
pub const CACHE_ENTRIES: usize = 65_536;

/// What the profiler keeps of a stored profile.
#[derive(Debug)]
struct Lean {
    uuid: String,
    lists: ProfileLists,
    /// Rows in `attacker_commands`.
    commands: i64,
    /// Hashes of the stored fingerprints. Keyed per process ([`RandomState`]), so an
    /// attacker cannot choose values that collide; an accidental collision among at most
    /// [`MAX_FINGERPRINTS`] 64-bit hashes is negligible.
    prints: Vec<u64>,
}

/// Recently used profiles, least recently used first.
#[derive(Debug, Default)]
pub struct Profiler {
    cache: LinkedHashMap<String, Lean>,
    bytes: usize,
    hasher: RandomState,
}

/// One address's changes in the running batch.
#[derive(Debug)]
struct Pending {
    update: ProfileUpdate,
    /// Commands of the batch, the newest [`MAX_COMMANDS`].
    commands: VecDeque<CommandEntry>,
    lists_changed: bool,
}

/// The running batch: the profiles it touched, in first-touch order.
#[derive(Debug)]
pub struct Working<'p> {
    profiler: &'p mut Profiler,
    pending: LinkedHashMap<String, Pending>,
    updated_at: String,
}

/// Whether `ip` is an address a profile is kept for (not `Unknown` or garbage).
pub fn profiled(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok()
}

/// Rough heap size of a cached profile and its map entry, to bound the cache.
fn weight(ip: &str, p: &Lean) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
    160 + ip.len()
        + p.uuid.len()
        + strings(&p.lists.services)
        + strings(&p.lists.deckies)
        + p.prints.len() * 8
}

impl Profiler {
    /// An empty profiler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Profiles kept in memory.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no profile is kept in memory.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Starts a batch over the addresses `ips`: profiles not in memory are read with
    /// `load` (none: the address is new).
    pub fn begin<'a>(
        &mut self,
        ips: impl IntoIterator<Item = &'a str>,
        updated_at: String,
        mut load: impl FnMut(&str) -> Result<Option<StoredProfile>>,
    ) -> Result<Working<'_>> {
        for ip in ips {
            if self.cache.to_back(ip).is_some() {
                continue;
            }
            if let Some(stored) = load(ip)? {
                let prints = stored
                    .fingerprints
                    .iter()
                    .map(|f| self.print_hash(f))
                    .collect();
                let lean = Lean {
                    uuid: stored.uuid,
                    lists: stored.lists,
                    commands: stored.command_count,
                    prints,
                };
                self.bytes += weight(ip, &lean);
                self.cache.insert(ip.to_owned(), lean);
            }
        }
        Ok(Working {
            profiler: self,
            pending: LinkedHashMap::new(),
            updated_at,
        })
    }

    /// Drops every copy (after a failed commit: the store holds the truth).
    pub fn forget(&mut self) {
        self.cache.clear();
        self.bytes = 0;
    }

    /// Evicts the least recently used copies past the bounds (after a commit).
    pub fn finish(&mut self) {
        while self.bytes > CACHE_BYTES || self.cache.len() > CACHE_ENTRIES {
            let Some((ip, lean)) = self.cache.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(weight(&ip, &lean));
        }
    }

    fn print_hash(&self, f: &FingerprintEntry) -> u64 {
        self.hasher.hash_one((&f.fingerprint_type, &f.value))
    }
}

impl Working<'_> {
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
        let profiler = &mut *self.profiler;
        let hashes: Vec<u64> = fingerprints
            .iter()
            .map(|f| profiler.print_hash(f))
            .collect();
        let is_new = !profiler.cache.contains_key(&row.attacker_ip);
        let lean = profiler
            .cache
            .entry(row.attacker_ip.clone())
            .or_insert_with(|| Lean {
                uuid: crate::roles::master::new_uuid(),
                lists: ProfileLists::default(),
                commands: 0,
                prints: Vec::new(),
            });
        let updated_at = &self.updated_at;
        let p = self
            .pending
            .entry(row.attacker_ip.clone())
            .or_insert_with(|| Pending {
                update: ProfileUpdate {
                    uuid: lean.uuid.clone(),
                    ip: row.attacker_ip.clone(),
                    is_new,
                    first_seen: row.timestamp.clone(),
                    last_seen: row.timestamp.clone(),
                    events: 0,
                    credentials: 0,
                    lists: None,
                    commands: Vec::new(),
                    drop_commands: 0,
                    fingerprints: Vec::new(),
                    updated_at: updated_at.clone(),
                },
                commands: VecDeque::new(),
                lists_changed: is_new,
            });
        let u = &mut p.update;
        u.events += 1;
        if row.timestamp < u.first_seen {
            u.first_seen.clone_from(&row.timestamp);
        }
        if row.timestamp > u.last_seen {
            u.last_seen.clone_from(&row.timestamp);
        }
        let before = profiler.bytes;
        let service = clip(&row.service, MAX_NAME_BYTES);
        let services = &mut lean.lists.services;
        if let Err(at) = services.binary_search(&service)
            && services.len() < MAX_SERVICES
        {
            profiler.bytes += service.len() + 24;
            services.insert(at, service.clone());
            p.lists_changed = true;
        }
        let decky = clip(&row.decky, MAX_NAME_BYTES);
        let deckies = &mut lean.lists.deckies;
        if !deckies.contains(&decky) && deckies.len() < MAX_DECKIES {
            profiler.bytes += decky.len() + 24;
            deckies.push(decky.clone());
            p.lists_changed = true;
        }
        if credential {
            u.credentials += 1;
        }
        for (f, h) in fingerprints.iter().zip(hashes) {
            if lean.prints.len() < MAX_FINGERPRINTS && !lean.prints.contains(&h) {
                lean.prints.push(h);
                u.fingerprints.push(f.clone());
            }
        }
        if let Some(command) = command_text(row, fields) {
            if p.commands.len() >= MAX_COMMANDS {
                p.commands.pop_front();
            }
            p.commands.push_back(CommandEntry {
                service,
                decky,
                command,
                timestamp: row.timestamp.clone(),
            });
        }
        if is_new {
            profiler.bytes = before + weight(&row.attacker_ip, lean);
        }
    }

    /// The profile id of `ip`, if it has one.
    pub fn uuid_of(&self, ip: &str) -> Option<&str> {
        self.profiler.cache.get(ip).map(|p| p.uuid.as_str())
    }

    /// The changes of the batch, one per touched profile in first-touch order.
    pub fn into_updates(self) -> Vec<ProfileUpdate> {
        let cache = &mut self.profiler.cache;
        let cap = MAX_COMMANDS as i64;
        self.pending
            .into_iter()
            .map(|(ip, p)| {
                let mut u = p.update;
                if let Some(lean) = cache.get_mut(&ip) {
                    let added = p.commands.len() as i64;
                    let kept = (lean.commands + added).min(cap);
                    u.drop_commands = lean.commands + added - kept;
                    lean.commands = kept;
                    if p.lists_changed {
                        u.lists = Some(lean.lists.clone());
                    }
                }
                u.commands = p.commands.into();
                u
            })
            .collect()
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

    fn none(_: &str) -> Result<Option<StoredProfile>> {
        Ok(None)
    }

    #[test]
    fn traversal_services_commands_and_bounds() -> Result<()> {
        let mut profiler = Profiler::new();
        let ip = "203.0.113.5";
        let mut w = profiler.begin([ip, "Unknown"], "now".into(), none)?;
        let empty = Fields::new();
        let cmd: Fields = [("command", "id")].into_iter().collect();
        let print = FingerprintEntry {
            fingerprint_type: "ja4h".into(),
            value: "x".into(),
        };
        let events = [
            ("d1", "ssh", "connect", "2026-01-01 00:00:02", &empty, false),
            ("d2", "http", "request", "2026-01-01 00:00:01", &empty, true),
            ("d1", "ssh", "command", "2026-01-01 00:00:03", &cmd, false),
            ("d3", "ssh", "connect", "2026-01-01 00:00:04", &empty, false),
        ];
        for (decky, service, event, t, fields, credential) in events {
            w.observe(
                &row(ip, decky, service, event, t),
                fields,
                credential,
                std::slice::from_ref(&print),
            );
        }
        w.observe(
            &row("Unknown", "d3", "ftp", "user", "2026-01-01 00:00:04"),
            &empty,
            false,
            &[],
        );
        let updates = w.into_updates();
        assert_eq!(updates.len(), 1);
        let u = &updates[0];
        assert!(u.is_new);
        let lists = u.lists.as_ref().expect("a new profile has lists");
        assert_eq!(lists.deckies, ["d1", "d2", "d3"]);
        assert_eq!(lists.traversal_path().as_deref(), Some("d1 → d2 → d3"));
        assert_eq!(lists.services, ["http", "ssh"]);
        assert_eq!((u.events, u.credentials), (4, 1));
        assert_eq!(u.first_seen, "2026-01-01 00:00:01");
        assert_eq!(u.last_seen, "2026-01-01 00:00:04");
        assert_eq!(u.commands.len(), 1);
        assert_eq!(u.commands[0].command, "id");
        assert_eq!(
            u.fingerprints,
            std::slice::from_ref(&print),
            "a fingerprint once"
        );

        // The next batch adds only what is new: no lists, no repeated fingerprint, and
        // commands past the cap drop the oldest stored ones.
        profiler.finish();
        let mut w = profiler.begin([ip], "later".into(), none)?;
        for i in 0..(MAX_COMMANDS + 5) {
            let c: Fields = [("command", format!("c{i}"))].into_iter().collect();
            w.observe(
                &row(ip, "d1", "ssh", "command", "2026-01-01 00:00:09"),
                &c,
                false,
                std::slice::from_ref(&print),
            );
        }
        let updates = w.into_updates();
        let u = &updates[0];
        assert!(!u.is_new);
        assert_eq!(u.lists, None, "no new service or decky");
        assert!(u.fingerprints.is_empty());
        assert_eq!(u.commands.len(), MAX_COMMANDS);
        assert_eq!(u.commands[0].command, "c5");
        assert_eq!(u.drop_commands, 1, "the one stored command goes");
        Ok(())
    }

    #[test]
    fn the_cache_stays_within_its_bounds() -> Result<()> {
        let mut profiler = Profiler::new();
        let empty = Fields::new();
        for chunk in 0..3u32 {
            let ips: Vec<String> = (0..CACHE_ENTRIES as u32 / 2)
                .map(|i| IpAddr::from((chunk << 20 | i).to_be_bytes()).to_string())
                .collect();
            let mut w = profiler.begin(ips.iter().map(String::as_str), "t".into(), none)?;
            for ip in &ips {
                w.observe(&row(ip, "d", "s", "e", "t"), &empty, false, &[]);
            }
            assert_eq!(w.into_updates().len(), ips.len());
            profiler.finish();
            assert!(profiler.len() <= CACHE_ENTRIES);
            assert!(profiler.bytes <= CACHE_BYTES);
        }
        assert!(profiler.len() > CACHE_ENTRIES / 2, "{}", profiler.len());
        profiler.forget();
        assert!(profiler.is_empty());
        Ok(())
    }
}
