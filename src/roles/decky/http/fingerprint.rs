//! Client fingerprints of http and https (engine.md §2.3 "front-proxy fingerprints"):
//! `http_request_fingerprint` (JA4H, the header names in the order and case they were
//! sent, the cookie and the Accept-Language) and, once per HTTP/2 connection,
//! `http2_settings` (the client's SETTINGS, WINDOW_UPDATE increment, PRIORITY frames,
//! pseudo-header order, the frame order up to the first HEADERS, and all of it as the
//! Akamai HTTP/2 fingerprint).
//!
//! hyper lower-cases header names and does not say in which order they came, so the
//! plaintext the client sent is recorded by a [`Tap`] between the transport (TLS
//! already removed) and hyper: every HTTP/1 request takes its own head back out of the
//! recording, which therefore only ever holds the bytes since the last request (bounded
//! by [`TAP_CAP`] anyway); an HTTP/2 connection is recorded up to its first HEADERS
//! frame and not after. JA4H is FoxIO's definition (`ge11cn05enus_…`), HTTP/2 names
//! come from the frames, so a client library can be told apart from the browser whose
//! User-Agent it copies.
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes a tap keeps; more than the header block hyper accepts, so a whole head
/// always fits, while a large body only keeps its tail.
pub const TAP_CAP: usize = 32 * 1024;
/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frames looked at before giving up on an HTTP/2 fingerprint.
const MAX_FRAMES: usize = 32;

/// What the client sent so far, shared between a [`Tap`] and the request handler.
#[derive(Debug, Default)]
pub struct Recording {
    bytes: Vec<u8>,
    stopped: bool,
}

/// The handle both sides hold.
pub type Shared = Arc<Mutex<Recording>>;

impl Recording {
    fn record(&mut self, data: &[u8]) {
        if self.stopped || data.is_empty() {
            return;
        }
        if data.len() >= TAP_CAP {
            self.bytes.clear();
            self.bytes.extend_from_slice(&data[data.len() - TAP_CAP..]);
            return;
        }
        let over = (self.bytes.len() + data.len()).saturating_sub(TAP_CAP);
        self.bytes.drain(..over);
        self.bytes.extend_from_slice(data);
    }

    /// The header names of the HTTP/1 request whose request line is `method target`,
    /// as sent; everything recorded up to the end of that head is dropped.
    pub fn take_head(&mut self, method: &str, target: &str) -> Option<Vec<String>> {
        let line = format!("{method} {target} ");
        let start = find(&self.bytes, line.as_bytes()).unwrap_or_else(|| {
            // A target written differently from hyper's view of it: the first head.
            self.bytes
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count()
        });
        let rest = &self.bytes[start..];
        let end = find(rest, b"\r\n\r\n")
            .map(|i| i + 4)
            .or_else(|| find(rest, b"\n\n").map(|i| i + 2))?;
        let names = header_names(&rest[..end]);
        self.bytes.drain(..start + end);
        Some(names)
    }

    /// Everything recorded so far; recording stops (the TLS handshake is over).
    pub fn take_all(&mut self) -> Vec<u8> {
        self.stopped = true;
        std::mem::take(&mut self.bytes)
    }

    /// The HTTP/2 fingerprint of the connection if it starts with the preface and its
    /// first HEADERS frame has arrived; recording stops once asked.
    pub fn take_h2(&mut self) -> Option<H2Fingerprint> {
        self.stopped = true;
        let found = self
            .bytes
            .strip_prefix(PREFACE)
            .and_then(H2Fingerprint::parse);
        self.bytes = Vec::new();
        found
    }
}

/// A stream whose reads are copied into a [`Recording`].
#[derive(Debug)]
pub struct Tap<S> {
    inner: S,
    recording: Shared,
}

