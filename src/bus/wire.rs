//! The bus frame: a verb line, a 4-byte big-endian body length, then a JSON body.
//!
//! ```text
//! PUB decky.web1.state\n  <u32 BE length>  {"type":"state","payload":{…}}
//! ```
//!
//! The header is ASCII, at most [`MAX_HEADER`] bytes including the `\n` (a `\r` before
//! it is tolerated), and is a verb optionally followed by one space and an argument (a
//! topic, pattern, client name or token). The body is empty or a JSON object of at most
//! [`MAX_BODY`] bytes; whether it must be an object is the reader's business, not the
//! codec's. The same framing runs in both directions, so one [`Codec`] serves the broker
//! and the client.
//!
//! Decoding distinguishes an incomplete frame (`Ok(None)`: read more) from a broken one
//! ([`WireError`]). A broken frame means the byte stream can no longer be trusted, so the
//! reader answers with an `ERR` frame and closes that connection.
use std::fmt;
use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Longest header line accepted, `\n` included.
pub const MAX_HEADER: usize = 4096;
/// Largest body accepted (1 MiB): bus events are notifications, not payload transport.
pub const MAX_BODY: usize = 1 << 20;

/// What a frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Client → broker: introduces the client by name (argument).
    Hello,
    /// Client → broker: publish the body envelope on the topic (argument).
    Pub,
    /// Client → broker: start receiving events matching the pattern (argument).
    Sub,
    /// Client → broker: stop receiving events matching the pattern (argument).
    Unsub,
    /// Broker → client: an event on the topic (argument), body is the envelope.
    Evt,
    /// Either way: the sender is closing the connection.
    Bye,
    /// Client → broker: answer with `PONG` once every earlier frame is processed.
    Ping,
    /// Broker → client: the answer to `PING`, with the same argument.
    Pong,
    /// Broker → client: a request was refused; the body says why.
    Err,
}

impl Verb {
    /// The verb as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Hello => "HELLO",
            Verb::Pub => "PUB",
            Verb::Sub => "SUB",
            Verb::Unsub => "UNSUB",
            Verb::Evt => "EVT",
            Verb::Bye => "BYE",
            Verb::Ping => "PING",
            Verb::Pong => "PONG",
            Verb::Err => "ERR",
        }
    }

    fn parse(word: &[u8]) -> Option<Verb> {
        Some(match word {
            b"HELLO" => Verb::Hello,
            b"PUB" => Verb::Pub,
            b"SUB" => Verb::Sub,
            b"UNSUB" => Verb::Unsub,
            b"EVT" => Verb::Evt,
            b"BYE" => Verb::Bye,
            b"PING" => Verb::Ping,
            b"PONG" => Verb::Pong,
            b"ERR" => Verb::Err,
            _ => return None,
        })
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame asks for.
    pub verb: Verb,
    /// The header argument, empty when absent.
    pub arg: String,
    /// The body bytes (JSON object or empty).
    pub body: Bytes,
}

impl Frame {
    /// A frame with an empty body.
    pub fn bare(verb: Verb, arg: impl Into<String>) -> Self {
        Frame {
            verb,
            arg: arg.into(),
            body: Bytes::new(),
        }
    }
}

/// Why a byte stream is not a valid sequence of frames.
#[derive(Debug, Error)]
pub enum WireError {
    /// No `\n` within the first [`MAX_HEADER`] bytes.
    #[error("header longer than {MAX_HEADER} bytes")]
    HeaderTooLong,
    /// The header holds a byte outside printable ASCII.
    #[error("header is not printable ASCII")]
    NotAscii,
    /// The header's first word is not a known verb.
    #[error("unknown verb {0:?}")]
    UnknownVerb(String),
    /// The announced body is larger than [`MAX_BODY`].
    #[error("body of {0} bytes exceeds the {MAX_BODY}-byte limit")]
    BodyTooLarge(usize),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The frame codec; stateless, so one value can decode a whole connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Codec;

impl Decoder for Codec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let window = &src[..src.len().min(MAX_HEADER)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            return if src.len() >= MAX_HEADER {
                Err(WireError::HeaderTooLong)
            } else {
                Ok(None)
            };
        };
        let mut line = &src[..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if !line.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(WireError::NotAscii);
        }
        let (word, arg) = match line.iter().position(|&b| b == b' ') {
            Some(sp) => (&line[..sp], &line[sp + 1..]),
            None => (line, &line[line.len()..]),
        };
        let verb = Verb::parse(word)
            .ok_or_else(|| WireError::UnknownVerb(String::from_utf8_lossy(word).into_owned()))?;
        let Some(len_bytes) = src.get(nl + 1..nl + 5) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_BODY {
            return Err(WireError::BodyTooLarge(len));
        }
        let total = nl + 5 + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        // The header was checked to be ASCII, so this conversion is lossless.
        let arg = String::from_utf8_lossy(arg).into_owned();
        src.advance(nl + 5);
        let body = src.split_to(len).freeze();
        Ok(Some(Frame { verb, arg, body }))
    }
}

