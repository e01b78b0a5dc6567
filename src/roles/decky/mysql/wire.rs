//! The MySQL client/server protocol as far as a login goes: packet framing, the v10
//! greeting, the client's handshake response, auth-switch and auth-more-data packets, and
//! ERR packets.
//!
//! Layouts follow mysql-server's `sql/auth/sql_authentication.cc` and MariaDB's
//! `sql/sql_acl.cc`, and were checked byte for byte against a MariaDB 10.11 server and
//! its client: MariaDB leaves `CLIENT_LONG_PASSWORD` (its "CLIENT_MYSQL" bit) clear and
//! puts its extended capabilities in the last four filler bytes.
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest packet read; a login never needs more (MySQL's own cap is 1 GiB).
pub const MAX_PACKET: usize = 64 * 1024;

/// The database name follows the auth response.
pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
/// The 4.1 protocol (SQLSTATE in ERR packets, 32-byte handshake response).
pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
/// The client asks for TLS.
pub const CLIENT_SSL: u32 = 1 << 11;
/// A one-byte length before the auth response.
pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
/// A plugin name follows the response.
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
/// Connection attributes follow the plugin name.
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
/// A length-encoded integer before the auth response.
pub const CLIENT_PLUGIN_AUTH_LENENC: u32 = 1 << 21;

/// Largest packet the server reads through (`max_allowed_packet`'s 16 MiB): bigger
/// ones are discarded unread, never buffered.
pub const MAX_ALLOWED: usize = 16 * 1024 * 1024;

/// Why reading a packet stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed, the connection failed or it idled out.
    Closed,
    /// The sequence id is not the next one (`Got packets out of order`).
    OutOfOrder,
    /// The payload was longer than [`MAX_PACKET`]; it was read and dropped.
    TooLarge(usize),
}

/// Reads one packet whose sequence id must be `seq`: its payload, at most
/// [`MAX_PACKET`] bytes.
///
/// As the server does, the sequence id is checked before the payload is read, and an
/// oversized payload is read through (up to [`MAX_ALLOWED`]) before it is refused.
pub async fn read_packet<R: AsyncRead + Unpin>(r: &mut R, seq: u8) -> Result<Vec<u8>, ReadError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)
        .await
        .map_err(|_| ReadError::Closed)?;
    if header[3] != seq {
        return Err(ReadError::OutOfOrder);
    }
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if len > MAX_PACKET {
        let want = u64::try_from(len.min(MAX_ALLOWED)).unwrap_or(0);
        let mut rest = r.take(want);
        let got = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
        return match got {
            Ok(n) if n == want => Err(ReadError::TooLarge(len)),
            _ => Err(ReadError::Closed),
        };
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)
        .await
        .map_err(|_| ReadError::Closed)?;
    Ok(payload)
}

/// Writes `payload` as one packet with sequence id `seq`.
pub async fn write_packet<W: AsyncWrite + Unpin>(
    w: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len().min(0x00ff_ffff)).unwrap_or(0);
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&len.to_le_bytes()[..3]);
    out.push(seq);
    out.extend_from_slice(payload);
    w.write_all(&out).await?;
    w.flush().await
}

/// What the greeting says about the server.
#[derive(Debug, Clone)]
pub struct Greeting<'a> {
    /// The version string as sent (MariaDB's starts with `5.5.5-`).
    pub version: &'a str,
    /// The connection (thread) id.
    pub thread_id: u32,
    /// The 20-byte scramble.
    pub scramble: &'a [u8; 20],
    /// Capability flags.
    pub capabilities: u32,
    /// MariaDB's extended capabilities (0 for MySQL).
    pub mariadb_capabilities: u32,
    /// The server's default collation id.
    pub charset: u8,
    /// Status flags (`SERVER_STATUS_AUTOCOMMIT`).
    pub status: u16,
    /// The default authentication plugin.
    pub plugin: &'a str,
}

impl Greeting<'_> {
    /// The greeting's payload (protocol 10).
    pub fn encode(&self) -> Vec<u8> {
        let caps = self.capabilities.to_le_bytes();
        let mut p = Vec::with_capacity(96);
        p.push(10);
        p.extend_from_slice(self.version.as_bytes());
        p.push(0);
        p.extend_from_slice(&self.thread_id.to_le_bytes());
        p.extend_from_slice(&self.scramble[..8]);
        p.push(0);
        p.extend_from_slice(&caps[..2]);
        p.push(self.charset);
        p.extend_from_slice(&self.status.to_le_bytes());
        p.extend_from_slice(&caps[2..]);
        // Length of the scramble with its terminating NUL.
        p.push(21);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&self.mariadb_capabilities.to_le_bytes());
        p.extend_from_slice(&self.scramble[8..]);
        p.push(0);
        p.extend_from_slice(self.plugin.as_bytes());
        p.push(0);
        p
    }
}

/// The client's handshake response, or its request to start TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Client capability flags.
    pub capabilities: u32,
    /// The collation id asked for.
    pub charset: u8,
    /// The account name, raw bytes.
    pub user: Vec<u8>,
    /// The auth response (a scramble, a hash or a password, per the plugin).
    pub auth: Vec<u8>,
    /// The database asked for.
    pub database: Option<Vec<u8>>,
    /// The plugin the client used for `auth`.
    pub plugin: Option<Vec<u8>>,
    /// Connection attributes (`_client_name`, `program_name`, …).
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a first client packet is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// An SSL request: the 32-byte prefix with `CLIENT_SSL`.
    Ssl,
    /// A pre-4.1 client: its user name and (old-style) password hash.
    Old(Vec<u8>, Vec<u8>),
    /// A full handshake response.
    Login(Box<Response>),
}

