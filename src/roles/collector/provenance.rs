//! Which decky a line belongs to: the container's label, never the line's own HOSTNAME.
//!
//! A decky writes its lines itself, so an attacker who controls one decky controls the
//! HOSTNAME of everything it prints and could make its events look like another decky's.
//! The collector knows better: every service container carries the label
//! `decnet.fleet.decky` (or `decnet.topology.decky`), set by the engine when it created the
//! container, and the follower hands that name along with each line. [`attribute`] keeps a
//! line whose HOSTNAME is that name byte for byte. Any other line is rewritten before it
//! reaches the raw log, so the forwarder ships, and the master stores, the true decky:
//! - HOSTNAME becomes the labelled name;
//! - the name the line claimed is kept as the SD-PARAM [`CLAIMED_HOSTNAME`] and the line
//!   is flagged [`HOSTNAME_MISMATCH`]`="true"`;
//! - those two names belong to the collector: a decky that sets them itself loses them.
//!
//! The rewritten line is built from the parsed event (PRI, timestamp with its offset,
//! APP-NAME, MSGID, the `relay@55555` parameters and MSG), so parsing it again (as the
//! master does) yields the same event with the true decky. What it drops is what no decnet
//! reader uses: PROCID (written `-`) and foreign SD elements. The element is always written,
//! even empty, so an inner `logger` header in MSG can never be unwrapped into a HOSTNAME.
use time::OffsetDateTime;

use crate::syslog::{
    Event, Fields, MAX_HOSTNAME, SD_ID, Timestamp, clean_msg, escape_value, header_token,
    param_name, parse,
};

/// SD-PARAM holding the HOSTNAME a rewritten line claimed.
pub const CLAIMED_HOSTNAME: &str = "claimed_hostname";
/// SD-PARAM (`"true"`) flagging a line whose HOSTNAME was not its container's decky.
pub const HOSTNAME_MISMATCH: &str = "hostname_mismatch";

/// `event`, attributed to `decky` (the container's label): unchanged when it already
/// names `decky` and carries neither reserved parameter, else rewritten (`raw` included).
pub fn attribute(event: Event, decky: &str) -> Event {
    let decky = header_token(decky, MAX_HOSTNAME);
    let reserved =
        event.fields.contains(CLAIMED_HOSTNAME) || event.fields.contains(HOSTNAME_MISMATCH);
    if event.decky == decky && !reserved {
        return event;
    }
    let mut fields: Fields = event
        .fields
        .iter()
        .filter(|(k, _)| *k != CLAIMED_HOSTNAME && *k != HOSTNAME_MISMATCH)
        .map(|(k, v)| (param_name(k), v.to_owned()))
        .collect();
    if event.decky != decky {
        fields.insert(CLAIMED_HOSTNAME, event.decky.as_str());
        fields.insert(HOSTNAME_MISMATCH, "true");
    }
    let msg = event
        .msg
        .as_deref()
        .map(clean_msg)
        .filter(|m| !m.is_empty());
    let raw = line(&event, &decky, &fields, msg.as_deref());
    // Parsed again so the event is exactly what the master will read from the raw log;
    // the line is well formed by construction, and the fallback names the decky too.
    parse(&raw).unwrap_or(Event {
        decky,
        fields,
        msg,
        raw,
        ..event
    })
}

/// The RFC 5424 text of `event` under HOSTNAME `decky` with `fields` and `msg`.
fn line(event: &Event, decky: &str, fields: &Fields, msg: Option<&str>) -> String {
    let mut out = format!(
        "<{}>1 {} {decky} {} - {} [{SD_ID}",
        pri(&event.raw),
        timestamp(&event.timestamp),
        event.service,
        event.event_type,
    );
    for (k, v) in fields.iter() {
        out.push_str(&format!(" {k}=\"{}\"", escape_value(v)));
    }
    out.push(']');
    if let Some(msg) = msg {
        out.push(' ');
        out.push_str(msg);
    }
    out
}

/// The PRI digits of a parsed line (`134` when, impossibly, there are none).
fn pri(raw: &str) -> &str {
    let digits = raw.strip_prefix('<').unwrap_or_default();
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    Some(&digits[..len])
        .filter(|d| !d.is_empty())
        .unwrap_or("134")
}

/// The TIMESTAMP token: a parsed time in its own offset with nanoseconds (so the
/// displayed wall time and the order stay as they were), unreadable text as it was.
fn timestamp(ts: &Timestamp) -> String {
    match ts {
        Timestamp::Parsed(t) => iso(*t),
        Timestamp::Raw(raw) => raw.clone(),
    }
}

