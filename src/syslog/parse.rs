//! The tolerant RFC 5424 reader of engine.md §3.2, producing a typed [`Event`].
//!
//! Steps, in order:
//! 1. Header `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID REST`, single spaces, every
//!    token non-empty and blank-free, REST non-empty. Anything else is a [`ParseError`]
//!    (the caller keeps such lines in the raw file only).
//! 2. Double-wrapped `logger` lines (MSGID `-`, REST `- <ISO time> HOST APP PROCID MSGID …`)
//!    are unwrapped once, taking the inner header.
//! 3. Structured data is walked element by element, quotes and escapes respected, so a
//!    `]` inside a value never ends an element. Parameters come from the first
//!    `relay@55555` element (other SD-IDs are skipped); MSG is what follows the last element.
//! 4. The attacker address follows [`super::ip`].
//! 5. MSGID `-` with MSG `CMD …` (the bash hook) becomes event type `command`, and the
//!    hook's trailing `cmd=…` is kept as the `command` field, as the original's profiler
//!    expects.
//!
//! Cost: one pass over the line. Every step reads each byte a bounded number of times,
//! and parameters are collected through [`FieldsBuilder`] (a repeated key is found by
//! hash, not by rescanning the list), so a 64 KiB line with thousands of SD-PARAMs
//! costs the same per byte as a short one (`scripts/bench-parse.sh` prints both).
//!
//! The reader never panics on any input; bytes that are not UTF-8 are decoded lossily by
//! [`parse_bytes`] and kept that way in [`Event::raw`].
use thiserror::Error;

use super::ip::attacker_ip;
use super::timestamp::{Timestamp, parse_iso};
use super::{Fields, FieldsBuilder, SD_ID};

/// Event type given to bash-hook `CMD …` lines.
pub const COMMAND_EVENT: &str = "command";
/// What the original stored when no attacker address was found.
pub const UNKNOWN_IP: &str = "Unknown";

/// One parsed honeypot event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// TIMESTAMP, parsed when it is ISO-8601.
    pub timestamp: Timestamp,
    /// HOSTNAME: the decky that saw the event (attacker-influenced, never provenance).
    pub decky: String,
    /// APP-NAME: the service.
    pub service: String,
    /// MSGID: the event type.
    pub event_type: String,
    /// The attacker's address, when one was found.
    pub attacker_ip: Option<String>,
    /// Parameters of the `relay@55555` element, unescaped, in order.
    pub fields: Fields,
    /// Free text after the structured data, trimmed; `None` when empty.
    pub msg: Option<String>,
    /// The whole line as received, without its line terminator.
    pub raw: String,
}

impl Event {
    /// The attacker address, or `Unknown` as the original's tables hold it.
    pub fn attacker_ip_or_unknown(&self) -> &str {
        self.attacker_ip.as_deref().unwrap_or(UNKNOWN_IP)
    }
}

/// Why a line is not an RFC 5424 event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The line does not start with `<digits>1 `.
    #[error("not an RFC 5424 line: it must start with `<PRI>1 `")]
    Prefix,
    /// A header field is missing, empty or not separated by exactly one space.
    #[error("not an RFC 5424 line: missing or malformed {0}")]
    Header(&'static str),
}

/// Parses a line given as bytes, decoding invalid UTF-8 lossily.
pub fn parse_bytes(line: &[u8]) -> Result<Event, ParseError> {
    // Valid UTF-8 is the rule: the strict check is several times cheaper than the lossy
    // decoder's, which only runs on lines that need it.
    match std::str::from_utf8(line) {
        Ok(text) => parse(text),
        Err(_) => parse(&String::from_utf8_lossy(line)),
    }
}

