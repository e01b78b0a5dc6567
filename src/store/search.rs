//! The dashboard's reads of `logs`: the search grammar of engine.md §3.4, pages, counts,
//! the histogram and the overview counters.
//!
//! Grammar: the search text is split shell-style (quotes group, a backslash escapes; an
//! unbalanced quote falls back to splitting on whitespace). `key:value` with key `decky`,
//! `service`, `event`, `attacker`, `attacker-ip` or `attacker_ip` is equality on that
//! column; any other `key:value` is equality on the SD parameter `fields.<key>` (key
//! stripped to `[A-Za-z0-9_]`); a bare token is a substring of `raw_line`, `decky`,
//! `service` or `attacker_ip`. Tokens are AND-ed; `start_time`/`end_time` bound
//! `timestamp`, newest first.
//!
//! Safety property: the SQL text is assembled only from the fixed fragments below, one
//! per token kind; every piece of user input travels as a bound parameter (substring
//! patterns with `%`, `_` and `\` escaped), so no search can change a query's shape.
use rusqlite::params_from_iter;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::{Reader, Result};

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A time bound is not a date or date-time.
    #[error("{0:?} is not a date-time (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])")]
    BadTime(String),
}

/// One AND-ed condition of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    /// Equality on a column (the fragment is a fixed string).
    Column(&'static str, String),
    /// Equality on an SD parameter: JSON path and value.
    Field(String, String),
    /// Substring of the free-text columns.
    Text(String),
}

/// A parsed `/logs` filter: search tokens and time bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    clauses: Vec<Clause>,
    start: Option<String>,
    end: Option<String>,
}

/// A `logs` row as the API returns it (`fields` as JSON text, engine.md §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Row id (the stream cursor).
    pub id: i64,
    /// Event time, UTC `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    /// Decky (HOSTNAME).
    pub decky: String,
    /// Service (APP-NAME).
    pub service: String,
    /// Event type (MSGID).
    pub event_type: String,
    /// Attacker address or `Unknown`.
    pub attacker_ip: String,
    /// The line as received.
    pub raw_line: String,
    /// SD parameters, JSON object text.
    pub fields: String,
    /// Free text.
    pub msg: Option<String>,
    /// OpenTelemetry trace id.
    pub trace_id: Option<String>,
    /// OpenTelemetry span id.
    pub span_id: Option<String>,
}

/// One histogram bucket: its start (`YYYY-MM-DD HH:MM:SS`, UTC) and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket.
    pub time: String,
    /// Events in it.
    pub count: u64,
}

/// The overview counters read from `logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCounts {
    /// Stored events.
    pub total_logs: u64,
    /// Distinct attacker addresses (`Unknown` not counted).
    pub unique_attackers: u64,
}