impl Encoder<&Frame> for Codec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(frame.verb, &frame.arg, &frame.body, dst)
    }
}

/// Appends one frame to `dst`; refuses headers and bodies the peer would reject.
pub fn encode(verb: Verb, arg: &str, body: &[u8], dst: &mut BytesMut) -> Result<(), WireError> {
    let header_len = verb.as_str().len() + if arg.is_empty() { 1 } else { arg.len() + 2 };
    if header_len > MAX_HEADER {
        return Err(WireError::HeaderTooLong);
    }
    if !arg.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(WireError::NotAscii);
    }
    let len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= MAX_BODY)
        .ok_or(WireError::BodyTooLarge(body.len()))?;
    dst.reserve(header_len + 4 + body.len());
    dst.put_slice(verb.as_str().as_bytes());
    if !arg.is_empty() {
        dst.put_u8(b' ');
        dst.put_slice(arg.as_bytes());
    }
    dst.put_u8(b'\n');
    dst.put_u32(len);
    dst.put_slice(body);
    Ok(())
}

/// Encodes one frame into its own buffer, ready to share between queues.
pub fn encode_to_bytes(verb: Verb, arg: &str, body: &[u8]) -> Result<Bytes, WireError> {
    let mut buf = BytesMut::new();
    encode(verb, arg, body, &mut buf)?;
    Ok(buf.freeze())
}

/// Reads frames from a byte stream, buffering partial ones.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a stream (usually the read half of a UNIX socket).
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// The next frame; `Ok(None)` on a clean end of stream between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, WireError> {
        loop {
            if let Some(frame) = Codec.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 * 1024);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(WireError::Truncated)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(verb: Verb, arg: &str, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        encode(verb, arg, body, &mut buf).expect("encodes");
        buf
    }

    #[test]
    fn round_trips_and_waits_for_whole_frames() {
        let mut wire = frame(Verb::Pub, "a.b", br#"{"payload":{}}"#);
        wire.extend_from_slice(&frame(Verb::Bye, "", b""));
        let full = wire.clone();
        // Feed one byte at a time: every prefix is Incomplete until a frame is whole.
        let mut partial = BytesMut::new();
        let mut frames = Vec::new();
        for byte in full.iter() {
            partial.put_u8(*byte);
            while let Some(f) = Codec.decode(&mut partial).expect("valid") {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame {
                    verb: Verb::Pub,
                    arg: "a.b".into(),
                    body: Bytes::from_static(br#"{"payload":{}}"#),
                },
                Frame::bare(Verb::Bye, ""),
            ]
        );
        assert!(partial.is_empty());
    }

    #[test]
    fn tolerates_cr_and_rejects_garbage() {
        let mut buf = BytesMut::from(&b"SUB a.*\r\n\0\0\0\0"[..]);
        let f = Codec.decode(&mut buf).expect("valid").expect("whole");
        assert_eq!((f.verb, f.arg.as_str()), (Verb::Sub, "a.*"));

        let mut buf = BytesMut::from(&b"FETCH x\n\0\0\0\0"[..]);
        assert!(matches!(
            Codec.decode(&mut buf),
            Err(WireError::UnknownVerb(v)) if v == "FETCH"
        ));
        let mut buf = BytesMut::from(&b"PUB \xff\n"[..]);
        assert!(matches!(Codec.decode(&mut buf), Err(WireError::NotAscii)));
        let mut buf = BytesMut::from(&vec![b'A'; MAX_HEADER][..]);
        assert!(matches!(
            Codec.decode(&mut buf),
            Err(WireError::HeaderTooLong)
        ));
        let mut buf = BytesMut::from(&b"PUB a\n\x00\x10\x00\x01"[..]);
        assert!(matches!(
            Codec.decode(&mut buf),
            Err(WireError::BodyTooLarge(n)) if n == MAX_BODY + 1
        ));
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would() {
        let mut buf = BytesMut::new();
        let big = vec![b' '; MAX_BODY + 1];
        assert!(encode(Verb::Pub, "a", &big, &mut buf).is_err());
        assert!(encode(Verb::Pub, &"a".repeat(MAX_HEADER), b"", &mut buf).is_err());
        assert!(encode(Verb::Pub, "é", b"", &mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[tokio::test]
    async fn reader_reports_truncation_and_clean_end() {
        let mut whole = frame(Verb::Ping, "7", b"").to_vec();
        let mut reader = FrameReader::new(&whole[..]);
        assert_eq!(
            reader.next().await.expect("ok"),
            Some(Frame::bare(Verb::Ping, "7"))
        );
        assert_eq!(reader.next().await.expect("ok"), None);
        whole.pop();
        let mut reader = FrameReader::new(&whole[..]);
        assert!(matches!(reader.next().await, Err(WireError::Truncated)));
    }
}
