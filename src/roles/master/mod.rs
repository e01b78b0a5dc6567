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
//! ([`http::content_type`]), a 64 KiB body limit, then the route. Unknown paths are 404
//! and unknown methods 405, both as `{"detail": …}`.
//!
//! Modules:
//! - [`bootstrap`]: startup checks, token key file, the first admin.
//! - [`auth`]: tokens (HS256), argon2id hashing, role extractors, `/auth/*`.
//! - [`db`]: queries on blocking threads over a bounded reader pool.
//! - [`error`]: the error shapes and the input extractors.
//! - [`cache`], [`limiter`]: TTL caches with single flight, fixed-window rate limits.
//! - [`health`]: component states for `/health`.
//! - [`ingest`]: credentials, bounties and attacker profiles derived from `logs`.
//! - [`openapi`]: the generated OpenAPI document.
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod ingest;
pub mod limiter;
pub mod openapi;
pub mod routes;
pub mod state;

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

pub use state::{AppState, MasterConfig, Settings};

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
    use routes::{artifacts, attackers, bounty, config, credentials, health, logs, users};
    Router::new()
        .route("/auth/login", post(a::login))
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
    app.fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(http::content_type))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::cors,
        ))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    ingest::spawn(&state, shutdown.child_token());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| Error::Io {
            what: "serving the API".into(),
            source,
        })
}

/// Binds `addr` and serves `config` until SIGINT or SIGTERM.
pub async fn run(addr: SocketAddr, config: MasterConfig) -> Result<(), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: format!("binding the API to {addr}"),
        source,
    })?;
    let shutdown = crate::signals::shutdown_on_signals().map_err(|source| Error::Io {
        what: "installing signal handlers".into(),
        source,
    })?;
    tracing::info!(%addr, "master API listening");
    serve(listener, AppState::new(config), shutdown).await
}
