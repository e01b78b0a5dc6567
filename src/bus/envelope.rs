//! The event envelope: what a publisher sends, what the broker re-issues, what a
//! subscriber receives.
//!
//! A `PUB` body is `{"type": "...", "payload": {...}}`; anything else in it (a `topic`
//! field, say) is ignored, because the topic comes from the frame header only. For each
//! `PUB` the broker builds a fresh envelope
//! `{"v":1,"id":"<32 hex>","topic":…,"type":…,"ts":<epoch seconds>,"payload":…}` and
//! encodes it once, whatever the number of subscribers. The payload is carried as raw
//! JSON (checked, never re-parsed into a tree), which keeps the broker's cost per event
//! independent of the payload's shape.
//!
//! Ids are unique rather than random: 64 random bits drawn once per process, then a
//! 64-bit sequence number, printed as 32 hex digits like the original's `uuid4().hex`.
//! Receivers only use ids to de-duplicate and correlate, never as secrets.
use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_util::bytes::{BufMut, Bytes, BytesMut};

use super::Error;
use super::wire::{MAX_BODY, Verb};

/// Version number in every envelope.
pub const ENVELOPE_VERSION: u32 = 1;

/// An event as a subscriber decodes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// Unique event id, 32 hex digits.
    pub id: String,
    /// The topic it was published on.
    pub topic: String,
    /// The publisher's event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the broker accepted it, in seconds since the UNIX epoch.
    pub ts: f64,
    /// The publisher's data.
    pub payload: serde_json::Value,
}

/// One delivered event, kept encoded until the receiver asks for the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// The envelope as JSON (one line, no trailing newline).
    pub body: Bytes,
}

impl Message {
    /// Decodes the envelope.
    pub fn envelope(&self) -> Result<Envelope, Error> {
        serde_json::from_slice(&self.body).map_err(Error::BadEnvelope)
    }
}

/// The fields the broker takes from a `PUB` body.
#[derive(Debug, Deserialize)]
struct PubBody<'a> {
    #[serde(rename = "type", default, borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
}

/// A checked `PUB` body, borrowing from the frame.
#[derive(Debug)]
pub struct Published<'a> {
    event_type: Option<Cow<'a, str>>,
    payload: Option<&'a RawValue>,
}

impl<'a> Published<'a> {
    /// Parses a `PUB` body: empty, or a JSON object (`type` and `payload` both optional).
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        if body.is_empty() {
            return Ok(Published {
                event_type: None,
                payload: None,
            });
        }
        let parsed: PubBody<'a> = serde_json::from_slice(body).map_err(Error::BadEnvelope)?;
        Ok(Published {
            event_type: parsed.event_type,
            payload: parsed.payload,
        })
    }
}

/// Appends a `PUB` frame for `payload` to `dst`.
pub fn encode_pub(
    topic: &str,
    event_type: &str,
    payload: &serde_json::Value,
    dst: &mut BytesMut,
) -> Result<(), Error> {
    write_frame(Verb::Pub, topic, dst, |w| {
        w.extend_from_slice(b"{\"type\":");
        json(w, event_type)?;
        w.extend_from_slice(b",\"payload\":");
        json(w, payload)?;
        w.put_u8(b'}');
        Ok(())
    })
}

/// Appends the `EVT` frame the broker sends for a `PUB` on `topic`.
///
/// A missing `type` defaults to the topic and a missing `payload` to `{}`.
pub fn encode_evt(topic: &str, published: &Published<'_>, dst: &mut BytesMut) -> Result<(), Error> {
    let event_type = published.event_type.as_deref().unwrap_or(topic);
    let payload = published.payload.map_or("{}", RawValue::get);
    write_frame(Verb::Evt, topic, dst, |w| {
        envelope_json(topic, event_type, payload, w)
    })
}

/// The envelope JSON for an event, as the broker would build it (used by `LocalBus`).
pub fn envelope_body(
    topic: &str,
    event_type: &str,
    payload: &serde_json::Value,
) -> Result<Bytes, Error> {
    let payload = serde_json::to_string(payload).map_err(Error::BadEnvelope)?;
    let mut out = BytesMut::new();
    envelope_json(topic, event_type, &payload, &mut out).map_err(Error::BadEnvelope)?;
    Ok(out.freeze())
}

