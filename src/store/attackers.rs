//! `attackers` (engine.md §3.5): one profile per source address, written only by the
//! master's profiler inside its ingestion transaction, read by the API.
//!
//! Services and deckies are stored as JSON text in the profile row; commands and
//! fingerprints live in their own tables (`attacker_commands`, `attacker_fingerprints`,
//! see [`super::profiles`] for the writes). Both come back as typed values; the profiler
//! keeps them bounded before they get here.
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::{Reader, Result};

/// One command an attacker ran, as the profiler recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEntry {
    /// Service it was typed into.
    pub service: String,
    /// Decky it ran on.
    pub decky: String,
    /// The command text (truncated by the profiler).
    pub command: String,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
}

/// One fingerprint seen from an attacker (a `fingerprint` bounty, in short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintEntry {
    /// What kind (`http_useragent`, `ja4h`, …).
    pub fingerprint_type: String,
    /// Its value.
    pub value: String,
}

/// An attacker profile as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackerRecord {
    /// Stable id of the profile.
    pub uuid: String,
    /// Source address.
    pub ip: String,
    /// Earliest event time.
    pub first_seen: String,
    /// Latest event time.
    pub last_seen: String,
    /// Events from this address.
    pub event_count: i64,
    /// Services touched, sorted.
    pub services: Vec<String>,
    /// Deckies touched, in first-contact order.
    pub deckies: Vec<String>,
    /// `d1 → d2 → d3` once two or more deckies were touched.
    pub traversal_path: Option<String>,
    /// Whether more than one decky was touched.
    pub is_traversal: bool,
    /// Bounties stored for this address.
    pub bounty_count: i64,
    /// Credential attempts from this address.
    pub credential_count: i64,
    /// Distinct fingerprints, oldest first.
    pub fingerprints: Vec<FingerprintEntry>,
    /// Commands, oldest first (all kept, or the newest few in a list page).
    pub commands: Vec<CommandEntry>,
    /// Commands kept for this attacker (at most the profiler's cap).
    pub command_count: i64,
    /// When the profiler last wrote the row, UTC with microseconds.
    pub updated_at: String,
}

/// How `/attackers` orders its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackerSort {
    /// Most recently seen first.
    Recent,
    /// Most events first.
    Active,
    /// Only attackers that moved between deckies, widest first.
    Traversals,
}

/// The filter and page of `/attackers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackerQuery {
    /// Substring of the address.
    pub search: Option<String>,
    /// A service the attacker touched.
    pub service: Option<String>,
    /// Order (and, for traversals, filter).
    pub sort: AttackerSort,
    /// Page size.
    pub limit: u32,
    /// Rows skipped.
    pub offset: u32,
}

impl AttackerQuery {
    /// Whether the query lists every attacker (its total can be cached).
    pub fn is_unfiltered(&self) -> bool {
        self.search.is_none() && self.service.is_none() && self.sort != AttackerSort::Traversals
    }

    /// The `WHERE` clause and its bound parameters.
    fn condition(&self) -> (String, Vec<String>) {
        let mut parts = Vec::new();
        let mut params = Vec::new();
        if let Some(s) = &self.search {
            parts.push("ip LIKE ? ESCAPE '\\'");
            params.push(format!("%{}%", like_escape(s)));
        }
        if let Some(s) = &self.service {
            // `services` is a JSON list of strings: the quoted name matches one element.
            let quoted = serde_json::to_string(s).unwrap_or_default();
            parts.push("services LIKE ? ESCAPE '\\'");
            params.push(format!("%{}%", like_escape(&quoted)));
        }
        if self.sort == AttackerSort::Traversals {
            parts.push("is_traversal = 1");
        }
        if parts.is_empty() {
            (String::new(), params)
        } else {
            (format!(" WHERE {}", parts.join(" AND ")), params)
        }
    }
}

/// `text` with LIKE's wildcards and the escape character escaped by `\`.
pub(super) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const COLUMNS: &str = "uuid, ip, first_seen, last_seen, event_count, services, deckies, \
                       traversal_path, is_traversal, bounty_count, credential_count, \
                       updated_at, command_count";

