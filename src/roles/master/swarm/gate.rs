//! [`Operator`]: who may drive the controller's operator routes (swarm.md §5.2, stricter
//! per spec/README.md): an admin JWT first, then the transport. Over TLS the client
//! certificate's CN must be `decnet-master` or `swarmctl`; without a certificate only a
//! loopback peer is accepted. Anything else, including a worker's certificate, is 403.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::super::auth::{Admin, Session};
use super::super::error::ApiError;
use super::super::state::AppState;
use crate::https::Peer;
use crate::pki::{MASTER_CN, SWARMCTL_CN};

/// The 403 text of the transport gate.
pub const OPERATOR_REQUIRED: &str = "operator certificate required";

/// An admin session that came through an operator's transport.
#[derive(Debug)]
pub struct Operator(pub Session);

/// Whether `peer` may carry operator requests.
pub fn is_operator(peer: Option<&Peer>) -> bool {
    match peer {
        Some(Peer {
            identity: Some(id), ..
        }) => id.cn == MASTER_CN || id.cn == SWARMCTL_CN,
        Some(p) => p.is_loopback(),
        // Not served through `https::serve`: nothing is known of the peer, so refuse.
        None => false,
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Admin(session) = Admin::from_request_parts(parts, state).await?;
        if !is_operator(parts.extensions.get::<Peer>()) {
            return Err(ApiError::Forbidden(OPERATOR_REQUIRED));
        }
        Ok(Self(session))
    }
}
