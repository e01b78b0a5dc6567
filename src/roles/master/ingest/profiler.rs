//! The attacker profiler (engine.md §3.5): one profile per source address, updated by
//! every event from it.
//!
//! A profile holds the services touched (sorted), the deckies in first-contact order
//! (so `d1 → d2 → d3` is the traversal path), the newest commands, the distinct
//! fingerprints, and the event, credential and bounty counts with first and last seen.
//!
//! The profiler gathers, per address, what the events since its last flush add (counts,
//! time range, new commands and fingerprints, the lists if they changed) and writes it as
//! one [`ProfileUpdate`] per profile, applied in place; profiles are never rewritten
//! whole. It flushes when the ingester has caught up (so a live event is in its profile
//! within one poll) and otherwise at the bounds of [`Flush`]: under a backlog a profile is
//! written about once a second instead of once per batch, which is most of what
//! ingestion costs when many addresses are active. Changes it holds belong to batches
//! already committed: the profiles have their own cursor, and after a crash or a failed
//! commit the profiler derives the events after it again (a replay, which recounts the
//! bounties it cannot tell apart). A profile seen for the first time is stored at once,
//! without counts, so the credentials of its address can name it.
//!
//! To know what is new without reading the profile back, the profiler is the only writer
//! of `attackers` and keeps a lean copy of each recently used profile: its id, lists,
//! stored command count and hashes of its stored fingerprints — not the commands, not
//! the counters. The copies are least-recently-used, bounded by [`CACHE_BYTES`] and
//! [`CACHE_ENTRIES`] (evicted only after a flush, since a held change may depend on its
//! copy); a miss reads the profile from the store.
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::Duration;

use hashlink::LinkedHashMap;
use tokio::time::Instant;

use super::{MAX_COMMAND_BYTES, MAX_COMMANDS, MAX_DECKIES, MAX_FINGERPRINTS, MAX_NAME_BYTES};
use super::{MAX_SERVICES, clip};
use crate::store::{
    CommandEntry, FingerprintEntry, IngestRow, NewProfile, ProfileLists, ProfileUpdate, Result,
    StoredProfile,
};
use crate::syslog::Fields;

/// Approximate bytes of profile copies kept in memory between flushes.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Most profile copies kept in memory between flushes.
pub const CACHE_ENTRIES: usize = 65_536;

/// When the profiler writes the changes it holds, short of having caught up.
#[derive(Debug, Clone)]
pub struct Flush {
    /// Age of the oldest change held.
    pub age: Duration,
    /// Events observed since the last flush (also what a replay may have to derive).
    pub rows: usize,
    /// Profiles with changes held.
    pub profiles: usize,
    /// Approximate bytes of the changes held.
    pub bytes: usize,
}

impl Default for Flush {
    fn default() -> Self {
        Self {
            age: Duration::from_secs(1),
            rows: 100_000,
            profiles: 16_384,
            bytes: 8 * 1024 * 1024,
        }
    }
}

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

/// One address's changes since the last flush.
#[derive(Debug)]
struct Pending {
    update: ProfileUpdate,
    /// Commands, the newest [`MAX_COMMANDS`].
    commands: VecDeque<CommandEntry>,
    lists_changed: bool,
}

/// Recently used profiles, least recently used first, and the changes held for them.
#[derive(Debug, Default)]
pub struct Profiler {
    cache: LinkedHashMap<String, Lean>,
    bytes: usize,
    hasher: RandomState,
    pending: LinkedHashMap<String, Pending>,
    /// Addresses first seen since the last commit, not stored yet.
    unstored: Vec<String>,
    pending_rows: usize,
    pending_bytes: usize,
    since: Option<Instant>,
    flush: Flush,
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

/// Rough heap size of a held command.
fn command_weight(c: &CommandEntry) -> usize {
    96 + c.service.len() + c.decky.len() + c.command.len() + c.timestamp.len()
}

impl Profiler {
    /// An empty profiler that flushes at `flush`.
    pub fn new(flush: Flush) -> Self {
        Self {
            flush,
            ..Self::default()
        }
    }

    /// Profiles kept in memory.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no profile is kept in memory.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Reads the profiles of `ips` that are not in memory with `load` (none: the
    /// address is new).
    pub fn load<'a>(
        &mut self,
        ips: impl IntoIterator<Item = &'a str>,
        mut load: impl FnMut(&str) -> Result<Option<StoredProfile>>,
    ) -> Result<()> {
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
        Ok(())
    }

