//! The write side of `attackers` (engine.md §3.5): what the profiler's pending changes
//! add to a profile, applied in place inside an ingestion transaction.
//!
//! A flush does not rewrite a profile. Its counters are raised and its first/last seen
//! widened by one small `UPDATE`; services, deckies and the traversal path are written only
//! when the batch changed them; commands and fingerprints are appended to their own tables
//! (`attacker_commands`, `attacker_fingerprints`), and commands past the per-attacker cap
//! are deleted oldest first. So a flush's write cost follows what it found, not the size
//! of the profiles it touched. The totals the bus reports come back from the same
//! statement (`RETURNING`), so the profiler keeps no counters of its own.
use rusqlite::{Transaction, params};

use super::Result;
use super::attackers::{CommandEntry, FingerprintEntry};

/// Services, deckies and traversal of a profile, written whole when any of them changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileLists {
    /// Services touched, sorted.
    pub services: Vec<String>,
    /// Deckies touched, in first-contact order.
    pub deckies: Vec<String>,
}

impl ProfileLists {
    /// `d1 → d2 → d3` once two or more deckies were touched.
    pub fn traversal_path(&self) -> Option<String> {
        (self.deckies.len() >= 2).then(|| self.deckies.join(" → "))
    }
}

/// What the events since the last flush change in one attacker profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Profile id.
    pub uuid: String,
    /// Source address.
    pub ip: String,
    /// Whether the profile is not stored yet (the update creates it).
    pub is_new: bool,
    /// Earliest event time of the events.
    pub first_seen: String,
    /// Latest event time of the events.
    pub last_seen: String,
    /// Events.
    pub events: i64,
    /// Credential attempts.
    pub credentials: i64,
    /// New bounties of the address in batches already committed.
    pub bounties: i64,
    /// Count the address's bounties afresh instead of adding [`Self::bounties`] (after a
    /// replay, which cannot tell which of its bounties were new).
    pub recount_bounties: bool,
    /// The new lists, when the batch changed them (a new profile without them has none).
    pub lists: Option<ProfileLists>,
    /// Commands to append, oldest first.
    pub commands: Vec<CommandEntry>,
    /// Stored commands to delete, oldest first, to keep the per-attacker cap.
    pub drop_commands: i64,
    /// Fingerprints first seen since the last flush, to append.
    pub fingerprints: Vec<FingerprintEntry>,
    /// When the flush ran, UTC with microseconds.
    pub updated_at: String,
}

impl ProfileUpdate {
    /// No change yet to the profile `uuid` of `ip`, first seen at `seen`.
    pub fn empty(uuid: &str, ip: &str, is_new: bool, seen: &str, updated_at: &str) -> Self {
        Self {
            uuid: uuid.to_owned(),
            ip: ip.to_owned(),
            is_new,
            first_seen: seen.to_owned(),
            last_seen: seen.to_owned(),
            events: 0,
            credentials: 0,
            bounties: 0,
            recount_bounties: false,
            lists: None,
            commands: Vec::new(),
            drop_commands: 0,
            fingerprints: Vec::new(),
            updated_at: updated_at.to_owned(),
        }
    }
}

/// A profile stored before its changes are: the row exists, with no counts yet, so the
/// credentials of its address can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    /// Profile id.
    pub uuid: String,
    /// Source address.
    pub ip: String,
    /// Time of its first event.
    pub seen: String,
    /// When it was stored, UTC with microseconds.
    pub updated_at: String,
}

/// A profile's figures after its update, for `attacker.scored`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTotals {
    /// Events from the address.
    pub event_count: i64,
    /// Credential attempts from the address.
    pub credential_count: i64,
    /// Bounties stored for the address.
    pub bounty_count: i64,
    /// Distinct services touched.
    pub service_count: i64,
    /// Distinct deckies touched.
    pub decky_count: i64,
    /// Whether more than one decky was touched.
    pub is_traversal: bool,
    /// Latest event time.
    pub last_seen: String,
}

/// The totals `RETURNING` clause of both statements.
const TOTALS: &str = "RETURNING event_count, credential_count, bounty_count, service_count, \
                      decky_count, is_traversal, last_seen";