fn envelope_json(
    topic: &str,
    event_type: &str,
    payload: &str,
    w: &mut BytesMut,
) -> Result<(), serde_json::Error> {
    w.extend_from_slice(b"{\"v\":1,\"id\":\"");
    w.extend_from_slice(&next_id());
    w.extend_from_slice(b"\",\"topic\":");
    json(w, topic)?;
    w.extend_from_slice(b",\"type\":");
    json(w, event_type)?;
    w.extend_from_slice(b",\"ts\":");
    json(w, &now_epoch())?;
    w.extend_from_slice(b",\"payload\":");
    w.extend_from_slice(payload.as_bytes());
    w.put_u8(b'}');
    Ok(())
}

/// Writes header, a length placeholder, the body from `body`, then patches the length.
fn write_frame(
    verb: Verb,
    arg: &str,
    dst: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), serde_json::Error>,
) -> Result<(), Error> {
    let start = dst.len();
    super::wire::encode(verb, arg, b"", dst)?;
    let body_start = dst.len();
    let written = body(&mut *dst);
    let len = dst.len() - body_start;
    if let Err(e) = written {
        dst.truncate(start);
        return Err(Error::BadEnvelope(e));
    }
    let Some(len32) = u32::try_from(len).ok().filter(|_| len <= MAX_BODY) else {
        dst.truncate(start);
        return Err(Error::Wire(super::wire::WireError::BodyTooLarge(len)));
    };
    dst[body_start - 4..body_start].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Seconds since the UNIX epoch, to the microsecond (the envelope's wall-clock `ts`).
pub fn now_epoch() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Microsecond precision keeps the printed float short.
    (since.as_micros() as f64) / 1e6
}

fn json<T: Serialize + ?Sized>(w: &mut BytesMut, value: &T) -> Result<(), serde_json::Error> {
    serde_json::to_writer((&mut *w).writer(), value)
}

fn next_id() -> [u8; 32] {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            // No entropy source: ids stay unique within the process, which is all they need.
            Err(_) => u64::from(std::process::id()) << 32,
        }
    });
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut out = [0u8; 32];
    let digits = (u128::from(prefix) << 64) | u128::from(seq);
    for (i, slot) in out.iter_mut().enumerate() {
        let nibble = (digits >> (124 - 4 * i)) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::wire::Codec;
    use tokio_util::codec::Decoder;

    #[test]
    fn evt_is_a_fresh_envelope_with_the_header_topic() {
        let body = br#"{"topic":"spoofed","type":"state","payload":{"n":1}}"#;
        let published = Published::parse(body).expect("object");
        let mut buf = BytesMut::new();
        encode_evt("decky.d1.state", &published, &mut buf).expect("encodes");
        encode_evt("decky.d1.state", &published, &mut buf).expect("encodes");
        let first = Codec.decode(&mut buf).expect("ok").expect("frame");
        let second = Codec.decode(&mut buf).expect("ok").expect("frame");
        assert_eq!(first.verb, Verb::Evt);
        assert_eq!(first.arg, "decky.d1.state");
        let msg = Message {
            topic: first.arg,
            body: first.body,
        };
        let env = msg.envelope().expect("envelope");
        assert_eq!(env.v, 1);
        assert_eq!(env.topic, "decky.d1.state");
        assert_eq!(env.event_type, "state");
        assert_eq!(env.payload, serde_json::json!({"n": 1}));
        assert_eq!(env.id.len(), 32);
        assert!(env.ts > 1.6e9);
        let other: Envelope = serde_json::from_slice(&second.body).expect("envelope");
        assert_ne!(env.id, other.id, "every event gets its own id");
    }

    #[test]
    fn defaults_and_refusals() {
        let published = Published::parse(b"").expect("empty body is allowed");
        let mut buf = BytesMut::new();
        encode_evt("a.b", &published, &mut buf).expect("encodes");
        let frame = Codec.decode(&mut buf).expect("ok").expect("frame");
        let env: Envelope = serde_json::from_slice(&frame.body).expect("envelope");
        assert_eq!(env.event_type, "a.b");
        assert_eq!(env.payload, serde_json::json!({}));

        assert!(Published::parse(b"[1,2]").is_err());
        assert!(Published::parse(b"\"text\"").is_err());
        assert!(Published::parse(b"{\"payload\":").is_err());
    }

    #[test]
    fn pub_frames_carry_type_and_payload() {
        let mut buf = BytesMut::new();
        encode_pub("a.b", "t", &serde_json::json!({"k": "v"}), &mut buf).expect("encodes");
        let frame = Codec.decode(&mut buf).expect("ok").expect("frame");
        assert_eq!((frame.verb, frame.arg.as_str()), (Verb::Pub, "a.b"));
        let v: serde_json::Value = serde_json::from_slice(&frame.body).expect("json");
        assert_eq!(v, serde_json::json!({"type": "t", "payload": {"k": "v"}}));
    }
}
