//! The API's error responses: `{"detail": …}` with the status codes and texts of
//! engine.md §7.1 and §7.5, and the extractors that turn malformed input into them.
//!
//! Property kept: a client mistake is always a 4xx, and no response ever carries a
//! stack trace, an SQL text or a secret. An internal failure is logged with a random
//! `error_id` and answered with only that id, so an operator can find the cause.
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The structural-violation text of §7.5 (missing, wrong type, extra field, too short).
pub const SCHEMA_VIOLATION: &str =
    "Bad Request: Schema structural violation (wrong type, extra fields, or invalid length).";
/// The text of a well-formed request whose values are not acceptable.
pub const INVALID_PARAMETERS: &str = "Invalid request parameters";
/// Every authentication failure past login, whatever the cause.
pub const BAD_CREDENTIALS: &str = "Could not validate credentials";
/// A must-change account using anything but change-password and logout.
pub const MUST_CHANGE: &str = "Password change required before accessing this resource";
/// A route above the caller's role.
pub const INSUFFICIENT: &str = "Insufficient permissions";

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Detail {
    /// What went wrong, for a person.
    pub detail: String,
}

/// An error a handler answers with.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request's structure is wrong.
    BadRequest(String),
    /// 401 with `WWW-Authenticate: Bearer`.
    Unauthorized(&'static str),
    /// 403.
    Forbidden(&'static str),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 413: the body is over the route's limit.
    TooLarge,
    /// 422: well-formed, but a value is not acceptable.
    Unprocessable(String),
    /// 429 with `Retry-After` seconds.
    TooMany(String, u64),
    /// 503: a dependency (the Docker engine) is not there.
    Unavailable(&'static str),
    /// 500: logged with an id; the client sees only the id.
    Internal(String),
}

impl ApiError {
    /// A 400 with the structural-violation text.
    pub fn schema() -> Self {
        Self::BadRequest(SCHEMA_VIOLATION.into())
    }

    /// A 422 with the generic text.
    pub fn invalid() -> Self {
        Self::Unprocessable(INVALID_PARAMETERS.into())
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        Self::Internal(format!("store: {e}"))
    }
}

fn detail(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        axum::Json(Detail {
            detail: text.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(t) => detail(StatusCode::BAD_REQUEST, t),
            Self::Unauthorized(t) => {
                let mut r = detail(StatusCode::UNAUTHORIZED, t);
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Self::Forbidden(t) => detail(StatusCode::FORBIDDEN, t),
            Self::NotFound(t) => detail(StatusCode::NOT_FOUND, t),
            Self::Conflict(t) => detail(StatusCode::CONFLICT, t),
            Self::TooLarge => detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
            Self::Unprocessable(t) => detail(StatusCode::UNPROCESSABLE_ENTITY, t),
            Self::TooMany(t, retry) => {
                let mut r = detail(StatusCode::TOO_MANY_REQUESTS, t);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
                r
            }
            Self::Unavailable(t) => detail(StatusCode::SERVICE_UNAVAILABLE, t),
            Self::Internal(cause) => {
                let error_id = super::random_hex(8);
                tracing::error!(%error_id, %cause, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(serde_json::json!({
                        "detail": "Internal Server Error",
                        "error_id": error_id,
                    })),
                )
                    .into_response()
            }
        }
    }
}

/// A JSON body; any rejection (bad JSON, wrong types, extra fields) is a 400.
///
/// A missing or wrong `Content-Type` never reaches this: the guard answers 415 first.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(_) => Err(ApiError::schema()),
        }
    }
}

/// Query parameters; a value of the wrong type is a 400, as a structural violation.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|_: QueryRejection| ApiError::schema())
    }
}

/// A path parameter; one that cannot be decoded (invalid UTF-8) is a 400.
#[derive(Debug)]
pub struct Segment<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segment<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|_| ApiError::schema())
    }
}

/// A raw body: over the size limit is a 413, unreadable a 400, both as `{"detail"}`.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(_) => Err(ApiError::schema()),
        }
    }
}

/// Answers unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

/// Answers a known path with a method it does not serve.
pub async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
