//! Fuzz-style checks: random bytes into the frame decoder and the RFC 5424 parser never
//! panic, and every outcome is a frame, an incomplete read or a typed error.
use decnet::syslog::{Message, OctetCodec, parse, parse_bytes};
use proptest::prelude::*;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

/// Feeds `input` to a fresh decoder in chunks of the given sizes, then signals EOF.
/// Returns the frames read before the first error, and whether an error ended the stream.
fn drive(max_frame: usize, input: &[u8], chunks: &[usize]) -> (Vec<Vec<u8>>, bool) {
    let mut codec = OctetCodec::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame, "frame over the cap");
                    frames.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame.to_vec()),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}

/// Bytes that look like syslog often enough to reach deep parser states.
fn syslogish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"<134>1 ".to_vec()),
        Just(b"2026-04-12T21:48:03.123456+00:00 ".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"[relay@55555 ".to_vec()),
        Just(b"k=\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"]".to_vec()),
        Just(b" ".to_vec()),
        Just(b"CMD cmd=".to_vec()),
        Just(b"src=".to_vec()),
        Just(b"from 203.0.113.9:22".to_vec()),
        Just(b"[::1]:".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|ps| ps.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn parser_survives_syslogish_bytes(bytes in syslogish()) {
        if let Ok(event) = parse_bytes(&bytes) {
            prop_assert!(event.raw.starts_with("<"));
        }
    }

    #[test]
    fn parser_survives_random_strings(line in any::<String>()) {
        let _ = parse(&line);
    }

    #[test]
    fn codec_survives_random_bytes(
        max in 0usize..100_000,
        input in prop::collection::vec(any::<u8>(), 0..2048),
        chunks in prop::collection::vec(1usize..64, 1..8),
    ) {
        drive(max, &input, &chunks);
    }

    #[test]
    fn codec_survives_digit_heavy_bytes(
        input in prop::collection::vec(prop_oneof![Just(b' '), b'0'..=b'9', any::<u8>()], 0..512),
        chunks in prop::collection::vec(1usize..16, 1..4),
    ) {
        drive(64, &input, &chunks);
    }

    #[test]
    fn codec_round_trips_any_split(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20),
        chunks in prop::collection::vec(1usize..97, 1..6),
    ) {
        let mut codec = OctetCodec::new(300);
        let mut wire = BytesMut::new();
        for p in &payloads {
            codec.encode(p.as_slice(), &mut wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let (frames, failed) = drive(300, &wire, &chunks);
        prop_assert!(!failed);
        prop_assert_eq!(frames, payloads);
    }

    #[test]
    fn framed_lines_parse_back(host in "[a-z]{1,10}", v in any::<String>()) {
        let line = Message::new(time::OffsetDateTime::UNIX_EPOCH, host, "ssh", "auth")
            .param("username", v.clone())
            .to_string();
        let mut wire = BytesMut::new();
        OctetCodec::default().encode(line.as_bytes(), &mut wire)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (frames, failed) = drive(decnet::syslog::DEFAULT_MAX_FRAME, &wire, &[7]);
        prop_assert!(!failed);
        let event = parse_bytes(&frames[0]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(event.fields.get("username"), Some(v.as_str()));
    }
}
