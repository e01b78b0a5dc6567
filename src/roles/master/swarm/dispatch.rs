//! Sharded dispatch (swarm.md §5.4, §6.1): deploy each host's share of a fleet, tear
//! hosts down, and the round-robin sharding callers use before dispatching.
//!
//! Hosts are driven concurrently and independently: one host's failure only marks its
//! own shards. A deploy the agent accepted is recorded `running` (the agent answers 202;
//! the heartbeat corrects it); a failed one reads `/status` back so a decky that does run
//! is not reported failed.
use futures_util::future::join_all;

use super::super::error::ApiError;
use super::super::state::AppState;
use super::dto::{DeployBody, HostResult, TeardownQueued};
use super::hosts::{self, HOST_NOT_FOUND};
use crate::model::{DeckyConfig, DecnetConfig, Mode};
use crate::store::swarm_status::{ACTIVE, ENROLLED, now_text};
use crate::store::{Shard, SwarmHost};

/// Longest `last_error` written on a shard, in characters.
pub const MAX_SHARD_ERROR: usize = 512;

fn clip(text: &str) -> String {
    text.chars().take(MAX_SHARD_ERROR).collect()
}

fn shard_of(d: &DeckyConfig, host: &str, state: &str, error: Option<String>) -> Shard {
    Shard {
        decky_name: d.name.clone(),
        host_uuid: host.to_owned(),
        services: serde_json::to_string(&d.services).unwrap_or_else(|_| "[]".into()),
        decky_config: serde_json::to_string(d).ok(),
        decky_ip: Some(d.ip.to_string()),
        state: state.into(),
        last_error: error,
        last_seen: None,
        updated_at: String::new(),
    }
}

/// No host can take deckies.
#[derive(Debug, thiserror::Error)]
#[error("no enrolled swarm host with an address to shard onto")]
pub struct NoHosts;

/// Assigns every decky without a `host_uuid` to the active or enrolled hosts that have an
/// address, round-robin in name order.
pub fn shard_round_robin(config: &mut DecnetConfig, hosts: &[SwarmHost]) -> Result<(), NoHosts> {
    let mut usable: Vec<&SwarmHost> = hosts
        .iter()
        .filter(|h| (h.status == ACTIVE || h.status == ENROLLED) && !h.address.is_empty())
        .collect();
    usable.sort_by(|a, b| a.name.cmp(&b.name));
    if usable.is_empty() {
        return Err(NoHosts);
    }
    let unassigned = config.deckies.iter_mut().filter(|d| d.host_uuid.is_none());
    for (i, d) in unassigned.enumerate() {
        d.host_uuid = Some(usable[i % usable.len()].uuid.clone());
    }
    Ok(())
}

async fn deploy_one(
    state: &AppState,
    host: SwarmHost,
    mut config: DecnetConfig,
    dry_run: bool,
    no_cache: bool,
) -> HostResult {
    if host.use_ipvlan {
        config.ipvlan = true;
    }
    let deckies = config.deckies.clone();
    let answer = match state.swarm.client(&host) {
        Ok(c) => c.deploy(config, dry_run, no_cache).await,
        Err(e) => Err(e),
    };
    let (shards, result) = match answer {
        Ok(body) => {
            let word = if dry_run { "pending" } else { "running" };
            let shards: Vec<Shard> = deckies
                .iter()
                .map(|d| shard_of(d, &host.uuid, word, None))
                .collect();
            let (id, now) = (host.uuid.clone(), now_text());
            if let Err(e) = state
                .db
                .write(move |s| s.set_host_status(&id, ACTIVE, Some(&now)))
                .await
            {
                tracing::warn!(host = %host.name, error = ?e, "recording the host active failed");
            }
            state.swarm.registry.mark_active(&host.uuid);
            (shards, (true, body))
        }
        Err(e) => {
            let text = e.to_string();
            tracing::warn!(host = %host.name, error = %text, "deploy failed");
            let runtime = match state.swarm.client(&host) {
                Ok(c) => c.status().await.ok().and_then(|s| s.runtime),
                Err(_) => None,
            }
            .unwrap_or_default();
            let shards = deckies
                .iter()
                .map(|d| match runtime.get(&d.name) {
                    Some(r) if r.running => shard_of(d, &host.uuid, "running", None),
                    _ => shard_of(d, &host.uuid, "failed", Some(clip(&text))),
                })
                .collect();
            (shards, (false, serde_json::Value::String(text)))
        }
    };
    if let Err(e) = state.db.write(move |s| s.upsert_shards(&shards)).await {
        tracing::warn!(host = %host.name, error = ?e, "recording shards failed");
    }
    state.swarm.registry.forget_shards(&host.uuid);
    HostResult {
        host_uuid: host.uuid,
        host_name: host.name,
        ok: result.0,
        detail: result.1,
    }
}

