//! Who is calling: token issue and verification, the account caches, the login limits,
//! and the extractors every route uses to demand a role (engine.md §7.1).
//!
//! A request's token is accepted only if, in this order: its signature and claims check
//! out ([`jwt::decode`]), its user still exists, it was issued at or after the user's
//! `tokens_valid_from` (a password or role change kills older tokens), and its `jti` was
//! not logged out. Every failure is the same 401 "Could not validate credentials", so a
//! caller learns nothing about which check failed.
//!
//! Three extractors, by what the route needs:
//! - [`Session`]: any valid token, also one whose account must change its password
//!   (change-password and logout only).
//! - [`Viewer`]: a valid token of an account that need not change its password.
//! - [`Admin`]: a [`Viewer`] with role admin; else 403 "Insufficient permissions".
//!
//! The caches (user by uuid 10 s, by name 5 s, revoked ids 10 s, the account list 5 s)
//! are invalidated by every account write this process makes; the master is the only
//! writer of accounts.
pub mod jwt;
pub mod password;
pub mod routes;

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ring::hmac;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::cache::{Cached, TtlMap};
use super::db::Db;
use super::error::{ApiError, BAD_CREDENTIALS, INSUFFICIENT, MUST_CHANGE};
use super::limiter::Limiter;
use super::state::AppState;
use crate::store::{Role, User};
use jwt::Claims;

/// Most accounts cached at once.
const CACHE_MAX: usize = 4096;
/// Logins per window, per client address and per claimed username.
const LOGIN_MAX: u32 = 10;
/// The login limits' window.
const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// Password changes per minute and client address.
const CHANGE_MAX: u32 = 5;

/// Signing key, lifetime, caches and limits of the API's tokens.
#[derive(Debug)]
pub struct Auth {
    key: hmac::Key,
    ttl: Duration,
    by_uuid: TtlMap<String, User>,
    by_name: TtlMap<String, User>,
    revoked: TtlMap<String, bool>,
    all: Cached<Arc<Vec<User>>>,
    /// Logins per client address.
    pub login_by_ip: Limiter,
    /// Logins per claimed username (unparsable bodies share one key).
    pub login_by_name: Limiter,
    /// Password changes per client address.
    pub change_password: Limiter,
}

/// Milliseconds since the epoch, by the wall clock (token times are wall-clock times).
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Auth {
    /// Tokens signed with `secret`, living `ttl`; `limits` off disables the rate limits.
    pub fn new(secret: &[u8], ttl: Duration, limits: bool) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl,
            by_uuid: TtlMap::new(Duration::from_secs(10), CACHE_MAX),
            by_name: TtlMap::new(Duration::from_secs(5), CACHE_MAX),
            revoked: TtlMap::new(Duration::from_secs(10), CACHE_MAX * 4),
            all: Cached::new(Duration::from_secs(5)),
            login_by_ip: Limiter::new(LOGIN_MAX, LOGIN_WINDOW, limits),
            login_by_name: Limiter::new(LOGIN_MAX, LOGIN_WINDOW, limits),
            change_password: Limiter::new(CHANGE_MAX, Duration::from_secs(60), limits),
        }
    }

    /// A fresh access token for `user`.
    pub fn issue(&self, user: &User) -> String {
        let now = now_ms();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            uuid: user.uuid.clone(),
            jti: super::random_hex(16),
            exp: (now / 1000).saturating_add(ttl),
            iat: now as f64 / 1000.0,
            iss: jwt::ISSUER.into(),
            aud: jwt::AUDIENCE.into(),
            typ: jwt::ACCESS.into(),
        };
        jwt::encode(&claims, &self.key)
    }

    /// The cached account named `name` (positive hits only, so a new account can log in
    /// at once).
    pub fn cached_name(&self, name: &str) -> Option<User> {
        self.by_name.get(&name.to_owned())
    }

    /// Remembers an account just read by name.
    pub fn cache_name(&self, user: &User) {
        self.by_name.put(user.username.clone(), user.clone());
    }

    /// Every account, as `/config` lists them (cached 5 s).
    pub async fn users(&self, db: &Db) -> Result<Arc<Vec<User>>, ApiError> {
        self.all
            .get_or_load(|| async { db.read(|r| r.users()).await.map(Arc::new) })
            .await
    }

    /// Forgets everything cached about accounts, after any account write.
    pub fn invalidate_users(&self) {
        self.by_uuid.clear();
        self.by_name.clear();
        self.all.invalidate();
    }

    /// Marks `jti` logged out in the cache (the store holds it durably).
    pub fn mark_revoked(&self, jti: &str) {
        self.revoked.put(jti.to_owned(), true);
    }
}

