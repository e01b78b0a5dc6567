//! Request guards every route passes through (engine.md §7.5): the Content-Type guard
//! and CORS.
//!
//! - Content-Type: a POST, PUT or PATCH under `/api/` that carries a body (non-zero
//!   `Content-Length`, or chunked) must say `application/json`, else 415 in plain text.
//!   Checking before any handler runs means no handler ever parses a form or multipart
//!   body by accident.
//! - CORS: only the configured origins (never `*`, refused at startup), no credentials,
//!   the methods and headers the dashboard uses. A preflight from another origin is a
//!   400; a simple request from another origin is served without CORS headers, so the
//!   browser withholds the answer.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

/// The 415 text.
pub const UNSUPPORTED: &str = "Unsupported Media Type — Content-Type must be application/json";
/// Methods CORS allows.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers CORS allows.
const HEADERS: &str = "Authorization, Content-Type, Last-Event-ID";
/// Routes exempt from the Content-Type guard (they take uploads).
const EXEMPT: &[&str] = &["/api/v1/deckies/files", "/api/v1/canary/blobs"];

fn has_body(headers: &HeaderMap) -> bool {
    let chunked = headers.get_all(header::TRANSFER_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0");
    chunked || length
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// The Content-Type guard.
pub async fn content_type(req: Request, next: Next) -> Response {
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    let path = req.uri().path();
    if writes
        && path.starts_with("/api/")
        && !EXEMPT.contains(&path)
        && has_body(req.headers())
        && !is_json(req.headers())
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            UNSUPPORTED,
        )
            .into_response();
    }
    next.run(req).await
}

/// CORS for the configured origins.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = origin.as_ref().filter(|o| {
        o.to_str()
            .is_ok_and(|o| state.settings.cors_origins.iter().any(|a| a == o))
    });
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(origin) = allowed else {
            return super::error::ApiError::BadRequest("Disallowed CORS origin".into())
                .into_response();
        };
        let mut r = Response::new(Body::empty());
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return r;
    }
    let allowed = allowed.cloned();
    let mut r = next.run(req).await;
    if let Some(origin) = allowed {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}
