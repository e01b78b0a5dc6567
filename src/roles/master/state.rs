//! [`AppState`]: what every handler shares. Later parts of the master (ingestion, the
//! live stream and its tickets, the fleet routes) add their fields here and their routes
//! to [`super::router`]; nothing else needs to change.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::auth::Auth;
use super::cache::Cached;
use super::db::Db;
use super::fleet::{Fleet, FleetOptions};
use super::health::Health;
use super::live::Live;
use super::routes::bounty::BountyPage;
use super::routes::config;
use super::routes::deckies::DeckyView;
use super::routes::logs::{Histogram, Stats};
use crate::config::Secret;
use crate::engine::Engine;
use crate::store::Store;

/// How the master API behaves once started; validated by [`super::bootstrap`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Browser origins allowed by CORS (never `*`).
    pub cors_origins: Vec<String>,
    /// Rate limits on.
    pub limiter_enabled: bool,
    /// Developer mode: `/openapi.json` is served.
    pub developer: bool,
    /// The state directory (fleet state file for `/stats`).
    pub home: PathBuf,
    /// Docker endpoint for the health probe (`None`: the local socket).
    pub docker_host: Option<String>,
    /// Where deckies' captured files live (`<root>/<decky>/<service dir>`).
    pub artifacts_root: PathBuf,
    /// The bus ingestion publishes on (`None`: no bus).
    pub bus: Option<crate::config::BusConfig>,
}

/// Everything [`super::serve`] needs: the store, the token key and the settings.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The opened store.
    pub store: Store,
    /// HS256 key of the API's tokens.
    pub jwt_secret: Secret,
    /// Behaviour.
    pub settings: Settings,
}

/// The per-endpoint caches of the hot reads (engine.md §7.2).
#[derive(Debug)]
pub struct Caches {
    /// `/stats`, 5 s.
    pub stats: Cached<Stats>,
    /// Unfiltered `/logs` total, 2 s.
    pub logs_total: Cached<u64>,
    /// Body of the unfiltered first `/logs` page of the default size, 1 s.
    pub logs_page: Cached<bytes::Bytes>,
    /// Default `/logs/histogram`, 5 s.
    pub histogram: Cached<Histogram>,
    /// `/deckies`, 5 s.
    pub deckies: Cached<Vec<DeckyView>>,
    /// The settings `/config` shows, 5 s.
    pub config: Cached<config::Settings>,
    /// Unfiltered `/attackers` total, 2 s.
    pub attackers_total: Cached<u64>,
    /// Unfiltered `/credentials` total, 2 s.
    pub credentials_total: Cached<u64>,
    /// Default `/bounty` page, 5 s.
    pub bounty_page: Cached<BountyPage>,
}

/// What the live stream and the fleet routes need beyond [`MasterConfig`].
#[derive(Debug, Clone)]
pub struct Extras {
    /// The Docker engine, if it answered (`None`: fleet changes answer 503).
    pub engine: Option<Engine>,
    /// How new fleets are deployed.
    pub fleet: FleetOptions,
    /// Live streams one account may hold (`DECNET_SSE_MAX_PER_USER`).
    pub sse_max_per_user: u32,
    /// How long an SSE ticket lives (60 s; shorter in tests).
    pub ticket_ttl: Duration,
    /// The swarm controller's settings.
    pub swarm: super::swarm::SwarmOptions,
    /// The ports a new worker is told (its agent, the controller, the listener).
    pub ports: crate::config::Ports,
    /// Where `decnet master` runs the log listener in its process (`None`: not here).
    pub listener: Option<std::net::SocketAddr>,
}

impl Extras {
    /// No engine, the CLI's deploy defaults, 5 streams per account.
    pub fn for_home(home: &std::path::Path) -> Self {
        Self {
            engine: None,
            fleet: FleetOptions::new(home.join("artifacts")),
            sse_max_per_user: 5,
            ticket_ttl: super::live::tickets::TICKET_TTL,
            swarm: super::swarm::SwarmOptions::for_home(home),
            ports: crate::config::Ports::default(),
            listener: None,
        }
    }
}

/// The shared state behind every handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// The store and its reader pool.
    pub db: Db,
    /// Tokens, account caches, login limits.
    pub auth: Auth,
    /// Behaviour.
    pub settings: Settings,
    /// Hot-read caches.
    pub caches: Caches,
    /// Component states for `/health`.
    pub health: Health,
    /// SSE tickets and stream slots.
    pub live: Live,
    /// The engine handle and the fleet lock.
    pub fleet: Fleet,
    /// One-line enrolment: live tokens, the served binary's checksum.
    pub enrollment: super::enrollment::Enrollment,
    /// The swarm controller: host registry, heartbeat writes, background teardowns.
    pub swarm: super::swarm::Swarm,
    /// Cancelled when the master stops: streams end, background operations undo.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state of a master started from `config`, without Docker.
    pub fn new(config: MasterConfig) -> Self {
        let extras = Extras::for_home(&config.settings.home);
        Self::with_extras(config, extras)
    }

    /// The state of a master started from `config` with the fleet and stream `extras`.
    pub fn with_extras(config: MasterConfig, extras: Extras) -> Self {
        let s = config.settings;
        Self(Arc::new(Inner {
            db: Db::new(config.store),
            auth: Auth::new(
                config.jwt_secret.expose().as_bytes(),
                s.token_ttl,
                s.limiter_enabled,
            ),
            caches: Caches {
                stats: Cached::new(Duration::from_secs(5)),
                logs_total: Cached::new(Duration::from_secs(2)),
                logs_page: Cached::new(super::routes::logs::PAGE_TTL),
                histogram: Cached::new(Duration::from_secs(5)),
                deckies: Cached::new(Duration::from_secs(5)),
                config: Cached::new(Duration::from_secs(5)),
                attackers_total: Cached::new(Duration::from_secs(2)),
                credentials_total: Cached::new(Duration::from_secs(2)),
                bounty_page: Cached::new(Duration::from_secs(5)),
            },
            health: Health::new(s.docker_host.clone()),
            live: Live::new(extras.sse_max_per_user, extras.ticket_ttl),
            fleet: Fleet::new(extras.engine, extras.fleet),
            swarm: super::swarm::Swarm::new(extras.swarm, s.bus.clone(), s.limiter_enabled),
            enrollment: super::enrollment::Enrollment::new(&extras.ports, s.limiter_enabled),
            shutdown: tokio_util::sync::CancellationToken::new(),
            settings: s,
        }))
    }

    /// Forgets the cached reads of the fleet after a change to it.
    pub async fn fleet_changed(&self) {
        self.caches.deckies.invalidate();
        self.caches.stats.invalidate();
    }
}
