//! Proxy-header analysis (engine.md §3.5, `ip_leak`): an HTTP request whose forwarding
//! headers name an address other than its TCP source tells where the client really is
//! (the host behind a proxy, VPN exit or scanner relay), or that it forged those headers.
//!
//! The headers are the attacker's: at most [`MAX_IPS`] addresses are read, each header
//! value is clipped, and only what parses as an IP address counts (host names,
//! `unknown` and obfuscated `Forwarded` identifiers are ignored). The payload names no
//! path or time, so one client leaking one address through the same headers is one bounty.
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::bounty::MAX_VALUE;
use super::clip;

/// Addresses read from one request's headers, at most.
pub const MAX_IPS: usize = 16;

/// The forwarding headers read, lower case: the de-facto ones proxies and CDNs add.
const HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
    "via",
];

/// The `ip_leak` payload of `headers` from `src`, when they name another address.
pub fn ip_leak(src: &str, headers: &Map<String, Value>) -> Option<Map<String, Value>> {
    let source: Option<IpAddr> = src.parse().ok();
    let mut seen = Map::new();
    let mut leaked: Vec<IpAddr> = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let Some(&header) = HEADERS.iter().find(|h| **h == lower) else {
            continue;
        };
        let Value::String(text) = value else {
            continue;
        };
        let text = clip(text, MAX_VALUE);
        for ip in addresses(header, &text) {
            if leaked.len() < MAX_IPS && Some(ip) != source && !leaked.contains(&ip) {
                leaked.push(ip);
            }
        }
        seen.insert(header.to_owned(), Value::String(text));
    }
    if leaked.is_empty() {
        return None;
    }
    let mut payload = Map::new();
    payload.insert("src_ip".into(), Value::String(clip(src, MAX_VALUE)));
    payload.insert(
        "leaked_ips".into(),
        Value::Array(
            leaked
                .iter()
                .map(|ip| Value::String(ip.to_string()))
                .collect(),
        ),
    );
    payload.insert("headers".into(), Value::Object(seen));
    Some(payload)
}

/// The addresses one header value names, in order.
fn addresses<'a>(header: &'a str, text: &'a str) -> impl Iterator<Item = IpAddr> + 'a {
    text.split(',').take(MAX_IPS * 2).filter_map(move |part| {
        let part = part.trim();
        match header {
            // `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43` (RFC 7239).
            "forwarded" => part
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| address(v.trim().trim_matches('"'))),
            // `Via: 1.1 10.0.0.1:3128, 1.0 proxy.example` names its hosts after the protocol.
            "via" => part.split_whitespace().nth(1).and_then(address),
            _ => address(part),
        }
    })
}

/// `token` as an address: bare, `[v6]`, `[v6]:port` or `v4:port`.
fn address(token: &str) -> Option<IpAddr> {
    if let Ok(ip) = token.parse() {
        return Some(ip);
    }
    if let Some(rest) = token.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    token
        .rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and_then(|_| ip.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("headers")
    }

    #[test]
    fn forwarding_headers_that_name_another_address_leak_it() {
        let h = headers(
            r#"{"Host":"x","X-Forwarded-For":"10.1.2.3, 198.51.100.7",
                "forwarded":"for=\"[2001:db8::5]:4711\";proto=https, for=unknown",
                "Via":"1.1 192.168.0.9:3128, 1.0 proxy.example","X-Real-IP":"junk"}"#,
        );
        let p = ip_leak("198.51.100.7", &h).expect("leak");
        // In the order of the header names (the parsed object keeps them sorted).
        assert_eq!(
            p["leaked_ips"],
            serde_json::json!(["192.168.0.9", "10.1.2.3", "2001:db8::5"]),
            "the TCP source itself is no leak"
        );
        assert_eq!(p["src_ip"], "198.51.100.7");
        assert_eq!(p["headers"]["x-forwarded-for"], "10.1.2.3, 198.51.100.7");
        assert!(p["headers"].get("host").is_none());
    }

    #[test]
    fn no_other_address_no_leak_and_bounded() {
        assert!(
            ip_leak(
                "203.0.113.5",
                &headers(r#"{"X-Forwarded-For":"203.0.113.5"}"#)
            )
            .is_none()
        );
        assert!(ip_leak("203.0.113.5", &headers(r#"{"Via":"1.1 proxy.example"}"#)).is_none());
        assert!(ip_leak("203.0.113.5", &headers(r#"{"User-Agent":"10.0.0.1"}"#)).is_none());
        let many: Vec<String> = (0..200)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let h = headers(&serde_json::json!({"X-Forwarded-For": many.join(",")}).to_string());
        let p = ip_leak("203.0.113.5", &h).expect("leak");
        assert_eq!(p["leaked_ips"].as_array().map(Vec::len), Some(MAX_IPS));
        assert!(
            p["headers"]["x-forwarded-for"]
                .as_str()
                .is_some_and(|v| v.len() <= MAX_VALUE)
        );
    }
}
