//! `GET /bounty` (engine.md §3.5, §7.2): what ingestion extracted (fingerprints, user
//! agents, captured files and mail), newest first, with the payload as a JSON object.
//! The default page (50/0, no filter) is cached 5 s.
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::attackers::{page, text};
use super::logs::MAX_SEARCH;
use crate::roles::master::auth::Viewer;
use crate::roles::master::error::{ApiError, Detail, Params};
use crate::roles::master::state::AppState;
use crate::store::BountyRow;

/// Longest `bounty_type` filter accepted.
const MAX_TYPE: usize = 64;

/// A stored bounty.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bounty {
    /// Row id.
    pub id: i64,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Source address.
    pub attacker_ip: String,
    /// `fingerprint` or `artifact`.
    pub bounty_type: String,
    /// The extracted data.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<BountyRow> for Bounty {
    fn from(r: BountyRow) -> Self {
        let b = r.bounty;
        Self {
            id: r.id,
            payload: serde_json::from_str(&b.payload).unwrap_or(serde_json::Value::Null),
            timestamp: b.timestamp,
            decky: b.decky,
            service: b.service,
            attacker_ip: b.attacker_ip,
            bounty_type: b.bounty_type,
        }
    }
}

/// A page of bounties.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BountyPage {
    /// Bounties matching the filter.
    pub total: u64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page, newest first.
    pub data: Vec<Bounty>,
}

/// Query of `/bounty`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BountyQuery {
    /// Page size, 1..1000 (50).
    pub limit: Option<String>,
    /// Rows to skip, 0..2^31−1 (0).
    pub offset: Option<String>,
    /// Only this type (`fingerprint`, `artifact`).
    pub bounty_type: Option<String>,
    /// Substring of decky, service, address or payload.
    pub search: Option<String>,
}

/// Extracted bounties, newest first.
#[utoipa::path(get, path = "/api/v1/bounty", tag = "attackers",
    params(BountyQuery),
    security(("bearer" = [])),
    responses((status = 200, body = BountyPage), (status = 400, body = Detail),
        (status = 401, body = Detail), (status = 403, body = Detail),
        (status = 422, body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    _: Viewer,
    Params(q): Params<BountyQuery>,
) -> Result<Json<BountyPage>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let kind = text(q.bounty_type, MAX_TYPE)?;
    let search = text(q.search, MAX_SEARCH)?;
    let is_default = limit == 50 && offset == 0 && kind.is_none() && search.is_none();
    let db = &state.db;
    let load = || async move {
        let (k, s) = (kind.clone(), search.clone());
        let total = db
            .read(move |r| r.count_bounties(k.as_deref(), s.as_deref()))
            .await?;
        // Both fit u32: 1..1000 and 0..2^31−1.
        let (l, o) = (limit as u32, offset as u32);
        let rows = db
            .read(move |r| r.bounties(kind.as_deref(), search.as_deref(), l, o))
            .await?;
        Ok::<_, ApiError>(BountyPage {
            total,
            limit,
            offset,
            data: rows.into_iter().map(Bounty::from).collect(),
        })
    };
    let page = if is_default {
        state.caches.bounty_page.get_or_load(load).await?
    } else {
        load().await?
    };
    Ok(Json(page))
}
