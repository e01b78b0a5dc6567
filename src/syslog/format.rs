//! Writing RFC 5424 lines exactly as engine.md §2.7 describes.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID SD [MSG]`, facility local0, one line per
//! event and no trailing space. Every piece is made safe for a line-oriented transport:
//! - header fields become RFC 5424 tokens: bytes outside printable ASCII turn into `_`,
//!   overlong values are cut (HOSTNAME 255, APP-NAME 48, MSGID 32), empty ones become `-`;
//! - parameter names keep printable ASCII other than `=`, space, `]` and `"` (32 at most);
//! - parameter values escape `\`, `"` and `]` as the spec says, and additionally write a
//!   line feed as `\n` and a carriage return as `\r` so an attacker-supplied value (an HTTP
//!   body, a shell command) can never split the line. The parser of this module reverses
//!   both; a strict RFC 5424 reader shows them as the two characters, which is harmless;
//! - the free-text MSG has line breaks turned into spaces and is trimmed.
use std::fmt;

use time::OffsetDateTime;

use super::timestamp::format_rfc5424;
use super::{Fields, SD_ID};

/// Facility local0, the facility every decnet event is logged under.
pub const FACILITY_LOCAL0: u8 = 16;
/// Longest HOSTNAME written.
pub const MAX_HOSTNAME: usize = 255;
/// Longest APP-NAME written.
pub const MAX_APP_NAME: usize = 48;
/// Longest MSGID written.
pub const MAX_MSG_ID: usize = 32;
/// Longest SD-PARAM name written.
pub const MAX_PARAM_NAME: usize = 32;

/// RFC 5424 severities; honeypots use `Info` and, for errors, `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    /// 0: system is unusable.
    Emergency = 0,
    /// 1: action must be taken immediately.
    Alert = 1,
    /// 2: critical conditions.
    Critical = 2,
    /// 3: error conditions.
    Error = 3,
    /// 4: warning conditions.
    Warning = 4,
    /// 5: normal but significant.
    Notice = 5,
    /// 6: informational (the default).
    #[default]
    Info = 6,
    /// 7: debug-level messages.
    Debug = 7,
}

impl Severity {
    /// The PRI value of this severity under facility local0 (`Info` → 134).
    pub fn pri(self) -> u8 {
        FACILITY_LOCAL0 * 8 + self as u8
    }
}

/// One event to be written as an RFC 5424 line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Severity, folded into PRI.
    pub severity: Severity,
    /// When the event happened (written in UTC).
    pub timestamp: OffsetDateTime,
    /// HOSTNAME: the decky's `NODE_NAME`.
    pub hostname: String,
    /// APP-NAME: the service slug.
    pub app_name: String,
    /// MSGID: the event type.
    pub msg_id: String,
    /// SD parameters of the `relay@55555` element, in order.
    pub params: Fields,
    /// Optional free text after the structured data.
    pub msg: Option<String>,
}

impl Message {
    /// An `Info` event with no parameters and no text.
    pub fn new(
        timestamp: OffsetDateTime,
        hostname: impl Into<String>,
        app_name: impl Into<String>,
        msg_id: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Info,
            timestamp,
            hostname: hostname.into(),
            app_name: app_name.into(),
            msg_id: msg_id.into(),
            params: Fields::new(),
            msg: None,
        }
    }

    /// Adds (or replaces) one SD parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key, value);
        self
    }

    /// Sets the free text.
    pub fn msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// Sets the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<{}>1 {} {} {} - {} ",
            self.severity.pri(),
            format_rfc5424(self.timestamp),
            header_token(&self.hostname, MAX_HOSTNAME),
            header_token(&self.app_name, MAX_APP_NAME),
            header_token(&self.msg_id, MAX_MSG_ID),
        )?;
        if self.params.is_empty() {
            f.write_str("-")?;
        } else {
            write!(f, "[{SD_ID}")?;
            for (k, v) in self.params.iter() {
                write!(f, " {}=\"{}\"", param_name(k), escape_value(v))?;
            }
            f.write_str("]")?;
        }
        if let Some(msg) = self.msg.as_deref().map(clean_msg).filter(|m| !m.is_empty()) {
            write!(f, " {msg}")?;
        }
        Ok(())
    }
}

/// `value` as an RFC 5424 header token: printable ASCII, at most `max` bytes, `-` if empty.
pub fn header_token(value: &str, max: usize) -> String {
    let token: String = value
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if token.is_empty() {
        String::from("-")
    } else {
        token
    }
}

/// `key` as an SD-PARAM name: printable ASCII but `= ] "`, at most 32 bytes, `_` if empty.
pub fn param_name(key: &str) -> String {
    let name: String = key
        .chars()
        .take(MAX_PARAM_NAME)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        String::from("_")
    } else {
        name
    }
}

/// `value` escaped for a PARAM-VALUE: `\ " ]` per RFC 5424, plus `\n` and `\r`.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ']' => out.push_str("\\]"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The MSG as written: line breaks become spaces, surrounding whitespace goes.
pub fn clean_msg(msg: &str) -> String {
    msg.replace(['\n', '\r'], " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::timestamp::parse_iso;

    fn ts() -> OffsetDateTime {
        parse_iso("2026-04-12T21:48:03.123456Z").unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn bare_event() {
        let line = Message::new(ts(), "decky-01", "ssh", "startup").to_string();
        assert_eq!(
            line,
            "<134>1 2026-04-12T21:48:03.123456+00:00 decky-01 ssh - startup -"
        );
    }

    #[test]
    fn params_msg_and_severity() {
        let line = Message::new(ts(), "d", "http", "request")
            .param("path", "/a]b\"c\\d")
            .param("body", "x\ny")
            .msg("  hello\nworld ")
            .severity(Severity::Warning)
            .to_string();
        assert_eq!(
            line,
            r#"<132>1 2026-04-12T21:48:03.123456+00:00 d http - request [relay@55555 path="/a\]b\"c\\d" body="x\ny"] hello world"#
        );
    }

    #[test]
    fn header_fields_are_tokens() {
        let long = "h".repeat(300);
        let line = Message::new(ts(), "", "my app", "é".repeat(40)).to_string();
        assert!(
            line.contains(" - my_app - ________________________________ -"),
            "{line}"
        );
        let line = Message::new(ts(), long, "a", "b").to_string();
        assert!(line.contains(&format!(" {} a - b -", "h".repeat(255))));
    }

    #[test]
    fn param_names_are_sanitised() {
        assert_eq!(param_name(""), "_");
        assert_eq!(param_name("a b=c]\"d"), "a_b_c__d");
        assert_eq!(param_name(&"k".repeat(40)).len(), 32);
    }

    #[test]
    fn empty_msg_is_omitted() {
        let line = Message::new(ts(), "d", "s", "e").msg(" \n ").to_string();
        assert!(line.ends_with(" e -"), "{line}");
    }
}