/// Parses one line (a trailing `\n` or `\r\n` is ignored).
pub fn parse(line: &str) -> Result<Event, ParseError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let after_pri = line.strip_prefix('<').ok_or(ParseError::Prefix)?;
    let digits = after_pri.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(ParseError::Prefix);
    }
    let header = after_pri[digits..]
        .strip_prefix(">1 ")
        .ok_or(ParseError::Prefix)?;
    let mut head = Header::split(header)?;
    if head.msg_id == "-"
        && let Some(inner) = head.rest.strip_prefix('-').and_then(unwrap_inner)
    {
        head = inner;
    }

    let (mut fields, msg) = structured_data(head.rest);
    let mut event_type = head.msg_id.to_owned();
    if let Some(cmd) = msg.as_deref().and_then(|m| m.strip_prefix("CMD ")) {
        if event_type == "-" {
            event_type = COMMAND_EVENT.to_owned();
        }
        if event_type == COMMAND_EVENT
            && !fields.contains(COMMAND_EVENT)
            && let Some((_, command)) = cmd.split_once("cmd=")
        {
            fields.insert(COMMAND_EVENT, command);
        }
    }
    let attacker_ip = attacker_ip(&mut fields, msg.as_deref());
    Ok(Event {
        timestamp: Timestamp::parse(head.timestamp),
        decky: head.hostname.to_owned(),
        service: head.app_name.to_owned(),
        event_type,
        attacker_ip,
        fields,
        msg,
        raw: line.to_owned(),
    })
}

/// The header fields of a line, borrowed from it.
struct Header<'a> {
    timestamp: &'a str,
    hostname: &'a str,
    app_name: &'a str,
    msg_id: &'a str,
    rest: &'a str,
}

impl<'a> Header<'a> {
    /// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID REST`, REST non-empty.
    fn split(text: &'a str) -> Result<Self, ParseError> {
        let (timestamp, text) = token(text, "TIMESTAMP")?;
        let (hostname, text) = token(text, "HOSTNAME")?;
        let (app_name, text) = token(text, "APP-NAME")?;
        let (_procid, text) = token(text, "PROCID")?;
        let (msg_id, rest) = token(text, "MSGID")?;
        if rest.is_empty() {
            return Err(ParseError::Header("structured data"));
        }
        Ok(Self {
            timestamp,
            hostname,
            app_name,
            msg_id,
            rest,
        })
    }
}

/// One non-empty, blank-free token followed by exactly one space.
fn token<'a>(text: &'a str, what: &'static str) -> Result<(&'a str, &'a str), ParseError> {
    // One pass over the token's bytes finds its end and whether it holds an ASCII
    // blank; only a token with non-ASCII bytes is searched again for Unicode blanks.
    let (mut blank, mut ascii) = (false, true);
    let end = text
        .bytes()
        .position(|b| {
            blank |= matches!(b, b'\t'..=b'\r');
            ascii &= b.is_ascii();
            b == b' '
        })
        .ok_or(ParseError::Header(what))?;
    let (tok, rest) = (&text[..end], &text[end + 1..]);
    if tok.is_empty() || blank || (!ascii && tok.contains(char::is_whitespace)) {
        return Err(ParseError::Header(what));
    }
    Ok((tok, rest))
}

/// The inner header of a double-wrapped line: `<blanks>ISO-TIME HOST APP PROCID MSGID REST`.
fn unwrap_inner(body: &str) -> Option<Header<'_>> {
    let body = body.trim_start();
    let (timestamp, text) = token(body, "TIMESTAMP").ok()?;
    parse_iso(timestamp)?;
    let (hostname, text) = token(text, "HOSTNAME").ok()?;
    let (app_name, text) = token(text, "APP-NAME").ok()?;
    let (_procid, text) = token(text, "PROCID").ok()?;
    // The inner line may end right after its MSGID.
    let (msg_id, rest) = match text.split_once(' ') {
        Some((m, rest)) => (m, rest),
        None => (text, ""),
    };
    if msg_id.is_empty() || msg_id.contains(char::is_whitespace) {
        return None;
    }
    Some(Header {
        timestamp,
        hostname,
        app_name,
        msg_id,
        rest,
    })
}

/// Splits REST into the `relay@55555` parameters and the trimmed MSG.
fn structured_data(rest: &str) -> (Fields, Option<String>) {
    let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|m| !m.is_empty());
    if let Some(after) = rest.strip_prefix('-') {
        return (Fields::new(), non_empty(after));
    }
    if !rest.starts_with('[') {
        return (Fields::new(), non_empty(rest));
    }
    let mut fields = None;
    let mut text = rest;
    while let Some(body) = text.strip_prefix('[') {
        let element = element(body);
        if element.id == SD_ID && fields.is_none() {
            fields = Some(element.params);
        }
        match element.rest {
            Some(after) => text = after,
            // An unterminated element swallows the rest of the line: there is no MSG.
            None => return (fields.unwrap_or_default(), None),
        }
    }
    (fields.unwrap_or_default(), non_empty(text))
}

