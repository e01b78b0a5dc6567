//! `bounty` (engine.md §3.5): what the ingester extracted from events (fingerprints,
//! user agents, captured files and mail), deduplicated per attacker.
use rusqlite::{Row, Transaction, params, params_from_iter};
use sha2::{Digest, Sha256};

use super::attackers::like_escape;
use super::{Reader, Result};

/// One extracted item, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBounty {
    /// Event time.
    pub timestamp: String,
    /// Decky of the event.
    pub decky: String,
    /// Service of the event.
    pub service: String,
    /// Source address.
    pub attacker_ip: String,
    /// `fingerprint`, `artifact`, …
    pub bounty_type: String,
    /// JSON object text.
    pub payload: String,
}

/// A stored bounty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BountyRow {
    /// Row id.
    pub id: i64,
    /// The stored item.
    pub bounty: NewBounty,
}

/// Stores `b` unless the same (attacker, type, payload) is stored; whether it was new.
pub(super) fn insert(tx: &Transaction<'_>, b: &NewBounty) -> Result<bool> {
    let sha = hex::encode(Sha256::digest(b.payload.as_bytes()));
    let mut stmt = tx.prepare_cached(
        "INSERT INTO bounty (timestamp, decky, service, attacker_ip, bounty_type, payload,
             payload_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (attacker_ip, bounty_type, payload_sha256) DO NOTHING",
    )?;
    let n = stmt.execute(params![
        b.timestamp,
        b.decky,
        b.service,
        b.attacker_ip,
        b.bounty_type,
        b.payload,
        sha
    ])?;
    Ok(n > 0)
}

fn bounty_row(r: &Row<'_>) -> rusqlite::Result<BountyRow> {
    Ok(BountyRow {
        id: r.get(0)?,
        bounty: NewBounty {
            timestamp: r.get(1)?,
            decky: r.get(2)?,
            service: r.get(3)?,
            attacker_ip: r.get(4)?,
            bounty_type: r.get(5)?,
            payload: r.get(6)?,
        },
    })
}

/// The `WHERE` clause of a type filter and a substring search over decky, service,
/// address and payload.
fn condition(bounty_type: Option<&str>, search: Option<&str>) -> (String, Vec<String>) {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    if let Some(t) = bounty_type {
        params.push(t.to_owned());
        parts.push(format!("bounty_type = ?{}", params.len()));
    }
    if let Some(s) = search {
        params.push(format!("%{}%", like_escape(s)));
        let p = params.len();
        parts.push(format!(
            "(decky LIKE ?{p} ESCAPE '\\' OR service LIKE ?{p} ESCAPE '\\' \
             OR attacker_ip LIKE ?{p} ESCAPE '\\' OR payload LIKE ?{p} ESCAPE '\\')"
        ));
    }
    if parts.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", parts.join(" AND ")), params)
    }
}

impl Reader {
    /// A page of bounties, newest first.
    pub fn bounties(
        &self,
        bounty_type: Option<&str>,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<BountyRow>> {
        let (cond, mut params) = condition(bounty_type, search);
        let n = params.len();
        params.push(limit.to_string());
        params.push(offset.to_string());
        let sql = format!(
            "SELECT id, timestamp, decky, service, attacker_ip, bounty_type, payload \
             FROM bounty{cond} ORDER BY id DESC \
             LIMIT CAST(?{} AS INTEGER) OFFSET CAST(?{} AS INTEGER)",
            n + 1,
            n + 2
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), bounty_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many bounties match.
    pub fn count_bounties(&self, bounty_type: Option<&str>, search: Option<&str>) -> Result<u64> {
        let (cond, params) = condition(bounty_type, search);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM bounty{cond}"))?;
        let n: i64 = stmt.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
