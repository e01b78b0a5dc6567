//! `swarm_hosts` and `decky_shards` (swarm.md §13.1–§13.2): the enrolled worker hosts and
//! which host runs which decky.
//!
//! A host row is the authority for every link to that worker: its `name` is the
//! certificate CN and `client_cert_fingerprint` the pin the agent client, the heartbeat
//! endpoint and the log listener check. Decommissioning deletes the row (and its shards
//! first), so a later heartbeat or log connection from that certificate is refused.
//!
//! Heartbeats are frequent (one per worker every 30 s) and their writes small, so the
//! writes take slices ([`Store::touch_hosts`], [`Store::upsert_shards`]) that the caller
//! batches into one transaction each.
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{Reader, Result, Store, sql_micros};

/// The stored status of a host that answered recently.
pub const ACTIVE: &str = "active";
/// The stored status of a host that missed its heartbeats or a probe.
pub const UNREACHABLE: &str = "unreachable";
/// The stored status of a host enrolled but never heard from.
pub const ENROLLED: &str = "enrolled";

/// One enrolled worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmHost {
    /// Id (a UUID) assigned at enrolment.
    pub uuid: String,
    /// Host name, also its certificate's CN.
    pub name: String,
    /// How the master reaches it (`""` until a bundle enrolment's connect-back).
    pub address: String,
    /// Its agent's port.
    pub agent_port: u16,
    /// `enrolled`, `active` or `unreachable`.
    pub status: String,
    /// Last heartbeat or successful probe (UTC text).
    pub last_heartbeat: Option<String>,
    /// Pin of its agent certificate (lowercase hex).
    pub client_cert_fingerprint: String,
    /// Pin of its updater certificate, if it has one.
    pub updater_cert_fingerprint: Option<String>,
    /// The master's directory of its issued bundle.
    pub cert_bundle_path: String,
    /// Enrolled at (UTC text).
    pub enrolled_at: String,
    /// Operator's notes.
    pub notes: Option<String>,
    /// Deploy with IPvlan on this host.
    pub use_ipvlan: bool,
}

/// Which host runs one decky, and how it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The decky (swarm-wide unique).
    pub decky_name: String,
    /// The host running it.
    pub host_uuid: String,
    /// Its services, a JSON list.
    pub services: String,
    /// Its whole `DeckyConfig` as JSON, from the last dispatch or heartbeat.
    pub decky_config: Option<String>,
    /// Its address.
    pub decky_ip: Option<String>,
    /// `pending`, `running`, `degraded`, `failed`, `tearing_down` or `teardown_failed`.
    pub state: String,
    /// Why it failed (≤ 512 characters).
    pub last_error: Option<String>,
    /// Last heartbeat that reported it (UTC text).
    pub last_seen: Option<String>,
    /// Last change (UTC text); set by the store on every upsert.
    pub updated_at: String,
}

const HOST_COLUMNS: &str = "uuid, name, address, agent_port, status, last_heartbeat, \
     client_cert_fingerprint, updater_cert_fingerprint, cert_bundle_path, enrolled_at, notes, \
     use_ipvlan";

const SHARD_COLUMNS: &str = "decky_name, host_uuid, services, decky_config, decky_ip, state, last_error, last_seen, \
     updated_at";

fn host(r: &rusqlite::Row<'_>) -> rusqlite::Result<SwarmHost> {
    Ok(SwarmHost {
        uuid: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        agent_port: r.get(3)?,
        status: r.get(4)?,
        last_heartbeat: r.get(5)?,
        client_cert_fingerprint: r.get(6)?,
        updater_cert_fingerprint: r.get(7)?,
        cert_bundle_path: r.get(8)?,
        enrolled_at: r.get(9)?,
        notes: r.get(10)?,
        use_ipvlan: r.get(11)?,
    })
}