/// One SD element after its `[`.
struct Element<'a> {
    id: &'a str,
    params: Fields,
    /// The text after the closing `]`, or `None` if the element never closes.
    rest: Option<&'a str>,
}

/// Reads `ID name="value" …]`, unescaping values; malformed parameters are skipped.
///
/// Scans bytes, not chars: every delimiter is ASCII, and a byte of a multi-byte UTF-8
/// character is never an ASCII byte, so every position cut at is a char boundary. A
/// value without escapes is copied once, straight from the line.
fn element(body: &str) -> Element<'_> {
    let bytes = body.as_bytes();
    let id_end = body.find([' ', ']']).unwrap_or(body.len());
    let id = &body[..id_end];
    let mut params = FieldsBuilder::new();
    let mut at = id_end;
    while let Some(&b) = bytes.get(at) {
        match b {
            b']' => {
                return Element {
                    id,
                    params: params.finish(),
                    rest: Some(&body[at + 1..]),
                };
            }
            b' ' => {
                at += 1;
                continue;
            }
            _ => {}
        }
        // A parameter name runs to `=`; a blank, `]` or `"` first means a malformed one.
        // Its first character belongs to it whatever it is.
        let name_start = at;
        let first_len = body[at..].chars().next().map_or(1, char::len_utf8);
        let stop = bytes[at + first_len..]
            .iter()
            .position(|b| matches!(b, b'=' | b' ' | b']' | b'"'))
            .map(|i| at + first_len + i);
        let Some(stop) = stop else {
            break;
        };
        if bytes[stop] != b'=' {
            at = stop;
            continue;
        }
        let name = &body[name_start..stop];
        if bytes.get(stop + 1) != Some(&b'"') {
            at = stop + 1;
            continue;
        }
        match quoted(body, stop + 2) {
            Some((value, next)) => {
                params.insert(name, value);
                at = next;
            }
            None => break,
        }
    }
    Element {
        id,
        params: params.finish(),
        rest: None,
    }
}

