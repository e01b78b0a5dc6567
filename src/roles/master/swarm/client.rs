//! [`AgentClient`]: the master's calls to one worker agent (swarm.md §7).
//!
//! Every call presents the master identity (`decnet-master`), trusts only the decnet CA,
//! requires the agent certificate's CN to be the host's name and, when the host row has
//! one, its fingerprint to be the enrolled pin. The pin is checked inside the handshake
//! of the connection that carries the request, so no other worker can answer in its
//! place. Timeouts follow the §7 table: control calls 5/15/5 s, a whole-host teardown
//! the long class (compose-down of many deckies takes minutes).
use std::sync::Arc;

use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::https::{self, Timeouts};
use crate::model::DecnetConfig;
use crate::model::swarm::{AgentStatus, DeployRequest, MutateRequest, TeardownRequest};
use crate::pki::{self, Bundle, Fingerprint};
use crate::store::SwarmHost;
use crate::tls::{self, ClientOptions};

/// Why a call to an agent failed.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The host row's pin is not a fingerprint.
    #[error("host '{host}' has an unusable certificate pin: {reason}")]
    BadPin {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The master identity could not be loaded or built into a TLS configuration.
    #[error("master identity: {0}")]
    Identity(String),
    /// No answer: refused, timed out, wrong certificate, broken exchange.
    #[error("worker '{host}' ({addr}): {source}")]
    Transport {
        /// The host name.
        host: String,
        /// `address:port`.
        addr: String,
        /// Why (boxed: the transport error is large and errors are moved around).
        source: Box<https::client::Error>,
    },
    /// The agent answered with a non-2xx status.
    #[error("worker '{host}' answered {status}: {detail}")]
    Status {
        /// The host name.
        host: String,
        /// The HTTP status.
        status: u16,
        /// The answer's `detail` (or its text).
        detail: String,
    },
    /// The agent's 2xx answer is not what the call expects.
    #[error("worker '{host}' sent an unreadable answer: {reason}")]
    Decode {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
}

impl AgentError {
    /// Whether another certificate than the enrolled one answered.
    pub fn is_wrong_peer(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_wrong_peer())
    }
}

/// A client of one worker's agent.
#[derive(Debug)]
pub struct AgentClient {
    host: String,
    inner: https::Client,
}

impl AgentClient {
    /// A client of `host`'s agent presenting the `master` identity; hostname checks only
    /// with `verify_hostname`.
    pub fn new(
        master: &Bundle,
        host: &SwarmHost,
        verify_hostname: bool,
    ) -> Result<Self, AgentError> {
        let pin = match host.client_cert_fingerprint.trim() {
            "" => None,
            p => Some(p.parse::<Fingerprint>().map_err(|e| AgentError::BadPin {
                host: host.name.clone(),
                reason: e.to_string(),
            })?),
        };
        let opts = ClientOptions {
            identity: Some(host.name.clone()),
            pin,
            verify_hostname,
        };
        let config =
            tls::client_config(master, &opts).map_err(|e| AgentError::Identity(e.to_string()))?;
        Ok(Self::with_config(config, host))
    }

    /// A client of `host` over an already built TLS configuration.
    pub fn with_config(config: Arc<rustls::ClientConfig>, host: &SwarmHost) -> Self {
        Self {
            host: host.name.clone(),
            inner: https::Client::new(config, host.address.clone(), host.agent_port),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        t: Timeouts,
    ) -> Result<serde_json::Value, AgentError> {
        let resp = self
            .inner
            .send(method, path, body, t)
            .await
            .map_err(|source| AgentError::Transport {
                host: self.host.clone(),
                addr: self.inner.addr(),
                source: Box::new(source),
            })?;
        if !resp.status.is_success() {
            return Err(AgentError::Status {
                host: self.host.clone(),
                status: resp.status.as_u16(),
                detail: resp.detail(),
            });
        }
        if resp.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        resp.json().map_err(|e| AgentError::Decode {
            host: self.host.clone(),
            reason: e.to_string(),
        })
    }

    async fn post<T: Serialize>(
        &self,
        path: &str,
        body: &T,
        t: Timeouts,
    ) -> Result<serde_json::Value, AgentError> {
        let bytes = serde_json::to_vec(body).map_err(|e| AgentError::Decode {
            host: self.host.clone(),
            reason: e.to_string(),
        })?;
        self.call(Method::POST, path, Some(bytes), t).await
    }

    fn decode<T: DeserializeOwned>(&self, v: serde_json::Value) -> Result<T, AgentError> {
        serde_json::from_value(v).map_err(|e| AgentError::Decode {
            host: self.host.clone(),
            reason: e.to_string(),
        })
    }

    /// `GET /health`: the agent's body.
    pub async fn health(&self) -> Result<serde_json::Value, AgentError> {
        self.call(Method::GET, "/health", None, Timeouts::CONTROL)
            .await
    }

    /// `GET /status`: what the worker runs.
    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let v = self
            .call(Method::GET, "/status", None, Timeouts::CONTROL)
            .await?;
        self.decode(v)
    }

    /// `POST /deploy` of `config` (the agent accepts and works in the background).
    pub async fn deploy(
        &self,
        config: DecnetConfig,
        dry_run: bool,
        no_cache: bool,
    ) -> Result<serde_json::Value, AgentError> {
        let req = DeployRequest {
            config,
            dry_run,
            no_cache,
        };
        self.post("/deploy", &req, Timeouts::CONTROL).await
    }

    /// `POST /teardown` of one decky, or of the whole host (`None`, the long timeout).
    pub async fn teardown(
        &self,
        decky_id: Option<String>,
    ) -> Result<serde_json::Value, AgentError> {
        let t = if decky_id.is_some() {
            Timeouts::CONTROL
        } else {
            Timeouts::LONG
        };
        self.post("/teardown", &TeardownRequest { decky_id }, t)
            .await
    }

    /// `POST /mutate`: new services for one decky.
    pub async fn mutate(
        &self,
        decky_id: String,
        services: Vec<String>,
        dry_run: bool,
    ) -> Result<serde_json::Value, AgentError> {
        let req = MutateRequest {
            decky_id,
            services,
            dry_run,
        };
        self.post("/mutate", &req, Timeouts::CONTROL).await
    }

    /// `POST /self-destruct`: the worker wipes decnet and stops.
    pub async fn self_destruct(&self) -> Result<serde_json::Value, AgentError> {
        self.call(Method::POST, "/self-destruct", None, Timeouts::CONTROL)
            .await
    }
}

/// Loads the master identity from the PKI directory, issuing it on first use.
pub fn master_identity(layout: &pki::Layout) -> Result<Bundle, AgentError> {
    layout
        .ensure_master()
        .map_err(|e| AgentError::Identity(e.to_string()))
}
