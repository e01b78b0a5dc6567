//! `POST /auth/sse-ticket` and `GET /stream`, the live feed of engine.md §7.4.
//!
//! A stream is a task per client writing frames into a small bounded channel whose other
//! end is the response body; the task stops when the client goes away (the channel
//! closes), when the master stops, or when the token behind the stream stops working
//! (checked every poll, so a logout or password change ends it within a second).
//!
//! Frames, in order: `: keepalive`, then a `stats` and a `histogram` message; then every
//! [`POLL`] up to [`BATCH`] new rows (id above the cursor, the search filter applied) as
//! one `logs` message followed by fresh stats and histogram; without new rows, stats and
//! histogram every [`STATS_EVERY`] polls, and a `: keepalive` comment whenever nothing
//! was sent for [`KEEPALIVE`], so idle proxies do not cut the connection. A failed read
//! ends the stream with `event: error`. No `id:` lines: the client resumes with
//! `lastEventId` = the last row id it saw.
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::logs::{LogEntry, current_stats, filter, int};
use crate::roles::master::auth::{Session, Viewer, authenticate, bearer_of};
use crate::roles::master::error::{ApiError, BAD_CREDENTIALS, Detail, MUST_CHANGE, Params};
use crate::roles::master::live::tickets::{Grant, Slot};
use crate::roles::master::state::AppState;
use crate::store::LogFilter;

/// How often the stream looks for new rows.
pub const POLL: Duration = Duration::from_secs(1);
/// Most rows in one `logs` message.
pub const BATCH: u32 = 50;
/// Polls without rows between two stats refreshes.
pub const STATS_EVERY: u32 = 10;
/// Longest silence before a keep-alive comment.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Frames buffered per client before the stream waits for it.
const QUEUE: usize = 8;
/// The first frame, and the keep-alive comment.
const KEEPALIVE_FRAME: &[u8] = b": keepalive\n\n";
/// The frame that ends a stream on a failed read.
const ERROR_FRAME: &[u8] =
    b"event: error\ndata: {\"type\":\"error\",\"message\":\"Stream interrupted\"}\n\n";

/// `POST /auth/sse-ticket` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    /// Opaque, single use.
    pub ticket: String,
    /// Seconds it stays valid (60).
    pub expires_in: u64,
}

/// Query of `/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this row id (0 or absent: after the newest row).
    #[serde(rename = "lastEventId")]
    #[param(rename = "lastEventId")]
    pub last_event_id: Option<String>,
    /// Search text (engine.md §3.4).
    pub search: Option<String>,
    /// Earliest event time.
    pub start_time: Option<String>,
    /// Latest event time.
    pub end_time: Option<String>,
    /// A ticket from `/auth/sse-ticket`, instead of an `Authorization` header.
    pub ticket: Option<String>,
}

/// A single-use ticket that opens one stream within 60 s, for clients that cannot send
/// an `Authorization` header (`EventSource`).
#[utoipa::path(post, path = "/api/v1/auth/sse-ticket", tag = "stream",
    security(("bearer" = [])),
    responses((status = 200, body = TicketResponse), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 429, body = Detail)))]
pub async fn sse_ticket(
    State(state): State<AppState>,
    Viewer(session): Viewer,
    headers: HeaderMap,
) -> Result<Json<TicketResponse>, ApiError> {
    let token = bearer_of(&headers)
        .ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?
        .to_owned();
    let grant = Grant {
        uuid: session.user.uuid,
        role: session.user.role,
        token,
    };
    let ttl = state.live.tickets.ttl().as_secs();
    let ticket = state
        .live
        .tickets
        .issue(grant)
        .ok_or_else(|| ApiError::TooMany("Too many outstanding SSE tickets".into(), ttl))?;
    Ok(Json(TicketResponse {
        ticket,
        expires_in: ttl,
    }))
}

/// Who a stream is for: the session and the token to re-check.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    ticket: Option<&str>,
) -> Result<(Session, String), ApiError> {
    let deny = || ApiError::Unauthorized(BAD_CREDENTIALS);
    let (session, token) = match (bearer_of(headers), ticket) {
        (Some(token), _) => (authenticate(state, token).await?, token.to_owned()),
        (None, Some(ticket)) => {
            let grant = state.live.tickets.redeem(ticket).ok_or_else(deny)?;
            let session = authenticate(state, &grant.token).await?;
            if session.user.uuid != grant.uuid || session.user.role != grant.role {
                return Err(deny());
            }
            (session, grant.token)
        }
        // `?token=` is never read: tokens do not belong in URLs (and so in logs).
        (None, None) => return Err(deny()),
    };
    if session.user.must_change_password {
        return Err(ApiError::Forbidden(MUST_CHANGE));
    }
    Ok((session, token))
}

