//! `/attackers` and its drill-down (engine.md §3.5, §7.2): profiles built by the
//! ingester's profiler, their commands and their captured files.
//!
//! The list carries the newest [`LIST_COMMANDS`] commands of each attacker (and the
//! count), so a page of 1000 stays small; the detail carries all of them (at most 200,
//! see `ingest::MAX_COMMANDS`) and `/commands` pages through them. Pages are read
//! fresh (an event shows within 2 s of its commit); only the unfiltered total is cached
//! (2 s). The original's `behavior` summary is not derived yet.
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::logs::{LogEntry, MAX_LIMIT, MAX_OFFSET, MAX_SEARCH, int, present};
use crate::roles::master::auth::Viewer;
use crate::roles::master::error::{ApiError, Detail, Params, Segment};
use crate::roles::master::state::AppState;
use crate::store::{AttackerQuery, AttackerRecord, AttackerSort, CommandEntry};

/// Commands shown per attacker in the list.
pub const LIST_COMMANDS: usize = 20;
/// Capture events returned by `/attackers/{uuid}/artifacts` (§3.5).
pub const MAX_ARTIFACTS: u32 = 200;
/// Longest service name accepted as a filter.
const MAX_SERVICE: usize = 64;

/// One command an attacker ran.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Command {
    /// Service it was typed into.
    pub service: String,
    /// Decky it ran on.
    pub decky: String,
    /// The command text.
    pub command: String,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
}

impl From<CommandEntry> for Command {
    fn from(c: CommandEntry) -> Self {
        Self {
            service: c.service,
            decky: c.decky,
            command: c.command,
            timestamp: c.timestamp,
        }
    }
}

/// One fingerprint seen from an attacker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fingerprint {
    /// Kind (`http_useragent`, `ja4h`, `ssh_client_version`, …).
    pub fingerprint_type: String,
    /// Value.
    pub value: String,
}

/// An attacker profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attacker {
    /// Profile id.
    pub uuid: String,
    /// Source address.
    pub ip: String,
    /// Earliest event, UTC `YYYY-MM-DD HH:MM:SS`.
    pub first_seen: String,
    /// Latest event.
    pub last_seen: String,
    /// Events from this address.
    pub event_count: i64,
    /// Distinct services touched.
    pub service_count: usize,
    /// Distinct deckies touched.
    pub decky_count: usize,
    /// Services touched, sorted.
    pub services: Vec<String>,
    /// Deckies touched, in first-contact order.
    pub deckies: Vec<String>,
    /// `d1 → d2 → d3` once two deckies were touched.
    pub traversal_path: Option<String>,
    /// Whether the attacker moved between deckies.
    pub is_traversal: bool,
    /// Credential attempts.
    pub credential_count: i64,
    /// Bounties stored.
    pub bounty_count: i64,
    /// Commands recorded (at most 200 are kept).
    pub command_count: usize,
    /// Commands, newest first (the newest 20 in lists).
    pub commands: Vec<Command>,
    /// Distinct fingerprints (detail only; empty in lists).
    pub fingerprints: Vec<Fingerprint>,
    /// When the profile last changed, UTC with microseconds.
    pub updated_at: String,
}

impl Attacker {
    /// The API view of `a`, with at most `commands` commands and optionally the
    /// fingerprints.
    fn of(a: AttackerRecord, commands: usize, fingerprints: bool) -> Self {
        let command_count = usize::try_from(a.command_count).unwrap_or(0);
        Self {
            service_count: a.services.len(),
            decky_count: a.deckies.len(),
            uuid: a.uuid,
            ip: a.ip,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            event_count: a.event_count,
            services: a.services,
            deckies: a.deckies,
            traversal_path: a.traversal_path,
            is_traversal: a.is_traversal,
            credential_count: a.credential_count,
            bounty_count: a.bounty_count,
            command_count,
            commands: a
                .commands
                .into_iter()
                .rev()
                .take(commands)
                .map(Command::from)
                .collect(),
            fingerprints: if fingerprints {
                a.fingerprints
                    .into_iter()
                    .map(|f| Fingerprint {
                        fingerprint_type: f.fingerprint_type,
                        value: f.value,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            updated_at: a.updated_at,
        }
    }
}

/// A page of attackers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttackerPage {
    /// Attackers matching the filter.
    pub total: u64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page.
    pub data: Vec<Attacker>,
}

/// A page of one attacker's commands.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandPage {
    /// Commands matching the filter.
    pub total: u64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page, newest first.
    pub data: Vec<Command>,
}

/// An attacker's capture events.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactList {
    /// Events returned (at most 200).
    pub total: u64,
    /// `file_captured` and `message_stored` events, newest first.
    pub data: Vec<LogEntry>,
}

/// Query of `/attackers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttackersQuery {
    /// Page size, 1..1000 (50).
    pub limit: Option<String>,
    /// Rows to skip, 0..2^31−1 (0).
    pub offset: Option<String>,
    /// Substring of the address, at most 512 characters.
    pub search: Option<String>,
    /// `recent` (default), `active` or `traversals`.
    pub sort_by: Option<String>,
    /// Only attackers that touched this service.
    pub service: Option<String>,
}

/// Query of `/attackers/{uuid}/commands`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandsQuery {
    /// Page size, 1..1000 (50).
    pub limit: Option<String>,
    /// Rows to skip (0).
    pub offset: Option<String>,
    /// Only commands typed into this service.
    pub service: Option<String>,
}

