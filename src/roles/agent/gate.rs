//! Who may drive the agent: the master identity, and only it.
//!
//! Property kept (spec/README "stricter"): a certificate of another worker, of this
//! worker itself, or of an updater can never deploy, tear down or self-destruct. The TLS
//! layer already refused anything not issued by the decnet CA or without the clientAuth
//! EKU (updater and swarmctl certificates); this gate then requires CN `decnet-master`
//! and, when the bundle holds `master.fingerprint`, exactly that certificate, so a
//! re-issued (or stolen-then-replaced) master identity is refused too. The pin file is
//! read on every request: re-enrolling the worker takes effect without a restart, and
//! a pin file that cannot be read fails closed.
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AgentState;
use super::api::detail;
use crate::https::Peer;
use crate::pki::{self, MASTER_CN};

/// The 403 text of every refused caller.
pub const MASTER_REQUIRED: &str = "master certificate required";

/// Lets the request through only when its peer is the (pinned) master identity.
pub async fn require_master(State(state): State<AgentState>, req: Request, next: Next) -> Response {
    let identity = req
        .extensions()
        .get::<Peer>()
        .and_then(|p| p.identity.clone());
    let Some(identity) = identity else {
        return refuse();
    };
    if identity.cn != MASTER_CN {
        tracing::warn!(cn = %identity.cn, fingerprint = %identity.fingerprint, "refused a non-master certificate");
        return refuse();
    }
    match pki::read_master_pin(&state.settings().agent_dir) {
        Ok(None) => {}
        Ok(Some(pin)) if pin == identity.fingerprint => {}
        Ok(Some(pin)) => {
            tracing::warn!(expected = %pin, got = %identity.fingerprint, "refused a master certificate that is not the pinned one");
            return refuse();
        }
        Err(e) => {
            tracing::error!(error = %e, "master pin unreadable; refusing every caller");
            return refuse();
        }
    }
    next.run(req).await
}

fn refuse() -> Response {
    detail(StatusCode::FORBIDDEN, MASTER_REQUIRED).into_response()
}