/// Splits `text` shell-style; `None` when a quote is left open.
fn shell_split(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => cur.push(c),
            (Some(_), '"') => quote = None,
            (Some(_), '\\') => match chars.next() {
                Some(n @ ('"' | '\\')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => return None,
            },
            (Some(_), _) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_token = true;
            }
            (None, '\\') => {
                cur.push(chars.next()?);
                in_token = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_token {
        out.push(cur);
    }
    Some(out)
}

/// `value` as a `LIKE` pattern matching it anywhere, wildcards escaped with `\`.
fn contains_pattern(value: &str) -> String {
    let mut p = String::with_capacity(value.len() + 2);
    p.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn clause(token: &str) -> Clause {
    if let Some((key, value)) = token.split_once(':') {
        let column = match key {
            "decky" => Some("decky"),
            "service" => Some("service"),
            "event" => Some("event_type"),
            "attacker" | "attacker-ip" | "attacker_ip" => Some("attacker_ip"),
            _ => None,
        };
        if let Some(column) = column {
            return Clause::Column(column, value.to_owned());
        }
        let key: String = key
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !key.is_empty() {
            return Clause::Field(format!("$.\"{key}\""), value.to_owned());
        }
    }
    Clause::Text(contains_pattern(token))
}

/// Parses a time bound into the stored `YYYY-MM-DD HH:MM:SS` UTC form.
///
/// Accepts `YYYY-MM-DD`, then optionally `T` or a space and `HH:MM[:SS[.fraction]]`, then
/// optionally `Z` or `±HH:MM`; without an offset the time is UTC, as stored.
pub fn parse_time(text: &str) -> Result<String, FilterError> {
    let bad = || FilterError::BadTime(text.to_owned());
    let s = text.trim();
    let num = |part: Option<&str>, len: usize| -> Result<u32, FilterError> {
        let part = part.ok_or_else(bad)?;
        if part.len() != len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let cut = s.len().min(10);
    if !s.is_char_boundary(cut) {
        return Err(bad());
    }
    let (date, rest) = s.split_at(cut);
    let mut d = date.split('-');
    let year = i32::try_from(num(d.next(), 4)?).map_err(|_| bad())?;
    let month =
        Month::try_from(u8::try_from(num(d.next(), 2)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let day = u8::try_from(num(d.next(), 2)?).map_err(|_| bad())?;
    if d.next().is_some() {
        return Err(bad());
    }
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let (mut h, mut m, mut sec) = (0u8, 0u8, 0u8);
    let mut offset = UtcOffset::UTC;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
        let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let clock = clock.split('.').next().unwrap_or_default();
        let mut c = clock.split(':');
        h = u8::try_from(num(c.next(), 2)?).map_err(|_| bad())?;
        m = u8::try_from(num(c.next(), 2)?).map_err(|_| bad())?;
        if let Some(part) = c.next() {
            sec = u8::try_from(num(Some(part), 2)?).map_err(|_| bad())?;
        }
        if c.next().is_some() {
            return Err(bad());
        }
        if !zone.is_empty() && !zone.eq_ignore_ascii_case("z") {
            let sign: i8 = if zone.starts_with('-') { -1 } else { 1 };
            let mut z = zone[1..].split(':');
            let zh = i8::try_from(num(z.next(), 2)?).map_err(|_| bad())?;
            let zm = i8::try_from(num(z.next(), 2)?).map_err(|_| bad())?;
            offset = UtcOffset::from_hms(sign * zh, sign * zm, 0).map_err(|_| bad())?;
        }
    }
    let time = Time::from_hms(h, m, sec).map_err(|_| bad())?;
    let t: OffsetDateTime = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let mut out = String::with_capacity(19);
    super::push_sql_time(&mut out, t, false);
    Ok(out)
}

impl LogFilter {
    /// Parses a search text and time bounds (each already `None` when absent).
    pub fn parse(
        search: Option<&str>,
        start_time: Option<&str>,
        end_time: Option<&str>,
    ) -> Result<Self, FilterError> {
        let text = search.unwrap_or_default();
        let tokens = shell_split(text)
            .unwrap_or_else(|| text.split_whitespace().map(str::to_owned).collect());
        Ok(Self {
            clauses: tokens.iter().map(|t| clause(t)).collect(),
            start: start_time.map(parse_time).transpose()?,
            end: end_time.map(parse_time).transpose()?,
        })
    }

    /// Whether the filter matches every row.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty() && self.start.is_none() && self.end.is_none()
    }

    /// The `WHERE …` text (empty when unfiltered) and its parameters, in order.
    fn sql(&self) -> (String, Vec<String>) {
        let mut parts: Vec<&'static str> = Vec::new();
        let mut params = Vec::new();
        for c in &self.clauses {
            match c {
                Clause::Column(column, value) => {
                    parts.push(match *column {
                        "decky" => "decky = ?",
                        "service" => "service = ?",
                        "event_type" => "event_type = ?",
                        _ => "attacker_ip = ?",
                    });
                    params.push(value.clone());
                }
                Clause::Field(path, value) => {
                    parts.push("json_extract(fields, ?) = ?");
                    params.push(path.clone());
                    params.push(value.clone());
                }
                Clause::Text(pattern) => {
                    parts.push(
                        "(raw_line LIKE ? ESCAPE '\\' OR decky LIKE ? ESCAPE '\\' \
                         OR service LIKE ? ESCAPE '\\' OR attacker_ip LIKE ? ESCAPE '\\')",
                    );
                    params.extend(std::iter::repeat_n(pattern.clone(), 4));
                }
            }
        }
        if let Some(start) = &self.start {
            parts.push("timestamp >= ?");
            params.push(start.clone());
        }
        if let Some(end) = &self.end {
            parts.push("timestamp <= ?");
            params.push(end.clone());
        }
        if parts.is_empty() {
            return (String::new(), params);
        }
        (format!(" WHERE {}", parts.join(" AND ")), params)
    }
}

pub(super) const ROW_COLUMNS: &str = "id, timestamp, decky, service, event_type, attacker_ip, raw_line, \
                           fields, msg, trace_id, span_id";

pub(super) fn log_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        id: row.get(0)?,
        timestamp: row.get(1)?,
        decky: row.get(2)?,
        service: row.get(3)?,
        event_type: row.get(4)?,
        attacker_ip: row.get(5)?,
        raw_line: row.get(6)?,
        fields: row.get(7)?,
        msg: row.get(8)?,
        trace_id: row.get(9)?,
        span_id: row.get(10)?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Reader {
    /// One page of the rows `filter` matches, newest first.
    pub fn search_logs(&self, filter: &LogFilter, limit: u32, offset: u32) -> Result<Vec<LogRow>> {
        let (cond, mut params) = filter.sql();
        params.push(limit.to_string());
        params.push(offset.to_string());
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM logs{cond} ORDER BY timestamp DESC, id DESC \
             LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), log_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` rows `filter` matches with an id above `after_id`, oldest first
    /// (the live stream's poll: the rowid walk needs no sort).
    pub fn logs_matching_after(
        &self,
        filter: &LogFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<LogRow>> {
        let (cond, mut params) = filter.sql();
        let glue = if cond.is_empty() { " WHERE" } else { " AND" };
        params.push(after_id.to_string());
        params.push(limit.to_string());
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM logs{cond}{glue} id > CAST(? AS INTEGER) \
             ORDER BY id LIMIT CAST(? AS INTEGER)"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), log_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many rows `filter` matches.
    pub fn count_matching(&self, filter: &LogFilter) -> Result<u64> {
        let (cond, params) = filter.sql();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM logs{cond}"))?;
        let n: i64 = stmt.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
        Ok(count(n))
    }

    /// Counts of the rows `filter` matches per `interval_minutes` bucket, oldest first.
    pub fn histogram(&self, filter: &LogFilter, interval_minutes: u32) -> Result<Vec<Bucket>> {
        let (cond, mut params) = filter.sql();
        let width = i64::from(interval_minutes.max(1)) * 60;
        params.insert(0, width.to_string());
        params.insert(1, width.to_string());
        let sql = format!(
            "SELECT (CAST(strftime('%s', timestamp) AS INTEGER) / CAST(? AS INTEGER)) \
             * CAST(? AS INTEGER) AS bucket, count(*) FROM logs{cond} \
             GROUP BY bucket ORDER BY bucket"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (bucket, n) = row?;
            // A timestamp SQLite cannot read has no bucket; it is left out, not guessed.
            let Some(t) = bucket.and_then(|b| OffsetDateTime::from_unix_timestamp(b).ok()) else {
                continue;
            };
            let mut time = String::with_capacity(19);
            super::push_sql_time(&mut time, t, false);
            out.push(Bucket {
                time,
                count: count(n),
            });
        }
        Ok(out)
    }

    /// Stored events and distinct attacker addresses.
    pub fn log_counts(&self) -> Result<LogCounts> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT (SELECT count(*) FROM logs),
                    (SELECT count(DISTINCT attacker_ip) FROM logs WHERE attacker_ip <> 'Unknown')",
        )?;
        let (total, unique): (i64, i64) = stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(LogCounts {
            total_logs: count(total),
            unique_attackers: count(unique),
        })
    }

    /// A cheap query proving the database answers (the health probe).
    pub fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_like_a_shell() {
        assert_eq!(
            shell_split(r#"a "b c" 'd "e' f\ g"#),
            Some(vec!["a".into(), "b c".into(), "d \"e".into(), "f g".into()])
        );
        assert_eq!(shell_split("a \"b"), None);
    }

    #[test]
    fn keys_pick_columns_fields_or_free_text() {
        let f = LogFilter::parse(
            Some("decky:web-1 event:login user:root x%_ \"b-a.d:v'\" ::"),
            None,
            None,
        )
        .unwrap_or_default();
        assert_eq!(
            f.clauses,
            [
                Clause::Column("decky", "web-1".into()),
                Clause::Column("event_type", "login".into()),
                Clause::Field("$.\"user\"".into(), "root".into()),
                Clause::Text("%x\\%\\_%".into()),
                Clause::Field("$.\"bad\"".into(), "v'".into()),
                Clause::Text("%::%".into()),
            ]
        );
    }

    /// Whatever the input, the SQL text comes from the fixed fragments only.
    #[test]
    fn input_never_reaches_the_sql_text() {
        let hostile = "x'); DROP TABLE logs;-- \"a\\\"b\" k\";--:v decky:') OR 1=1";
        let (sql, params) = LogFilter::parse(Some(hostile), None, None)
            .unwrap_or_default()
            .sql();
        assert!(
            !sql.contains("DROP") && !sql.contains("1=1") && !sql.contains(";"),
            "{sql}"
        );
        assert_eq!(sql.matches('?').count(), params.len());
    }

    #[test]
    fn time_bounds_are_normalised_to_utc() {
        let t = |s: &str| parse_time(s);
        assert_eq!(t("2026-03-04"), Ok("2026-03-04 00:00:00".into()));
        assert_eq!(t("2026-03-04T05:06"), Ok("2026-03-04 05:06:00".into()));
        assert_eq!(
            t("2026-03-04 05:06:07.123Z"),
            Ok("2026-03-04 05:06:07".into())
        );
        assert_eq!(
            t("2026-03-04T05:06:07+02:00"),
            Ok("2026-03-04 03:06:07".into())
        );
        assert_eq!(
            t("2026-03-04T05:06:07-01:30"),
            Ok("2026-03-04 06:36:07".into())
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-03-04T25:00",
            "2026-03-04x",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
