//! HS256 JSON Web Tokens with exactly the claims of engine.md §7.1, on `ring`'s HMAC.
//!
//! Written out rather than pulled in: the format is small, and owning it keeps every
//! check in view. What each check keeps:
//! - The header must be `{"alg":"HS256","typ":"JWT"}`-shaped with `alg` exactly `HS256`:
//!   no `none`, no algorithm confusion.
//! - The signature is verified (constant time, `ring::hmac::verify`) before the claims
//!   are parsed, so unauthenticated JSON never reaches serde beyond the header.
//! - `exp`, `iat`, `iss`, `aud`, `typ`, `uuid` and `jti` are all required; `iss` must be
//!   `decnet`, `aud` `decnet-dashboard`, `typ` `access`, and `exp` in the future.
//!
//! `iat` carries milliseconds (a NumericDate may be fractional, RFC 7519 §2), so a
//! password change kills every token issued before it, even within the same second.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The issuer every token names.
pub const ISSUER: &str = "decnet";
/// The audience every token names.
pub const AUDIENCE: &str = "decnet-dashboard";
/// The only token type the API accepts.
pub const ACCESS: &str = "access";

/// Longest token accepted, in bytes: ours are about 300.
const MAX_TOKEN: usize = 4096;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The user's uuid.
    pub uuid: String,
    /// Random token id, the unit of logout.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch with milliseconds.
    pub iat: f64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Always [`ACCESS`].
    pub typ: String,
}

impl Claims {
    /// The issue time in whole milliseconds.
    pub fn iat_ms(&self) -> i64 {
        (self.iat * 1000.0).round() as i64
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs `claims` with `key`.
pub fn encode(claims: &Claims, key: &hmac::Key) -> String {
    // Serialising a struct of strings and numbers cannot fail.
    let body = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = URL_SAFE_NO_PAD.encode(HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(body));
    let tag = hmac::sign(key, token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    token
}

/// The claims of `token` if it is signed by `key`, well-formed and unexpired at
/// `now_secs`; `None` for any failure (the caller answers one 401 for all).
pub fn decode(token: &str, key: &hmac::Key, now_secs: i64) -> Option<Claims> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let (header, body, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.alg != "HS256" {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let signed = &token[..token.len() - token.rsplit('.').next()?.len() - 1];
    hmac::verify(key, signed.as_bytes(), &sig).ok()?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    let ok = claims.iss == ISSUER
        && claims.aud == AUDIENCE
        && claims.typ == ACCESS
        && !claims.uuid.is_empty()
        && !claims.jti.is_empty()
        && claims.iat.is_finite()
        && claims.exp > now_secs;
    ok.then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            uuid: "u".into(),
            jti: "j".into(),
            exp,
            iat: 1000.5,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: ACCESS.into(),
        }
    }

    #[test]
    fn a_signed_token_round_trips_and_anything_else_fails() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef");
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another key, also 32 bytes long!");
        let t = encode(&claims(2000), &key);
        assert_eq!(decode(&t, &key, 1999), Some(claims(2000)));
        assert_eq!(claims(1).iat_ms(), 1_000_500);
        assert_eq!(decode(&t, &key, 2000), None, "expired");
        assert_eq!(decode(&t, &other, 1999), None, "wrong key");
        let mut parts: Vec<&str> = t.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        parts[0] = none.as_str();
        assert_eq!(decode(&parts.join("."), &key, 1999), None, "alg none");
        let mut wrong = claims(2000);
        wrong.aud = "elsewhere".into();
        assert_eq!(decode(&encode(&wrong, &key), &key, 1999), None, "audience");
        assert_eq!(decode("a.b", &key, 0), None);
        assert_eq!(decode("", &key, 0), None);
    }
}