fn shard(r: &rusqlite::Row<'_>) -> rusqlite::Result<Shard> {
    Ok(Shard {
        decky_name: r.get(0)?,
        host_uuid: r.get(1)?,
        services: r.get(2)?,
        decky_config: r.get(3)?,
        decky_ip: r.get(4)?,
        state: r.get(5)?,
        last_error: r.get(6)?,
        last_seen: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// Now, as the swarm tables store times.
pub fn now_text() -> String {
    sql_micros(OffsetDateTime::now_utc())
}

impl Store {
    /// Inserts `host`; `false` when its name (or uuid) is already enrolled.
    pub fn add_host(&self, h: &SwarmHost) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute(
            &format!(
                "INSERT INTO swarm_hosts ({HOST_COLUMNS}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING"
            ),
            params![
                h.uuid,
                h.name,
                h.address,
                h.agent_port,
                h.status,
                h.last_heartbeat,
                h.client_cert_fingerprint,
                h.updater_cert_fingerprint,
                h.cert_bundle_path,
                h.enrolled_at,
                h.notes,
                h.use_ipvlan
            ],
        )?;
        Ok(n == 1)
    }

    /// Sets host `uuid`'s status (and its last heartbeat when given); whether it exists.
    pub fn set_host_status(
        &self,
        uuid: &str,
        status: &str,
        last_heartbeat: Option<&str>,
    ) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute(
            "UPDATE swarm_hosts SET status = ?2,
             last_heartbeat = COALESCE(?3, last_heartbeat) WHERE uuid = ?1",
            params![uuid, status, last_heartbeat],
        )?;
        Ok(n == 1)
    }

    /// Sets host `uuid`'s address (a bundle enrolment's connect-back).
    pub fn set_host_address(&self, uuid: &str, address: &str) -> Result<bool> {
        let conn = self.connect(false)?;
        let n = conn.execute(
            "UPDATE swarm_hosts SET address = ?2 WHERE uuid = ?1",
            params![uuid, address],
        )?;
        Ok(n == 1)
    }

    /// Marks each `(uuid, time)` active with that heartbeat time, in one transaction.
    pub fn touch_hosts(&self, beats: &[(String, String)]) -> Result<()> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE swarm_hosts SET status = 'active', last_heartbeat = ?2 WHERE uuid = ?1",
            )?;
            for (uuid, at) in beats {
                stmt.execute(params![uuid, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks `unreachable` every active host whose last heartbeat is older than `before`;
    /// the uuids changed.
    pub fn mark_silent_hosts(&self, before: &str) -> Result<Vec<String>> {
        let conn = self.connect(false)?;
        let mut stmt = conn.prepare_cached(
            "UPDATE swarm_hosts SET status = 'unreachable'
             WHERE status = 'active' AND (last_heartbeat IS NULL OR last_heartbeat < ?1)
             RETURNING uuid",
        )?;
        let rows = stmt.query_map(params![before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes host `uuid` and its shards, in one transaction; whether it existed.
    pub fn delete_host(&self, uuid: &str) -> Result<bool> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM decky_shards WHERE host_uuid = ?1",
            params![uuid],
        )?;
        let n = tx.execute("DELETE FROM swarm_hosts WHERE uuid = ?1", params![uuid])?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Inserts or replaces each shard (by decky name), stamping `updated_at`, in one
    /// transaction.
    pub fn upsert_shards(&self, shards: &[Shard]) -> Result<()> {
        let mut conn = self.connect(false)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_text();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT INTO decky_shards ({SHARD_COLUMNS}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (decky_name) DO UPDATE SET host_uuid = excluded.host_uuid,
                 services = excluded.services,
                 decky_config = COALESCE(excluded.decky_config, decky_config),
                 decky_ip = COALESCE(excluded.decky_ip, decky_ip), state = excluded.state,
                 last_error = excluded.last_error,
                 last_seen = COALESCE(excluded.last_seen, last_seen),
                 updated_at = excluded.updated_at"
            ))?;
            for s in shards {
                stmt.execute(params![
                    s.decky_name,
                    s.host_uuid,
                    s.services,
                    s.decky_config,
                    s.decky_ip,
                    s.state,
                    s.last_error,
                    s.last_seen,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the state (and error) of host `uuid`'s shards: all, or only `decky` when
    /// given; how many changed.
    pub fn set_shard_state(
        &self,
        uuid: &str,
        decky: Option<&str>,
        state: &str,
        error: Option<&str>,
    ) -> Result<usize> {
        let conn = self.connect(false)?;
        Ok(conn.execute(
            "UPDATE decky_shards SET state = ?3, last_error = ?4, updated_at = ?5
             WHERE host_uuid = ?1 AND (?2 IS NULL OR decky_name = ?2)",
            params![uuid, decky, state, error, now_text()],
        )?)
    }

    /// Deletes host `uuid`'s shards: all, or only `decky` when given; how many.
    pub fn delete_shards(&self, uuid: &str, decky: Option<&str>) -> Result<usize> {
        let conn = self.connect(false)?;
        Ok(conn.execute(
            "DELETE FROM decky_shards WHERE host_uuid = ?1 AND (?2 IS NULL OR decky_name = ?2)",
            params![uuid, decky],
        )?)
    }
}

impl Reader {
    /// Host `uuid`, if enrolled.
    pub fn host(&self, uuid: &str) -> Result<Option<SwarmHost>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM swarm_hosts WHERE uuid = ?1"
        ))?;
        Ok(stmt.query_row(params![uuid], host).optional()?)
    }

    /// The host named `name`, if enrolled.
    pub fn host_by_name(&self, name: &str) -> Result<Option<SwarmHost>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM swarm_hosts WHERE name = ?1"
        ))?;
        Ok(stmt.query_row(params![name], host).optional()?)
    }

    /// Every host (with `status` only, when given), by name.
    pub fn hosts(&self, status: Option<&str>) -> Result<Vec<SwarmHost>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM swarm_hosts WHERE ?1 IS NULL OR status = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map(params![status], host)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether an enrolled host is named `name` with exactly this certificate pin.
    pub fn is_host_pinned(&self, name: &str, fingerprint: &str) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT 1 FROM swarm_hosts WHERE name = ?1 AND client_cert_fingerprint = ?2",
        )?;
        Ok(stmt.exists(params![name, fingerprint])?)
    }

    /// Every shard (of host `uuid` only, when given), by decky name.
    pub fn shards(&self, uuid: Option<&str>) -> Result<Vec<Shard>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SHARD_COLUMNS} FROM decky_shards WHERE ?1 IS NULL OR host_uuid = ?1
             ORDER BY decky_name"
        ))?;
        let rows = stmt.query_map(params![uuid], shard)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Options;

    fn sample(uuid: &str, name: &str) -> SwarmHost {
        SwarmHost {
            uuid: uuid.into(),
            name: name.into(),
            address: "198.51.100.2".into(),
            agent_port: 8765,
            status: ENROLLED.into(),
            last_heartbeat: None,
            client_cert_fingerprint: "ab".repeat(32),
            updater_cert_fingerprint: None,
            cert_bundle_path: "/x".into(),
            enrolled_at: now_text(),
            notes: None,
            use_ipvlan: false,
        }
    }

    fn shard_of(name: &str, host: &str) -> Shard {
        Shard {
            decky_name: name.into(),
            host_uuid: host.into(),
            services: "[\"ssh\"]".into(),
            decky_config: None,
            decky_ip: Some("198.51.100.10".into()),
            state: "running".into(),
            last_error: None,
            last_seen: None,
            updated_at: String::new(),
        }
    }

    #[test]
    fn hosts_enrol_once_beat_go_silent_and_leave_with_their_shards() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::store::Error::Corrupt(e.to_string()))?;
        let store = Store::open(dir.path().join("d.db"), Options::default())?;
        assert!(store.add_host(&sample("u1", "w1"))?);
        assert!(!store.add_host(&sample("u2", "w1"))?, "duplicate name");
        assert!(store.add_host(&sample("u2", "w2"))?);
        let r = store.reader()?;
        assert!(r.is_host_pinned("w1", &"ab".repeat(32))?);
        assert!(!r.is_host_pinned("w1", &"cd".repeat(32))?);

        store.touch_hosts(&[("u1".into(), now_text())])?;
        assert_eq!(r.host("u1")?.map(|h| h.status), Some(ACTIVE.into()));
        let later = sql_micros(OffsetDateTime::now_utc() + time::Duration::seconds(1));
        assert_eq!(store.mark_silent_hosts(&later)?, vec!["u1".to_owned()]);
        assert_eq!(r.host("u1")?.map(|h| h.status), Some(UNREACHABLE.into()));

        store.upsert_shards(&[
            shard_of("d1", "u1"),
            shard_of("d2", "u1"),
            shard_of("d3", "u2"),
        ])?;
        let mut moved = shard_of("d2", "u2");
        moved.decky_ip = None;
        store.upsert_shards(&[moved])?;
        let d2 = r.shards(Some("u2"))?;
        assert_eq!(d2.len(), 2);
        assert_eq!(d2[0].decky_ip.as_deref(), Some("198.51.100.10"), "ip kept");
        assert_eq!(
            store.set_shard_state("u2", Some("d3"), "tearing_down", None)?,
            1
        );
        assert_eq!(store.delete_shards("u2", Some("d3"))?, 1);

        assert!(store.delete_host("u1")?);
        assert!(!store.delete_host("u1")?);
        assert_eq!(r.shards(None)?.len(), 1, "only u2's d2 is left");
        assert_eq!(r.hosts(None)?.len(), 1);
        Ok(())
    }
}