fn iso(t: OffsetDateTime) -> String {
    let (h, m, _) = t.offset().as_hms();
    let sign = if t.offset().is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}{sign}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond(),
        h.unsigned_abs(),
        m.unsigned_abs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(line: &str) -> Event {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// What the master will store: the rewritten line parsed again.
    fn reparsed(e: &Event) -> Event {
        event(&e.raw)
    }

    #[test]
    fn a_line_naming_its_own_decky_is_kept_byte_for_byte() {
        let line = r#"<134>1 2026-11-29T12:00:00.000001+00:00 decky-01 redis 7 connect [relay@55555 src_ip="198.51.100.7"] hi"#;
        let out = attribute(event(line), "decky-01");
        assert_eq!(out.raw, line);
        assert_eq!(out, event(line));
    }

    #[test]
    fn another_deckys_hostname_is_rewritten_and_the_claim_kept() {
        let line = r#"<38>1 2026-11-29T14:00:00.5+02:00 decky-02 ssh 99 login_attempt [other@1 a="b"][relay@55555 src_ip="198.51.100.7" user="ro\"ot" path="a\]b"] tried root"#;
        let out = attribute(event(line), "decky-01");
        assert_eq!(
            out.raw,
            r#"<38>1 2026-11-29T14:00:00.500000000+02:00 decky-01 ssh - login_attempt [relay@55555 src_ip="198.51.100.7" user="ro\"ot" path="a\]b" claimed_hostname="decky-02" hostname_mismatch="true"] tried root"#
        );
        assert_eq!(out.decky, "decky-01");
        assert_eq!(out.fields.get(CLAIMED_HOSTNAME), Some("decky-02"));
        assert_eq!(out.fields.get(HOSTNAME_MISMATCH), Some("true"));
        assert_eq!(out.fields.get("user"), Some("ro\"ot"));
        assert_eq!(out.attacker_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(
            out.timestamp.display(),
            "2026-11-29 14:00:00",
            "wall time kept"
        );
        assert_eq!(reparsed(&out), out, "the master parses the same event");
    }

    #[test]
    fn a_wrapped_logger_header_cannot_smuggle_a_hostname() {
        // The parser unwraps `- <time> HOST APP …` after a `-` MSGID: the inner HOSTNAME is
        // the claim, and the rewrite must not leave an unwrappable body behind.
        let line = "<13>1 2026-11-29T12:00:00Z decky-01 logger - - - 2026-11-29T12:00:00Z decky-02 app - - payload";
        let claimed = event(line);
        assert_eq!(claimed.decky, "decky-02");
        let out = attribute(claimed, "decky-01");
        assert_eq!(out.decky, "decky-01");
        assert_eq!(out.fields.get(CLAIMED_HOSTNAME), Some("decky-02"));
        assert_eq!(reparsed(&out), out);

        let line = "<13>1 2026-11-29T12:00:00Z decky-02 logger - - 2026-11-29T12:00:00Z decky-03 app - - x";
        let out = attribute(event(line), "decky-01");
        assert_eq!(reparsed(&out).decky, "decky-01");
    }

    #[test]
    fn the_reserved_parameters_belong_to_the_collector() {
        let line = r#"<134>1 2026-11-29T12:00:00Z decky-01 ssh - x [relay@55555 claimed_hostname="decky-09" hostname_mismatch="false"]"#;
        let out = attribute(event(line), "decky-01");
        assert_eq!(out.fields, Fields::new(), "a decky cannot forge the flag");
        assert_eq!(
            out.raw,
            "<134>1 2026-11-29T12:00:00.000000000+00:00 decky-01 ssh - x [relay@55555]"
        );
        assert_eq!(reparsed(&out), out);
    }

    #[test]
    fn commands_and_unreadable_timestamps_survive() {
        let line = "<14>1 not-a-time decky-02 bash - - - CMD uid=0 user=root src=198.51.100.9 pwd=/ cmd=id";
        let out = attribute(event(line), "decky-01");
        assert_eq!(out.event_type, "command");
        assert_eq!(out.fields.get("command"), Some("id"));
        assert_eq!(out.timestamp.display(), "not-a-time");
        assert_eq!(out.attacker_ip.as_deref(), Some("198.51.100.9"));
        assert_eq!(reparsed(&out), out);
    }

    #[test]
    fn a_label_that_is_not_a_token_is_made_one() {
        let line = "<134>1 2026-11-29T12:00:00Z decky-01 ssh - x -";
        let out = attribute(event(line), "bad name");
        assert_eq!(out.decky, "bad_name");
        assert_eq!(reparsed(&out).decky, "bad_name");
    }

    proptest! {
        /// Whatever a decky prints, the stored event names the container's decky, and the
        /// master (parsing the raw line again) sees exactly the collector's event.
        #[test]
        fn every_rewritten_line_parses_back_to_the_true_decky(
            host in "[!-~]{1,12}",
            app in "[!-~]{1,8}",
            msg_id in "[!-~]{1,8}",
            rest in "[ -~\u{1b}\u{85}\u{9b}é]{1,80}",
        ) {
            let line = format!("<134>1 2026-11-29T12:00:00Z {host} {app} - {msg_id} {rest}");
            if let Ok(claimed) = parse(&line) {
                let out = attribute(claimed.clone(), "decky-01");
                prop_assert_eq!(&out.decky, "decky-01");
                if claimed.decky != "decky-01" {
                    prop_assert_eq!(out.fields.get(CLAIMED_HOSTNAME), Some(claimed.decky.as_str()));
                    prop_assert_eq!(out.fields.get(HOSTNAME_MISMATCH), Some("true"));
                }
                prop_assert_eq!(reparsed(&out), out);
            }
        }
    }
}
