//! Bounty extraction (engine.md §3.5): per event, the user agent of its HTTP headers,
//! protocol fingerprints, and the files and messages a decky captured.
//!
//! Payloads are JSON objects built here from a fixed set of keys, each value clipped to
//! [`MAX_VALUE`] bytes: an attacker controls the values, never the shape or the size.
//! The same headers go through the proxy-header analysis ([`super::proxy`], `ip_leak`).
//! The prober's active fingerprints (JARM, HASSH server, TCP/ICMP) are not derived yet:
//! nothing in decnet emits them so far.
use serde_json::{Map, Value};

use super::clip;
use super::{proxy, useragent};
use crate::store::{FingerprintEntry, IngestRow, NewBounty};
use crate::syslog::Fields;

/// Longest payload value kept, in bytes.
pub const MAX_VALUE: usize = 512;
/// Largest `headers` JSON text parsed for a user agent.
pub const MAX_HEADERS: usize = 16 * 1024;

/// One bounty and, for fingerprints, the entry an attacker profile lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The row to store.
    pub bounty: NewBounty,
    /// The profile's view of it, for `fingerprint` bounties.
    pub fingerprint: Option<FingerprintEntry>,
}

/// Fingerprint events: (event type, service or any, fingerprint type, field with the value).
const FINGERPRINTS: &[(&str, Option<&str>, &str, &str)] = &[
    ("http_request_fingerprint", None, "ja4h", "ja4h"),
    ("http2_settings", None, "http2_settings", "settings"),
    ("http3_settings", None, "http3_settings", "settings"),
    ("quic_client_hello", None, "ja4_quic", "ja4"),
    (
        "version",
        Some("vnc"),
        "vnc_client_version",
        "client_version",
    ),
    (
        "client_version",
        Some("ssh"),
        "ssh_client_version",
        "version",
    ),
    ("tls_client_hello", Some("sniffer"), "ja3", "ja3"),
    ("tls_client_hello", Some("sniffer"), "ja4", "ja4"),
    ("tls_client_hello", Some("https"), "ja3", "ja3"),
    ("tls_client_hello", Some("https"), "ja4", "ja4"),
    (
        "tls_session",
        Some("sniffer"),
        "tls_resumption",
        "resumption",
    ),
    (
        "tls_certificate",
        Some("sniffer"),
        "tls_certificate",
        "fingerprint",
    ),
];

/// Fields copied into an `artifact` bounty, per capture event and its `kind`.
const FILE_KEYS: &[&str] = &[
    "stored_as",
    "sha256",
    "size",
    "orig_path",
    "attribution",
    "writer_comm",
];
const MAIL_KEYS: &[&str] = &[
    "stored_as",
    "sha256",
    "size",
    "subject",
    "from_hdr",
    "to_hdr",
    "mail_from",
    "rcpt_to",
    "attachment_count",
    "content_type",
];

/// Every bounty of `row`.
pub fn extract(row: &IngestRow, fields: &Fields) -> Vec<Found> {
    let mut out = Vec::new();
    let headers = fields
        .get("headers")
        .filter(|h| h.len() <= MAX_HEADERS)
        .and_then(|h| serde_json::from_str::<Map<String, Value>>(h).ok());
    if let Some(found) = user_agent(row, fields, headers.as_ref()) {
        out.push(found);
    }
    if let Some(p) = headers
        .as_ref()
        .and_then(|h| proxy::ip_leak(&row.attacker_ip, h))
    {
        out.push(Found {
            bounty: bounty(row, "ip_leak", p),
            fingerprint: None,
        });
    }
    for &(event, service, kind, key) in FINGERPRINTS {
        if row.event_type != event || service.is_some_and(|s| s != row.service) {
            continue;
        }
        if let Some(value) = fields.get(key).filter(|v| !v.is_empty()) {
            let mut p = Map::new();
            put(&mut p, "fingerprint_type", kind);
            put(&mut p, "value", value);
            out.push(fingerprint(row, kind, value, p));
        }
    }
    let capture = match row.event_type.as_str() {
        "file_captured" => Some(("file", FILE_KEYS)),
        "message_stored" => Some(("mail", MAIL_KEYS)),
        _ => None,
    };
    if let Some((kind, keys)) = capture
        && fields.get("stored_as").is_some_and(|s| !s.is_empty())
    {
        let mut p = Map::new();
        put(&mut p, "kind", kind);
        for &k in keys {
            if let Some(v) = fields.get(k) {
                put(&mut p, k, v);
            }
        }
        out.push(Found {
            bounty: bounty(row, "artifact", p),
            fingerprint: None,
        });
    }
    out
}

