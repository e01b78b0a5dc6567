//! `allowed_workers`: which worker names may ship logs, and with which certificate.
//!
//! The listener checks every peer against the enrolled swarm hosts and this list (a
//! manual override beside enrolment): the CN must be listed *and* the certificate's
//! fingerprint must be the one listed for it. A certificate from the decnet CA alone is not enough, so a re-issued or leaked
//! older certificate is refused (fail closed) until the operator allows the new pin.
use rusqlite::params;
use time::OffsetDateTime;

use super::{Error, Reader, Result, Store, sql_micros};
use crate::pki::Fingerprint;

impl Store {
    /// Allows worker `name` with certificate `fingerprint`, replacing any previous pin.
    pub fn allow_worker(&self, name: &str, fingerprint: &Fingerprint) -> Result<()> {
        let conn = self.connect(false)?;
        conn.execute(
            "INSERT INTO allowed_workers (name, fingerprint, added_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE
             SET fingerprint = excluded.fingerprint, added_at = excluded.added_at",
            params![
                name,
                fingerprint.to_string(),
                sql_micros(OffsetDateTime::now_utc())
            ],
        )?;
        Ok(())
    }

    /// Removes worker `name`; returns whether it was listed.
    pub fn revoke_worker(&self, name: &str) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute("DELETE FROM allowed_workers WHERE name = ?1", params![name])?;
        Ok(n > 0)
    }
}

impl Reader {
    /// The pinned fingerprint of worker `name`, if it is allowed at all.
    pub fn worker_fingerprint(&self, name: &str) -> Result<Option<Fingerprint>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fingerprint FROM allowed_workers WHERE name = ?1")?;
        let mut rows = stmt.query(params![name])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let text: String = row.get(0)?;
        text.parse()
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("allowed worker {name}: {e}")))
    }

    /// Whether a peer with CN `name` and certificate `fingerprint` may ship logs: an
    /// enrolled swarm host with exactly this pin, or a manual allow-list entry.
    pub fn is_worker_allowed(&self, name: &str, fingerprint: &Fingerprint) -> Result<bool> {
        if self.is_host_pinned(name, &fingerprint.to_string())? {
            return Ok(true);
        }
        Ok(self.worker_fingerprint(name)?.as_ref() == Some(fingerprint))
    }

    /// Every allowed worker and its pin, by name.
    pub fn allowed_workers(&self) -> Result<Vec<(String, Fingerprint)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, fingerprint FROM allowed_workers ORDER BY name")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, text) = row?;
            let fp = text
                .parse()
                .map_err(|e| Error::Corrupt(format!("allowed worker {name}: {e}")))?;
            out.push((name, fp));
        }
        Ok(out)
    }
}
