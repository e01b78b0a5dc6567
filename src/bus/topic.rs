//! Topic validation and NATS-style wildcard matching.
//!
//! A topic is dot-separated tokens (`decky.host1:web1.state`). Tokens are non-empty runs
//! of printable ASCII other than `.`, `*` and `>`; `:` is allowed so ids like
//! `<host_uuid>:<name>` fit in one token. A pattern is a topic in which a whole token may
//! be `*` (exactly one token) or, as the last token only, `>` (one or more trailing
//! tokens: `topology.>` matches `topology.a.status` but not `topology`).
//!
//! Matching walks both strings token by token without allocating; the broker runs it
//! once per (event, subscribed pattern) pair.
use std::fmt;

use thiserror::Error;

/// Longest topic or pattern accepted, in bytes.
pub const MAX_TOPIC_LEN: usize = 512;

/// Why a topic or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// Nothing to route on.
    #[error("topic is empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("topic is longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
    /// Two dots in a row, or a leading or trailing dot.
    #[error("topic {0:?} has an empty token")]
    EmptyToken(String),
    /// A byte outside printable ASCII, or whitespace.
    #[error("topic {0:?} contains whitespace or a non-printable character")]
    BadCharacter(String),
    /// `*` or `>` in a published topic, or misplaced in a pattern.
    #[error("wildcard misused in {0:?} (`*` is a whole token, `>` only the last token)")]
    Wildcard(String),
}

/// Checks a concrete topic (no wildcards), as published.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check(topic, false)
}

/// Checks a segment that a topic builder puts in place of an id.
pub fn validate_segment(segment: &str) -> Result<(), TopicError> {
    if segment.contains('.') {
        return Err(TopicError::BadCharacter(segment.to_owned()));
    }
    check(segment, false)
}

fn check(s: &str, wildcards: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    let mut tokens = s.split('.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return Err(TopicError::EmptyToken(s.to_owned()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TopicError::BadCharacter(s.to_owned()));
        }
        let is_last = tokens.peek().is_none();
        let allowed = wildcards && (token == "*" || (token == ">" && is_last));
        if !allowed && token.contains(['*', '>']) {
            return Err(TopicError::Wildcard(s.to_owned()));
        }
    }
    Ok(())
}

/// A validated subscription pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: String,
    literal: bool,
}

impl Pattern {
    /// Parses a pattern, with `*` and `>` allowed as whole tokens.
    pub fn parse(text: &str) -> Result<Pattern, TopicError> {
        check(text, true)?;
        let literal = !text.split('.').any(|t| t == "*" || t == ">");
        Ok(Pattern {
            text: text.to_owned(),
            literal,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the (valid) topic `topic` is one this pattern selects.
    pub fn matches(&self, topic: &str) -> bool {
        if self.literal {
            return self.text == topic;
        }
        let mut want = self.text.split('.');
        let mut have = topic.split('.');
        loop {
            match (want.next(), have.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(w), Some(h)) if w == h => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, topic: &str) -> bool {
        Pattern::parse(pattern).expect(pattern).matches(topic)
    }

    #[test]
    fn star_is_exactly_one_token() {
        assert!(m("a.*.c", "a.b.c"));
        assert!(m("a.*.c", "a.host1:web.c"));
        assert!(!m("a.*.c", "a.c"));
        assert!(!m("a.*.c", "a.b.x.c"));
        assert!(!m("a.*.c", "a.b.c.d"));
        assert!(m("*", "a"));
        assert!(!m("*", "a.b"));
    }

    #[test]
    fn tail_is_one_or_more_tokens() {
        assert!(m("a.>", "a.b"));
        assert!(m("a.>", "a.b.c.d"));
        assert!(!m("a.>", "a"));
        assert!(!m("a.>", "ab.c"));
        assert!(m(">", "anything.at.all"));
        assert!(m("topology.*.>", "topology.t1.mutation.applied"));
        assert!(!m("topology.*.>", "topology.t1"));
    }

    #[test]
    fn literal_patterns_need_equality() {
        assert!(m("attacker.observed", "attacker.observed"));
        assert!(!m("attacker.observed", "attacker.observed.x"));
        assert!(!m("attacker.observed", "attacker"));
    }

    #[test]
    fn malformed_topics_and_patterns_are_refused() {
        assert_eq!(validate_topic(""), Err(TopicError::Empty));
        assert!(matches!(
            validate_topic("a..b"),
            Err(TopicError::EmptyToken(_))
        ));
        assert!(matches!(
            validate_topic(".a"),
            Err(TopicError::EmptyToken(_))
        ));
        assert!(matches!(
            validate_topic("a."),
            Err(TopicError::EmptyToken(_))
        ));
        assert!(matches!(
            validate_topic("a b"),
            Err(TopicError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_topic("a.é"),
            Err(TopicError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_topic("a.*"),
            Err(TopicError::Wildcard(_))
        ));
        assert!(matches!(
            validate_topic("a.>"),
            Err(TopicError::Wildcard(_))
        ));
        assert_eq!(
            validate_topic(&"a".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong)
        );
        assert!(matches!(
            Pattern::parse("a.>.c"),
            Err(TopicError::Wildcard(_))
        ));
        assert!(matches!(
            Pattern::parse("a*.c"),
            Err(TopicError::Wildcard(_))
        ));
        assert!(matches!(
            Pattern::parse("a.b>"),
            Err(TopicError::Wildcard(_))
        ));
        assert!(validate_topic("decky.0f3a:web-1.state").is_ok());
        assert!(validate_segment("host:web1").is_ok());
        assert!(validate_segment("a.b").is_err());
        assert!(validate_segment("*").is_err());
    }
}
