//! RFC 5425 / RFC 6587 octet counting as a tokio codec: `"<len> <payload>"`, no newline.
//!
//! A frame's payload is bytes: lines that are not UTF-8 travel unchanged and are decoded
//! lossily only by the parser. Decoding is stateless: every call re-reads the (at most a
//! few bytes long) length prefix, so a frame split across reads is simply `Ok(None)`
//! until it is whole.
//!
//! Bounds, each closing only the offending connection (the caller drops it on `Err`):
//! - the frame size is capped ([`DEFAULT_MAX_FRAME`], 64 KiB, or [`OctetCodec::new`]):
//!   the original accepted any 10-digit length, letting one authenticated peer force a
//!   multi-gigabyte allocation;
//! - the prefix may hold no more digits than the cap needs, so a peer cannot make the
//!   reader wait on an endless prefix either;
//! - a prefix byte that is neither a digit nor the closing space is a protocol error.
//!
//! Zero-length frames are skipped. At end of stream a partial prefix is ignored (as in
//! the original) and a partial payload is [`CodecError::Truncated`].
use std::io;

use thiserror::Error;
use tokio_util::bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Default largest payload accepted or sent: 64 KiB (RFC 5425 asks for at least 2 KiB).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Why a stream of frames cannot be read or written any further.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The transport failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// A byte in the length prefix is neither a digit nor the separating space.
    #[error("bad frame: byte {byte:#04x} in the length prefix is not a digit")]
    BadPrefix {
        /// The offending byte.
        byte: u8,
    },
    /// The length prefix is empty (the frame starts with a space).
    #[error("bad frame: empty length prefix")]
    EmptyPrefix,
    /// The length prefix has more digits than the largest frame needs.
    #[error("bad frame: length prefix longer than {max_digits} digits")]
    PrefixTooLong {
        /// Digits allowed by the frame cap.
        max_digits: usize,
    },
    /// The announced or offered payload is larger than the cap.
    #[error("bad frame: {len} bytes exceed the {max} byte limit")]
    FrameTooLarge {
        /// The payload size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The stream ended inside a payload.
    #[error("connection closed inside a frame: {have} of {need} payload bytes received")]
    Truncated {
        /// Payload bytes received.
        have: usize,
        /// Payload bytes announced.
        need: usize,
    },
}

/// Encoder and decoder of octet-counted frames, with a payload cap.
#[derive(Debug, Clone, Copy)]
pub struct OctetCodec {
    max_frame: usize,
    max_digits: usize,
}

impl Default for OctetCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl OctetCodec {
    /// A codec refusing payloads over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            max_digits: max_frame.to_string().len(),
        }
    }

    /// The largest payload this codec accepts or sends.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Reads a complete length prefix: `Ok(Some((digits, len)))`, or `Ok(None)` if more
    /// bytes are needed.
    fn prefix(&self, buf: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
        let mut len = 0usize;
        for (i, &b) in buf.iter().enumerate() {
            match b {
                b' ' if i == 0 => return Err(CodecError::EmptyPrefix),
                b' ' => return Ok(Some((i, len))),
                b'0'..=b'9' if i < self.max_digits => {
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .ok_or(CodecError::FrameTooLarge {
                            len: usize::MAX,
                            max: self.max_frame,
                        })?;
                }
                b'0'..=b'9' => {
                    return Err(CodecError::PrefixTooLong {
                        max_digits: self.max_digits,
                    });
                }
                byte => return Err(CodecError::BadPrefix { byte }),
            }
        }
        Ok(None)
    }
}

/// Digits of the largest `u64`.
pub(crate) const MAX_DECIMAL: usize = 20;

/// Appends `n` in decimal: what `n.to_string()` gives, without a `String` per frame.
pub(crate) fn put_decimal(dst: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; MAX_DECIMAL];
    let mut at = MAX_DECIMAL;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[at..]);
}

