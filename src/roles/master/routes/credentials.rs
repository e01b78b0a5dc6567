//! `GET /credentials` (engine.md §3.5, §7.2): captured secrets, byte-exact in
//! `secret_b64`, most recently attempted first. Only the unfiltered total is cached (2 s),
//! so a new credential shows within 2 s of its event's commit.
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::attackers::{at_least, page, text};
use super::logs::MAX_SEARCH;
use crate::roles::master::auth::Viewer;
use crate::roles::master::error::{ApiError, Detail, Params};
use crate::roles::master::state::AppState;
use crate::store::CredentialRow;

/// A stored credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct Credential {
    /// Row id.
    pub id: i64,
    /// Source address (`Unknown` when the event had none).
    pub attacker_ip: String,
    /// The attacker's profile id, when profiled.
    pub attacker_uuid: Option<String>,
    /// Decky that captured it.
    pub decky_name: String,
    /// Service that captured it.
    pub service: String,
    /// Identity tried (`principal`, else `username`).
    pub principal: Option<String>,
    /// `plaintext`, `http_bearer`, `http_digest_md5`, …
    pub secret_kind: String,
    /// Hex SHA-256 of the exact secret bytes.
    pub secret_sha256: String,
    /// Base64 of the exact secret bytes.
    pub secret_b64: String,
    /// The secret with bytes outside 0x20..0x7e shown as `?`.
    pub secret_printable: String,
    /// Outcome the service reported.
    pub outcome: Option<String>,
    /// The event's parameters, ASCII-only JSON text.
    pub fields: String,
    /// First attempt.
    pub first_seen: String,
    /// Latest attempt.
    pub last_seen: String,
    /// Attempts with exactly this identity and secret.
    pub attempt_count: i64,
}

impl From<CredentialRow> for Credential {
    fn from(r: CredentialRow) -> Self {
        let c = r.credential;
        Self {
            id: r.id,
            attacker_ip: c.attacker_ip,
            attacker_uuid: c.attacker_uuid,
            decky_name: c.decky_name,
            service: c.service,
            principal: c.principal,
            secret_kind: c.secret_kind,
            secret_sha256: c.secret_sha256,
            secret_b64: c.secret_b64,
            secret_printable: c.secret_printable,
            outcome: c.outcome,
            fields: c.fields,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            attempt_count: r.attempt_count,
        }
    }
}

/// A page of credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialPage {
    /// Credentials matching the search.
    pub total: u64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page.
    pub data: Vec<Credential>,
}

/// Query of `/credentials`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialsQuery {
    /// Page size, 1..1000 (50).
    pub limit: Option<String>,
    /// Rows to skip, 0..2^31−1 (0).
    pub offset: Option<String>,
    /// Substring of address, principal, decky, service or printable secret.
    pub search: Option<String>,
}

/// Captured credentials, most recently attempted first.
#[utoipa::path(get, path = "/api/v1/credentials", tag = "attackers",
    params(CredentialsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CredentialPage), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    _: Viewer,
    Params(q): Params<CredentialsQuery>,
) -> Result<Json<CredentialPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let search = text(q.search, MAX_SEARCH)?;
    let total = match search.clone() {
        None => {
            state
                .caches
                .credentials_total
                .get_or_load(|| state.db.read(|r| r.count_credentials(None)))
                .await?
        }
        Some(s) => {
            state
                .db
                .read(move |r| r.count_credentials(Some(&s)))
                .await?
        }
    };
    // Both fit u32: 1..1000 and 0..2^31−1.
    let (l, o) = (limit as u32, offset as u32);
    let rows = state
        .db
        .read(move |r| r.credentials(search.as_deref(), l, o))
        .await?;
    Ok(Json(CredentialPage {
        total: at_least(total, offset, rows.len()),
        limit,
        offset,
        data: rows.into_iter().map(Credential::from).collect(),
    }))
}