/// `POST /swarm/deploy`: every decky must name its host; each host gets its share.
pub async fn deploy(state: &AppState, body: DeployBody) -> Result<Vec<HostResult>, ApiError> {
    let DeployBody {
        config,
        dry_run,
        no_cache,
    } = body;
    if config.mode != Mode::Swarm {
        return Err(ApiError::BadRequest("mode must be 'swarm'".into()));
    }
    let mut groups: Vec<(String, Vec<DeckyConfig>)> = Vec::new();
    for d in &config.deckies {
        let Some(uuid) = d.host_uuid.clone() else {
            return Err(ApiError::BadRequest(format!(
                "decky '{}' has no host_uuid — caller must shard before dispatch",
                d.name
            )));
        };
        match groups.iter_mut().find(|(u, _)| *u == uuid) {
            Some((_, v)) => v.push(d.clone()),
            None => groups.push((uuid, vec![d.clone()])),
        }
    }
    let all = state.db.read(|r| r.hosts(None)).await?;
    let mut work = Vec::new();
    for (uuid, deckies) in groups {
        let Some(host) = all.iter().find(|h| h.uuid == uuid).cloned() else {
            return Err(ApiError::NotFound(format!("unknown host_uuid: {uuid}")));
        };
        let mut shard = config.clone();
        shard.deckies = deckies;
        work.push((host, shard));
    }
    let runs = work
        .into_iter()
        .map(|(host, shard)| deploy_one(state, host, shard, dry_run, no_cache));
    Ok(join_all(runs).await)
}

async fn teardown_one(state: &AppState, host: SwarmHost, decky: Option<String>) -> HostResult {
    let answer = match state.swarm.client(&host) {
        Ok(c) => c.teardown(decky.clone()).await,
        Err(e) => Err(e),
    };
    let (ok, detail) = match answer {
        Ok(body) => {
            if decky.is_none() {
                let id = host.uuid.clone();
                if let Err(e) = state.db.write(move |s| s.delete_shards(&id, None)).await {
                    tracing::warn!(host = %host.name, error = ?e, "deleting shards failed");
                }
                state.swarm.registry.forget_shards(&host.uuid);
            }
            (true, body)
        }
        Err(e) => (false, serde_json::Value::String(e.to_string())),
    };
    HostResult {
        host_uuid: host.uuid,
        host_name: host.name,
        ok,
        detail,
    }
}

/// `POST /swarm/teardown`: one host (404 if unknown) or every host, synchronously.
pub async fn teardown(
    state: &AppState,
    host_uuid: Option<String>,
    decky: Option<String>,
) -> Result<Vec<HostResult>, ApiError> {
    let targets = match host_uuid {
        Some(uuid) => vec![hosts::host(state, &uuid).await?],
        None => state.db.read(|r| r.hosts(None)).await?,
    };
    let runs = targets
        .into_iter()
        .map(|h| teardown_one(state, h, decky.clone()));
    Ok(join_all(runs).await)
}

/// `POST /api/v1/swarm/hosts/{uuid}/teardown`: marks the shards `tearing_down` and
/// tears down in the background; the shards are then deleted, or marked
/// `teardown_failed` with the error.
pub async fn teardown_background(
    state: &AppState,
    uuid: &str,
    decky: Option<String>,
) -> Result<TeardownQueued, ApiError> {
    let host = hosts::host(state, uuid).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound(HOST_NOT_FOUND.into()),
        other => other,
    })?;
    let (id, d) = (host.uuid.clone(), decky.clone());
    state
        .db
        .write(move |s| s.set_shard_state(&id, d.as_deref(), "tearing_down", None))
        .await?;
    let task_state = state.clone();
    let (task_host, task_decky) = (host.clone(), decky.clone());
    state.swarm.tasks.spawn(async move {
        let state = task_state;
        let answer = match state.swarm.client(&task_host) {
            Ok(c) => c.teardown(task_decky.clone()).await,
            Err(e) => Err(e),
        };
        let id = task_host.uuid.clone();
        let d = task_decky;
        let wrote = match answer {
            Ok(_) => {
                state
                    .db
                    .write(move |s| s.delete_shards(&id, d.as_deref()))
                    .await
            }
            Err(e) => {
                let text = clip(&e.to_string());
                tracing::warn!(host = %task_host.name, error = %text, "teardown failed");
                state
                    .db
                    .write(move |s| {
                        s.set_shard_state(&id, d.as_deref(), "teardown_failed", Some(&text))
                    })
                    .await
            }
        };
        if let Err(e) = wrote {
            tracing::warn!(host = %task_host.name, error = ?e, "recording a teardown failed");
        }
        state.swarm.registry.forget_shards(&task_host.uuid);
    });
    Ok(TeardownQueued {
        host_uuid: host.uuid,
        host_name: host.name,
        decky_id: decky,
        accepted: true,
        detail: "teardown queued".into(),
    })
}
