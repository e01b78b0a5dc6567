//! Simulated agents' heartbeats: each agent has one mTLS connection of its own (its worker
//! certificate, the controller pinned) and sends its snapshot of 3 deckies back to back,
//! as `decnet agent` would if it never waited; after a master restart each retries every
//! 100 ms with a fresh connection until a beat is accepted again.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use decnet::https::{Client, Timeouts};
use decnet::model::swarm::{AgentStatus, DeckyRuntime, Heartbeat};
use decnet::model::{DeckyConfig, Mode};
use decnet::pki::Fingerprint;
use decnet::tls::{self, ClientOptions};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::time::Instant;

use super::BenchResult;
use super::controller::Host;

/// How long a refused or failed beat waits before the next attempt.
const RETRY: Duration = Duration::from_millis(100);

/// The path heartbeats go to.
const PATH: &str = "/swarm/heartbeat";

/// One simulated agent: its client of the controller and its encoded heartbeat.
pub struct Agent {
    client: Client,
    body: Vec<u8>,
}

/// Decky `j` of agent `i` named after `prefix`: a realistic configuration (services with
/// their settings).
pub fn decky(prefix: &str, i: usize, j: usize, host_uuid: &str) -> BenchResult<DeckyConfig> {
    let v = json!({
        "name": format!("{prefix}{i}-decky-{j}"),
        "ip": format!("10.{}.{}.{}", 64 + i / 250, i % 250, 10 + j),
        "services": ["ssh", "http", "smb"],
        "distro": "debian",
        "base_image": "debian:bookworm-slim",
        "hostname": format!("srv-{i}-{j}"),
        "archetype": "linux-server",
        "service_config": {"ssh": {"banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"},
                           "http": {"server": "Apache/2.4.62 (Debian)"}},
        "mutate_interval": 30,
        "host_uuid": host_uuid
    });
    Ok(serde_json::from_value(v)?)
}

/// The status snapshot of agent `i`: 3 deckies deployed, every service running.
fn snapshot(i: usize, uuid: &str) -> BenchResult<AgentStatus> {
    let mut deckies = Vec::new();
    let mut runtime = BTreeMap::new();
    for j in 0..3 {
        let d = decky("beat", i, j, uuid)?;
        let services = d
            .services
            .iter()
            .map(|s| (s.clone(), "running".to_owned()))
            .collect();
        runtime.insert(
            d.name.clone(),
            DeckyRuntime {
                running: true,
                services,
            },
        );
        deckies.push(d);
    }
    Ok(AgentStatus {
        deployed: true,
        mode: Some(Mode::Swarm),
        compose_path: Some("/var/lib/decnet/decnet-compose.yml".into()),
        deckies,
        runtime: Some(runtime),
    })
}

impl Agent {
    /// Agent `i` of `host`, beating to the controller on `port` pinned to `pin`.
    pub fn new(i: usize, host: &Host, port: u16, pin: &Fingerprint) -> BenchResult<Self> {
        let opts = ClientOptions {
            identity: Some("swarmctl".into()),
            pin: Some(pin.clone()),
            verify_hostname: false,
        };
        let config = tls::client_config(&host.bundle, &opts)?;
        let status = snapshot(i, &host.uuid)?;
        let body = serde_json::to_vec(&Heartbeat {
            host_uuid: &host.uuid,
            agent_version: env!("CARGO_PKG_VERSION"),
            status: &status,
            lifecycle: &[],
        })?;
        Ok(Self {
            client: Client::new(config, "127.0.0.1", port),
            body,
        })
    }

    /// Size of one heartbeat body, in bytes.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// One beat: whether it was answered 204.
    async fn beat(&self) -> bool {
        let sent = self
            .client
            .send(
                Method::POST,
                PATH,
                Some(self.body.clone()),
                Timeouts::HEARTBEAT,
            )
            .await;
        matches!(sent, Ok(r) if r.status == StatusCode::NO_CONTENT)
    }

    /// Beats until one is accepted, retrying every [`RETRY`] on a fresh connection; how
    /// many attempts failed.
    pub async fn until_accepted(&self) -> u64 {
        let mut failed = 0;
        while !self.beat().await {
            failed += 1;
            self.client.reset().await;
            tokio::time::sleep(RETRY).await;
        }
        failed
    }
}

/// What one agent measured in the closed loop.
#[derive(Default)]
pub struct Tally {
    /// Latency of each accepted beat, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Beats not answered 204 (after each the agent reconnects).
    pub errors: u64,
}

/// Agent `agent` beats back to back until `until`.
pub async fn closed_loop(agent: Arc<Agent>, until: Instant) -> Tally {
    let mut tally = Tally::default();
    loop {
        let start = Instant::now();
        if start >= until {
            return tally;
        }
        if agent.beat().await {
            let us = start.elapsed().as_micros();
            tally
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            tally.errors += 1;
            agent.client.reset().await;
            tokio::time::sleep(RETRY).await;
        }
    }
}
