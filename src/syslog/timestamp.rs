//! RFC 5424 timestamps: the exact form decnet writes, and a tolerant ISO-8601 reader.
//!
//! decnet writes UTC with microseconds and a numeric `+00:00` offset
//! (`2026-04-12T21:48:03.123456+00:00`), as the original did. Lines from other producers
//! (rsyslog, `logger`) use `Z`, other offsets, fewer fraction digits or none, so the reader
//! accepts all of ISO-8601's extended calendar form; a time without an offset is taken as
//! UTC (so naive and aware times sort together). What it cannot read is kept verbatim.
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The TIMESTAMP of a parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    /// An ISO-8601 time, with the offset the line carried.
    Parsed(OffsetDateTime),
    /// Text that is not an ISO-8601 time (including the NILVALUE `-`), kept as it was.
    Raw(String),
}

impl Timestamp {
    /// Reads `text`, keeping it verbatim when it is not an ISO-8601 time.
    pub fn parse(text: &str) -> Self {
        match parse_iso(text) {
            Some(t) => Self::Parsed(t),
            None => Self::Raw(text.to_owned()),
        }
    }

    /// The time, if the text was readable.
    pub fn datetime(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Parsed(t) => Some(*t),
            Self::Raw(_) => None,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` in the line's own offset, or the raw text (the spec's output form).
    pub fn display(&self) -> String {
        match self {
            Self::Parsed(t) => seconds(*t),
            Self::Raw(raw) => raw.clone(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` of `t` in its own offset.
pub(crate) fn seconds(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `t` as decnet writes it: UTC, microseconds, `+00:00`.
pub fn format_rfc5424(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Reads `YYYY-MM-DD[Tt ]HH:MM[:SS[.frac]][Z|±HH[:MM]]`; a missing offset means UTC.
pub fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut cur = Cursor(text.as_bytes());
    let year = cur.digits(4)?;
    cur.byte(b'-')?;
    let month = Month::try_from(u8::try_from(cur.digits(2)?).ok()?).ok()?;
    cur.byte(b'-')?;
    let day = u8::try_from(cur.digits(2)?).ok()?;
    let sep = cur.next()?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let hour = u8::try_from(cur.digits(2)?).ok()?;
    cur.byte(b':')?;
    let minute = u8::try_from(cur.digits(2)?).ok()?;
    let mut second = 0;
    let mut nanos = 0;
    if cur.peek() == Some(b':') {
        cur.next();
        second = u8::try_from(cur.digits(2)?).ok()?;
        if matches!(cur.peek(), Some(b'.' | b',')) {
            cur.next();
            nanos = cur.fraction()?;
        }
    }
    let offset = match cur.next() {
        None => UtcOffset::UTC,
        Some(b'Z' | b'z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let h = i8::try_from(cur.digits(2)?).ok()?;
            if cur.peek() == Some(b':') {
                cur.next();
            }
            let m = match cur.peek() {
                Some(_) => i8::try_from(cur.digits(2)?).ok()?,
                None => 0,
            };
            let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        Some(_) => return None,
    };
    if !cur.0.is_empty() {
        return None;
    }
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// A forward-only reader over ASCII bytes; every method returns `None` past the end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` decimal digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let b = self.next()?;
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        Some(value)
    }

    /// One or more fraction digits as nanoseconds; digits past the ninth are dropped.
    fn fraction(&mut self) -> Option<u32> {
        let mut nanos = 0u32;
        let mut count = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            self.next();
            if count < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
            count += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
        Some(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        parse_iso(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn writes_utc_microseconds() {
        let t = at("2026-04-12T23:48:03.123456789+02:00");
        assert_eq!(format_rfc5424(t), "2026-04-12T21:48:03.123456+00:00");
    }

    #[test]
    fn reads_common_forms() {
        let utc = at("2026-04-12T21:48:03.5+00:00");
        assert_eq!(at("2026-04-12T21:48:03.500Z"), utc);
        assert_eq!(at("2026-04-12t21:48:03,5"), utc);
        assert_eq!(at("2026-04-12T22:48:03.5+0100"), utc);
        assert_eq!(at("2026-04-12T20:48:03.5-01"), utc);
        assert_eq!(at("2026-04-12T21:48"), at("2026-04-12T21:48:00Z"));
    }

    #[test]
    fn display_keeps_the_line_offset() {
        let t = Timestamp::parse("2026-04-12T23:48:03.1+02:00");
        assert_eq!(t.display(), "2026-04-12 23:48:03");
    }

    #[test]
    fn garbage_is_kept_raw() {
        for text in [
            "-",
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-04-12T21:48:03.",
            "2026-04-12T21:48:03Zjunk",
            "2026-04-12T25:00:00Z",
            "2026-04-12T21:48:03+99:00",
            "２０２６-04-12T21:48:03Z",
        ] {
            assert_eq!(
                Timestamp::parse(text),
                Timestamp::Raw(text.to_owned()),
                "{text}"
            );
        }
    }
}
