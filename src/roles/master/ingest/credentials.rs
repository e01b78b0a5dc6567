//! Credentials from events carrying the universal credential shape (engine.md §2.3,
//! §3.5): `secret_b64` is the exact secret, so the stored secret is byte-exact whatever
//! the encoding; `secret_printable` is recomputed from those bytes rather than trusted.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::clip;
use crate::store::{IngestRow, NewCredential};
use crate::syslog::Fields;

/// Longest `secret_b64` accepted (§3.5); longer secrets are dropped with a warning.
pub const MAX_B64: usize = 2048;
/// Longest principal kept, in bytes.
pub const MAX_PRINCIPAL: usize = 256;
/// Longest secret kind kept, in bytes.
pub const MAX_KIND: usize = 32;
/// Longest printable secret kept, in bytes.
pub const MAX_PRINTABLE: usize = 512;
/// Longest outcome kept, in bytes.
pub const MAX_OUTCOME: usize = 16;
/// Largest `fields` JSON kept with a credential; a larger one is stored as `{}`.
pub const MAX_FIELDS: usize = 8192;

/// Why an event's credential was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// `secret_b64` is not base64 of the standard alphabet.
    NotBase64,
    /// `secret_b64` is longer than [`MAX_B64`].
    TooLong,
}

/// The credential of `row`, if its fields carry `secret_b64`.
pub fn extract(row: &IngestRow, fields: &Fields) -> Option<Result<NewCredential, Dropped>> {
    let b64 = fields.get("secret_b64")?;
    Some(build(row, fields, b64))
}

fn build(row: &IngestRow, fields: &Fields, b64: &str) -> Result<NewCredential, Dropped> {
    if b64.len() > MAX_B64 {
        return Err(Dropped::TooLong);
    }
    if !is_b64_text(b64) {
        return Err(Dropped::NotBase64);
    }
    let secret = STANDARD.decode(b64).map_err(|_| Dropped::NotBase64)?;
    let principal = fields
        .get("principal")
        .or_else(|| fields.get("username"))
        .map(|p| clip(p, MAX_PRINCIPAL));
    let kind = fields
        .get("secret_kind")
        .filter(|k| !k.is_empty())
        .unwrap_or("plaintext");
    let mut json = ascii_json(fields);
    if json.len() > MAX_FIELDS {
        json = "{}".into();
    }
    Ok(NewCredential {
        attacker_ip: row.attacker_ip.clone(),
        attacker_uuid: None,
        decky_name: clip(&row.decky, super::MAX_NAME_BYTES),
        service: clip(&row.service, super::MAX_NAME_BYTES),
        principal,
        secret_kind: clip(kind, MAX_KIND),
        secret_sha256: hex::encode(Sha256::digest(&secret)),
        secret_b64: b64.to_owned(),
        secret_printable: crate::text::printable(&secret[..secret.len().min(MAX_PRINTABLE)]),
        outcome: fields.get("outcome").map(|o| clip(o, MAX_OUTCOME)),
        fields: json,
        seen: row.timestamp.clone(),
    })
}

/// `^[A-Za-z0-9+/]*={0,2}$` (§3.5), checked before decoding.
fn is_b64_text(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `fields` as JSON text with every non-ASCII character escaped (`\uXXXX`), so the stored
/// text is plain ASCII whatever the attacker typed.
pub fn ascii_json(fields: &Fields) -> String {
    let json = fields.to_json();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            // Outside strings JSON has no non-ASCII characters, so this is always
            // inside one, where the escape means the same character.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{self, fields};
    use super::*;

    fn row() -> IngestRow {
        test_support::row("ssh", "auth_attempt")
    }

    #[test]
    fn secrets_are_byte_exact_and_printable_is_recomputed() {
        let f = fields(&[
            ("username", "root"),
            ("secret_b64", "/wB0b29y"),
            ("secret_printable", "lies"),
        ]);
        let c = extract(&row(), &f).and_then(Result::ok);
        let c = c.unwrap_or_else(|| panic!("credential"));
        assert_eq!(c.secret_b64, "/wB0b29y");
        assert_eq!(c.secret_printable, "??toor");
        assert_eq!(c.principal.as_deref(), Some("root"));
        assert_eq!(c.secret_kind, "plaintext");
        assert_eq!(
            c.secret_sha256,
            hex::encode(Sha256::digest([0xff, 0x00, b't', b'o', b'o', b'r']))
        );
    }

    #[test]
    fn bad_base64_is_dropped_and_no_secret_means_no_credential() {
        let bad = |b: &str| extract(&row(), &fields(&[("secret_b64", b)]));
        assert_eq!(bad("a-b="), Some(Err(Dropped::NotBase64)));
        assert_eq!(bad("abc==="), Some(Err(Dropped::NotBase64)));
        assert_eq!(bad("abc"), Some(Err(Dropped::NotBase64)));
        assert_eq!(bad(&"A".repeat(MAX_B64 + 4)), Some(Err(Dropped::TooLong)));
        assert!(bad("").is_some_and(|c| c.is_ok()));
        assert_eq!(extract(&row(), &fields(&[("password", "x")])), None);
    }

    #[test]
    fn stored_fields_are_ascii() {
        let f = fields(&[("username", "jos\u{e9}\u{1f600}")]);
        let json = ascii_json(&f);
        assert!(json.is_ascii(), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back["username"], "jos\u{e9}\u{1f600}");
    }
}
