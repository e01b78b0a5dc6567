//! Simulated agents that take deploys: each a small mTLS server with its worker bundle
//! (`https::serve`, the decnet CA required of clients, as `decnet agent` serves) that
//! answers `POST /deploy` 202 and `GET /status` with what it was given, like the real
//! agent, without Docker.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use decnet::https::{self, ServeOptions};
use decnet::model::swarm::{AgentStatus, DeckyRuntime, DeployRequest};
use decnet::model::{DecnetConfig, Mode};
use decnet::pki::Bundle;
use decnet::tls;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::BenchResult;
use super::agents::decky;
use super::controller::Host;

/// What a simulated agent runs: the last deploy it accepted.
type Deployed = Arc<Mutex<Option<DecnetConfig>>>;

async fn deploy(
    State(slot): State<Deployed>,
    axum::Json(req): axum::Json<DeployRequest>,
) -> Response {
    if let Err(e) = req.config.validate() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"detail": e.to_string()})),
        )
            .into_response();
    }
    let names: Vec<String> = req.config.deckies.iter().map(|d| d.name.clone()).collect();
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(req.config);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "deckies": names})),
    )
        .into_response()
}

async fn status(State(slot): State<Deployed>) -> axum::Json<AgentStatus> {
    let config = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(config) = config else {
        return axum::Json(AgentStatus::default());
    };
    let runtime = config
        .deckies
        .iter()
        .map(|d| {
            let services = d
                .services
                .iter()
                .map(|s| (s.clone(), "running".to_owned()))
                .collect();
            (
                d.name.clone(),
                DeckyRuntime {
                    running: true,
                    services,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    axum::Json(AgentStatus {
        deployed: true,
        mode: Some(config.mode),
        compose_path: None,
        deckies: config.deckies,
        runtime: Some(runtime),
    })
}

/// A simulated agent: where it listens and what it was deployed.
pub struct FakeAgent {
    /// Its listener, until [`FakeAgent::serve`].
    listener: Option<TcpListener>,
    /// Its port.
    pub port: u16,
    /// The deploy it accepted.
    pub deployed: Deployed,
}

impl FakeAgent {
    /// Binds an agent's listener on 127.0.0.1 (its port goes into its enrolment).
    pub async fn bind() -> BenchResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener: Some(listener),
            port,
            deployed: Arc::default(),
        })
    }

    /// Serves the agent with its worker `bundle` until `stop`.
    pub fn serve(&mut self, bundle: &Bundle, stop: CancellationToken) -> BenchResult<()> {
        let listener = self.listener.take().ok_or("agent served twice")?;
        let app = Router::new()
            .route(
                "/health",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .route("/deploy", post(deploy))
            .route("/status", get(status))
            .with_state(self.deployed.clone());
        let acceptor = TlsAcceptor::from(tls::server_config(bundle)?);
        tokio::spawn(https::serve(
            listener,
            Some(acceptor),
            app,
            stop,
            ServeOptions::default(),
        ));
        Ok(())
    }

    /// How many deckies it was deployed.
    pub fn deckies(&self) -> usize {
        self.deployed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |c| c.deckies.len())
    }
}

/// A swarm fleet of 3 deckies on each of `hosts`, already sharded.
pub fn fleet(hosts: &[Host]) -> BenchResult<DecnetConfig> {
    let mut deckies = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        for j in 0..3 {
            deckies.push(decky("fleet", i, j, &h.uuid)?);
        }
    }
    Ok(DecnetConfig {
        mode: Mode::Swarm,
        interface: "eth0".into(),
        subnet: "10.64.0.0/10".parse()?,
        gateway: "10.64.0.1".parse()?,
        deckies,
        log_file: None,
        ipvlan: false,
        mutate_interval: Some(30),
    })
}
