//! One-time enrolment tokens (swarm.md §6.4): in process memory, five minutes, one
//! payload download each.
//!
//! A token is the only capability the unauthenticated download routes check, so it is 24
//! random bytes (32 base64url characters) and compared as a map key, never logged. The
//! payload holds the worker's private key: it is handed out at most once (the first
//! `.tgz` download takes it out of the map under the lock, so of two concurrent callers
//! exactly one wins) and dropped with the token when it expires. The script and the
//! binary stay downloadable until then. At most [`MAX_OUTSTANDING`] tokens are live;
//! expired ones are swept on every use, so memory stays bounded without a timer task.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use tokio::time::Instant;

/// How long a token lives.
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Most tokens live at once.
pub const MAX_OUTSTANDING: usize = 64;

/// What a token gives access to.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The host being enrolled.
    pub host_uuid: String,
    /// The bootstrap script.
    pub script: Bytes,
    /// The payload, until downloaded.
    pub payload: Option<Bytes>,
    /// When the token stops working.
    pub expires: Instant,
}

/// The live tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    live: Mutex<HashMap<String, Grant>>,
}

/// A fresh token: 24 random bytes, base64url without padding.
pub fn new_token() -> String {
    let bytes = hex::decode(crate::roles::master::random_hex(24)).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Tokens {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        let mut map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, g| g.expires > now);
        map
    }

    /// Registers `grant` under `token` (from [`new_token`]); `false` when too many are
    /// live.
    pub fn insert(&self, token: String, grant: Grant) -> bool {
        let mut map = self.locked();
        if map.len() >= MAX_OUTSTANDING {
            return false;
        }
        map.insert(token, grant);
        true
    }

    /// The script of a live token whose payload was not downloaded yet.
    pub fn script(&self, token: &str) -> Option<Bytes> {
        let map = self.locked();
        map.get(token)
            .filter(|g| g.payload.is_some())
            .map(|g| g.script.clone())
    }

    /// Takes the payload of a live token (once) and its host.
    pub fn take_payload(&self, token: &str) -> Option<(String, Bytes)> {
        let mut map = self.locked();
        let grant = map.get_mut(token)?;
        let payload = grant.payload.take()?;
        Some((grant.host_uuid.clone(), payload))
    }

    /// Whether `token` is live (the binary download).
    pub fn is_live(&self, token: &str) -> bool {
        self.locked().contains_key(token)
    }

    /// Forgets the tokens of `host_uuid` (decommissioned before it enrolled).
    pub fn revoke_host(&self, host_uuid: &str) {
        self.locked().retain(|_, g| g.host_uuid != host_uuid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(ttl: Duration) -> Grant {
        Grant {
            host_uuid: "u1".into(),
            script: Bytes::from_static(b"#!/bin/sh\n"),
            payload: Some(Bytes::from_static(b"tgz")),
            expires: Instant::now() + ttl,
        }
    }

    #[tokio::test]
    async fn a_payload_is_handed_out_once_and_tokens_expire() {
        let tokens = Tokens::default();
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert!(tokens.insert(t.clone(), grant(TOKEN_TTL)));
        assert!(tokens.script(&t).is_some());
        assert_eq!(tokens.take_payload(&t).map(|p| p.0), Some("u1".into()));
        assert!(tokens.take_payload(&t).is_none(), "second download");
        assert!(tokens.script(&t).is_none(), "script gone with the payload");
        assert!(tokens.is_live(&t), "the binary stays until expiry");
        assert!(tokens.script("nope").is_none());

        let short = new_token();
        assert!(tokens.insert(short.clone(), grant(Duration::from_millis(1))));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(tokens.take_payload(&short).is_none(), "expired");
        for _ in 1..MAX_OUTSTANDING {
            assert!(tokens.insert(new_token(), grant(TOKEN_TTL)));
        }
        assert!(!tokens.insert(new_token(), grant(TOKEN_TTL)), "bounded");
        tokens.revoke_host("u1");
        assert!(!tokens.is_live(&t));
    }
}
