//! `/auth/login`, `/auth/change-password` and `/auth/logout` (engine.md §7.1).
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Session, check_new_password, check_password_bytes, hash_password, now_ms};
use crate::roles::master::Message;
use crate::roles::master::error::{ApiError, Body, Detail, RawBody};
use crate::roles::master::state::AppState;

/// The login failure text.
const BAD_LOGIN: &str = "Incorrect username or password";
/// The key unparsable login bodies share in the per-username limit.
const UNPARSABLE: &str = "\u{0}unparsable";

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password, at most 72 UTF-8 bytes.
    pub password: String,
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// The account must change its password before anything else.
    pub must_change_password: bool,
}

/// `POST /auth/change-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub old_password: String,
    /// The new password, 12 characters to 72 UTF-8 bytes.
    pub new_password: String,
}

fn limited(limiter: &crate::roles::master::limiter::Limiter, key: &str) -> Result<(), ApiError> {
    limiter
        .hit(key)
        .map_err(|retry| ApiError::TooMany(limiter.describe(), retry))
}

/// Logs in with a username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, body = Detail), (status = 401, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail), (status = 429, body = Detail),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawBody(body): RawBody,
) -> Result<Json<LoginResponse>, ApiError> {
    let auth = &state.auth;
    limited(&auth.login_by_ip, &peer.ip().to_string())?;
    let parsed: Option<LoginRequest> = serde_json::from_slice(&body).ok();
    let name_key = parsed.as_ref().map_or(UNPARSABLE, |r| r.username.as_str());
    limited(&auth.login_by_name, name_key)?;
    let req = parsed.ok_or_else(ApiError::schema)?;
    if req.username.is_empty() || req.password.is_empty() {
        return Err(ApiError::schema());
    }
    check_password_bytes(&req.password)?;
    let user = match auth.cached_name(&req.username) {
        Some(u) => Some(u),
        None => {
            let name = req.username.clone();
            let found = state.db.read(move |r| r.user_by_name(&name)).await?;
            if let Some(u) = &found {
                auth.cache_name(u);
            }
            found
        }
    };
    let hash = user.as_ref().map_or_else(
        || super::password::DUMMY_HASH.to_owned(),
        |u| u.password_hash.clone(),
    );
    let ok = super::verify_password(req.password, hash).await?;
    match user {
        Some(user) if ok => Ok(Json(LoginResponse {
            access_token: auth.issue(&user),
            token_type: "bearer",
            must_change_password: user.must_change_password,
        })),
        _ => Err(ApiError::Unauthorized(BAD_LOGIN)),
    }
}

/// Changes the caller's password; every token issued before is revoked.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Message),
        (status = 400, body = Detail), (status = 401, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail), (status = 429, body = Detail),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Body(req): Body<ChangePasswordRequest>,
) -> Result<Json<Message>, ApiError> {
    limited(&state.auth.change_password, &peer.ip().to_string())?;
    check_password_bytes(&req.old_password)?;
    check_new_password(&req.new_password)?;
    let ok = super::verify_password(req.old_password, session.user.password_hash.clone()).await?;
    if !ok {
        return Err(ApiError::Unauthorized("Incorrect old password"));
    }
    let hash = hash_password(req.new_password).await?;
    let uuid = session.user.uuid.clone();
    let now = now_ms();
    state
        .db
        .write(move |s| s.set_password(&uuid, &hash, false, now))
        .await?;
    state.auth.invalidate_users();
    Ok(Json(Message::new("Password updated successfully")))
}

/// Revokes the token this request carries.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 401, body = Detail)))]
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Message>, ApiError> {
    let Session { user, claims } = session;
    let jti = claims.jti.clone();
    let now = now_ms() / 1000;
    state
        .db
        .write(move |s| s.revoke_token(&jti, &user.uuid, claims.exp, now))
        .await?;
    state.auth.mark_revoked(&claims.jti);
    Ok(Json(Message::new("Logged out")))
}
