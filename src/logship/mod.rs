//! The forwarder ↔ listener link: RFC 5425 octet-counted frames carrying an envelope that
//! makes delivery exactly-once.
//!
//! Every frame is [`OctetCodec`](crate::syslog::OctetCodec) framing (`"<len> <payload>"`),
//! so the byte stream is plain RFC 5425 and a plain receiver at least sees well-formed
//! frames. What the payloads mean is decided by the first frame of a connection:
//!
//! - **decnet mode**: the first frame is `DECNET/1 HELLO {json}` ([`Hello`]). Every later
//!   frame is an envelope frame of this module, in either direction:
//!
//!   | frame | direction | meaning |
//!   |---|---|---|
//!   | `DECNET/1 HELLO {"version":1,"sources":[…]}` | → listener | declares sources 0…n-1 |
//!   | `DECNET/1 WELCOME {"version":1,"watermarks":[…]}` | → forwarder | committed seq per declared source (0 = none) |
//!   | `S <idx> <name>` | → listener | declares source `idx` mid-connection |
//!   | `D <idx> <seq> <line>` | → listener | line number `seq` of source `idx` |
//!   | `A <idx> <seq>` | → forwarder | every line of `idx` up to `seq` is committed |
//!   | `P` | → listener | keep-alive of an idle forwarder |
//!   | `E <reason>` | → forwarder | refusal, sent just before the listener closes |
//!
//! - **plain mode** (rsyslog's `omfwd`, `decnet forwarder --plain`): any other first frame.
//!   Every frame, the first included, is one syslog line; there are no acknowledgements,
//!   so delivery is at-least-once at best.
//!
//! Why this gives exactly-once (spec README "Log delivery"): a source is one generation
//! of one file (its name changes when the file is replaced or truncated), `seq` numbers
//! its lines from 1 without gaps, and both are derived from the file and the forwarder's
//! persisted position, so a re-sent line carries the same `(source, seq)` as before. The
//! listener acknowledges only what the store has committed, the store ignores a
//! `(worker, source, seq)` it already holds, and the forwarder advances its persisted
//! position only on an acknowledgement. `WELCOME` lets a restarted forwarder skip lines
//! the master committed but never acknowledged.
//!
//! Bounds: a connection may declare at most [`MAX_SOURCES`] sources of at most
//! [`MAX_SOURCE_NAME`] bytes; a line is at most [`max_line`] bytes so its frame fits the
//! codec's cap. Anything else is a [`ProtocolError`] and closes the connection.
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio_util::bytes::{BufMut, Bytes, BytesMut};

use crate::syslog::put_decimal;

/// Version of the envelope this build speaks.
pub const VERSION: u32 = 1;
/// Most sources one connection may declare.
pub const MAX_SOURCES: usize = 4096;
/// Longest source name, in bytes.
pub const MAX_SOURCE_NAME: usize = 1024;
/// Room a data frame's header (`D <idx> <seq> `) may take at most.
const MAX_HEADER: usize = 40;

const HELLO: &[u8] = b"DECNET/1 HELLO ";
const WELCOME: &[u8] = b"DECNET/1 WELCOME ";

/// The longest line that fits a data frame under a codec cap of `max_frame` bytes.
pub fn max_line(max_frame: usize) -> usize {
    max_frame.saturating_sub(MAX_HEADER)
}

/// Why an envelope frame cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The frame is not one the receiving side expects.
    #[error("unexpected frame: {0}")]
    Unexpected(String),
    /// A number, name or JSON body in the frame is malformed.
    #[error("malformed {what} frame")]
    Malformed {
        /// The frame kind.
        what: &'static str,
    },
    /// The peer speaks another envelope version.
    #[error("unsupported envelope version {0} (this build speaks {VERSION})")]
    Version(u32),
    /// A bound of the protocol was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
}

/// First frame of a decnet-mode connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Envelope version ([`VERSION`]).
    pub version: u32,
    /// Sources declared up front; their indexes are their positions.
    pub sources: Vec<String>,
    /// The forwarder's build, for the listener's log.
    #[serde(default)]
    pub agent: String,
}

/// The listener's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Envelope version ([`VERSION`]).
    pub version: u32,
    /// Highest committed seq of each declared source, by index (0 when none).
    pub watermarks: Vec<u64>,
}

/// A frame the forwarder sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `DECNET/1 HELLO`.
    Hello(Hello),
    /// `S idx name`.
    Source {
        /// Index the source gets on this connection.
        idx: u32,
        /// The source's name.
        name: String,
    },
    /// `D idx seq line`.
    Line {
        /// Source index.
        idx: u32,
        /// Line number within the source, from 1.
        seq: u64,
        /// The line, without its terminator; bytes, not necessarily UTF-8.
        line: Bytes,
    },
    /// `P`.
    Ping,
}