/// The unescaped value of a parameter whose text starts at `from` (after its `"`), and
/// where the text after its closing `"` starts; `None` if it never closes.
fn quoted(body: &str, from: usize) -> Option<(std::borrow::Cow<'_, str>, usize)> {
    use std::borrow::Cow;
    let bytes = body.as_bytes();
    let special = |at: usize| {
        bytes[at..]
            .iter()
            .position(|b| matches!(b, b'"' | b'\\'))
            .map(|i| at + i)
    };
    let mut at = special(from)?;
    if bytes[at] == b'"' {
        return Some((Cow::Borrowed(&body[from..at]), at + 1));
    }
    let mut value = String::with_capacity(at - from + 16);
    value.push_str(&body[from..at]);
    loop {
        if bytes[at] == b'"' {
            return Some((Cow::Owned(value), at + 1));
        }
        // A backslash: `\"`, `\\`, `\]` stand for themselves, `\n` and `\r` for
        // newlines; any other escape is kept as written.
        let next = match bytes.get(at + 1) {
            None => return None,
            Some(&e @ (b'"' | b'\\' | b']')) => {
                value.push(char::from(e));
                at + 2
            }
            Some(b'n') => {
                value.push('\n');
                at + 2
            }
            Some(b'r') => {
                value.push('\r');
                at + 2
            }
            Some(_) => {
                value.push('\\');
                at + 1
            }
        };
        let end = special(next)?;
        value.push_str(&body[next..end]);
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    fn ok(line: &str) -> Event {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn decnet_line() {
        let e = ok(
            r#"<134>1 2026-04-14T12:00:00Z decky-01 ssh - login_attempt [relay@55555 src_ip="10.0.0.1" username="root" password="t\"o\\o\]r"] Failed login"#,
        );
        assert_eq!(e.timestamp.display(), "2026-04-14 12:00:00");
        assert_eq!((e.decky.as_str(), e.service.as_str()), ("decky-01", "ssh"));
        assert_eq!(e.event_type, "login_attempt");
        assert_eq!(e.attacker_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(e.fields.get("password"), Some("t\"o\\o]r"));
        assert_eq!(e.msg.as_deref(), Some("Failed login"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(parse(""), Err(ParseError::Prefix));
        assert_eq!(parse("random garbage"), Err(ParseError::Prefix));
        assert_eq!(parse("<>1 a b c d e f"), Err(ParseError::Prefix));
        assert_eq!(parse("<13>2 a b c d e f"), Err(ParseError::Prefix));
        assert_eq!(parse("<13>1 a b c d e"), Err(ParseError::Header("MSGID")));
        assert_eq!(
            parse("<13>1 a b c d e "),
            Err(ParseError::Header("structured data"))
        );
        assert_eq!(
            parse("<13>1 a  c d e f"),
            Err(ParseError::Header("HOSTNAME"))
        );
    }

    #[test]
    fn nil_sd_and_plain_rest() {
        let e = ok("<134>1 2026-04-14T12:00:00Z d s 123 e - hello there ");
        assert_eq!(e.msg.as_deref(), Some("hello there"));
        assert!(e.fields.is_empty());
        let e = ok("<134>1 - d s - e plain text from 192.0.2.9");
        assert_eq!(e.timestamp, Timestamp::Raw("-".into()));
        assert_eq!(e.msg.as_deref(), Some("plain text from 192.0.2.9"));
        assert_eq!(e.attacker_ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(e.attacker_ip_or_unknown(), "192.0.2.9");
        let e = ok("<134>1 - d s - e -");
        assert_eq!(
            (e.msg.as_deref(), e.attacker_ip_or_unknown()),
            (None, UNKNOWN_IP)
        );
    }

    #[test]
    fn double_wrapped_bash_command() {
        let e = ok(concat!(
            "<14>1 2026-05-02T06:22:48.089309+00:00 omega-decky 1 - - - ",
            " 2026-05-02T06:22:48.089286+00:00 SRV-DELTA-77 bash - command ",
            "[timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"326228\"] ",
            "CMD uid=0 user=root src=192.168.1.5 pwd=/root cmd=ls /var/www/html"
        ));
        assert_eq!(e.event_type, "command");
        assert_eq!(
            (e.decky.as_str(), e.service.as_str()),
            ("SRV-DELTA-77", "bash")
        );
        assert_eq!(e.attacker_ip.as_deref(), Some("192.168.1.5"));
        assert_eq!(e.fields.get("command"), Some("ls /var/www/html"));
        assert_eq!(e.fields.len(), 1, "timeQuality params are not ours");
    }

    #[test]
    fn nil_msgid_cmd_becomes_command() {
        let e = ok("<13>1 2026-05-02T06:22:48Z d bash - - - CMD uid=0 pwd=/ cmd=id");
        assert_eq!(e.event_type, COMMAND_EVENT);
        assert_eq!(e.fields.get("command"), Some("id"));
    }

    #[test]
    fn outer_msgid_set_does_not_unwrap() {
        let e = ok(
            "<134>1 2026-05-02T06:22:48Z d auth-helper - auth_attempt - 2026-05-02T06:22:48Z x y - z",
        );
        assert_eq!(
            (e.decky.as_str(), e.event_type.as_str()),
            ("d", "auth_attempt")
        );
    }

    #[test]
    fn foreign_and_broken_sd() {
        let e = ok(r#"<1>1 - d s - e [a b="]"][relay@55555 k="v" junk x="y"][c d="e"] m"#);
        assert_eq!(
            e.fields.iter().collect::<Vec<_>>(),
            vec![("k", "v"), ("x", "y")]
        );
        assert_eq!(e.msg.as_deref(), Some("m"));
        let e = ok(r#"<1>1 - d s - e [relay@55555 k="v" z="unterminated] m"#);
        assert_eq!(e.fields.get("k"), Some("v"));
        assert_eq!(e.msg, None);
        let e = ok(r#"<1>1 - d s - e [relay@55555 k="a\qb\""] m"#);
        assert_eq!(e.fields.get("k"), Some("a\\qb\""), "{:?}", e.fields);
    }

    /// A 64 KiB line of `n="…"` parameters, some repeated, as a flood would send it.
    fn many_params_line(target: usize) -> String {
        let mut line = String::from(r#"<134>1 - d s - e [relay@55555 src_ip="10.0.0.1""#);
        let mut i = 0u64;
        while line.len() < target - 40 {
            // Every tenth key repeats an earlier one: last value, first position.
            let key = if i % 10 == 9 { i - 9 } else { i };
            line.push_str(&format!(r#" p{key}="v{i}\]""#));
            i += 1;
        }
        line.push_str("] tail");
        line
    }

    #[test]
    fn a_64k_line_of_thousands_of_params_keeps_every_one() {
        let line = many_params_line(64 * 1024);
        assert!(line.len() <= 64 * 1024);
        let e = ok(&line);
        let written = line.matches(" p").count() as u64;
        assert!(written > 4000, "{written} params");
        let distinct = (0..written).filter(|i| i % 10 != 9).count();
        assert_eq!(e.fields.len(), distinct + 1, "src_ip plus distinct keys");
        assert_eq!(e.fields.iter().next(), Some(("src_ip", "10.0.0.1")));
        assert_eq!(
            e.fields.get("p0"),
            Some("v9]"),
            "a repeat keeps the last value"
        );
        assert_eq!(
            e.fields.iter().nth(1),
            Some(("p0", "v9]")),
            "and the first position"
        );
        let last = (0..written).rev().find(|i| i % 10 != 9).unwrap_or(0);
        assert_eq!(
            e.fields.get(&format!("p{last}")),
            Some(format!("v{last}]").as_str())
        );
        assert_eq!(e.msg.as_deref(), Some("tail"));
        assert_eq!(e.attacker_ip.as_deref(), Some("10.0.0.1"));
    }

    /// The char-by-char reader `element` replaced, kept as the oracle it must agree with.
    fn element_reference(body: &str) -> (Fields, Option<&str>) {
        let id_end = body.find([' ', ']']).unwrap_or(body.len());
        let mut params = FieldsBuilder::new();
        let mut chars = body[id_end..].char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                ']' => return (params.finish(), Some(&body[id_end + i + 1..])),
                ' ' => continue,
                _ => {}
            }
            let mut name = String::from(c);
            let mut well_formed = false;
            while let Some(&(_, c)) = chars.peek() {
                if c == '=' {
                    chars.next();
                    well_formed = chars.next_if(|&(_, c)| c == '"').is_some();
                    break;
                }
                if matches!(c, ' ' | ']' | '"') {
                    break;
                }
                name.push(c);
                chars.next();
            }
            if !well_formed {
                continue;
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some(e @ ('"' | '\\' | ']')) => value.push(e),
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some(other) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => value.push('\\'),
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                break;
            }
            params.insert(name, value);
        }
        (params.finish(), None)
    }

    proptest::proptest! {
        #[test]
        fn element_agrees_with_the_char_reader(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("\"".to_owned()),
                    proptest::strategy::Just("\\".to_owned()),
                    proptest::strategy::Just("]".to_owned()),
                    proptest::strategy::Just("=".to_owned()),
                    proptest::strategy::Just(" ".to_owned()),
                    proptest::strategy::Just("n".to_owned()),
                    proptest::strategy::Just("é".to_owned()),
                    proptest::strategy::Just("k=\"v\"".to_owned()),
                    "[a-z]{1,3}",
                    proptest::prelude::any::<String>(),
                ],
                0..24,
            ).prop_map(|parts| parts.concat())
        ) {
            let e = element(&body);
            let (params, rest) = element_reference(&body);
            proptest::prop_assert_eq!(e.params, params);
            proptest::prop_assert_eq!(e.rest, rest);
        }
    }

    #[test]
    fn non_utf8_is_lossy() {
        let e = parse_bytes(b"<134>1 - d\xff s - e - caf\xc3\xa9 \xfe")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.decky, "d\u{fffd}");
        assert_eq!(e.msg.as_deref(), Some("café \u{fffd}"));
    }
}
