//! `decnet master`: the REST API under `/api/v1` (engine.md §7), on axum.
//!
//! Shape (DESIGN.md): [`serve`] takes an already-bound listener, an [`AppState`] and a
//! shutdown token, so tests bind port 0; [`run`] binds the configured address and
//! serves until SIGINT/SIGTERM. [`router`] is the composition point: each route group
//! lives in [`routes`] (or [`auth::routes`]) and is mounted here; later parts of the
//! master (dashboard at `/`, ingestion, `/stream`, fleet routes) add theirs the same way
//! and their shared handles to [`AppState`].
//!
//! Layers, outermost first: CORS ([`http::cors`]), the Content-Type guard
//! ([`http::content_type`]), a 64 KiB body limit, then the route. Unknown paths under
//! `/api/` are 404 and unknown methods 405, both as `{"detail": …}`; any other GET is
//! the dashboard ([`assets`]).
//!
//! Modules:
//! - [`assets`]: the embedded dashboard at `/` (every non-API GET).
//! - [`bootstrap`]: startup checks, token key file, the first admin.
//! - [`auth`]: tokens (HS256), argon2id hashing, role extractors, `/auth/*`.
//! - [`enrollment`]: one-line worker enrolment: tokens, bootstrap script, payload.
//! - [`db`]: queries on blocking threads over a bounded reader pool.
//! - [`error`]: the error shapes and the input extractors.
//! - [`cache`], [`limiter`]: TTL caches with single flight, fixed-window rate limits.
//! - [`health`]: component states for `/health`.
//! - [`ingest`]: credentials, bounties and attacker profiles derived from `logs`.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`live`]: SSE tickets and per-user stream slots (`/stream`).
//! - [`fleet`]: the Docker engine handle, the fleet lock and background deploys.
//! - [`swarm`]: the swarm controller (enrolment, heartbeats, sharded dispatch) and
//!   `/api/v1/swarm`.
pub mod assets;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod db;
pub mod enrollment;
pub mod error;
pub mod fleet;
pub mod health;
pub mod http;
pub mod ingest;
pub mod limiter;
pub mod live;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod swarm;

use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use serde::Serialize;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

pub use state::{AppState, Extras, MasterConfig, Settings};

/// Largest request body any route reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Why the master stopped.
#[derive(Debug, Error)]
pub enum Error {
    /// Binding or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
}

/// A `{"message": …}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// What happened.
    pub message: String,
}

impl Message {
    /// A message saying `text`.
    pub fn new(text: &str) -> Self {
        Self {
            message: text.to_owned(),
        }
    }
}

/// `n` random bytes as lowercase hex (token ids, error ids, generated keys).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The system RNG failing is not recoverable; an all-zero id would be guessable,
    // so fall back to hashing the time and a counter rather than returning zeros.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let seed = format!("{:?}{n}", tokio::time::Instant::now());
        let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
        for (b, d) in bytes.iter_mut().zip(digest.as_ref().iter().cycle()) {
            *b = *d;
        }
    }
    hex::encode(bytes)
}

/// A random (version 4) UUID in its usual text form.
pub fn new_uuid() -> String {
    let mut b = hex::decode(random_hex(16)).unwrap_or_else(|_| vec![0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The `/api/v1` routes.
fn api_routes() -> Router<AppState> {
    use auth::routes as a;
    use routes::{
        artifacts, attackers, bounty, config, credentials, deckies, deploy, health, logs, stream,
        users,
    };
    Router::new()
        .route("/auth/login", post(a::login))
        .route("/auth/sse-ticket", post(stream::sse_ticket))
        .route("/stream", get(stream::stream))
        .route("/deckies", get(deckies::list))
        .route("/deckies/deploy", post(deploy::deploy))
        .route("/deckies/lifecycle", get(deploy::lifecycle))
        .route("/deckies/{name}", delete(deckies::remove))
        .route("/deckies/{name}/mutate", post(deckies::mutate))
        .route(
            "/deckies/{name}/mutate-interval",
            put(deckies::mutate_interval),
        )
        .route("/system/deployment-mode", get(deckies::deployment_mode))
        .route("/auth/change-password", post(a::change_password))
        .route("/auth/logout", post(a::logout))
        .route("/health", get(health::health))
        .route("/stats", get(logs::stats))
        .route("/logs", get(logs::logs))
        .route("/logs/histogram", get(logs::histogram))
        .route("/attackers", get(attackers::list))
        .route("/attackers/{uuid}", get(attackers::detail))
        .route("/attackers/{uuid}/commands", get(attackers::commands))
        .route("/attackers/{uuid}/artifacts", get(attackers::artifacts))
        .route("/credentials", get(credentials::list))
        .route("/bounty", get(bounty::list))
        .route("/artifacts/{decky}/{stored_as}", get(artifacts::download))
        .route("/config", get(config::get_config))
        .route("/config/deployment-limit", put(config::put_limit))
        .route(
            "/config/global-mutation-interval",
            put(config::put_interval),
        )
        .route("/config/users", post(users::create))
        .route("/config/users/{uuid}", delete(users::delete))
        .route("/config/users/{uuid}/role", put(users::set_role))
        .route(
            "/config/users/{uuid}/reset-password",
            put(users::reset_password),
        )
        .nest(
            "/swarm",
            swarm::api_routes()
                .route("/enroll-bundle", post(enrollment::create::create))
                .route("/enroll-bundle/{file}", get(enrollment::download))
                .route("/enroll-bundle/{token}/decnet", get(enrollment::binary)),
        )
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// The whole application for `state`.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new().nest("/api/v1", api_routes());
    if state.settings.developer {
        app = app.route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        );
    }
    app.fallback(assets::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(http::content_type))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::cors,
        ))
        .with_state(state)
}