/// A text parameter of at most `max` characters (longer: 422).
pub(crate) fn text(value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match present(value) {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid()),
        v => Ok(v),
    }
}

/// `limit` (1..1000, 50) and `offset` (0..2^31−1, 0) of a page.
pub(crate) fn page(limit: Option<String>, offset: Option<String>) -> Result<(i64, i64), ApiError> {
    Ok((
        int(limit, 50, 1..=MAX_LIMIT)?,
        int(offset, 0, 0..=MAX_OFFSET)?,
    ))
}

/// A cached `total` never below what the fresh page itself proves exists.
pub(crate) fn at_least(total: u64, offset: i64, page: usize) -> u64 {
    total.max(offset.unsigned_abs() + page as u64)
}

/// The stored profile `uuid`, or 404.
async fn find(state: &AppState, uuid: String) -> Result<AttackerRecord, ApiError> {
    let not_found = || ApiError::NotFound("Attacker not found".into());
    if uuid.len() > 64 {
        return Err(not_found());
    }
    state
        .db
        .read(move |r| r.attacker(&uuid))
        .await?
        .ok_or_else(not_found)
}

/// Attacker profiles, filtered and sorted.
#[utoipa::path(get, path = "/api/v1/attackers", tag = "attackers",
    params(AttackersQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AttackerPage), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    _: Viewer,
    Params(q): Params<AttackersQuery>,
) -> Result<Json<AttackerPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let sort = match present(q.sort_by).as_deref() {
        None | Some("recent") => AttackerSort::Recent,
        Some("active") => AttackerSort::Active,
        Some("traversals") => AttackerSort::Traversals,
        Some(_) => return Err(ApiError::invalid()),
    };
    // Both fit u32: 1..1000 and 0..2^31−1.
    let query = AttackerQuery {
        search: text(q.search, MAX_SEARCH)?,
        service: text(q.service, MAX_SERVICE)?,
        sort,
        limit: limit as u32,
        offset: offset as u32,
    };
    let total = if query.is_unfiltered() {
        let q = query.clone();
        state
            .caches
            .attackers_total
            .get_or_load(|| state.db.read(move |r| r.count_attackers(&q)))
            .await?
    } else {
        let q = query.clone();
        state.db.read(move |r| r.count_attackers(&q)).await?
    };
    // Only the commands a list shows are read: a page of 1000 profiles stays small.
    let rows = state
        .db
        .read(move |r| r.attacker_page(&query, LIST_COMMANDS as u32, false))
        .await?;
    Ok(Json(AttackerPage {
        total: at_least(total, offset, rows.len()),
        limit,
        offset,
        data: rows
            .into_iter()
            .map(|a| Attacker::of(a, LIST_COMMANDS, false))
            .collect(),
    }))
}

/// One attacker profile with every command and fingerprint kept.
#[utoipa::path(get, path = "/api/v1/attackers/{uuid}", tag = "attackers",
    params(("uuid" = String, Path, description = "profile id")),
    security(("bearer" = [])),
    responses((status = 200, body = Attacker), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail)))]
pub async fn detail(
    State(state): State<AppState>,
    _: Viewer,
    Segment(uuid): Segment<String>,
) -> Result<Json<Attacker>, ApiError> {
    let a = find(&state, uuid).await?;
    Ok(Json(Attacker::of(a, usize::MAX, true)))
}

/// A page of one attacker's commands, newest first.
#[utoipa::path(get, path = "/api/v1/attackers/{uuid}/commands", tag = "attackers",
    params(("uuid" = String, Path, description = "profile id"), CommandsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CommandPage), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 404, body = Detail), (status = 422, body = Detail)))]
pub async fn commands(
    State(state): State<AppState>,
    _: Viewer,
    Segment(uuid): Segment<String>,
    Params(q): Params<CommandsQuery>,
) -> Result<Json<CommandPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let service = text(q.service, MAX_SERVICE)?;
    let a = find(&state, uuid).await?;
    let matching: Vec<CommandEntry> = a
        .commands
        .into_iter()
        .rev()
        .filter(|c| service.as_ref().is_none_or(|s| *s == c.service))
        .collect();
    Ok(Json(CommandPage {
        total: matching.len() as u64,
        limit,
        offset,
        data: matching
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(Command::from)
            .collect(),
    }))
}

/// The files and messages captured from one attacker (at most 200), newest first.
#[utoipa::path(get, path = "/api/v1/attackers/{uuid}/artifacts", tag = "attackers",
    params(("uuid" = String, Path, description = "profile id")),
    security(("bearer" = [])),
    responses((status = 200, body = ArtifactList), (status = 401, body = Detail),
        (status = 403, body = Detail), (status = 404, body = Detail)))]
pub async fn artifacts(
    State(state): State<AppState>,
    _: Viewer,
    Segment(uuid): Segment<String>,
) -> Result<Json<ArtifactList>, ApiError> {
    let ip = find(&state, uuid).await?.ip;
    let rows = state
        .db
        .read(move |r| r.captures_of(&ip, MAX_ARTIFACTS))
        .await?;
    Ok(Json(ArtifactList {
        total: rows.len() as u64,
        data: rows.into_iter().map(LogEntry::from).collect(),
    }))
}
