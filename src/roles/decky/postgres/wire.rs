//! The PostgreSQL v3 frontend/backend protocol up to the end of authentication: startup
//! packets (and the SSL, GSSAPI and cancel requests that share their framing), typed
//! messages, authentication requests, `NegotiateProtocolVersion` and `ErrorResponse`.
//!
//! Limits and texts are the server's (`postmaster.c`, `auth.c`, `auth-scram.c`), checked
//! against a PostgreSQL 15 server: a startup packet outside 8..=10000 bytes closes the
//! connection without a reply, as does a message longer than the state allows.
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest startup packet (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: usize = 10_000;
/// Largest password message (`recv_password_packet`'s limit).
pub const MAX_PASSWORD: usize = 1000;
/// Largest SASL message (`PG_MAX_AUTH_TOKEN_LENGTH`).
pub const MAX_SASL: usize = 65_535;

/// `CancelRequest`'s code.
pub const CANCEL: u32 = 80_877_102;
/// `SSLRequest`'s code.
pub const SSL: u32 = 80_877_103;
/// `GSSENCRequest`'s code.
pub const GSSENC: u32 = 80_877_104;
/// Protocol 3.0.
pub const PROTOCOL_3: u32 = 3 << 16;

/// Why a read stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed, failed or idled out.
    Closed,
    /// The length is outside what the server accepts here.
    BadLength(i64),
}

/// Reads a startup-style packet: its code (protocol version or request code) and the rest.
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u32, Vec<u8>), ReadError> {
    let len = r.read_u32().await.map_err(|_| ReadError::Closed)?;
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if !(8..=MAX_STARTUP).contains(&n) {
        return Err(ReadError::BadLength(i64::from(len)));
    }
    let code = r.read_u32().await.map_err(|_| ReadError::Closed)?;
    let mut body = vec![0u8; n - 8];
    r.read_exact(&mut body)
        .await
        .map_err(|_| ReadError::Closed)?;
    Ok((code, body))
}

/// Reads a typed message of at most `max` body bytes.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(u8, Vec<u8>), ReadError> {
    let kind = r.read_u8().await.map_err(|_| ReadError::Closed)?;
    let len = r.read_u32().await.map_err(|_| ReadError::Closed)?;
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if n < 4 || n - 4 > max {
        return Err(ReadError::BadLength(i64::from(len)));
    }
    let mut body = vec![0u8; n - 4];
    r.read_exact(&mut body)
        .await
        .map_err(|_| ReadError::Closed)?;
    Ok((kind, body))
}

/// A backend message of type `kind` with `body`.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An `Authentication*` request with code `code` and its data.
pub fn auth_request(code: u32, data: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(data);
    message(b'R', &body)
}

/// `NegotiateProtocolVersion`: 3.0 is the newest, and the `_pq_` options not understood.
pub fn negotiate(unknown: &[Vec<u8>]) -> Vec<u8> {
    let mut body = PROTOCOL_3.to_be_bytes().to_vec();
    body.extend_from_slice(&u32::try_from(unknown.len()).unwrap_or(0).to_be_bytes());
    for name in unknown {
        body.extend_from_slice(name);
        body.push(0);
    }
    message(b'v', &body)
}

/// Where in the server's source an error is raised (the `F`, `L` and `R` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Source file.
    pub file: &'static str,
    /// Line in the claimed release.
    pub line: u32,
    /// Function.
    pub routine: &'static str,
}

/// A `FATAL` `ErrorResponse` as the server sends it: fields S, V, C, M, then D and H when
/// given, then F, L, R.
pub fn fatal(
    sqlstate: &str,
    message_text: &[u8],
    detail: Option<&str>,
    hint: Option<&str>,
    origin: Origin,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(message_text.len() + 96);
    let mut field = |code: u8, value: &[u8]| {
        body.push(code);
        body.extend_from_slice(value);
        body.push(0);
    };
    field(b'S', b"FATAL");
    field(b'V', b"FATAL");
    field(b'C', sqlstate.as_bytes());
    field(b'M', message_text);
    if let Some(d) = detail {
        field(b'D', d.as_bytes());
    }
    if let Some(h) = hint {
        field(b'H', h.as_bytes());
    }
    field(b'F', origin.file.as_bytes());
    field(b'L', origin.line.to_string().as_bytes());
    field(b'R', origin.routine.as_bytes());
    body.push(0);
    message(b'E', &body)
}

/// The error a protocol-2 client gets: the old unframed `E` text.
pub fn fatal_v2(text: &str) -> Vec<u8> {
    let mut out = b"EFATAL:  ".to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\n\0");
    out
}

/// The startup parameters, or why the layout is wrong.
pub fn parameters(body: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if body[pos] == 0 {
            break;
        }
        let name_end = pos + body[pos..].iter().position(|&b| b == 0)?;
        let value_start = name_end + 1;
        let value_end = value_start + body.get(value_start..)?.iter().position(|&b| b == 0)?;
        out.push((
            body[pos..name_end].to_vec(),
            body[value_start..value_end].to_vec(),
        ));
        pos = value_end + 1;
        if out.len() > 256 {
            return None;
        }
    }
    // The last byte must be the list's terminator.
    (pos + 1 == body.len()).then_some(out)
}

/// A NUL-terminated string at the front of `body` and what follows it.
pub fn cstring(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = body.iter().position(|&b| b == 0)?;
    Some((&body[..i], &body[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_postgres_15s_byte_for_byte() {
        // What a PostgreSQL 15.18 server sent for a wrong password of user "pwuser".
        let real = b"E\x00\x00\x00fSFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication \
            failed for user \"pwuser\"\x00Fauth.c\x00L334\x00Rauth_failed\x00\x00";
        let origin = Origin {
            file: "auth.c",
            line: 334,
            routine: "auth_failed",
        };
        let ours = fatal(
            "28P01",
            b"password authentication failed for user \"pwuser\"",
            None,
            None,
            origin,
        );
        assert_eq!(ours, real.to_vec());
    }

    #[test]
    fn startup_parameters_need_their_terminator() {
        let body = b"user\0bob\0database\0db\0\0";
        let p = parameters(body).expect("valid");
        assert_eq!(p[0], (b"user".to_vec(), b"bob".to_vec()));
        assert_eq!(p.len(), 2);
        assert!(parameters(&body[..body.len() - 1]).is_none());
        assert!(parameters(b"user\0").is_none());
        assert!(parameters(b"").is_none());
        assert_eq!(parameters(b"\0"), Some(Vec::new()));
        for cut in 0..body.len() {
            let _ = parameters(&body[..cut]);
        }
    }
}