impl<S> Tap<S> {
    /// Wraps `inner`, recording into a new recording that is returned too.
    pub fn new(inner: S) -> (Self, Shared) {
        let recording = Shared::default();
        (
            Tap {
                inner,
                recording: recording.clone(),
            },
            recording,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Ok(mut rec) = self.recording.lock()
        {
            rec.record(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The names of a request head's header lines, in order, as sent.
fn header_names(head: &[u8]) -> Vec<String> {
    head.split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let name = line[..colon].trim_ascii();
            (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
        })
        .collect()
}

/// The parts of one request JA4H is computed from.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// Method as sent.
    pub method: &'a str,
    /// `10`, `11`, `20` or `30`.
    pub version: &'static str,
    /// Header names in order (original case for HTTP/1).
    pub names: &'a [String],
    /// The Cookie header(s), joined by `; `.
    pub cookie: Option<&'a str>,
    /// The Accept-Language header.
    pub accept_language: Option<&'a str>,
}

/// FoxIO's JA4H of a request: `{method}{version}{c|n}{r|n}{count}{lang}_{headers}_
/// {cookie names}_{cookie pairs}`, the last three as truncated SHA-256.
pub fn ja4h(r: &RequestParts<'_>) -> String {
    let mut method: String = r
        .method
        .chars()
        .take(2)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    while method.len() < 2 {
        method.push('0');
    }
    let is = |n: &str, want: &str| n.eq_ignore_ascii_case(want);
    let referer = r.names.iter().any(|n| is(n, "referer"));
    let kept: Vec<&str> = r
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| !is(n, "cookie") && !is(n, "referer"))
        .collect();
    let lang: String = r
        .accept_language
        .and_then(|v| v.split([',', ';']).next())
        .map(|first| {
            first
                .chars()
                .filter(char::is_ascii_alphabetic)
                .take(4)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let mut pairs: Vec<(&str, Option<&str>)> = r
        .cookie
        .map(|c| {
            c.split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (p, None),
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.sort_unstable();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    let full: Vec<String> = pairs
        .iter()
        .map(|(k, v)| v.map_or_else(|| (*k).to_owned(), |v| format!("{k}={v}")))
        .collect();
    format!(
        "{method}{}{}{}{:02}{lang:0<4}_{}_{}_{}",
        r.version,
        if r.cookie.is_some() { 'c' } else { 'n' },
        if referer { 'r' } else { 'n' },
        kept.len().min(99),
        hash12(&kept.join(",")),
        hash12(&names.join(",")),
        hash12(&full.join(",")),
    )
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".to_owned();
    }
    hex::encode(&Sha256::digest(s.as_bytes())[..6])
}

/// What an HTTP/2 client's first frames say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Fingerprint {
    /// SETTINGS as `id:value` pairs joined by `;`, in the order sent.
    pub settings: String,
    /// The connection-level WINDOW_UPDATE increment, `0` when none came first.
    pub window_update: u32,
    /// PRIORITY frames as `stream:exclusive:depends_on:weight`, joined by `,`, or `0`.
    pub priority: String,
    /// Pseudo-headers of the first request by initial (`m,a,s,p`).
    pub pseudo_header_order: String,
    /// Frame types up to and including the first HEADERS, joined by `,`.
    pub frame_order: String,
}

impl H2Fingerprint {
    /// The Akamai fingerprint: `settings|window_update|priority|pseudo_header_order`.
    pub fn akamai(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.settings, self.window_update, self.priority, self.pseudo_header_order
        )
    }

    fn parse(mut frames: &[u8]) -> Option<Self> {
        let mut fp = H2Fingerprint {
            settings: String::new(),
            window_update: 0,
            priority: String::new(),
            pseudo_header_order: String::new(),
            frame_order: String::new(),
        };
        let mut order = Vec::new();
        let mut priorities = Vec::new();
        for _ in 0..MAX_FRAMES {
            if frames.len() < 9 {
                return None;
            }
            let len =
                usize::from(frames[0]) << 16 | usize::from(frames[1]) << 8 | usize::from(frames[2]);
            let (kind, flags) = (frames[3], frames[4]);
            let stream =
                u32::from_be_bytes([frames[5], frames[6], frames[7], frames[8]]) & 0x7fff_ffff;
            let payload = frames.get(9..9 + len)?;
            frames = &frames[9 + len..];
            order.push(frame_name(kind));
            match kind {
                0x4 if flags & 0x1 == 0 && fp.settings.is_empty() => {
                    fp.settings = payload
                        .chunks_exact(6)
                        .map(|s| {
                            let id = u16::from_be_bytes([s[0], s[1]]);
                            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                            format!("{id}:{value}")
                        })
                        .collect::<Vec<_>>()
                        .join(";");
                }
                0x8 if stream == 0 && payload.len() == 4 => {
                    fp.window_update =
                        u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                            & 0x7fff_ffff;
                }
                0x2 if payload.len() == 5 => priorities.push(priority(stream, payload)),
                0x1 => {
                    let mut block = payload;
                    if flags & 0x8 != 0 {
                        // PADDED: pad length first, padding at the end.
                        let pad = usize::from(*block.first()?);
                        block = block.get(1..block.len().checked_sub(pad)?)?;
                    }
                    if flags & 0x20 != 0 {
                        // PRIORITY flag: the five priority bytes come first.
                        priorities.push(priority(stream, block.get(..5)?));
                        block = block.get(5..)?;
                    }
                    fp.pseudo_header_order = pseudo_headers(block).join(",");
                    break;
                }
                _ => {}
            }
        }
        fp.priority = if priorities.is_empty() {
            "0".to_owned()
        } else {
            priorities.join(",")
        };
        fp.frame_order = order.join(",");
        Some(fp)
    }
}

fn priority(stream: u32, p: &[u8]) -> String {
    let dep = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let exclusive = dep >> 31;
    // The weight on the wire is one less than the weight (RFC 9113 §5.3.2).
    let weight = u16::from(p[4]) + 1;
    format!("{stream}:{exclusive}:{}:{weight}", dep & 0x7fff_ffff)
}

fn frame_name(kind: u8) -> &'static str {
    match kind {
        0x0 => "DATA",
        0x1 => "HEADERS",
        0x2 => "PRIORITY",
        0x3 => "RST_STREAM",
        0x4 => "SETTINGS",
        0x5 => "PUSH_PROMISE",
        0x6 => "PING",
        0x7 => "GOAWAY",
        0x8 => "WINDOW_UPDATE",
        0x9 => "CONTINUATION",
        _ => "UNKNOWN",
    }
}

/// The initials of the pseudo-headers at the start of an HPACK block (`m`, `a`, `s`,
/// `p`), read without decoding values: clients name them by static-table index.
fn pseudo_headers(mut block: &[u8]) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Some(&first) = block.first() {
        let (index, literal) = if first & 0x80 != 0 {
            (integer(&mut block, 7), false)
        } else if first & 0xc0 == 0x40 {
            (integer(&mut block, 6), true)
        } else if first & 0xe0 == 0x20 {
            // Dynamic table size update: no header.
            if integer(&mut block, 5).is_none() {
                break;
            }
            continue;
        } else {
            (integer(&mut block, 4), true)
        };
        let Some(name) = index.and_then(static_pseudo) else {
            break;
        };
        out.push(name);
        if literal {
            // Skip the value string: a length (Huffman bit aside) and that many bytes.
            let Some(len) = integer(&mut block, 7).and_then(|l| usize::try_from(l).ok()) else {
                break;
            };
            let Some(rest) = block.get(len..) else { break };
            block = rest;
        }
    }
    out
}

/// An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1), advancing `block`.
fn integer(block: &mut &[u8], prefix: u32) -> Option<u64> {
    let (&first, mut rest) = block.split_first()?;
    let max = (1u64 << prefix) - 1;
    let mut value = u64::from(first) & max;
    if value == max {
        let mut shift = 0;
        loop {
            let (&b, tail) = rest.split_first()?;
            rest = tail;
            value = value.checked_add(u64::from(b & 0x7f).checked_shl(shift)?)?;
            shift += 7;
            if b & 0x80 == 0 || shift > 28 {
                break;
            }
        }
    }
    *block = rest;
    Some(value)
}

fn static_pseudo(index: u64) -> Option<&'static str> {
    match index {
        1 => Some("a"),
        2 | 3 => Some("m"),
        4 | 5 => Some("p"),
        6 | 7 => Some("s"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        list.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn ja4h_matches_the_reference_values() {
        // FoxIO's examples (Firefox 133 over HTTP/1.1; curl over HTTP/2).
        let firefox = names(
            "Host,User-Agent,Accept,Accept-Language,Accept-Encoding,Connection,Referer,Cookie,DNT,Sec-GPC,Priority",
        );
        let r = RequestParts {
            method: "GET",
            version: "11",
            names: &firefox,
            cookie: Some("rama-fp=ready"),
            accept_language: Some("en-US,en;q=0.5"),
        };
        assert_eq!(
            ja4h(&r),
            "ge11cr09enus_df50b14dec48_d733b88e2d70_774e52af4cfe"
        );
        let curl = names("authorization,user-agent,accept,cookie");
        let r = RequestParts {
            method: "GET",
            version: "20",
            names: &curl,
            cookie: Some("sierra=echo;alpha=bravo;zulu=tango"),
            accept_language: None,
        };
        assert_eq!(
            ja4h(&r),
            "ge20cn030000_a8ea46949477_7efd8825dc5a_f0c5f5a36bc1"
        );
    }

    #[test]
    fn heads_come_back_out_of_the_recording_in_wire_order() {
        let mut rec = Recording::default();
        rec.record(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-B: 1\r\n\r\nabc");
        rec.record(b"GET /b HTTP/1.1\r\nuser-agent: y\r\nHOST: x\r\n\r\n");
        assert_eq!(
            rec.take_head("POST", "/a"),
            Some(names("Host,Content-Length,X-B"))
        );
        assert_eq!(rec.take_head("GET", "/b"), Some(names("user-agent,HOST")));
        assert!(rec.bytes.is_empty(), "nothing kept once taken");
        rec.record(&vec![b'a'; 3 * TAP_CAP]);
        assert_eq!(rec.bytes.len(), TAP_CAP, "bounded");
    }

    #[test]
    fn http2_frames_give_the_akamai_fingerprint() {
        let mut wire = PREFACE.to_vec();
        let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
            let len = payload.len();
            let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
            f.extend_from_slice(&stream.to_be_bytes());
            f.extend_from_slice(payload);
            f
        };
        // SETTINGS 3:100, 4:10485760, 2:0 (curl's), WINDOW_UPDATE 1048510465.
        let mut settings = Vec::new();
        for (id, v) in [(3u16, 100u32), (4, 10_485_760), (2, 0)] {
            settings.extend_from_slice(&id.to_be_bytes());
            settings.extend_from_slice(&v.to_be_bytes());
        }
        wire.extend(frame(0x4, 0, 0, &settings));
        wire.extend(frame(0x8, 0, 0, &1_048_510_465u32.to_be_bytes()));
        // HEADERS: :method GET (2), :scheme https (7), :authority "ab" (literal, idx 1),
        // :path / (4), then user-agent.
        let block = [0x82, 0x87, 0x41, 0x02, b'a', b'b', 0x84, 0x7a, 0x01, b'c'];
        wire.extend(frame(0x1, 0x5, 1, &block));
        let mut rec = Recording::default();
        rec.record(&wire);
        let fp = rec.take_h2().expect("fingerprint");
        assert_eq!(fp.akamai(), "3:100;4:10485760;2:0|1048510465|0|m,s,a,p");
        assert_eq!(fp.frame_order, "SETTINGS,WINDOW_UPDATE,HEADERS");
        rec.record(b"more");
        assert!(rec.bytes.is_empty(), "stopped after the fingerprint");
        let mut http1 = Recording::default();
        http1.record(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(http1.take_h2(), None);
    }
}
