//! User administration under `/config/users` (engine.md §7.1), admins only.
//!
//! Every write invalidates the account caches, and a role change or password reset
//! also moves the account's `tokens_valid_from`, so its older tokens die at once. A
//! reset password must be changed at the next login.
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::roles::master::Message;
use crate::roles::master::auth::{Admin, check_new_password, hash_password, now_ms};
use crate::roles::master::error::{ApiError, Body, Detail, Segment};
use crate::roles::master::state::AppState;
use crate::store::{Role, User};

/// Longest username, in characters.
const MAX_USERNAME: usize = 64;

/// An account as the API shows it (never its hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserInfo {
    /// Account id.
    pub uuid: String,
    /// Login name.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: &'static str,
    /// Whether the password must be changed at next use.
    pub must_change_password: bool,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        Self {
            uuid: u.uuid.clone(),
            username: u.username.clone(),
            role: u.role.as_str(),
            must_change_password: u.must_change_password,
        }
    }
}

/// `POST /config/users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1..64 characters.
    pub username: String,
    /// 12 characters to 72 UTF-8 bytes.
    pub password: String,
    /// `admin` or `viewer`.
    pub role: String,
}

/// `PUT /config/users/{uuid}/role` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `admin` or `viewer`.
    pub role: String,
}

/// `PUT /config/users/{uuid}/reset-password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// 12 characters to 72 UTF-8 bytes; must be changed at next login.
    pub new_password: String,
}

fn role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(ApiError::invalid)
}

fn not_found() -> ApiError {
    ApiError::NotFound("User not found".into())
}

/// Creates an account (it must change its password at first login).
#[utoipa::path(post, path = "/api/v1/config/users", tag = "users",
    request_body = CreateUser,
    security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 409, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail)))]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    Body(req): Body<CreateUser>,
) -> Result<Json<UserInfo>, ApiError> {
    if req.username.is_empty() {
        return Err(ApiError::schema());
    }
    if req.username.chars().count() > MAX_USERNAME || req.username.chars().any(char::is_control) {
        return Err(ApiError::invalid());
    }
    let role = role(&req.role)?;
    check_new_password(&req.password)?;
    let user = User {
        uuid: crate::roles::master::new_uuid(),
        username: req.username,
        password_hash: hash_password(req.password).await?,
        role,
        must_change_password: true,
        tokens_valid_from_ms: 0,
    };
    let stored = user.clone();
    if !state.db.write(move |s| s.create_user(&stored)).await? {
        return Err(ApiError::Conflict("Username already exists".into()));
    }
    state.auth.invalidate_users();
    Ok(Json(UserInfo::from(&user)))
}

/// Deletes an account (not one's own).
#[utoipa::path(delete, path = "/api/v1/config/users/{uuid}", tag = "users",
    params(("uuid" = String, Path, description = "account id")),
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail)))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(session): Admin,
    Segment(uuid): Segment<String>,
) -> Result<Json<Message>, ApiError> {
    if uuid == session.user.uuid {
        return Err(ApiError::Forbidden("Cannot delete your own account"));
    }
    if !state.db.write(move |s| s.delete_user(&uuid)).await? {
        return Err(not_found());
    }
    state.auth.invalidate_users();
    Ok(Json(Message::new("User deleted")))
}

/// Changes an account's role (not one's own); its older tokens die.
#[utoipa::path(put, path = "/api/v1/config/users/{uuid}/role", tag = "users",
    params(("uuid" = String, Path, description = "account id")),
    request_body = RoleRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 404, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail)))]
pub async fn set_role(
    State(state): State<AppState>,
    Admin(session): Admin,
    Segment(uuid): Segment<String>,
    Body(req): Body<RoleRequest>,
) -> Result<Json<Message>, ApiError> {
    let role = role(&req.role)?;
    if uuid == session.user.uuid {
        return Err(ApiError::Forbidden("Cannot change your own role"));
    }
    let now = now_ms();
    if !state
        .db
        .write(move |s| s.set_role(&uuid, role, now))
        .await?
    {
        return Err(not_found());
    }
    state.auth.invalidate_users();
    Ok(Json(Message::new("User role updated")))
}

/// Sets a new password that must be changed at next login; older tokens die.
#[utoipa::path(put, path = "/api/v1/config/users/{uuid}/reset-password", tag = "users",
    params(("uuid" = String, Path, description = "account id")),
    request_body = ResetRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 404, body = Detail),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 422, body = Detail)))]
pub async fn reset_password(
    State(state): State<AppState>,
    _: Admin,
    Segment(uuid): Segment<String>,
    Body(req): Body<ResetRequest>,
) -> Result<Json<Message>, ApiError> {
    check_new_password(&req.new_password)?;
    let hash = hash_password(req.new_password).await?;
    let now = now_ms();
    if !state
        .db
        .write(move |s| s.set_password(&uuid, &hash, true, now))
        .await?
    {
        return Err(not_found());
    }
    state.auth.invalidate_users();
    Ok(Json(Message::new("Password reset successfully")))
}