/// Reads one row of [`COLUMNS`], without commands or fingerprints; a list that is not
/// valid JSON is corrupt data.
fn attacker_row(row: &Row<'_>) -> rusqlite::Result<AttackerRecord> {
    fn list<T: for<'de> Deserialize<'de>>(row: &Row<'_>, i: usize) -> rusqlite::Result<Vec<T>> {
        let text: String = row.get(i)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        })
    }
    Ok(AttackerRecord {
        uuid: row.get(0)?,
        ip: row.get(1)?,
        first_seen: row.get(2)?,
        last_seen: row.get(3)?,
        event_count: row.get(4)?,
        services: list(row, 5)?,
        deckies: list(row, 6)?,
        traversal_path: row.get(7)?,
        is_traversal: row.get(8)?,
        bounty_count: row.get(9)?,
        credential_count: row.get(10)?,
        fingerprints: Vec::new(),
        commands: Vec::new(),
        updated_at: row.get(11)?,
        command_count: row.get(12)?,
    })
}

/// The newest `limit` commands of attacker `uuid`, oldest first.
fn commands_of(conn: &Connection, uuid: &str, limit: u32) -> Result<Vec<CommandEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT service, decky, command, timestamp FROM attacker_commands
         WHERE attacker_uuid = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![uuid, limit], |r| {
        Ok(CommandEntry {
            service: r.get(0)?,
            decky: r.get(1)?,
            command: r.get(2)?,
            timestamp: r.get(3)?,
        })
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// The fingerprints of attacker `uuid`, first seen first.
pub(super) fn fingerprints_of(conn: &Connection, uuid: &str) -> Result<Vec<FingerprintEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT fingerprint_type, value FROM attacker_fingerprints
         WHERE attacker_uuid = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![uuid], |r| {
        Ok(FingerprintEntry {
            fingerprint_type: r.get(0)?,
            value: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `a` with its newest `commands` commands and, if asked, its fingerprints.
fn filled(
    conn: &Connection,
    mut a: AttackerRecord,
    commands: u32,
    fingerprints: bool,
) -> Result<AttackerRecord> {
    if commands > 0 && a.command_count > 0 {
        a.commands = commands_of(conn, &a.uuid, commands)?;
    }
    if fingerprints {
        a.fingerprints = fingerprints_of(conn, &a.uuid)?;
    }
    Ok(a)
}

impl Reader {
    /// The page of attackers `q` asks for, each with every command and fingerprint kept.
    pub fn attackers(&self, q: &AttackerQuery) -> Result<Vec<AttackerRecord>> {
        self.attacker_page(q, u32::MAX, true)
    }

    /// The page of attackers `q` asks for, each with its newest `commands` commands (and
    /// [`AttackerRecord::command_count`] of them all) and, if asked, its fingerprints.
    pub fn attacker_page(
        &self,
        q: &AttackerQuery,
        commands: u32,
        fingerprints: bool,
    ) -> Result<Vec<AttackerRecord>> {
        let (cond, mut params) = q.condition();
        let order = match q.sort {
            AttackerSort::Recent => "last_seen DESC, uuid",
            AttackerSort::Active => "event_count DESC, last_seen DESC, uuid",
            AttackerSort::Traversals => "decky_count DESC, last_seen DESC, uuid",
        };
        params.push(q.limit.to_string());
        params.push(q.offset.to_string());
        let sql = format!(
            "SELECT {COLUMNS} FROM attackers{cond} ORDER BY {order} \
             LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(params.iter()), attacker_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|a| filled(&self.conn, a, commands, fingerprints))
            .collect()
    }

    /// How many attackers `q` matches (its page aside).
    pub fn count_attackers(&self, q: &AttackerQuery) -> Result<u64> {
        let (cond, params) = q.condition();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM attackers{cond}"))?;
        let n: i64 = stmt.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The attacker `uuid`, if profiled, with every command and fingerprint kept.
    pub fn attacker(&self, uuid: &str) -> Result<Option<AttackerRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM attackers WHERE uuid = ?1"))?;
        match stmt.query_row(params![uuid], attacker_row).optional()? {
            Some(a) => Ok(Some(filled(&self.conn, a, u32::MAX, true)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` capture events (`file_captured`, `message_stored`) of address `ip`,
    /// newest first.
    pub fn captures_of(&self, ip: &str, limit: u32) -> Result<Vec<super::LogRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM logs WHERE attacker_ip = ?1
             AND event_type IN ('file_captured', 'message_stored')
             ORDER BY id DESC LIMIT ?2",
            super::search::ROW_COLUMNS
        ))?;
        let rows = stmt.query_map(params![ip, limit], super::search::log_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
