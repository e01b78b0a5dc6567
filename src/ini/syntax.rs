//! The INI syntax: `[section]` headers and `key = value` lines, with Python
//! `configparser` semantics where the original relied on them.
//!
//! - Keys are lower-cased; section names are case-sensitive and trimmed.
//! - `=` or `:` separates key and value, whichever comes first; both sides are trimmed.
//! - A line that starts with `#` or `;` (after indentation) is a comment. A `#` or `;`
//!   preceded by whitespace starts an inline comment (engine decision #8), so
//!   `ip = 10.0.0.5  # web` is `10.0.0.5` while `password=pa#ss` keeps its `#`.
//! - An indented line right after a key continues its value (joined with `\n`); a blank
//!   line ends the value.
//! - `[DEFAULT]` holds fallbacks for every other section, as in configparser.
//! - Lenient mode (the web/string path) merges duplicate sections and lets the last
//!   duplicate key win; strict mode (files) refuses both.
//! - Values are raw: there is no `%(name)s` interpolation, so a `%` in a password is
//!   just a `%`.

/// The configparser section whose keys are fallbacks for all others.
const DEFAULT_SECTION: &str = "DEFAULT";

/// One `[section]` with its keys in first-seen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The name between the brackets.
    pub name: String,
    /// `(key, value)` pairs; keys lower-cased and unique.
    pub entries: Vec<(String, String)>,
}

impl Section {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: String, value: String) -> bool {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => {
                slot.1 = value;
                false
            }
            None => {
                self.entries.push((key, value));
                true
            }
        }
    }
}

/// Splits INI text into sections. The error text completes "Invalid INI format: ".
pub(crate) fn parse(text: &str, strict: bool) -> Result<Vec<Section>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut sections: Vec<Section> = Vec::new();
    let mut current: Option<usize> = None;
    let mut last_key: Option<String> = None;

    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            last_key = None;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let content = strip_inline_comment(raw).trim_end();
        let indented = raw.starts_with([' ', '\t']);

        if let (true, Some(sec), Some(key)) = (indented, current, last_key.as_ref()) {
            if let Some(slot) = sections[sec].entries.iter_mut().find(|(k, _)| k == key) {
                slot.1.push('\n');
                slot.1.push_str(content.trim());
            }
            continue;
        }

        let content = content.trim_start();
        if let Some(header) = content.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| {
                    format!("line {line_no}: section header {content:?} lacks its closing ']'")
                })?
                .trim();
            if name.is_empty() {
                return Err(format!("line {line_no}: empty section name"));
            }
            current = Some(match sections.iter().position(|s| s.name == name) {
                Some(_) if strict => {
                    return Err(format!("line {line_no}: section [{name}] appears twice"));
                }
                Some(existing) => existing,
                None => {
                    sections.push(Section {
                        name: name.to_owned(),
                        entries: Vec::new(),
                    });
                    sections.len() - 1
                }
            });
            last_key = None;
            continue;
        }

        let Some(sec) = current else {
            return Err(format!(
                "line {line_no}: {content:?} comes before any [section] header"
            ));
        };
        let Some(split) = content.find(['=', ':']) else {
            return Err(format!(
                "line {line_no}: {content:?} is neither a [section], a key = value pair nor a comment"
            ));
        };
        let key = content[..split].trim().to_lowercase();
        let value = content[split + 1..].trim().to_owned();
        if key.is_empty() {
            return Err(format!("line {line_no}: a value without a key"));
        }
        let fresh = sections[sec].set(key.clone(), value);
        if strict && !fresh {
            return Err(format!(
                "line {line_no}: key '{key}' appears twice in section [{}]",
                sections[sec].name
            ));
        }
        last_key = Some(key);
    }

    apply_defaults(&mut sections);
    Ok(sections)
}

/// Cuts a line at the first `#` or `;` that follows whitespace.
fn strip_inline_comment(line: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        if prev_space && (c == '#' || c == ';') {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Removes `[DEFAULT]` and copies its keys into every section lacking them.
fn apply_defaults(sections: &mut Vec<Section>) {
    let Some(pos) = sections.iter().position(|s| s.name == DEFAULT_SECTION) else {
        return;
    };
    let defaults = sections.remove(pos);
    for section in sections.iter_mut() {
        for (key, value) in &defaults.entries {
            if section.get(key).is_none() {
                section.entries.push((key.clone(), value.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenient(text: &str) -> Vec<Section> {
        parse(text, false).expect(text)
    }

    #[test]
    fn keys_values_and_delimiters() {
        let s = lenient("[Web]\nIP = 10.0.0.5\nservices: ssh, http\nempty=\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "Web");
        assert_eq!(s[0].get("ip"), Some("10.0.0.5"));
        assert_eq!(s[0].get("services"), Some("ssh, http"));
        assert_eq!(s[0].get("empty"), Some(""));
        let s = lenient("[a]\nurl = http://x:80/\n");
        assert_eq!(
            s[0].get("url"),
            Some("http://x:80/"),
            "first delimiter wins"
        );
    }

    #[test]
    fn comments_full_line_and_inline() {
        let s = lenient(
            "# top\n; also\n[a] ; trailing\n  # indented comment\nip = 10.0.0.5  # the web box\n\
             pw = pa#ss;word\nx = 1 ;why\n",
        );
        assert_eq!(s[0].name, "a");
        assert_eq!(s[0].get("ip"), Some("10.0.0.5"));
        assert_eq!(s[0].get("pw"), Some("pa#ss;word"));
        assert_eq!(s[0].get("x"), Some("1"));
    }

    #[test]
    fn line_endings_and_bom() {
        let s = lenient("\u{feff}[a]\r\nk=1\r\n[b]\rk=2\r");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].get("k"), Some("2"));
    }

    #[test]
    fn continuation_lines() {
        let s = lenient("[a]\nservices = ssh,\n  http\n\n  [b]\n");
        assert_eq!(s[0].get("services"), Some("ssh,\nhttp"));
        assert_eq!(
            s.len(),
            2,
            "after a blank line an indented header is a header"
        );
    }

    #[test]
    fn duplicates_lenient_and_strict() {
        let text = "[a]\nk=1\n[b]\n[a]\nk=2\nj=3\n";
        let s = lenient(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("k"), Some("2"));
        assert_eq!(s[0].get("j"), Some("3"));
        assert_eq!(
            parse(text, true).unwrap_err(),
            "line 4: section [a] appears twice"
        );
        assert_eq!(
            parse("[a]\nk=1\nK=2\n", true).unwrap_err(),
            "line 3: key 'k' appears twice in section [a]"
        );
    }

    #[test]
    fn default_section_feeds_the_others() {
        let s = lenient("[DEFAULT]\nservices=ssh\nnmap_os=bsd\n[a]\nservices=http\n[b]\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("services"), Some("http"));
        assert_eq!(s[1].get("services"), Some("ssh"));
        assert_eq!(s[1].get("nmap_os"), Some("bsd"));
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = |t: &str| parse(t, false).unwrap_err();
        assert_eq!(
            err("k=v\n"),
            "line 1: \"k=v\" comes before any [section] header"
        );
        assert_eq!(
            err("[a\n"),
            "line 1: section header \"[a\" lacks its closing ']'"
        );
        assert_eq!(err("[ ]\n"), "line 1: empty section name");
        assert_eq!(
            err("[a]\njunk\n"),
            "line 2: \"junk\" is neither a [section], a key = value pair nor a comment"
        );
        assert_eq!(err("[a]\n= 5\n"), "line 2: a value without a key");
    }
}
