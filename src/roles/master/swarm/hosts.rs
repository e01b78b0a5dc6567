//! Hosts: list, get, probe (`/swarm/check`, the dashboard's list), decommission, and the
//! shard list (swarm.md §5.4, §6.1).
use std::path::Path;

use futures_util::future::join_all;

use super::super::error::ApiError;
use super::super::state::AppState;
use super::dto::{HostHealth, HostView, ShardView};
use crate::store::SwarmHost;
use crate::store::swarm_status::{ACTIVE, UNREACHABLE, now_text};

/// The 404 text of an unknown host.
pub const HOST_NOT_FOUND: &str = "host not found";
/// The fixed detail of a failed probe (the cause is only logged).
pub const PROBE_FAILED: &str = "probe failed";

/// Host `uuid`, or 404 `host not found`.
pub async fn host(state: &AppState, uuid: &str) -> Result<SwarmHost, ApiError> {
    let id = uuid.to_owned();
    state
        .db
        .read(move |r| r.host(&id))
        .await?
        .ok_or_else(|| ApiError::NotFound(HOST_NOT_FOUND.into()))
}

/// Every host (with `status` only), by name.
pub async fn list(state: &AppState, status: Option<String>) -> Result<Vec<HostView>, ApiError> {
    let rows = state.db.read(move |r| r.hosts(status.as_deref())).await?;
    Ok(rows.into_iter().map(|h| view(state, h)).collect())
}

/// The view of `host`, with the version its agent last reported.
fn view(state: &AppState, host: SwarmHost) -> HostView {
    let version = state.swarm.registry.version(&host.uuid);
    let mut v = HostView::from(host);
    v.agent_version = version;
    v
}

/// Probes `host`'s `/health`, records the outcome (active with a beat, or unreachable)
/// and returns the host as now stored plus the body (`None`: unreachable).
async fn probe(state: &AppState, mut host: SwarmHost) -> (SwarmHost, Option<serde_json::Value>) {
    let answer = match state.swarm.client(&host) {
        Ok(c) => c.health().await,
        Err(e) => Err(e),
    };
    let (status, beat, body) = match answer {
        Ok(body) => (ACTIVE, Some(now_text()), Some(body)),
        Err(e) => {
            tracing::warn!(host = %host.name, error = %e, "probe failed");
            (UNREACHABLE, None, None)
        }
    };
    let (uuid, b) = (host.uuid.clone(), beat.clone());
    match state
        .db
        .write(move |s| s.set_host_status(&uuid, status, b.as_deref()))
        .await
    {
        Ok(_) => {
            host.status = status.into();
            if beat.is_some() {
                host.last_heartbeat = beat;
                state.swarm.registry.mark_active(&host.uuid);
            } else {
                state.swarm.registry.mark_unreachable(&host.uuid);
            }
        }
        Err(e) => tracing::warn!(host = %host.name, error = ?e, "recording a probe failed"),
    }
    (host, body)
}

/// `POST /swarm/check`: probes every host concurrently.
pub async fn check(state: &AppState) -> Result<Vec<HostHealth>, ApiError> {
    let hosts = state.db.read(|r| r.hosts(None)).await?;
    let probes = hosts.into_iter().map(|h| probe(state, h));
    Ok(join_all(probes)
        .await
        .into_iter()
        .map(|(h, body)| HostHealth {
            host_uuid: h.uuid,
            name: h.name,
            address: h.address,
            reachable: body.is_some(),
            detail: body.unwrap_or_else(|| PROBE_FAILED.into()),
        })
        .collect())
}

/// `GET /api/v1/swarm/hosts`: the hosts, each with an address probed (concurrently) and
/// shown as the probe left it.
pub async fn list_probed(
    state: &AppState,
    status: Option<String>,
) -> Result<Vec<HostView>, ApiError> {
    let hosts = state.db.read(move |r| r.hosts(status.as_deref())).await?;
    let probes = hosts.into_iter().map(|h| async move {
        if h.address.is_empty() {
            h
        } else {
            probe(state, h).await.0
        }
    });
    Ok(join_all(probes)
        .await
        .into_iter()
        .map(|h| view(state, h))
        .collect())
}

/// Removes `dir` and everything in it, but only inside the PKI directory: the path comes
/// from the database and must never let a row point the master at another tree.
fn remove_bundle(root: &Path, dir: &Path) {
    if dir.as_os_str().is_empty() || !dir.starts_with(root) || dir == root {
        tracing::warn!(dir = %dir.display(), "bundle directory outside the PKI directory left alone");
        return;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "removing a worker bundle failed")
        }
    }
}

/// Decommissions host `uuid`: best-effort self-destruct, then its shards and row go (its
/// heartbeats get 404 from now on, its logs are refused) and its bundle is removed.
pub async fn decommission(state: &AppState, uuid: &str) -> Result<(), ApiError> {
    state.swarm.registry.ensure_loaded(&state.db).await?;
    let host = host(state, uuid).await?;
    match state.swarm.client(&host) {
        Ok(c) => {
            if let Err(e) = c.self_destruct().await {
                tracing::warn!(
                    host = %host.name,
                    error = %e,
                    wrong_peer = e.is_wrong_peer(),
                    "self-destruct failed; decommissioning anyway"
                );
            }
        }
        Err(e) => tracing::warn!(host = %host.name, error = %e, "no client for self-destruct"),
    }
    // A worker that never fetched its bundle must not fetch it now.
    state.enrollment.tokens.revoke_host(&host.uuid);
    let id = host.uuid.clone();
    let db = state.db.clone();
    state
        .swarm
        .registry
        .remove(&host.uuid, async move {
            db.write(move |s| s.delete_host(&id)).await
        })
        .await?;
    let root = state.swarm.layout().root().to_path_buf();
    let dir = std::path::PathBuf::from(&host.cert_bundle_path);
    let _ = tokio::task::spawn_blocking(move || remove_bundle(&root, &dir)).await;
    tracing::info!(host = %host.name, uuid = %host.uuid, "worker decommissioned");
    Ok(())
}

/// The shards (of one host, in one state), joined with their hosts.
pub async fn deckies(
    state: &AppState,
    host_uuid: Option<String>,
    shard_state: Option<String>,
) -> Result<Vec<ShardView>, ApiError> {
    let (shards, hosts) = state
        .db
        .read(move |r| Ok((r.shards(host_uuid.as_deref())?, r.hosts(None)?)))
        .await?;
    Ok(shards
        .into_iter()
        .filter(|s| shard_state.as_ref().is_none_or(|w| &s.state == w))
        .map(|s| {
            let h = hosts.iter().find(|h| h.uuid == s.host_uuid);
            ShardView::new(s, h)
        })
        .collect())
}

/// The dashboard's extra fallback (§6.1): a shard with no address in its row or snapshot
/// takes the one the deployed fleet state gives its name. Best effort: an unreadable
/// state file leaves the rows as they are.
pub async fn fill_ips_from_fleet(state: &AppState, views: &mut [ShardView]) {
    if views.iter().all(|v| v.decky_ip.is_some()) {
        return;
    }
    let fleet = match super::super::routes::deckies::load_fleet(state).await {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = ?e, "no fleet state for shard addresses");
            return;
        }
    };
    for v in views.iter_mut().filter(|v| v.decky_ip.is_none()) {
        if let Some(d) = fleet.config.deckies.iter().find(|d| d.name == v.decky_name) {
            v.decky_ip = Some(d.ip.to_string());
        }
    }
}