/// A cursor over attacker bytes that fails instead of panicking.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn nul_str(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let i = rest.iter().position(|&b| b == 0)?;
        self.pos += i + 1;
        Some(&rest[..i])
    }

    /// A length-encoded integer; `None` for the NULL and EOF markers.
    fn lenenc(&mut self) -> Option<u64> {
        let first = self.u8()?;
        let bytes = match first {
            0..=0xfa => return Some(u64::from(first)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return None,
        };
        let raw = self.take(bytes)?;
        Some(raw.iter().rev().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    }

    fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

/// Parses the client's first packet; `None` for anything malformed ("Bad handshake").
pub fn parse_response(payload: &[u8]) -> Option<ClientHello> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    let low = c.take(2)?;
    let low = u32::from(u16::from_le_bytes([low[0], low[1]]));
    if low & CLIENT_PROTOCOL_41 == 0 {
        // Two bytes of flags, three of maximum packet size, then NUL-terminated strings.
        let _max_packet = c.take(3)?;
        let user = c.nul_str()?.to_vec();
        let auth = c.nul_str().unwrap_or_else(|| c.rest()).to_vec();
        return Some(ClientHello::Old(user, auth));
    }
    c.pos = 0;
    let caps = c.take(4)?;
    let capabilities = u32::from_le_bytes([caps[0], caps[1], caps[2], caps[3]]);
    let _max_packet = c.take(4)?;
    let charset = c.u8()?;
    let _filler = c.take(23)?;
    if payload.len() == 32 && capabilities & CLIENT_SSL != 0 {
        return Some(ClientHello::Ssl);
    }
    let user = c.nul_str()?.to_vec();
    let auth = if capabilities & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        c.lenenc_bytes()?
    } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        let n = usize::from(c.u8()?);
        c.take(n)?
    } else {
        c.nul_str()?
    }
    .to_vec();
    let database = if capabilities & CLIENT_CONNECT_WITH_DB != 0 {
        c.nul_str().map(<[u8]>::to_vec)
    } else {
        None
    };
    let plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        // Some clients end the packet without the plugin name's NUL.
        c.nul_str()
            .or_else(|| Some(c.rest()).filter(|r| !r.is_empty()))
            .map(<[u8]>::to_vec)
    } else {
        None
    };
    let mut attrs = Vec::new();
    if capabilities & CLIENT_CONNECT_ATTRS != 0
        && let Some(block) = c.lenenc_bytes()
    {
        let mut a = Cursor { buf: block, pos: 0 };
        while attrs.len() < 32 {
            let (Some(k), Some(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) else {
                break;
            };
            attrs.push((k.to_vec(), v.to_vec()));
        }
    }
    Some(ClientHello::Login(Box::new(Response {
        capabilities,
        charset,
        user,
        auth,
        database,
        plugin,
        attrs,
    })))
}

/// An ERR packet's payload; the SQLSTATE marker is sent only to 4.1 clients, as the
/// server does.
pub fn err_packet(code: u16, sqlstate: &str, message: &str, protocol_41: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(message.len() + 9);
    p.push(0xff);
    p.extend_from_slice(&code.to_le_bytes());
    if protocol_41 {
        p.push(b'#');
        p.extend_from_slice(sqlstate.as_bytes());
    }
    p.extend_from_slice(message.as_bytes());
    p
}

/// An auth-switch request to `plugin` with `data` (the scramble and its NUL).
pub fn auth_switch(plugin: &str, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(plugin.len() + data.len() + 2);
    p.push(0xfe);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p.extend_from_slice(data);
    p
}

/// An auth-more-data packet carrying `data`.
pub fn more_data(data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(data.len() + 1);
    p.push(0x01);
    p.extend_from_slice(data);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The greeting a Debian 12 MariaDB 10.11.19 server sent (scramble and id replaced).
    const MARIADB: &str = "0a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531\
        00030000006162636465666768\
        00fef72d0200ff81150000000000001d000000696a6b6c6d6e6f7071727374\
        00\
        6d7973716c5f6e61746976655f70617373776f726400";

    #[test]
    fn the_greeting_is_mariadbs_byte_for_byte() {
        let g = Greeting {
            version: "5.5.5-10.11.19-MariaDB-0+deb12u1",
            thread_id: 3,
            scramble: b"abcdefghijklmnopqrst",
            capabilities: 0x81ff_f7fe,
            mariadb_capabilities: 0x1d,
            charset: 45,
            status: 2,
            plugin: "mysql_native_password",
        };
        assert_eq!(hex::encode(g.encode()), MARIADB);
    }

    #[test]
    fn the_mariadb_clients_login_parses() {
        let p = hex::decode(
            "84a2bf000000100021000000000000000000000000000000000000001d000000726f6f7400\
             14c969e27f0f0af7d94eb2234f0dd9b7cb9153cbcd6d7973716c5f6e61746976655f7061737377\
             6f726400\
             200c5f636c69656e745f6e616d650a6c69626d617269616462045f706964023432",
        )
        .expect("hex");
        let Some(ClientHello::Login(r)) = parse_response(&p) else {
            panic!("a login");
        };
        assert_eq!(r.user, b"root");
        assert_eq!(r.auth.len(), 20);
        assert_eq!(r.plugin.as_deref(), Some(&b"mysql_native_password"[..]));
        assert_eq!(
            r.attrs[0],
            (b"_client_name".to_vec(), b"libmariadb".to_vec())
        );
        for cut in 0..p.len() {
            let _ = parse_response(&p[..cut]);
        }
        let mut ssl = p[..32].to_vec();
        ssl[1] |= 0x08;
        assert_eq!(parse_response(&ssl), Some(ClientHello::Ssl));
    }
}
