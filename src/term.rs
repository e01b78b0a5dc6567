//! Attacker text made safe for an operator's terminal.
//!
//! Everything a decky logs passed through an attacker's hands: an HTTP header, a shell
//! command, a username. Printed raw, an ESC starts an ANSI sequence that can recolour,
//! move the cursor, rewrite earlier lines, set the window title or, on some terminals,
//! answer back into the input; a CR hides what came before it on the line; BEL rings.
//! Every command that prints attacker data to a terminal passes it through here:
//! - [`escape`] for plain text: C0 controls (tab and line breaks included), DEL and the C1
//!   controls (U+0080–U+009F, which some terminals treat like ESC sequences) become `\xNN`,
//!   the bidirectional overrides and isolates (which make text display in another order
//!   than it is stored) become `\u{NNNN}`, and `\` becomes `\\`, so what is shown maps
//!   back to exactly one string;
//! - [`escape_json`] for serialised JSON: the JSON writer already escapes C0 controls,
//!   the rest (DEL, C1, bidi) become `\uNNNN`, which leaves the same JSON value.
//!
//! The program's own diagnostics go through `tracing`, whose formatter escapes ANSI
//! sequences in logged values itself.
use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is a bidirectional embedding, override or isolate control.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Whether `c` must not reach a terminal as it is.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi(c)
}

/// `text` with every terminal control character escaped (see the module docs); borrowed
/// when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x100 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialised JSON with the control characters the JSON writer leaves raw (DEL, C1, bidi)
/// written as `\uNNNN` escapes: the same JSON value, safe for a terminal.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape("\u{1b}[2J\u{1b}]0;pwned\u{7}ok\rhidden\n\t\u{7f}\u{9b}31m\u{85}"),
            "\\x1b[2J\\x1b]0;pwned\\x07ok\\x0dhidden\\x0a\\x09\\x7f\\x9b31m\\x85"
        );
        assert_eq!(escape("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(
            escape("C:\\x1b"),
            "C:\\\\x1b",
            "a literal backslash is told apart"
        );
        assert_eq!(escape("\0"), "\\x00");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "GET /index.html HTTP/1.1 user=root é 日本";
        assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        assert!(matches!(escape_json(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({"msg": "a\u{1b}[31m\u{9b}b\u{202e}c\u{7f}\\"});
        let json = value.to_string();
        let safe = escape_json(&json);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }
}
