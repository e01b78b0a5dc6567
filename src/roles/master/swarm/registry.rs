//! The controller's in-memory view of the enrolled hosts, so a heartbeat is answered
//! without touching SQLite (≥ 2,000 beats/s on two cores).
//!
//! The registry holds, per host uuid, the certificate pin and the liveness the
//! heartbeat and the liveness task need. It is loaded from `swarm_hosts` once and then
//! kept current by enrolment and decommission in this process; decommission removes the
//! entry at once, so the host's next heartbeat is a 404 whatever the database lags.
//!
//! Writes are batched: heartbeat times and changed shards wait in `Pending` until the
//! flush task ([`Registry::flush`], about once a second) commits them in one transaction
//! each. A shard is queued only when the host's reported decky set or a decky's state
//! changed since its last beat. Decommission takes the flush lock, so a flush in flight
//! can never re-create the shards of a host just deleted.
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::super::db::Db;
use super::super::error::ApiError;
use crate::pki::Fingerprint;
use crate::store::swarm_status::{ACTIVE, now_text};
use crate::store::{Shard, SwarmHost};

/// Why a heartbeat is refused (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such host (never enrolled, or decommissioned): 404 `unknown host`.
    Unknown,
    /// No TLS client certificate: 403 `peer cert unavailable`.
    NoCert,
    /// Another certificate than the enrolled one: 403 `cert fingerprint mismatch`.
    Mismatch,
}

#[derive(Debug)]
struct Entry {
    /// The build its last heartbeat named (memory only, like the original's).
    version: Option<String>,
    pin: Option<Fingerprint>,
    active: bool,
    last_beat: Instant,
    shards: Option<u64>,
}

impl Entry {
    fn of(h: &SwarmHost) -> Self {
        Self {
            version: None,
            // An empty or unreadable stored pin never matches (fail closed).
            pin: h.client_cert_fingerprint.trim().parse().ok(),
            active: h.status == ACTIVE,
            last_beat: Instant::now(),
            shards: None,
        }
    }
}

/// Heartbeat writes waiting for the next flush.
#[derive(Debug, Default)]
struct Pending {
    beats: HashMap<String, String>,
    shards: HashMap<String, Shard>,
}

/// The hosts by uuid, and the writes their heartbeats owe the store.
#[derive(Debug, Default)]
pub struct Registry {
    hosts: Mutex<HashMap<String, Entry>>,
    pending: Mutex<Pending>,
    flushing: tokio::sync::Mutex<()>,
    loaded: tokio::sync::OnceCell<()>,
}