/// A frame the listener sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downstream {
    /// `DECNET/1 WELCOME`.
    Welcome(Welcome),
    /// `A idx seq`.
    Ack {
        /// Source index.
        idx: u32,
        /// Committed watermark.
        seq: u64,
    },
    /// `E reason`.
    Refused(String),
}

/// Whether `first` opens a decnet-mode connection.
pub fn is_hello(first: &[u8]) -> bool {
    first.starts_with(HELLO)
}

/// Splits `b"<num> rest"` into the number and the rest.
fn number(payload: &[u8]) -> Option<(u64, &[u8])> {
    let digits = payload.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let n = std::str::from_utf8(&payload[..digits]).ok()?.parse().ok()?;
    match payload.get(digits) {
        None => Some((n, &[])),
        Some(b' ') => Some((n, &payload[digits + 1..])),
        Some(_) => None,
    }
}

fn index(n: u64) -> Option<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&i| (i as usize) < MAX_SOURCES)
}

fn json<T: for<'de> Deserialize<'de>>(body: &[u8], what: &'static str) -> Result<T, ProtocolError> {
    serde_json::from_slice(body).map_err(|_| ProtocolError::Malformed { what })
}

fn check_name(name: &str) -> Result<(), ProtocolError> {
    if name.is_empty() || name.len() > MAX_SOURCE_NAME {
        return Err(ProtocolError::Limit("source name length"));
    }
    Ok(())
}

impl Upstream {
    /// Decodes a frame payload (the listener's side).
    pub fn decode(payload: Bytes) -> Result<Self, ProtocolError> {
        let unexpected = || ProtocolError::Unexpected(preview(&payload));
        if let Some(body) = payload.strip_prefix(HELLO) {
            let hello: Hello = json(body, "HELLO")?;
            if hello.version != VERSION {
                return Err(ProtocolError::Version(hello.version));
            }
            if hello.sources.len() > MAX_SOURCES {
                return Err(ProtocolError::Limit("sources per connection"));
            }
            for name in &hello.sources {
                check_name(name)?;
            }
            return Ok(Self::Hello(hello));
        }
        match payload.first() {
            Some(b'D') if payload.get(1) == Some(&b' ') => {
                let malformed = ProtocolError::Malformed { what: "D" };
                let (idx, rest) = number(&payload[2..]).ok_or(malformed.clone())?;
                let (seq, line) = number(rest).ok_or(malformed.clone())?;
                let idx = index(idx).ok_or(malformed)?;
                let start = payload.len() - line.len();
                Ok(Self::Line {
                    idx,
                    seq,
                    line: payload.slice(start..),
                })
            }
            Some(b'S') if payload.get(1) == Some(&b' ') => {
                let malformed = ProtocolError::Malformed { what: "S" };
                let (idx, name) = number(&payload[2..]).ok_or(malformed.clone())?;
                let idx = index(idx).ok_or(ProtocolError::Limit("sources per connection"))?;
                let name = std::str::from_utf8(name).map_err(|_| malformed)?;
                check_name(name)?;
                Ok(Self::Source {
                    idx,
                    name: name.to_owned(),
                })
            }
            Some(b'P') if payload.len() == 1 => Ok(Self::Ping),
            _ => Err(unexpected()),
        }
    }

    /// Encodes the frame payload (the forwarder's side).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Hello(hello) => {
                dst.put_slice(HELLO);
                dst.put_slice(&serde_json::to_vec(hello).unwrap_or_default());
            }
            Self::Source { idx, name } => {
                dst.put_slice(format!("S {idx} {name}").as_bytes());
            }
            Self::Line { idx, seq, line } => encode_line(*idx, *seq, line, dst),
            Self::Ping => dst.put_u8(b'P'),
        }
    }
}

/// Encodes a `D` payload without building an [`Upstream`] (the forwarder's hot path).
pub fn encode_line(idx: u32, seq: u64, line: &[u8], dst: &mut BytesMut) {
    dst.reserve(line.len() + MAX_HEADER);
    dst.put_slice(b"D ");
    put_decimal(dst, u64::from(idx));
    dst.put_u8(b' ');
    put_decimal(dst, seq);
    dst.put_u8(b' ');
    dst.put_slice(line);
}