impl Decoder for OctetCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        loop {
            let Some((digits, len)) = self.prefix(buf)? else {
                return Ok(None);
            };
            if len > self.max_frame {
                return Err(CodecError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
            let start = digits + 1;
            if buf.len() < start + len {
                buf.reserve(start + len - buf.len());
                return Ok(None);
            }
            let _prefix = buf.split_to(start);
            let payload = buf.split_to(len).freeze();
            if !payload.is_empty() {
                return Ok(Some(payload));
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        match self.prefix(buf)? {
            Some((digits, need)) => Err(CodecError::Truncated {
                have: buf.len() - digits - 1,
                need,
            }),
            None => {
                // EOF inside the length prefix: nothing was announced, nothing is lost.
                buf.clear();
                Ok(None)
            }
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for OctetCodec {
    type Error = CodecError;

    fn encode(&mut self, payload: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let payload = payload.as_ref();
        if payload.len() > self.max_frame {
            return Err(CodecError::FrameTooLarge {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        dst.reserve(MAX_DECIMAL + 1 + payload.len());
        put_decimal(dst, payload.len() as u64);
        dst.put_u8(b' ');
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_what_to_string_gives() {
        for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut out = BytesMut::new();
            put_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    fn decode_all(codec: &mut OctetCodec, input: &[u8]) -> Result<Vec<Bytes>, CodecError> {
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf)? {
            frames.push(frame);
        }
        if let Some(frame) = codec.decode_eof(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn round_trip_including_non_utf8() {
        let mut codec = OctetCodec::default();
        let mut buf = BytesMut::new();
        for payload in [&b"hello"[..], b"\xff\xfe\x00 x", b""] {
            codec
                .encode(payload, &mut buf)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(&buf[..], b"5 hello5 \xff\xfe\x00 x0 ");
        let frames = decode_all(&mut codec, &buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames, vec![&b"hello"[..], b"\xff\xfe\x00 x"]);
    }

    #[test]
    fn split_reads_are_incomplete_not_errors() {
        let mut codec = OctetCodec::default();
        let wire = b"11 hello world3 abc";
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in wire {
            buf.put_u8(b);
            while let Some(f) = codec.decode(&mut buf).unwrap_or_else(|e| panic!("{e}")) {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![&b"hello world"[..], b"abc"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_prefixes_are_errors() {
        let mut codec = OctetCodec::default();
        assert!(matches!(
            decode_all(&mut codec, b"12a hello"),
            Err(CodecError::BadPrefix { byte: b'a' })
        ));
        assert!(matches!(
            decode_all(&mut codec, b" 5 hello"),
            Err(CodecError::EmptyPrefix)
        ));
        assert!(matches!(
            decode_all(&mut codec, b"-5 hello"),
            Err(CodecError::BadPrefix { byte: b'-' })
        ));
        // 6 digits cannot be a frame of at most 65536 bytes, even before the space arrives.
        assert!(matches!(
            decode_all(&mut codec, b"000001"),
            Err(CodecError::PrefixTooLong { max_digits: 5 })
        ));
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let mut codec = OctetCodec::new(8);
        assert!(matches!(
            decode_all(&mut codec, b"9 "),
            Err(CodecError::FrameTooLarge { len: 9, max: 8 })
        ));
        assert_eq!(
            decode_all(&mut codec, b"8 12345678").ok(),
            Some(vec![Bytes::from_static(b"12345678")])
        );
        let mut buf = BytesMut::new();
        assert!(matches!(
            codec.encode(&b"123456789"[..], &mut buf),
            Err(CodecError::FrameTooLarge { len: 9, max: 8 })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn eof_handling() {
        let mut codec = OctetCodec::default();
        assert_eq!(decode_all(&mut codec, b"").ok(), Some(vec![]));
        assert_eq!(decode_all(&mut codec, b"12").ok(), Some(vec![]));
        assert!(matches!(
            decode_all(&mut codec, b"5 hel"),
            Err(CodecError::Truncated { have: 3, need: 5 })
        ));
    }
}
