//! Who attacked: the attacker-IP extraction order of engine.md §3.2 step 4.
//!
//! 1. The first non-empty SD parameter among [`IP_FIELDS`], in that order. `host:port` and
//!    `[v6]:port` forms are split, and the port is recorded as `remote_port` if absent.
//! 2. Else the first `key=value` token of MSG whose key is one of [`IP_FIELDS`] (the bash
//!    hook's `CMD … src=1.2.3.4 …`). Such tokens are not copied into the fields.
//! 3. Else the first IP address after `from`, `rhost=`, `client=` or `src=`, ignoring case
//!    (sshd and PAM phrasing).
//! 4. Else the first bare IPv4 address in MSG.
//!
//! Steps 1 and 2 take the value as logged (a honeypot knows its peer); steps 3 and 4 read
//! free text, so they only accept strings that parse as addresses.
use std::net::{IpAddr, Ipv4Addr};

use super::Fields;

/// Parameter names that carry the attacker's address, in order of preference.
pub const IP_FIELDS: [&str; 7] = [
    "src_ip",
    "src",
    "client_ip",
    "remote_ip",
    "remote_addr",
    "target_ip",
    "ip",
];

/// Markers in free text that an address follows (matched case-insensitively).
const MARKERS: [&str; 4] = ["from", "rhost=", "client=", "src="];

/// The attacker's address by the four rules above; may add `remote_port` to `fields`.
pub fn attacker_ip(fields: &mut Fields, msg: Option<&str>) -> Option<String> {
    for key in IP_FIELDS {
        let Some(value) = fields.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        let (host, port) = split_host_port(value);
        let (host, port) = (host.to_owned(), port.map(str::to_owned));
        if let Some(port) = port
            && !fields.contains("remote_port")
        {
            fields.insert("remote_port", port);
        }
        return Some(host);
    }
    let msg = msg?;
    from_msg_pairs(msg)
        .or_else(|| after_marker(msg))
        .or_else(|| bare_ipv4(msg))
}

/// Splits `host:port` and `[host]:port`; anything else (a bare IPv6 address, a name) is
/// returned whole, brackets stripped.
pub fn split_host_port(value: &str) -> (&str, Option<&str>) {
    if let Some(inner) = value.strip_prefix('[') {
        if let Some((host, rest)) = inner.split_once(']') {
            let port = rest.strip_prefix(':').filter(|p| is_port(p));
            return (host, port);
        }
        return (value, None);
    }
    match value.split_once(':') {
        Some((host, port)) if !port.contains(':') && is_port(port) => (host, Some(port)),
        _ => (value, None),
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Rule 2: `key=value` tokens of the free text.
fn from_msg_pairs(msg: &str) -> Option<String> {
    msg.split_whitespace().find_map(|token| {
        let (left, value) = token.split_once('=')?;
        // The key is the word characters right before the first `=` (`x:src=…` → `src`).
        let start = left
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_word(*c))
            .last()
            .map_or(left.len(), |(i, _)| i);
        let key = &left[start..];
        if value.is_empty() || !IP_FIELDS.contains(&key) {
            return None;
        }
        Some(split_host_port(value).0.to_owned())
    })
}

/// Rule 3: the first address after a marker word.
fn after_marker(msg: &str) -> Option<String> {
    let lower = msg.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    for i in 0..bytes.len() {
        for marker in MARKERS {
            if !bytes[i..].starts_with(marker.as_bytes()) {
                continue;
            }
            if marker == "from" {
                let word_before = i > 0 && bytes[i - 1].is_ascii_alphanumeric();
                let space_after = bytes.get(i + 4).is_some_and(u8::is_ascii_whitespace);
                if word_before || !space_after {
                    continue;
                }
            }
            if let Some(ip) = address_at(msg, i + marker.len()) {
                return Some(ip);
            }
        }
    }
    None
}

/// The address in the whitespace-delimited token starting at byte `at` (after blanks).
fn address_at(msg: &str, at: usize) -> Option<String> {
    // `at` follows an ASCII marker, so it is a char boundary.
    let rest = msg.get(at..)?.trim_start();
    let token = rest.split_whitespace().next()?;
    let token = token.trim_start_matches(['(', '<', '\'', '"']);
    let token = token.trim_end_matches([',', ';', ')', '>', '\'', '"', '.']);
    let (host, _) = split_host_port(token);
    host.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// Rule 4: the first dotted quad that is a valid IPv4 address.
fn bare_ipv4(msg: &str) -> Option<String> {
    let bytes = msg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !is_v4_byte(bytes[i - 1]));
        if !starts_run {
            i += 1;
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|b| !is_v4_byte(*b))
            .map_or(bytes.len(), |n| i + n);
        // The run is ASCII digits and dots, so these are char boundaries.
        let candidate = msg.get(i..end)?.trim_end_matches('.');
        if let Ok(ip) = candidate.parse::<Ipv4Addr>() {
            return Some(ip.to_string());
        }
        i = end;
    }
    None
}

fn is_v4_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(fields: &[(&str, &str)], msg: Option<&str>) -> (Option<String>, Fields) {
        let mut fields: Fields = fields.iter().copied().collect();
        let ip = attacker_ip(&mut fields, msg);
        (ip, fields)
    }

    #[test]
    fn field_order_wins() {
        let (got, _) = ip(&[("ip", "9.9.9.9"), ("src", "1.1.1.1")], None);
        assert_eq!(got.as_deref(), Some("1.1.1.1"));
        let (got, _) = ip(&[("src_ip", ""), ("remote_addr", "2.2.2.2")], None);
        assert_eq!(got.as_deref(), Some("2.2.2.2"));
    }

    #[test]
    fn host_port_is_split() {
        let (got, fields) = ip(&[("remote_addr", "203.0.113.7:4444")], None);
        assert_eq!(got.as_deref(), Some("203.0.113.7"));
        assert_eq!(fields.get("remote_port"), Some("4444"));
        let (got, fields) = ip(
            &[("remote_addr", "[2001:db8::1]:80"), ("remote_port", "1")],
            None,
        );
        assert_eq!(got.as_deref(), Some("2001:db8::1"));
        assert_eq!(fields.get("remote_port"), Some("1"));
        let (got, _) = ip(&[("src", "2001:db8::1")], None);
        assert_eq!(got.as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn msg_pairs_then_markers_then_bare() {
        let cmd = "CMD uid=0 user=root src=192.0.2.5 pwd=/root cmd=ls";
        assert_eq!(ip(&[], Some(cmd)).0.as_deref(), Some("192.0.2.5"));
        let sshd = "Failed password for root from 198.51.100.2 port 22 ssh2";
        assert_eq!(ip(&[], Some(sshd)).0.as_deref(), Some("198.51.100.2"));
        let pam = "authentication failure; logname= uid=0 RHOST=198.51.100.3  user=x";
        assert_eq!(ip(&[], Some(pam)).0.as_deref(), Some("198.51.100.3"));
        let bare = "peer 10.0.0.256 then 10.0.0.9, done";
        assert_eq!(ip(&[], Some(bare)).0.as_deref(), Some("10.0.0.9"));
        assert_eq!(ip(&[], Some("from here to there")).0, None);
        assert_eq!(ip(&[], None).0, None);
    }

    #[test]
    fn markers_tolerate_punctuation_and_non_ascii() {
        let msg = "é connexion from [2001:db8::2]:22, ok";
        assert_eq!(ip(&[], Some(msg)).0.as_deref(), Some("2001:db8::2"));
        assert_eq!(ip(&[], Some("ééé1.2.3.4é")).0.as_deref(), Some("1.2.3.4"));
    }
}