    /// Drops every copy and every change held (after a failed commit: the store holds
    /// the truth, and the caller derives again from the profiles' cursor).
    pub fn forget(&mut self) {
        *self = Self::new(self.flush.clone());
    }

    /// Whether to flush with the running batch: at once when `caught_up`, else at the
    /// bounds of [`Flush`].
    pub fn flush_due(&self, caught_up: bool) -> bool {
        let f = &self.flush;
        caught_up
            || self.pending_rows >= f.rows
            || self.pending.len() >= f.profiles
            || self.pending_bytes >= f.bytes
            || self.since.is_some_and(|t| t.elapsed() >= f.age)
    }

    /// The profiles first seen since the last commit, to store without counts now.
    pub fn take_created(&mut self, updated_at: &str) -> Vec<NewProfile> {
        let pending = &self.pending;
        self.unstored
            .drain(..)
            .filter_map(|ip| {
                let u = &pending.get(&ip)?.update;
                Some(NewProfile {
                    uuid: u.uuid.clone(),
                    seen: u.first_seen.clone(),
                    updated_at: updated_at.to_owned(),
                    ip,
                })
            })
            .collect()
    }

    /// After the commit of a batch that did not flush: its created profiles are stored,
    /// and `new_bounties` (per address) count into the changes held.
    pub fn committed<'a>(
        &mut self,
        created: &[NewProfile],
        new_bounties: impl IntoIterator<Item = (&'a String, &'a i64)>,
    ) {
        for p in created {
            if let Some(held) = self.pending.get_mut(&p.ip) {
                held.update.is_new = false;
            }
        }
        for (ip, n) in new_bounties {
            if let Some(held) = self.pending.get_mut(ip) {
                held.update.bounties += n;
            }
        }
    }

    /// The changes held, one per profile in first-touch order, stamped `updated_at`;
    /// the profiler holds nothing after this.
    pub fn take(&mut self, updated_at: &str) -> Vec<ProfileUpdate> {
        let cache = &mut self.cache;
        let cap = MAX_COMMANDS as i64;
        self.unstored.clear();
        self.pending_rows = 0;
        self.pending_bytes = 0;
        self.since = None;
        std::mem::take(&mut self.pending)
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
                u.updated_at = updated_at.to_owned();
                u
            })
            .collect()
    }

    /// Evicts the least recently used copies past the bounds (after a flush committed).
    pub fn finish(&mut self) {
        while self.bytes > CACHE_BYTES || self.cache.len() > CACHE_ENTRIES {
            let Some((ip, lean)) = self.cache.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(weight(&ip, &lean));
        }
    }

    /// The profile id of `ip`, if it has one.
    pub fn uuid_of(&self, ip: &str) -> Option<&str> {
        self.cache.get(ip).map(|p| p.uuid.as_str())
    }

    fn print_hash(&self, f: &FingerprintEntry) -> u64 {
        self.hasher.hash_one((&f.fingerprint_type, &f.value))
    }

    /// Counts event `row` into its address's profile; `credential` says it carried a
    /// valid credential, `fingerprints` what it revealed, `replay` that it was counted
    /// before by a batch whose profile changes were lost.
    pub fn observe(
        &mut self,
        row: &IngestRow,
        fields: &Fields,
        credential: bool,
        fingerprints: &[FingerprintEntry],
        replay: bool,
    ) {
        self.pending_rows += 1;
        self.since.get_or_insert_with(Instant::now);
        if !profiled(&row.attacker_ip) {
            return;
        }
        let hashes: Vec<u64> = fingerprints.iter().map(|f| self.print_hash(f)).collect();
        let is_new = !self.cache.contains_key(&row.attacker_ip);
        let lean = self
            .cache
            .entry(row.attacker_ip.clone())
            .or_insert_with(|| Lean {
                uuid: crate::roles::master::new_uuid(),
                lists: ProfileLists::default(),
                commands: 0,
                prints: Vec::new(),
            });
        if is_new {
            self.unstored.push(row.attacker_ip.clone());
        }
        let first = !self.pending.contains_key(&row.attacker_ip);
        let p = self
            .pending
            .entry(row.attacker_ip.clone())
            .or_insert_with(|| Pending {
                update: ProfileUpdate::empty(
                    &lean.uuid,
                    &row.attacker_ip,
                    is_new,
                    &row.timestamp,
                    "",
                ),
                commands: VecDeque::new(),
                lists_changed: is_new,
            });
        if first {
            self.pending_bytes += 320 + 2 * row.attacker_ip.len() + lean.uuid.len();
        }
        let u = &mut p.update;
        u.events += 1;
        u.recount_bounties |= replay;
        if row.timestamp < u.first_seen {
            u.first_seen.clone_from(&row.timestamp);
        }
        if row.timestamp > u.last_seen {
            u.last_seen.clone_from(&row.timestamp);
        }
        let before = self.bytes;
        let service = clip(&row.service, MAX_NAME_BYTES);
        let services = &mut lean.lists.services;
        if let Err(at) = services.binary_search(&service)
            && services.len() < MAX_SERVICES
        {
            self.bytes += service.len() + 24;
            services.insert(at, service.clone());
            p.lists_changed = true;
        }
        let decky = clip(&row.decky, MAX_NAME_BYTES);
        let deckies = &mut lean.lists.deckies;
        if !deckies.contains(&decky) && deckies.len() < MAX_DECKIES {
            self.bytes += decky.len() + 24;
            deckies.push(decky.clone());
            p.lists_changed = true;
        }
        if credential {
            u.credentials += 1;
        }
        for (f, h) in fingerprints.iter().zip(hashes) {
            if lean.prints.len() < MAX_FINGERPRINTS && !lean.prints.contains(&h) {
                lean.prints.push(h);
                self.pending_bytes += 64 + f.fingerprint_type.len() + f.value.len();
                u.fingerprints.push(f.clone());
            }
        }
        if let Some(command) = command_text(row, fields) {
            if p.commands.len() >= MAX_COMMANDS
                && let Some(old) = p.commands.pop_front()
            {
                self.pending_bytes = self.pending_bytes.saturating_sub(command_weight(&old));
            }
            let entry = CommandEntry {
                service,
                decky,
                command,
                timestamp: row.timestamp.clone(),
            };
            self.pending_bytes += command_weight(&entry);
            p.commands.push_back(entry);
        }
        if is_new {
            self.bytes = before + weight(&row.attacker_ip, lean);
        }
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
        let mut profiler = Profiler::new(Flush::default());
        let ip = "203.0.113.5";
        profiler.load([ip, "Unknown"], none)?;
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
            profiler.observe(
                &row(ip, decky, service, event, t),
                fields,
                credential,
                std::slice::from_ref(&print),
                false,
            );
        }
        profiler.observe(
            &row("Unknown", "d3", "ftp", "user", "2026-01-01 00:00:04"),
            &empty,
            false,
            &[],
            false,
        );
        assert!(!profiler.flush_due(false), "within every bound");
        assert!(profiler.flush_due(true));
        let updates = profiler.take("now");
        assert!(
            profiler.take("again").is_empty(),
            "nothing held after a take"
        );
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
        profiler.load([ip], none)?;
        for i in 0..(MAX_COMMANDS + 5) {
            let c: Fields = [("command", format!("c{i}"))].into_iter().collect();
            profiler.observe(
                &row(ip, "d1", "ssh", "command", "2026-01-01 00:00:09"),
                &c,
                false,
                std::slice::from_ref(&print),
                i == 3,
            );
        }
        let updates = profiler.take("later");
        let u = &updates[0];
        assert!(!u.is_new);
        assert!(u.recount_bounties, "a replayed event recounts the bounties");
        assert_eq!(u.lists, None, "no new service or decky");
        assert!(u.fingerprints.is_empty());
        assert_eq!(u.commands.len(), MAX_COMMANDS);
        assert_eq!(u.commands[0].command, "c5");
        assert_eq!(u.drop_commands, 1, "the one stored command goes");
        Ok(())
    }

    #[test]
    fn the_cache_stays_within_its_bounds() -> Result<()> {
        let mut profiler = Profiler::new(Flush::default());
        let empty = Fields::new();
        for chunk in 0..3u32 {
            let ips: Vec<String> = (0..CACHE_ENTRIES as u32 / 2)
                .map(|i| IpAddr::from((chunk << 20 | i).to_be_bytes()).to_string())
                .collect();
            profiler.load(ips.iter().map(String::as_str), none)?;
            for ip in &ips {
                profiler.observe(&row(ip, "d", "s", "e", "t"), &empty, false, &[], false);
            }
            assert!(profiler.flush_due(false), "past the bound of held profiles");
            assert_eq!(profiler.take_created("t").len(), ips.len());
            assert_eq!(profiler.take("t").len(), ips.len());
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