impl Downstream {
    /// Decodes a frame payload (the forwarder's side).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        if let Some(body) = payload.strip_prefix(WELCOME) {
            let welcome: Welcome = json(body, "WELCOME")?;
            if welcome.version != VERSION {
                return Err(ProtocolError::Version(welcome.version));
            }
            return Ok(Self::Welcome(welcome));
        }
        match payload.first() {
            Some(b'A') if payload.get(1) == Some(&b' ') => {
                let malformed = ProtocolError::Malformed { what: "A" };
                let (idx, rest) = number(&payload[2..]).ok_or(malformed.clone())?;
                let (seq, rest) = number(rest).ok_or(malformed.clone())?;
                let idx = index(idx).ok_or(malformed.clone())?;
                if !rest.is_empty() {
                    return Err(malformed);
                }
                Ok(Self::Ack { idx, seq })
            }
            Some(b'E') => Ok(Self::Refused(
                String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned(),
            )),
            _ => Err(ProtocolError::Unexpected(preview(payload))),
        }
    }

    /// Encodes the frame payload (the listener's side).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Welcome(welcome) => {
                dst.put_slice(WELCOME);
                dst.put_slice(&serde_json::to_vec(welcome).unwrap_or_default());
            }
            Self::Ack { idx, seq } => dst.put_slice(format!("A {idx} {seq}").as_bytes()),
            Self::Refused(reason) => dst.put_slice(format!("E {reason}").as_bytes()),
        }
    }
}

/// The first bytes of a payload, printable, for error messages.
fn preview(payload: &[u8]) -> String {
    let head = &payload[..payload.len().min(24)];
    String::from_utf8_lossy(head).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(frame: &Upstream) -> Upstream {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        Upstream::decode(buf.freeze()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn down(frame: &Downstream) -> Downstream {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        Downstream::decode(&buf).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn frames_round_trip() {
        let hello = Upstream::Hello(Hello {
            version: VERSION,
            sources: vec!["/var/log/decnet/decnet.log:12:0".into()],
            agent: "0.1.0".into(),
        });
        assert_eq!(up(&hello), hello);
        let source = Upstream::Source {
            idx: 3,
            name: "a b:1:2".into(),
        };
        assert_eq!(up(&source), source);
        let line = Upstream::Line {
            idx: 1,
            seq: u64::MAX,
            line: Bytes::from_static(b"<13>1 - x \xff y"),
        };
        assert_eq!(up(&line), line);
        let empty = Upstream::Line {
            idx: 0,
            seq: 1,
            line: Bytes::new(),
        };
        assert_eq!(up(&empty), empty);
        assert_eq!(up(&Upstream::Ping), Upstream::Ping);
        let welcome = Downstream::Welcome(Welcome {
            version: VERSION,
            watermarks: vec![0, 7],
        });
        assert_eq!(down(&welcome), welcome);
        let ack = Downstream::Ack { idx: 2, seq: 99 };
        assert_eq!(down(&ack), ack);
        let refused = Downstream::Refused("revoked".into());
        assert_eq!(down(&refused), refused);
    }

    #[test]
    fn hello_is_recognised_only_as_a_prefix() {
        assert!(is_hello(b"DECNET/1 HELLO {}"));
        assert!(!is_hello(
            b"<13>1 2026-01-01T00:00:00Z h a - - - DECNET/1 HELLO"
        ));
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"D",
            b"D 1",
            b"D x 1 line",
            b"D 1 -1 line",
            b"D 99999999 1 line",
            b"D 1 123456789012345678901 x",
            b"S 1",
            b"S 1 \xff",
            b"Q 1",
            b"DECNET/1 HELLO {",
            b"DECNET/1 HELLO {\"version\":2,\"sources\":[]}",
            b"<13>1 2026 h a - - - msg",
        ] {
            assert!(
                Upstream::decode(Bytes::copy_from_slice(bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [
            &b"A 1"[..],
            b"A 1 2 3",
            b"A x 2",
            b"W",
            b"DECNET/1 WELCOME []",
        ] {
            assert!(Downstream::decode(bad).is_err(), "{bad:?}");
        }
        let long = format!("S 0 {}", "x".repeat(MAX_SOURCE_NAME + 1));
        assert_eq!(
            Upstream::decode(Bytes::from(long)),
            Err(ProtocolError::Limit("source name length"))
        );
    }

    #[test]
    fn the_longest_line_fits_the_frame_cap() {
        let max = 1000;
        let line = vec![b'x'; max_line(max)];
        let mut buf = BytesMut::new();
        encode_line(MAX_SOURCES as u32 - 1, u64::MAX, &line, &mut buf);
        assert!(buf.len() <= max, "{} > {max}", buf.len());
    }
}
