//! `/stats`, `/logs` and `/logs/histogram` (engine.md §3.4, §7.2).
//!
//! Query strings are read as text first, so that the spec's absent spellings (`null`,
//! `NULL`, `undefined`, empty) mean "absent" and so that a wrong type is a 400 while an
//! out-of-range number is a 422. The unfiltered total (2 s), the stats (5 s) and the
//! default histogram (5 s) are cached with single flight; filtered requests bypass.
//!
//! `/logs` costs, per request, a page query (50 index entries and their rows), 550 small
//! strings and a 30–40 KiB JSON body, against a few microseconds for a cached `/stats`.
//! The unfiltered first page at the default size is what every dashboard polls, so its
//! finished body is cached too, for [`PAGE_TTL`], with single flight: concurrent
//! pollers share one query and one serialisation, and a body is sent by reference
//! count. A page is at most [`PAGE_TTL`] behind the store, which the live stream covers
//! (new events reach the dashboard over `/stream` at once). Every other page runs its
//! count and its page query in one blocking job and serialises there, off the runtime.
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::roles::master::auth::Viewer;
use crate::roles::master::error::{ApiError, Detail, Params};
use crate::roles::master::state::AppState;
use crate::store::{LogFilter, LogRow};

/// Longest search text accepted.
pub const MAX_SEARCH: usize = 512;
/// Largest page.
pub const MAX_LIMIT: i64 = 1000;
/// Page size when `limit` is absent (and the one the dashboard asks for).
pub const DEFAULT_LIMIT: i64 = 50;
/// How long the unfiltered first page's body is served from the cache.
pub const PAGE_TTL: Duration = Duration::from_secs(1);
/// Largest offset (2^31 − 1).
pub const MAX_OFFSET: i64 = i32::MAX as i64;
/// Widest histogram bucket accepted, in minutes (a year).
pub const MAX_INTERVAL: i64 = 525_600;

/// The overview counters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// Stored events.
    pub total_logs: u64,
    /// Distinct attacker addresses.
    pub unique_attackers: u64,
    /// Deckies of the deployed fleet.
    pub active_deckies: u64,
    /// Deckies deployed (fleet and topologies).
    pub deployed_deckies: u64,
}

/// One histogram bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bucket {
    /// Bucket start, UTC `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    /// Events in it.
    pub count: u64,
}

/// The histogram.
pub type Histogram = Vec<Bucket>;

/// A stored event.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// Row id.
    pub id: i64,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Event type.
    pub event_type: String,
    /// Attacker address or `Unknown`.
    pub attacker_ip: String,
    /// The line as received.
    pub raw_line: String,
    /// SD parameters as JSON object text.
    pub fields: String,
    /// Free text.
    pub msg: Option<String>,
    /// OpenTelemetry trace id.
    pub trace_id: Option<String>,
    /// OpenTelemetry span id.
    pub span_id: Option<String>,
}

impl From<LogRow> for LogEntry {
    fn from(r: LogRow) -> Self {
        Self {
            id: r.id,
            timestamp: r.timestamp,
            decky: r.decky,
            service: r.service,
            event_type: r.event_type,
            attacker_ip: r.attacker_ip,
            raw_line: r.raw_line,
            fields: r.fields,
            msg: r.msg,
            trace_id: r.trace_id,
            span_id: r.span_id,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Events matching the filter.
    pub total: u64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page, newest first.
    pub data: Vec<LogEntry>,
}

/// Query of `/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Page size, 1..1000 (50).
    pub limit: Option<String>,
    /// Rows to skip, 0..2^31−1 (0).
    pub offset: Option<String>,
    /// Search text (engine.md §3.4), at most 512 characters.
    pub search: Option<String>,
    /// Earliest event time (`YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM]`).
    pub start_time: Option<String>,
    /// Latest event time.
    pub end_time: Option<String>,
}

/// Query of `/logs/histogram`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistogramQuery {
    /// Search text.
    pub search: Option<String>,
    /// Earliest event time.
    pub start_time: Option<String>,
    /// Latest event time.
    pub end_time: Option<String>,
    /// Bucket width in minutes, at least 1 (15).
    pub interval_minutes: Option<String>,
}

/// `value` unless it is one of the spec's spellings of "absent".
pub fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !matches!(v.as_str(), "" | "null" | "NULL" | "undefined"))
}

/// An integer parameter: absent → `default`, not an integer → 400, outside `range` → 422.
pub fn int(
    value: Option<String>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    let Some(v) = present(value) else {
        return Ok(default);
    };
    let n: i64 = v.trim().parse().map_err(|_| ApiError::schema())?;
    if !range.contains(&n) {
        return Err(ApiError::invalid());
    }
    Ok(n)
}