/// The live feed: stats, histogram and new events as server-sent events.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream",
    params(StreamQuery),
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream",
            description = "`: keepalive`, then `event: message` frames"),
        (status = 400, body = Detail), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 422, body = Detail),
        (status = 429, body = Detail)))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<StreamQuery>,
) -> Result<Response, ApiError> {
    let (session, token) = caller(&state, &headers, q.ticket.as_deref()).await?;
    let after = int(q.last_event_id, 0, 0..=i64::MAX)?;
    let filter = filter(q.search, q.start_time, q.end_time)?;
    let max = state.live.max_per_user;
    let slot = state
        .live
        .slots
        .take(&session.user.uuid, max)
        .ok_or_else(|| ApiError::TooMany(format!("SSE connection limit ({max}) reached"), 5))?;
    let after = match after {
        0 => state.db.read(|r| r.last_log_id()).await?,
        n => n,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    tokio::spawn(pump(state, token, filter, after, tx, slot));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = (StatusCode::OK, HttpBody::from_stream(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// `event: message` carrying `{"type": kind, "data": data}`.
fn message(kind: &str, data: &impl Serialize) -> Result<Bytes, ApiError> {
    let json = serde_json::to_string(&serde_json::json!({ "type": kind, "data": data }))
        .map_err(|e| ApiError::Internal(format!("frame: {e}")))?;
    Ok(Bytes::from(format!("event: message\ndata: {json}\n\n")))
}

/// The stats and histogram frames.
async fn overview(state: &AppState, filter: &LogFilter) -> Result<[Bytes; 2], ApiError> {
    let stats = current_stats(state).await?;
    let histogram = super::logs::buckets(state, filter.clone(), 15).await?;
    Ok([message("stats", &stats)?, message("histogram", &histogram)?])
}

/// Why a stream stopped early.
enum Stop {
    /// The client, the master or the token went away: nothing more to say.
    Quiet,
    /// A read failed: the client is told.
    Failed(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

/// Feeds one client until it leaves, the master stops or its token dies.
async fn pump(
    state: AppState,
    token: String,
    filter: LogFilter,
    after: i64,
    tx: mpsc::Sender<Bytes>,
    _slot: Slot,
) {
    if let Err(Stop::Failed(e)) = feed(&state, &token, &filter, after, &tx).await {
        tracing::warn!(error = ?e, "live stream interrupted");
        let _ = tx.send(Bytes::from_static(ERROR_FRAME)).await;
    }
}

/// The frames of [`pump`], per the module doc.
async fn feed(
    state: &AppState,
    token: &str,
    filter: &LogFilter,
    mut after: i64,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), Stop> {
    let send = |frame: Bytes| async move { tx.send(frame).await.map_err(|_| Stop::Quiet) };
    send(Bytes::from_static(KEEPALIVE_FRAME)).await?;
    for frame in overview(state, filter).await? {
        send(frame).await?;
    }
    let (mut idle_polls, mut last_sent) = (0u32, Instant::now());
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = tx.closed() => return Err(Stop::Quiet),
            () = state.shutdown.cancelled() => return Err(Stop::Quiet),
        }
        match authenticate(state, token).await {
            Ok(s) if !s.user.must_change_password => {}
            Ok(_) | Err(ApiError::Unauthorized(_)) => return Err(Stop::Quiet),
            Err(e) => return Err(e.into()),
        }
        let f = filter.clone();
        let rows = state
            .db
            .read(move |r| r.logs_matching_after(&f, after, BATCH))
            .await?;
        let mut frames = Vec::new();
        if let Some(last) = rows.last() {
            after = last.id;
            let entries: Vec<LogEntry> = rows.into_iter().map(LogEntry::from).collect();
            frames.push(message("logs", &entries)?);
            idle_polls = 0;
        } else {
            idle_polls += 1;
        }
        if frames.is_empty() && idle_polls < STATS_EVERY {
            if last_sent.elapsed() >= KEEPALIVE {
                send(Bytes::from_static(KEEPALIVE_FRAME)).await?;
                last_sent = Instant::now();
            }
            continue;
        }
        idle_polls = 0;
        frames.extend(overview(state, filter).await?);
        for frame in frames {
            send(frame).await?;
        }
        last_sent = Instant::now();
    }
}