/// A caller with a valid token (possibly one that must change its password).
#[derive(Debug, Clone)]
pub struct Session {
    /// The account, as currently stored.
    pub user: User,
    /// The token's claims.
    pub claims: Claims,
}

/// A caller allowed on viewer routes.
#[derive(Debug, Clone)]
pub struct Viewer(pub Session);

/// A caller allowed on admin routes.
#[derive(Debug, Clone)]
pub struct Admin(pub Session);

/// The bearer token of `parts`, if any.
fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The bearer token of a request's `headers`, if any.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks a token as the module doc describes.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Session, ApiError> {
    let deny = || ApiError::Unauthorized(BAD_CREDENTIALS);
    let auth = &state.auth;
    let claims = jwt::decode(token, &auth.key, now_ms() / 1000).ok_or_else(deny)?;
    let user = match auth.by_uuid.get(&claims.uuid) {
        Some(u) => u,
        None => {
            let uuid = claims.uuid.clone();
            let user = state
                .db
                .read(move |r| r.user_by_uuid(&uuid))
                .await?
                .ok_or_else(deny)?;
            auth.by_uuid.put(user.uuid.clone(), user.clone());
            user
        }
    };
    if claims.iat_ms() < user.tokens_valid_from_ms {
        return Err(deny());
    }
    let revoked = match auth.revoked.get(&claims.jti) {
        Some(r) => r,
        None => {
            let jti = claims.jti.clone();
            let r = state.db.read(move |r| r.is_token_revoked(&jti)).await?;
            auth.revoked.put(claims.jti.clone(), r);
            r
        }
    };
    if revoked {
        return Err(deny());
    }
    Ok(Session { user, claims })
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?;
        authenticate(state, token).await
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        if session.user.must_change_password {
            return Err(ApiError::Forbidden(MUST_CHANGE));
        }
        Ok(Self(session))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Viewer(session) = Viewer::from_request_parts(parts, state).await?;
        if session.user.role != Role::Admin {
            return Err(ApiError::Forbidden(INSUFFICIENT));
        }
        Ok(Self(session))
    }
}

/// Checks a new password's length: at least [`password::MIN_CHARS`] characters (400),
/// at most [`password::MAX_BYTES`] UTF-8 bytes (422).
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < password::MIN_CHARS {
        return Err(ApiError::schema());
    }
    check_password_bytes(password)
}

/// Refuses passwords over [`password::MAX_BYTES`] UTF-8 bytes (422).
pub fn check_password_bytes(password: &str) -> Result<(), ApiError> {
    if password.len() > password::MAX_BYTES {
        return Err(ApiError::Unprocessable(
            "password must not exceed 72 UTF-8 bytes".into(),
        ));
    }
    Ok(())
}

/// A password job for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue: one thread per core, started on first use.
///
/// Why dedicated threads rather than `spawn_blocking`: each argon2id hash takes 19 MiB
/// and saturates a core, so more at once finish no sooner; and the allocator keeps a
/// freed 19 MiB block in the arena of the thread that used it, so hashes spread over
/// the blocking pool's many threads left gigabytes resident after a burst of logins
/// (1.8 GiB after 256 concurrent logins in `scripts/bench-api.sh`). Two threads hold
/// two such blocks at most. Jobs wait in a bounded queue; senders wait when it is full.
static HASHERS: LazyLock<Option<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>(1024);
    let rx = Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    for i in 0..threads {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                    match job {
                        Some(job) => job(),
                        None => return,
                    }
                }
            })
            .ok()?;
    }
    Some(tx)
});

/// Runs the hash job `f` on a hashing thread.
async fn hashing<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let gone = || ApiError::Internal(format!("{what}: no hashing thread"));
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(f());
    });
    let queue = HASHERS.as_ref().ok_or_else(gone)?;
    queue.send(job).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())
}

/// Hashes `password` on a hashing thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing("hash", move || password::hash(&password))
        .await?
        .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
}

/// Verifies `password` against `hash` on a hashing thread.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    hashing("verify", move || password::verify(&password, &hash)).await
}
