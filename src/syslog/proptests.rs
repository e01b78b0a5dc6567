//! Property tests: whatever a honeypot logs, format → parse gives it back.
use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;

/// Strings rich in the characters escaping must handle, plus anything at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just(']'),
                Just('['),
                Just('='),
                Just(' '),
                Just('\n'),
                Just('\r'),
                Just('n'),
                Just('é'),
                Just('\u{1f41d}'),
                Just('\u{0}'),
            ],
            0..12
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

/// Microsecond-precision UTC times between 1970 and 9999.
fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..253_402_300_799, 0u32..1_000_000).prop_map(|(secs, micros)| {
        OffsetDateTime::from_unix_timestamp(secs)
            .map(|t| t + time::Duration::microseconds(i64::from(micros)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        timestamp(),
        "[!-~]{1,64}",
        "[!-~]{1,48}",
        // Event types never `-` or `command`: those trigger the bash-hook rules.
        "[a-z_]{1,6}_[a-z_]{0,25}",
        prop::collection::vec(("k_[A-Za-z0-9_.-]{0,30}", value()), 0..6),
        prop::option::of(value()),
    )
        .prop_map(|(ts, host, app, msg_id, params, msg)| Message {
            severity: Severity::Info,
            timestamp: ts,
            hostname: host,
            app_name: app,
            msg_id,
            params: params.into_iter().collect(),
            msg,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn format_then_parse_round_trips(m in message()) {
        let line = m.to_string();
        prop_assert!(!line.contains('\n') && !line.contains('\r'), "one line: {line:?}");
        prop_assert!(!line.ends_with(' '), "no trailing space: {line:?}");
        let e = parse(&line).map_err(|err| TestCaseError::fail(format!("{err}: {line:?}")))?;
        prop_assert_eq!(e.timestamp, Timestamp::Parsed(m.timestamp));
        prop_assert_eq!(&e.decky, &m.hostname);
        prop_assert_eq!(&e.service, &m.app_name);
        prop_assert_eq!(&e.event_type, &m.msg_id);
        prop_assert_eq!(&e.fields, &m.params);
        let msg = m.msg.as_deref().map(clean_msg).filter(|s| !s.is_empty());
        prop_assert_eq!(&e.msg, &msg);
        prop_assert_eq!(&e.raw, &line);
    }

    #[test]
    fn attacker_address_survives_escaping(ip in "[0-9]{1,3}(\\.[0-9]{1,3}){3}", port in 1u16.., v in value()) {
        let m = Message::new(OffsetDateTime::UNIX_EPOCH, "d", "s", "e")
            .param("noise", v)
            .param("remote_addr", format!("{ip}:{port}"));
        let e = parse(&m.to_string()).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(e.attacker_ip.as_deref(), Some(ip.as_str()));
        let port = port.to_string();
        prop_assert_eq!(e.fields.get("remote_port"), Some(port.as_str()));
    }

    #[test]
    fn header_tokens_are_always_parseable(host in any::<String>(), app in any::<String>(), id in any::<String>()) {
        let line = Message::new(OffsetDateTime::UNIX_EPOCH, host, app, id).to_string();
        prop_assert!(parse(&line).is_ok(), "{line:?}");
    }
}
