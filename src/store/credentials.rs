//! `credentials` (engine.md §3.5): every secret an attacker offered, byte-exact.
//!
//! The ingester validates and bounds a credential before it gets here ([`NewCredential`]);
//! this file only upserts it on the unique identity (attacker, decky, service, kind,
//! SHA-256 of the secret, principal) and reads pages of them back.
use rusqlite::{Row, Transaction, params, params_from_iter};

use super::attackers::like_escape;
use super::{Reader, Result};

/// A credential from one event, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Source address (`Unknown` when the event had none).
    pub attacker_ip: String,
    /// The attacker's profile, when the address has one.
    pub attacker_uuid: Option<String>,
    /// Decky that captured it.
    pub decky_name: String,
    /// Service that captured it.
    pub service: String,
    /// `principal`, else `username`.
    pub principal: Option<String>,
    /// Secret kind (`plaintext`, `http_bearer`, …).
    pub secret_kind: String,
    /// Hex SHA-256 of the decoded secret.
    pub secret_sha256: String,
    /// Base64 of the exact secret bytes.
    pub secret_b64: String,
    /// The secret with bytes outside 0x20..0x7e as `?`.
    pub secret_printable: String,
    /// Outcome the service reported.
    pub outcome: Option<String>,
    /// The event's parameters as ASCII-only JSON text.
    pub fields: String,
    /// Event time.
    pub seen: String,
}

/// A stored credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    /// Row id.
    pub id: i64,
    /// The stored fields.
    pub credential: NewCredential,
    /// First attempt.
    pub first_seen: String,
    /// Latest attempt.
    pub last_seen: String,
    /// Attempts with this exact identity.
    pub attempt_count: i64,
}

/// Stores `c`, or counts one more attempt of a credential already stored. Returns the
/// attempt count after the write.
pub(super) fn upsert(tx: &Transaction<'_>, c: &NewCredential) -> Result<i64> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO credentials (attacker_ip, attacker_uuid, decky_name, service, principal,
             principal_key, secret_kind, secret_sha256, secret_b64, secret_printable, outcome,
             fields, first_seen, last_seen, attempt_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, 1)
         ON CONFLICT (attacker_ip, decky_name, service, secret_kind, secret_sha256,
             principal_key)
         DO UPDATE SET attempt_count = credentials.attempt_count + 1,
             last_seen = max(credentials.last_seen, excluded.last_seen),
             first_seen = min(credentials.first_seen, excluded.first_seen),
             attacker_uuid = coalesce(excluded.attacker_uuid, credentials.attacker_uuid),
             outcome = coalesce(excluded.outcome, credentials.outcome)
         RETURNING attempt_count",
    )?;
    let n = stmt.query_row(
        params![
            c.attacker_ip,
            c.attacker_uuid,
            c.decky_name,
            c.service,
            c.principal,
            c.principal.as_deref().unwrap_or(""),
            c.secret_kind,
            c.secret_sha256,
            c.secret_b64,
            c.secret_printable,
            c.outcome,
            c.fields,
            c.seen,
        ],
        |r| r.get(0),
    )?;
    Ok(n)
}

const COLUMNS: &str = "id, attacker_ip, attacker_uuid, decky_name, service, principal, \
                       secret_kind, secret_sha256, secret_b64, secret_printable, outcome, \
                       fields, first_seen, last_seen, attempt_count";

fn credential_row(r: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    let first_seen: String = r.get(12)?;
    Ok(CredentialRow {
        id: r.get(0)?,
        credential: NewCredential {
            attacker_ip: r.get(1)?,
            attacker_uuid: r.get(2)?,
            decky_name: r.get(3)?,
            service: r.get(4)?,
            principal: r.get(5)?,
            secret_kind: r.get(6)?,
            secret_sha256: r.get(7)?,
            secret_b64: r.get(8)?,
            secret_printable: r.get(9)?,
            outcome: r.get(10)?,
            fields: r.get(11)?,
            seen: first_seen.clone(),
        },
        first_seen,
        last_seen: r.get(13)?,
        attempt_count: r.get(14)?,
    })
}

/// The `WHERE` clause of a substring search over address, principal, decky, service and
/// printable secret.
fn condition(search: Option<&str>) -> (&'static str, Vec<String>) {
    match search {
        None => ("", Vec::new()),
        Some(s) => (
            " WHERE attacker_ip LIKE ?1 ESCAPE '\\' OR principal LIKE ?1 ESCAPE '\\' \
             OR decky_name LIKE ?1 ESCAPE '\\' OR service LIKE ?1 ESCAPE '\\' \
             OR secret_printable LIKE ?1 ESCAPE '\\'",
            vec![format!("%{}%", like_escape(s))],
        ),
    }
}

impl Reader {
    /// A page of credentials matching `search`, most recently seen first.
    pub fn credentials(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<CredentialRow>> {
        let (cond, mut params) = condition(search);
        let n = params.len();
        params.push(limit.to_string());
        params.push(offset.to_string());
        let sql = format!(
            "SELECT {COLUMNS} FROM credentials{cond} ORDER BY last_seen DESC, id DESC \
             LIMIT CAST(?{} AS INTEGER) OFFSET CAST(?{} AS INTEGER)",
            n + 1,
            n + 2
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), credential_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many credentials match `search`.
    pub fn count_credentials(&self, search: Option<&str>) -> Result<u64> {
        let (cond, params) = condition(search);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM credentials{cond}"))?;
        let n: i64 = stmt.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