fn totals(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProfileTotals> {
    Ok(ProfileTotals {
        event_count: r.get(0)?,
        credential_count: r.get(1)?,
        bounty_count: r.get(2)?,
        service_count: r.get(3)?,
        decky_count: r.get(4)?,
        is_traversal: r.get(5)?,
        last_seen: r.get(6)?,
    })
}

/// A list column as JSON text (plain lists always serialise).
fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Stores `p` with no counts and no lists.
pub(super) fn create(tx: &Transaction<'_>, p: &NewProfile) -> Result<()> {
    let empty = ProfileUpdate::empty(&p.uuid, &p.ip, true, &p.seen, &p.updated_at);
    apply(tx, &empty, 0).map(drop)
}

/// The `bounty_count` assignment of an update: raised by `?4`, or counted afresh when
/// parameter `recount` is true.
fn bounties_sql(recount: usize) -> String {
    format!(
        "bounty_count = CASE WHEN ?{recount} THEN
             (SELECT count(*) FROM bounty WHERE bounty.attacker_ip = attackers.ip)
             ELSE bounty_count + ?4 END"
    )
}

/// Applies `u` (with `bounties` more new bounties of its address, from the running
/// batch) inside the ingestion transaction and returns the profile's totals.
pub(super) fn apply(
    tx: &Transaction<'_>,
    u: &ProfileUpdate,
    bounties: i64,
) -> Result<ProfileTotals> {
    let commands = i64::try_from(u.commands.len()).unwrap_or(i64::MAX);
    let bounties = u.bounties + bounties;
    let totals = if u.is_new {
        let empty = ProfileLists::default();
        let l = u.lists.as_ref().unwrap_or(&empty);
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT INTO attackers (uuid, ip, first_seen, last_seen, event_count,
                 service_count, decky_count, services, deckies, traversal_path,
                 is_traversal, bounty_count, credential_count, fingerprints, commands,
                 updated_at, command_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, '[]', '[]',
                 ?14, ?15) {TOTALS}"
        ))?;
        let path = l.traversal_path();
        stmt.query_row(
            params![
                u.uuid,
                u.ip,
                u.first_seen,
                u.last_seen,
                u.events,
                l.services.len() as i64,
                l.deckies.len() as i64,
                json(&l.services),
                json(&l.deckies),
                path,
                path.is_some(),
                bounties,
                u.credentials,
                u.updated_at,
                commands - u.drop_commands,
            ],
            totals,
        )?
    } else {
        match &u.lists {
            Some(l) => {
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE attackers SET event_count = event_count + ?2,
                     credential_count = credential_count + ?3, {},
                     command_count = command_count + ?5,
                     first_seen = min(first_seen, ?6), last_seen = max(last_seen, ?7),
                     updated_at = ?8, service_count = ?9, decky_count = ?10, services = ?11,
                     deckies = ?12, traversal_path = ?13, is_traversal = ?14
                 WHERE uuid = ?1 {TOTALS}",
                    bounties_sql(15)
                ))?;
                let path = l.traversal_path();
                stmt.query_row(
                    params![
                        u.uuid,
                        u.events,
                        u.credentials,
                        bounties,
                        commands - u.drop_commands,
                        u.first_seen,
                        u.last_seen,
                        u.updated_at,
                        l.services.len() as i64,
                        l.deckies.len() as i64,
                        json(&l.services),
                        json(&l.deckies),
                        path,
                        path.is_some(),
                        u.recount_bounties,
                    ],
                    totals,
                )?
            }
            None => {
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE attackers SET event_count = event_count + ?2,
                     credential_count = credential_count + ?3, {},
                     command_count = command_count + ?5,
                     first_seen = min(first_seen, ?6), last_seen = max(last_seen, ?7),
                     updated_at = ?8
                 WHERE uuid = ?1 {TOTALS}",
                    bounties_sql(9)
                ))?;
                stmt.query_row(
                    params![
                        u.uuid,
                        u.events,
                        u.credentials,
                        bounties,
                        commands - u.drop_commands,
                        u.first_seen,
                        u.last_seen,
                        u.updated_at,
                        u.recount_bounties,
                    ],
                    totals,
                )?
            }
        }
    };
    if u.drop_commands > 0 {
        tx.prepare_cached(
            "DELETE FROM attacker_commands WHERE id IN (SELECT id FROM attacker_commands
                 WHERE attacker_uuid = ?1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![u.uuid, u.drop_commands])?;
    }
    if !u.commands.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO attacker_commands (attacker_uuid, service, decky, command, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for c in &u.commands {
            stmt.execute(params![u.uuid, c.service, c.decky, c.command, c.timestamp])?;
        }
    }
    if !u.fingerprints.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO attacker_fingerprints (attacker_uuid, fingerprint_type, value)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        for f in &u.fingerprints {
            stmt.execute(params![u.uuid, f.fingerprint_type, f.value])?;
        }
    }
    Ok(totals)
}

/// What the profiler keeps of a stored profile: its id, lists, stored command count and
/// stored fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProfile {
    /// Profile id.
    pub uuid: String,
    /// The stored lists.
    pub lists: ProfileLists,
    /// Rows in `attacker_commands`.
    pub command_count: i64,
    /// The stored fingerprints, first seen first.
    pub fingerprints: Vec<FingerprintEntry>,
}

/// The stored profile of `ip`, if there is one, on the ingester's connection.
pub(super) fn stored(conn: &rusqlite::Connection, ip: &str) -> Result<Option<StoredProfile>> {
    use rusqlite::OptionalExtension;
    let mut stmt = conn.prepare_cached(
        "SELECT uuid, services, deckies, command_count FROM attackers WHERE ip = ?1",
    )?;
    let row = stmt
        .query_row(params![ip], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((uuid, services, deckies, command_count)) = row else {
        return Ok(None);
    };
    let list = |text: &str| {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|e| super::Error::Corrupt(format!("attacker {uuid}: {e}")))
    };
    let lists = ProfileLists {
        services: list(&services)?,
        deckies: list(&deckies)?,
    };
    let fingerprints = super::attackers::fingerprints_of(conn, &uuid)?;
    Ok(Some(StoredProfile {
        uuid,
        lists,
        command_count,
        fingerprints,
    }))
}