/// A digest of what a heartbeat reports about the deckies, to notice changes cheaply.
pub fn digest(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

impl Registry {
    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads every host from the store, once per process.
    pub async fn ensure_loaded(&self, db: &Db) -> Result<(), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let rows = db.read(|r| r.hosts(None)).await?;
                let mut hosts = self.hosts();
                for h in &rows {
                    hosts.entry(h.uuid.clone()).or_insert_with(|| Entry::of(h));
                }
                Ok::<(), ApiError>(())
            })
            .await
            .map(|_| ())
    }

    /// Adds (or replaces) a freshly enrolled host.
    pub fn insert(&self, host: &SwarmHost) {
        self.hosts().insert(host.uuid.clone(), Entry::of(host));
    }

    /// Records the build a pinned heartbeat of `uuid` named (at most 64 printable ASCII
    /// characters are kept: it is the worker's claim, shown on the dashboard).
    pub fn set_version(&self, uuid: &str, version: &str) {
        let clean: String = version
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        if let Some(e) = self.hosts().get_mut(uuid) {
            e.version = (!clean.is_empty()).then_some(clean);
        }
    }

    /// The build host `uuid` last reported, if it has beaten since the master started.
    pub fn version(&self, uuid: &str) -> Option<String> {
        self.hosts().get(uuid).and_then(|e| e.version.clone())
    }

    /// Checks a heartbeat's claim to be host `uuid` with certificate `presented`; on
    /// success records the beat (the host is active again if it was not).
    pub fn beat(&self, uuid: &str, presented: Option<&Fingerprint>) -> Result<(), Refusal> {
        {
            let mut hosts = self.hosts();
            let entry = hosts.get_mut(uuid).ok_or(Refusal::Unknown)?;
            let presented = presented.ok_or(Refusal::NoCert)?;
            if entry.pin.as_ref() != Some(presented) {
                return Err(Refusal::Mismatch);
            }
            entry.active = true;
            entry.last_beat = Instant::now();
        }
        self.pending().beats.insert(uuid.to_owned(), now_text());
        Ok(())
    }

    /// Whether host `uuid`'s decky report (digest `hash`) differs from its last one;
    /// remembers `hash` when it does.
    pub fn shards_changed(&self, uuid: &str, hash: u64) -> bool {
        let mut hosts = self.hosts();
        match hosts.get_mut(uuid) {
            Some(e) if e.shards != Some(hash) => {
                e.shards = Some(hash);
                true
            }
            _ => false,
        }
    }

    /// Queues shard rows for the next flush (later reports of a decky replace earlier).
    pub fn queue_shards(&self, shards: Vec<Shard>) {
        let mut p = self.pending();
        for s in shards {
            p.shards.insert(s.decky_name.clone(), s);
        }
    }

    /// Notes that host `uuid` answered a probe or a dispatch (active, beat now).
    pub fn mark_active(&self, uuid: &str) {
        if let Some(e) = self.hosts().get_mut(uuid) {
            e.active = true;
            e.last_beat = Instant::now();
        }
    }

    /// Notes that host `uuid` failed a probe.
    pub fn mark_unreachable(&self, uuid: &str) {
        if let Some(e) = self.hosts().get_mut(uuid) {
            e.active = false;
        }
    }

    /// Forgets the digest of host `uuid`'s deckies, so its next report is written even if
    /// unchanged (after the master changed its shards itself).
    pub fn forget_shards(&self, uuid: &str) {
        if let Some(e) = self.hosts().get_mut(uuid) {
            e.shards = None;
        }
    }

    /// The active hosts not heard from within `window`, now marked not active, and the
    /// flush lock: the caller records them unreachable before any newer beat is flushed
    /// (which would otherwise be overwritten).
    pub async fn silent(&self, window: Duration) -> (Vec<String>, tokio::sync::MutexGuard<'_, ()>) {
        let guard = self.flushing.lock().await;
        let now = Instant::now();
        let mut out = Vec::new();
        for (uuid, e) in self.hosts().iter_mut() {
            if e.active && now.duration_since(e.last_beat) >= window {
                e.active = false;
                out.push(uuid.clone());
            }
        }
        (out, guard)
    }

    /// Removes host `uuid` at once (its heartbeats become 404), drops what its beats
    /// still owe the store, then runs `delete` under the flush lock.
    pub async fn remove<T>(&self, uuid: &str, delete: impl std::future::Future<Output = T>) -> T {
        let _flush = self.flushing.lock().await;
        self.hosts().remove(uuid);
        {
            let mut p = self.pending();
            p.beats.remove(uuid);
            p.shards.retain(|_, s| s.host_uuid != uuid);
        }
        delete.await
    }

    /// Commits the waiting heartbeat times and shards; on failure they are kept for the
    /// next flush (newer values win).
    pub async fn flush(&self, db: &Db) {
        let _flush = self.flushing.lock().await;
        let Pending { beats, shards } = std::mem::take(&mut *self.pending());
        if beats.is_empty() && shards.is_empty() {
            return;
        }
        let beat_rows: Vec<(String, String)> = beats.clone().into_iter().collect();
        let shard_rows: Vec<Shard> = shards.values().cloned().collect();
        let wrote = db
            .write(move |s| {
                if !beat_rows.is_empty() {
                    s.touch_hosts(&beat_rows)?;
                }
                if !shard_rows.is_empty() {
                    s.upsert_shards(&shard_rows)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = wrote {
            tracing::warn!(error = ?e, "flushing heartbeats failed; retrying");
            let mut p = self.pending();
            for (k, v) in beats {
                p.beats.entry(k).or_insert(v);
            }
            for (k, v) in shards {
                p.shards.entry(k).or_insert(v);
            }
        }
    }
}