/// The `http_useragent` fingerprint of a `headers` object with a `User-Agent` (any
/// casing; an empty value counts), or of an explicit `user_agent` field.
fn user_agent(
    row: &IngestRow,
    fields: &Fields,
    headers: Option<&Map<String, Value>>,
) -> Option<Found> {
    let from_headers = headers.and_then(|headers| {
        headers.iter().find_map(|(k, v)| match v {
            Value::String(s) if k.eq_ignore_ascii_case("user-agent") => Some(s.clone()),
            _ => None,
        })
    });
    let value = from_headers.or_else(|| fields.get("user_agent").map(str::to_owned))?;
    let verdict = useragent::classify(&value);
    let mut p = Map::new();
    put(&mut p, "fingerprint_type", "http_useragent");
    put(&mut p, "value", &value);
    put(&mut p, "category", verdict.category);
    p.insert(
        "tool".into(),
        verdict
            .tool
            .map_or(Value::Null, |t| Value::String(t.into())),
    );
    p.insert(
        "signals".into(),
        Value::Array(
            verdict
                .signals
                .iter()
                .map(|s| Value::String((*s).into()))
                .collect(),
        ),
    );
    for k in ["method", "path"] {
        if let Some(v) = fields.get(k) {
            put(&mut p, k, v);
        }
    }
    Some(fingerprint(row, "http_useragent", &value, p))
}

fn put(p: &mut Map<String, Value>, key: &str, value: &str) {
    p.insert(key.into(), Value::String(clip(value, MAX_VALUE)));
}

fn fingerprint(row: &IngestRow, kind: &str, value: &str, payload: Map<String, Value>) -> Found {
    Found {
        bounty: bounty(row, "fingerprint", payload),
        fingerprint: Some(FingerprintEntry {
            fingerprint_type: kind.into(),
            value: clip(value, MAX_VALUE),
        }),
    }
}

fn bounty(row: &IngestRow, bounty_type: &str, payload: Map<String, Value>) -> NewBounty {
    NewBounty {
        timestamp: row.timestamp.clone(),
        decky: clip(&row.decky, super::MAX_NAME_BYTES),
        service: clip(&row.service, super::MAX_NAME_BYTES),
        attacker_ip: row.attacker_ip.clone(),
        bounty_type: bounty_type.into(),
        payload: Value::Object(payload).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{fields, row};
    use super::*;

    fn payload(f: &Found) -> Value {
        serde_json::from_str(&f.bounty.payload).unwrap_or_default()
    }

    #[test]
    fn user_agents_in_any_casing_and_empty_ones_count() {
        let f = fields(&[
            ("method", "GET"),
            ("path", "/"),
            ("headers", r#"{"Host":"x","user-agent":"curl/8.5.0"}"#),
        ]);
        let found = extract(&row("http", "request"), &f);
        assert_eq!(found.len(), 1);
        let p = payload(&found[0]);
        assert_eq!(p["category"], "cli");
        assert_eq!(p["tool"], "curl");
        assert_eq!(p["method"], "GET");
        assert_eq!(found[0].bounty.bounty_type, "fingerprint");
        let empty = fields(&[("headers", r#"{"User-Agent":""}"#)]);
        let found = extract(&row("http", "request"), &empty);
        assert_eq!(payload(&found[0])["category"], "empty");
        let none = fields(&[("headers", r#"{"Host":"x"}"#)]);
        assert!(extract(&row("http", "request"), &none).is_empty());
        let broken = fields(&[("headers", "{not json")]);
        assert!(extract(&row("http", "request"), &broken).is_empty());
    }

    #[test]
    fn a_forwarded_address_is_an_ip_leak() {
        let f = fields(&[(
            "headers",
            r#"{"User-Agent":"curl/8.5.0","X-Forwarded-For":"10.9.8.7"}"#,
        )]);
        let found = extract(&row("http", "request"), &f);
        let kinds: Vec<&str> = found
            .iter()
            .map(|f| f.bounty.bounty_type.as_str())
            .collect();
        assert_eq!(kinds, ["fingerprint", "ip_leak"]);
        assert_eq!(payload(&found[1])["leaked_ips"][0], "10.9.8.7");
        assert_eq!(payload(&found[1])["src_ip"], "203.0.113.5");
    }

    #[test]
    fn captures_and_fingerprints() {
        let f = fields(&[
            ("stored_as", "2026-03-04T10:00:00Z_0123456789ab_x.sh"),
            ("sha256", "ab"),
            ("size", "3"),
            ("ssh_pid", "not kept"),
        ]);
        let found = extract(&row("ssh", "file_captured"), &f);
        assert_eq!(found.len(), 1);
        let p = payload(&found[0]);
        assert_eq!(p["kind"], "file");
        assert_eq!(p["size"], "3");
        assert!(p.get("ssh_pid").is_none());
        let f = fields(&[("version", "SSH-2.0-Go")]);
        let found = extract(&row("ssh", "client_version"), &f);
        assert_eq!(
            found[0]
                .fingerprint
                .as_ref()
                .map(|f| f.fingerprint_type.as_str()),
            Some("ssh_client_version")
        );
        assert!(extract(&row("http", "client_version"), &f).is_empty());
    }

    #[test]
    fn an_https_client_hello_gives_its_ja3_and_ja4() {
        let f = fields(&[
            ("ja3", "771,4865-4866,0-23,29-23,0"),
            ("ja4", "t13d1516h2_8daaf6152771_b0da82dd1658"),
        ]);
        let kinds: Vec<String> = extract(&row("https", "tls_client_hello"), &f)
            .iter()
            .filter_map(|found| {
                found
                    .fingerprint
                    .as_ref()
                    .map(|e| e.fingerprint_type.clone())
            })
            .collect();
        assert_eq!(kinds, ["ja3", "ja4"]);
        assert!(extract(&row("http", "tls_client_hello"), &f).is_empty());
    }
}