/// How long background fleet operations get to undo themselves at shutdown.
const FLEET_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the API on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish, ends the live streams and waits (bounded) for fleet operations.
///
/// Rows of fleet operations a previous run left unfinished for over an hour are marked
/// failed first (engine.md §1.10).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    match state
        .db
        .write(move |s| s.fail_stale_lifecycle(before))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(rows = n, "decky operations interrupted by a restart"),
        Err(e) => tracing::error!(error = ?e, "failing interrupted decky operations"),
    }
    if let Ok(local) = listener.local_addr() {
        state
            .enrollment
            .api_port
            .store(local.port(), std::sync::atomic::Ordering::Relaxed);
    }
    let stop = state.shutdown.clone();
    let fleet = state.clone();
    ingest::spawn(&state, shutdown.child_token());
    swarm::spawn(&state, shutdown.child_token());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let signal = async move {
        shutdown.cancelled().await;
        stop.cancel();
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
        .map_err(|source| Error::Io {
            what: "serving the API".into(),
            source,
        });
    fleet.fleet.tasks.close();
    if tokio::time::timeout(FLEET_GRACE, fleet.fleet.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("fleet operations still running at shutdown");
    }
    fleet.swarm.tasks.close();
    if tokio::time::timeout(FLEET_GRACE, fleet.swarm.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("swarm teardowns still running at shutdown");
    }
    served
}

/// Binds `addr` and serves `config` until SIGINT or SIGTERM. The Docker engine is
/// dialled once here; without it the master runs and fleet changes answer 503.
pub async fn run(addr: SocketAddr, config: MasterConfig, mut extras: Extras) -> Result<(), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: format!("binding the API to {addr}"),
        source,
    })?;
    let shutdown = crate::signals::shutdown_on_signals().map_err(|source| Error::Io {
        what: "installing signal handlers".into(),
        source,
    })?;
    if extras.engine.is_none() {
        match crate::engine::Engine::connect(config.settings.docker_host.as_deref()).await {
            Ok(engine) => extras.engine = Some(engine),
            Err(e) => tracing::warn!(error = %e, "no Docker engine: fleet changes are refused"),
        }
    }
    let controller = extras.swarm.controller.clone();
    let listen_logs = extras.listener;
    let state = AppState::with_extras(config, extras);
    if let Some(bind) = controller {
        let tls = if bind.tls {
            let acceptor = state
                .swarm
                .controller_tls(&bind.sans)
                .map_err(|e| Error::Io {
                    what: "preparing the swarm controller's TLS".into(),
                    source: io::Error::other(e),
                })?;
            Some(acceptor)
        } else {
            None
        };
        let ctl = TcpListener::bind(bind.addr)
            .await
            .map_err(|source| Error::Io {
                what: format!("binding the swarm controller to {}", bind.addr),
                source,
            })?;
        let tls_on = tls.is_some();
        tracing::info!(addr = %bind.addr, tls = tls_on, "swarm controller listening");
        tokio::spawn(swarm::serve_controller(
            ctl,
            state.clone(),
            tls,
            shutdown.child_token(),
        ));
    }
    if let Some(addr) = listen_logs {
        serve_logs(&state, addr, shutdown.child_token()).await?;
    }
    tracing::info!(%addr, "master API listening");
    serve(listener, state, shutdown).await
}

/// Starts the log listener on `addr` in this process: workers' forwarders deliver into
/// this master's store, with the master identity, admitting enrolled hosts by their pin.
async fn serve_logs(
    state: &AppState,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let io = |what: String| {
        move |e: String| Error::Io {
            what,
            source: io::Error::other(e),
        }
    };
    let identity = state
        .swarm
        .layout()
        .ensure_master()
        .map_err(|e| io("the master identity for the log listener".into())(e.to_string()))?;
    let tls = crate::tls::server_config(&identity)
        .map_err(|e| io("the log listener's TLS".into())(e.to_string()))?;
    let tcp = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: format!("binding the log listener to {addr}"),
        source,
    })?;
    let config = crate::roles::listener::ListenerConfig {
        store: state.db.store().clone(),
        tls: Some(tls),
        plain_worker: "plain".into(),
        raw_log: None,
        bus: match &state.settings.bus {
            Some(bus) => crate::bus::from_config(bus, "listener"),
            None => std::sync::Arc::new(crate::bus::NullBus),
        },
        settings: crate::roles::listener::Settings::default(),
    };
    tracing::info!(%addr, "log listener listening (mTLS)");
    tokio::spawn(async move {
        if let Err(e) = crate::roles::listener::serve(tcp, config, shutdown).await {
            tracing::error!(error = %e, "the log listener stopped");
        }
    });
    Ok(())
}
