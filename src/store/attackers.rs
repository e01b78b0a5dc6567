//! `attackers` (engine.md §3.5): one profile per source address, written only by the
//! master's profiler inside its ingestion transaction, read by the API.
//!
//! Lists (services, deckies, commands, fingerprints) are stored as JSON text and come
//! back as typed values; the profiler keeps them bounded before they get here.
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
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
    /// Commands, oldest first.
    pub commands: Vec<CommandEntry>,
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
                       fingerprints, commands, updated_at";

/// Reads one row of [`COLUMNS`]; a list that is not valid JSON is corrupt data.
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
        fingerprints: list(row, 11)?,
        commands: list(row, 12)?,
        updated_at: row.get(13)?,
    })
}

/// A list column as JSON text (plain lists always serialise).
fn json<T: Serialize>(v: &[T]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Writes `a` whole (insert or replace by uuid) inside the ingestion transaction.
pub(super) fn upsert(tx: &Transaction<'_>, a: &AttackerRecord) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO attackers (uuid, ip, first_seen, last_seen, event_count, service_count,
             decky_count, services, deckies, traversal_path, is_traversal, bounty_count,
             credential_count, fingerprints, commands, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (uuid) DO UPDATE SET
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             event_count = excluded.event_count, service_count = excluded.service_count,
             decky_count = excluded.decky_count, services = excluded.services,
             deckies = excluded.deckies, traversal_path = excluded.traversal_path,
             is_traversal = excluded.is_traversal, bounty_count = excluded.bounty_count,
             credential_count = excluded.credential_count,
             fingerprints = excluded.fingerprints, commands = excluded.commands,
             updated_at = excluded.updated_at",
    )?;
    stmt.execute(params![
        a.uuid,
        a.ip,
        a.first_seen,
        a.last_seen,
        a.event_count,
        a.services.len() as i64,
        a.deckies.len() as i64,
        json(&a.services),
        json(&a.deckies),
        a.traversal_path,
        a.is_traversal,
        a.bounty_count,
        a.credential_count,
        json(&a.fingerprints),
        json(&a.commands),
        a.updated_at,
    ])?;
    Ok(())
}

/// The profiles of `ips` that exist, on any connection (the profiler's own).
pub(super) fn by_ips(conn: &rusqlite::Connection, ips: &[&str]) -> Result<Vec<AttackerRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM attackers WHERE ip = ?1"))?;
    let mut out = Vec::new();
    for ip in ips {
        if let Some(a) = stmt.query_row(params![ip], attacker_row).optional()? {
            out.push(a);
        }
    }
    Ok(out)
}

impl Reader {
    /// The page of attackers `q` asks for.
    pub fn attackers(&self, q: &AttackerQuery) -> Result<Vec<AttackerRecord>> {
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
        let rows = stmt.query_map(params_from_iter(params.iter()), attacker_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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

    /// The attacker `uuid`, if profiled.
    pub fn attacker(&self, uuid: &str) -> Result<Option<AttackerRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM attackers WHERE uuid = ?1"))?;
        Ok(stmt.query_row(params![uuid], attacker_row).optional()?)
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