/// The filter of a search text and time bounds; too long a search or a bad time is a 422.
pub fn filter(
    search: Option<String>,
    start: Option<String>,
    end: Option<String>,
) -> Result<LogFilter, ApiError> {
    let search = present(search);
    if search
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SEARCH)
    {
        return Err(ApiError::invalid());
    }
    LogFilter::parse(
        search.as_deref(),
        present(start).as_deref(),
        present(end).as_deref(),
    )
    .map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// The overview counters: events, attackers, deckies (cached 5 s).
#[utoipa::path(get, path = "/api/v1/stats", tag = "logs",
    security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 401, body = Detail),
        (status = 403, body = Detail)))]
pub async fn stats(State(state): State<AppState>, _: Viewer) -> Result<Json<Stats>, ApiError> {
    Ok(Json(current_stats(&state).await?))
}

/// The overview counters through their 5 s cache (also the live stream's).
pub async fn current_stats(state: &AppState) -> Result<Stats, ApiError> {
    let home = state.settings.home.clone();
    let db = &state.db;
    state
        .caches
        .stats
        .get_or_load(|| async move {
            let counts = db.read(|r| r.log_counts()).await?;
            let deckies = tokio::task::spawn_blocking(move || {
                crate::engine::state::load(&crate::engine::state::path_in(&home))
                    .map(|s| s.map_or(0, |s| s.config.deckies.len() as u64))
            })
            .await
            .map_err(|e| ApiError::Internal(format!("state task: {e}")))?
            .map_err(|e| ApiError::Internal(format!("fleet state: {e}")))?;
            Ok::<_, ApiError>(Stats {
                total_logs: counts.total_logs,
                unique_attackers: counts.unique_attackers,
                active_deckies: deckies,
                deployed_deckies: deckies,
            })
        })
        .await
}

/// A page of stored events matching a search, newest first.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    params(LogsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = LogPage), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn logs(
    State(state): State<AppState>,
    _: Viewer,
    Params(q): Params<LogsQuery>,
) -> Result<Response, ApiError> {
    let limit = int(q.limit, DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let offset = int(q.offset, 0, 0..=MAX_OFFSET)?;
    let filter = filter(q.search, q.start_time, q.end_time)?;
    let body = if filter.is_empty() && offset == 0 && limit == DEFAULT_LIMIT {
        state
            .caches
            .logs_page
            .get_or_load(|| page(&state, filter, limit, offset))
            .await?
    } else {
        page(&state, filter, limit, offset).await?
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The JSON body of one page: the unfiltered total through its 2 s cache, a filtered
/// one counted in the same blocking job as the page.
async fn page(
    state: &AppState,
    filter: LogFilter,
    limit: i64,
    offset: i64,
) -> Result<Bytes, ApiError> {
    let total = if filter.is_empty() {
        Some(
            state
                .caches
                .logs_total
                .get_or_load(|| state.db.read(|r| r.count_logs()))
                .await?,
        )
    } else {
        None
    };
    // Both fit u32: 1..1000 and 0..2^31−1.
    let (l, o) = (limit as u32, offset as u32);
    let body = state
        .db
        .read(move |r| {
            let total = match total {
                Some(n) => n,
                None => r.count_matching(&filter)?,
            };
            let rows = r.search_logs(&filter, l, o)?;
            Ok(serde_json::to_vec(&LogPage {
                total,
                limit,
                offset,
                data: rows.into_iter().map(LogEntry::from).collect(),
            }))
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("encoding a log page: {e}")))?;
    Ok(Bytes::from(body))
}

/// Event counts per time bucket, oldest first.
#[utoipa::path(get, path = "/api/v1/logs/histogram", tag = "logs",
    params(HistogramQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Bucket>), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn histogram(
    State(state): State<AppState>,
    _: Viewer,
    Params(q): Params<HistogramQuery>,
) -> Result<Json<Histogram>, ApiError> {
    let interval = int(q.interval_minutes, 15, 1..=MAX_INTERVAL)?;
    let filter = filter(q.search, q.start_time, q.end_time)?;
    Ok(Json(buckets(&state, filter, interval).await?))
}

/// The histogram of `filter` in `interval`-minute buckets; the default one (no filter,
/// 15 minutes) through its 5 s cache (also the live stream's).
pub async fn buckets(
    state: &AppState,
    filter: LogFilter,
    interval: i64,
) -> Result<Histogram, ApiError> {
    let db = &state.db;
    let load = |filter: LogFilter| async move {
        let buckets = db
            .read(move |r| r.histogram(&filter, interval as u32))
            .await?;
        Ok::<_, ApiError>(
            buckets
                .into_iter()
                .map(|b| Bucket {
                    time: b.time,
                    count: b.count,
                })
                .collect::<Histogram>(),
        )
    };
    if filter.is_empty() && interval == 15 {
        state.caches.histogram.get_or_load(|| load(filter)).await
    } else {
        load(filter).await
    }
}
