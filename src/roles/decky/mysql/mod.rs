//! mysql: the login of the MySQL or MariaDB release the persona's distro packages
//! (engine.md §2.8), ending in the real `Access denied` error; every auth response is an
//! `auth` event carrying the scramble it answers, so it can be cracked offline.
//!
//! - The greeting is that release's: version string (MariaDB's behind `5.5.5-`),
//!   capabilities, collation, status, 20 fresh scramble bytes per connection in the
//!   server's alphabet, and a connection id that starts at a seed-derived number and
//!   grows with every connection.
//! - MariaDB and MySQL 5.7 use `mysql_native_password`; MySQL 8.0 `caching_sha2_password`.
//!   A client that answered with another plugin gets an auth switch with the same
//!   scramble, as both servers do. `caching_sha2_password` fails its fast path (no cached
//!   entry) and asks for full authentication; a client without TLS then asks for the RSA
//!   public key (module `rsa`: per decky, from the seed), sends its password encrypted with
//!   it, and the decky decrypts and logs the cleartext.
//! - TLS is not offered; a client that asks anyway gets `Bad handshake`, like a server
//!   without TLS, and so does any packet that is not a 4.1 handshake response.
mod rsa;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::AsyncWriteExt;

use self::wire::{ClientHello, Greeting, ReadError, Response};
use super::conn::{Conn, Handler, Idle, Limits};
use super::events::cap_str;
use super::{Credential, Emitter, Persona, ServiceSpec};

/// How long a client has from connect to the end of its login (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest user name kept (MySQL's limit is 32 characters).
const MAX_USER: usize = 128;

const NATIVE: &str = "mysql_native_password";
const CACHING_SHA2: &str = "caching_sha2_password";

/// The server releases each distro packaged, as their `version` reports them.
const RELEASES: &[(&str, &[&str])] = &[
    (
        "debian",
        &[
            "10.11.6-MariaDB-0+deb12u1",
            "10.11.11-MariaDB-0+deb12u1",
            "10.11.19-MariaDB-0+deb12u1",
        ],
    ),
    (
        "ubuntu22",
        &[
            "8.0.39-0ubuntu0.22.04.1",
            "8.0.41-0ubuntu0.22.04.1",
            "8.0.42-0ubuntu0.22.04.1",
        ],
    ),
    (
        "ubuntu20",
        &[
            "8.0.39-0ubuntu0.20.04.1",
            "8.0.41-0ubuntu0.20.04.1",
            "8.0.42-0ubuntu0.20.04.1",
        ],
    ),
    ("rocky9", &["8.0.36", "8.0.41"]),
    ("centos7", &["5.5.68-MariaDB"]),
    ("alpine", &["10.11.6-MariaDB", "10.11.8-MariaDB"]),
    ("fedora", &["10.5.22-MariaDB", "10.5.23-MariaDB"]),
    ("kali", &["11.4.3-MariaDB-1", "11.8.2-MariaDB-1"]),
    ("arch", &["11.4.4-MariaDB", "11.4.5-MariaDB"]),
    // Oracle's MSI builds, what a Windows host runs: no distro suffix.
    ("windows", &["8.0.39", "8.0.40", "8.0.41"]),
];

/// Which server family a version string names, and what its greeting carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    /// The version string as the greeting sends it.
    pub wire_version: String,
    /// Whether the server is MariaDB.
    pub mariadb: bool,
    /// Capability flags: `CLIENT_BASIC_FLAGS` plus compression, without the two TLS
    /// bits a server with TLS adds (`CLIENT_SSL`, `CLIENT_SSL_VERIFY_SERVER_CERT`).
    pub capabilities: u32,
    /// MariaDB's extended capabilities.
    pub mariadb_capabilities: u32,
    /// Default collation id.
    pub charset: u8,
    /// Default authentication plugin.
    pub plugin: &'static str,
}

impl Flavor {
    /// The flavour of `version` (`10.11.6-MariaDB-0+deb12u1`, `8.0.39-0ubuntu0.22.04.1`,
    /// `5.7.44-log`); an unparsable one is read as MySQL 8.0.
    pub fn of(version: &str) -> Flavor {
        let mut nums = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let major = nums.next().unwrap_or(8);
        let minor = nums.next().unwrap_or(0);
        if version.contains("MariaDB") {
            let ext = match (major, minor) {
                (5, _) => 0,
                (10, 0..=4) => 0x01,
                (10, 5) => 0x0f,
                (10, _) | (11, 0..=4) => 0x1d,
                _ => 0x5d,
            };
            let (wire_version, capabilities) = if major >= 10 {
                (format!("5.5.5-{version}"), 0x81ff_f7fe)
            } else {
                (version.to_owned(), 0xa00f_f7ff)
            };
            // Debian's packaging sets utf8mb4_general_ci; upstream defaults to latin1.
            let charset = if version.contains("deb") || version.ends_with("-1") {
                45
            } else {
                8
            };
            Flavor {
                wire_version,
                mariadb: true,
                capabilities,
                mariadb_capabilities: ext,
                charset,
                plugin: NATIVE,
            }
        } else if major == 5 {
            Flavor {
                wire_version: version.to_owned(),
                mariadb: false,
                capabilities: 0x81ff_f7ff,
                mariadb_capabilities: 0,
                charset: 8,
                plugin: NATIVE,
            }
        } else {
            Flavor {
                wire_version: version.to_owned(),
                mariadb: false,
                capabilities: 0x9fff_f7ff,
                mariadb_capabilities: 0,
                charset: 255,
                plugin: CACHING_SHA2,
            }
        }
    }

    /// 20 fresh scramble bytes in the server's alphabet: MariaDB's are printable
    /// (`33..=126`), MySQL's 7-bit without NUL or `$`.
    fn scramble(&self, rng: &SystemRandom) -> [u8; 20] {
        let mut s = [0u8; 20];
        if rng.fill(&mut s).is_err() {
            return [b'x'; 20];
        }
        for b in &mut s {
            *b = if self.mariadb {
                33 + *b % 94
            } else {
                match *b & 0x7f {
                    0 => 1,
                    b'$' => b'%',
                    other => other,
                }
            };
        }
        s
    }
}

struct State {
    emitter: Emitter,
    flavor: Flavor,
    next_id: AtomicU32,
    persona: Arc<Persona>,
    rng: SystemRandom,
    rsa: Option<Arc<rsa::Key>>,
}

/// The server version a decky claims: the setting, else a release of its distro.
pub fn version(persona: &Persona, setting: Option<&str>) -> String {
    if let Some(v) = setting.filter(|v| !v.trim().is_empty()) {
        return v.to_owned();
    }
    let key = if persona.is_windows() {
        "windows"
    } else {
        persona.distro.slug
    };
    let releases = RELEASES
        .iter()
        .find(|r| r.0 == key)
        .map_or(&["10.11.6-MariaDB-0+deb12u1"][..], |r| r.1);
    (*persona.pick("mysql-release", releases)).to_owned()
}

/// The per-connection handler of `mysql` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let persona = spec.persona.clone();
    let version = version(
        &persona,
        spec.settings.get("MYSQL_VERSION").map(String::as_str),
    );
    // A server up for a while has served some connections already.
    let first_id = 8 + u32::try_from(persona.number("mysql-thread-id", 180_000)).unwrap_or(0);
    let flavor = Flavor::of(&version);
    // Before the first connection: a moment at startup (well under a second in a
    // release build), and every client finds the key ready.
    let rsa = (flavor.plugin == CACHING_SHA2)
        .then(|| Arc::new(rsa::Key::generate(&persona.derive("mysql-rsa-key"))));
    let state = Arc::new(State {
        emitter,
        flavor,
        next_id: AtomicU32::new(first_id),
        persona,
        rng: SystemRandom::new(),
        rsa,
    });
    let limits = Limits {
        max_conns: 256,
        idle: CONNECT_TIMEOUT,
        total: Duration::from_secs(60),
        max_line: wire::MAX_PACKET,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        mut stream, peer, ..
    } = conn;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let connect = state
        .emitter
        .peer_event("connect", peer)
        .param("connection_id", id.to_string());
    state.emitter.emit(connect).await;
    let scramble = state.flavor.scramble(&state.rng);
    let _ = tokio::time::timeout(
        CONNECT_TIMEOUT,
        login(&state, &mut stream, peer, id, &scramble),
    )
    .await;
    let _ = stream.shutdown().await;
    let bye = state
        .emitter
        .peer_event("disconnect", peer)
        .param("connection_id", id.to_string());
    state.emitter.emit(bye).await;
}

type Stream = Idle<tokio::net::TcpStream>;

/// Reads the client packet numbered `seq`, answering a wrong number or an oversized
/// packet as the server does; `None` ends the connection.
async fn next_packet(
    state: &State,
    stream: &mut Stream,
    peer: SocketAddr,
    seq: u8,
) -> Option<Vec<u8>> {
    let (reply, reply_seq) = match wire::read_packet(stream, seq).await {
        Ok(p) => return Some(p),
        Err(ReadError::Closed) => return None,
        // Answered under the number the server expected.
        Err(ReadError::OutOfOrder) => {
            state.emitter.error(peer, "packets out of order").await;
            let err = wire::err_packet(1156, "08S01", "Got packets out of order", true);
            (err, seq)
        }
        Err(ReadError::TooLarge(n)) => {
            let msg = format!("packet of {n} bytes refused");
            state.emitter.error(peer, &msg).await;
            let err = wire::err_packet(1043, "08S01", "Bad handshake", true);
            (err, seq.wrapping_add(1))
        }
    };
    wire::write_packet(stream, reply_seq, &reply).await.ok()?;
    // The server keeps the connection until the client leaves or the timeout.
    let mut sink = [0u8; 1024];
    while matches!(
        tokio::io::AsyncReadExt::read(stream, &mut sink).await,
        Ok(n) if n > 0
    ) {}
    None
}

async fn login(
    state: &State,
    stream: &mut Stream,
    peer: SocketAddr,
    id: u32,
    scramble: &[u8; 20],
) -> Option<()> {
    let flavor = &state.flavor;
    let greeting = Greeting {
        version: &flavor.wire_version,
        thread_id: id,
        scramble,
        capabilities: flavor.capabilities,
        mariadb_capabilities: flavor.mariadb_capabilities,
        charset: flavor.charset,
        status: 2,
        plugin: flavor.plugin,
    };
    wire::write_packet(stream, 0, &greeting.encode())
        .await
        .ok()?;
    let mut seq = 1u8;
    let payload = next_packet(state, stream, peer, seq).await?;
    let response = match wire::parse_response(&payload) {
        Some(ClientHello::Login(r)) if valid_first_answer(flavor, &r) => r,
        Some(ClientHello::Old(user, auth)) => {
            return old_client(state, stream, peer, &user, &auth).await;
        }
        hello => {
            let why = if hello == Some(ClientHello::Ssl) {
                "TLS requested"
            } else {
                "bad handshake"
            };
            state.emitter.error(peer, why).await;
            let err = wire::err_packet(1043, "08S01", "Bad handshake", true);
            wire::write_packet(stream, seq.wrapping_add(1), &err)
                .await
                .ok()?;
            return None;
        }
    };
    let sent = response.plugin.as_deref().map(String::from_utf8_lossy);
    let mut plugin = sent.as_deref().unwrap_or(NATIVE).to_owned();
    let mut answer = response.auth.clone();
    let mut used_password = !answer.is_empty();
    let attempt = Attempt {
        state,
        peer,
        id,
        response: &response,
        scramble,
    };
    // A client that chose another plugin than the greeting's usually sends nothing and
    // waits for the switch; an empty answer is an attempt only when no switch follows.
    let switch = plugin != flavor.plugin;
    if !answer.is_empty() || !switch {
        attempt.record(&plugin, secret_kind(&plugin), &answer).await;
    }
    // A client speaking another plugin is switched to the server's, with the same scramble.
    if switch {
        let mut data = scramble.to_vec();
        data.push(0);
        seq = seq.wrapping_add(1);
        let switch = wire::auth_switch(flavor.plugin, &data);
        wire::write_packet(stream, seq, &switch).await.ok()?;
        seq = seq.wrapping_add(1);
        let data = next_packet(state, stream, peer, seq).await?;
        plugin = flavor.plugin.to_owned();
        answer = data;
        used_password = !answer.is_empty();
        let kind = secret_kind(&plugin);
        attempt.record(&plugin, kind, &answer).await;
    }
    // caching_sha2_password: no cached entry, so the fast path fails and the server asks
    // for full authentication; over plain TCP the client then wants the RSA key.
    // An answer that is not a 32-byte digest fails at once, as the server's plugin does.
    if plugin == CACHING_SHA2 && answer.len() == 32 {
        seq = seq.wrapping_add(1);
        wire::write_packet(stream, seq, &wire::more_data(&[0x04]))
            .await
            .ok()?;
        seq = seq.wrapping_add(1);
        let mut data = next_packet(state, stream, peer, seq).await?;
        if data == [0x02]
            && let Some(key) = &state.rsa
        {
            seq = seq.wrapping_add(1);
            let pem = wire::more_data(key.pem.as_bytes());
            wire::write_packet(stream, seq, &pem).await.ok()?;
            seq = seq.wrapping_add(1);
            data = next_packet(state, stream, peer, seq).await?;
        }
        if let Some(password) = full_auth(state, &data, scramble).await {
            attempt.record(CACHING_SHA2, "plaintext", &password).await;
        }
    }
    let wait = 15 + state.persona.number(&format!("mysql-wait-{id}"), 76);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let user = String::from_utf8_lossy(&response.user[..response.user.len().min(MAX_USER)]);
    let host = peer.ip().to_canonical();
    let yes = if used_password { "YES" } else { "NO" };
    let message = format!("Access denied for user '{user}'@'{host}' (using password: {yes})");
    let err = wire::err_packet(1045, "28000", &message, true);
    wire::write_packet(stream, seq.wrapping_add(1), &err)
        .await
        .ok()
}

/// Whether the first answer can be a login: MariaDB refuses a native scramble of the
/// wrong length as a bad handshake.
fn valid_first_answer(flavor: &Flavor, r: &Response) -> bool {
    let native = r.plugin.as_deref().is_none_or(|p| p == NATIVE.as_bytes());
    !(flavor.mariadb && native && !r.auth.is_empty() && r.auth.len() != 20)
}

/// A pre-4.1 client: MariaDB still answers its login (an ERR without SQLSTATE), MySQL
/// 8.0 and 5.7 refuse the protocol.
async fn old_client(
    state: &State,
    stream: &mut Stream,
    peer: SocketAddr,
    user: &[u8],
    auth: &[u8],
) -> Option<()> {
    let user = &user[..user.len().min(MAX_USER)];
    let err = if state.flavor.mariadb {
        let cred = Credential {
            principal: Some(user.to_vec()),
            kind: "mysql_old_password",
            secret: auth.to_vec(),
        };
        let m = cred.apply(state.emitter.peer_event("auth", peer));
        let m = m
            .param("username", String::from_utf8_lossy(user).into_owned())
            .param("secret_printable", hex::encode(auth));
        state.emitter.emit(m).await;
        let yes = if auth.is_empty() { "NO" } else { "YES" };
        let message = format!(
            "Access denied for user '{}'@'{}' (using password: {yes})",
            String::from_utf8_lossy(user),
            peer.ip().to_canonical()
        );
        wire::err_packet(1045, "28000", &message, false)
    } else {
        let message = "Client does not support authentication protocol requested by server; \
                       consider upgrading MySQL client";
        wire::err_packet(1251, "08004", message, false)
    };
    wire::write_packet(stream, 2, &err).await.ok()
}

/// The cleartext password in a full-authentication packet: RSA-encrypted and XORed with
/// the scramble, or (from a client that believes the link secure) as it is.
async fn full_auth(state: &State, data: &[u8], scramble: &[u8; 20]) -> Option<Vec<u8>> {
    let mut password = if data.len() == 256 {
        let key = state.rsa.clone()?;
        let block = data.to_vec();
        let plain = tokio::task::spawn_blocking(move || key.decrypt(&block));
        let mut plain = plain.await.ok()??;
        for (b, s) in plain.iter_mut().zip(scramble.iter().cycle()) {
            *b ^= s;
        }
        plain
    } else if data.last() == Some(&0) && data != [0x02] {
        data.to_vec()
    } else {
        return None;
    };
    // The client sends the password with its NUL.
    if password.last() == Some(&0) {
        password.pop();
    }
    Some(password)
}

/// The `secret_kind` of an answer given with `plugin`.
fn secret_kind(plugin: &str) -> &'static str {
    match plugin {
        NATIVE => NATIVE,
        CACHING_SHA2 => CACHING_SHA2,
        "sha256_password" => "sha256_password",
        "mysql_clear_password" => "plaintext",
        "client_ed25519" => "client_ed25519",
        _ => "mysql_auth_response",
    }
}

/// One login: who, on which connection, answering which scramble.
struct Attempt<'a> {
    state: &'a State,
    peer: SocketAddr,
    id: u32,
    response: &'a Response,
    scramble: &'a [u8; 20],
}

impl Attempt<'_> {
    /// Logs one auth response (`kind` of secret, given with `plugin`) and its scramble.
    async fn record(&self, plugin: &str, kind: &'static str, answer: &[u8]) {
        let response = self.response;
        let user = &response.user[..response.user.len().min(MAX_USER)];
        let cred = Credential {
            principal: Some(user.to_vec()),
            kind,
            secret: answer.to_vec(),
        };
        let emitter = &self.state.emitter;
        let mut m = cred.apply(
            emitter
                .peer_event("auth", self.peer)
                .param("username", String::from_utf8_lossy(user).into_owned())
                .param("connection_id", self.id.to_string()),
        );
        if kind != "plaintext" {
            m = m.param("secret_printable", hex::encode(answer));
        }
        m = m
            .param("salt", hex::encode(self.scramble))
            .param("plugin", cap_str(plugin, 64).to_owned());
        if let Some(db) = &response.database {
            let db = String::from_utf8_lossy(&db[..db.len().min(64)]).into_owned();
            m = m.param("database", db);
        }
        for (key, value) in &response.attrs {
            if key == b"_client_name" || key == b"program_name" {
                let name = String::from_utf8_lossy(&key[..key.len().min(32)]);
                let value = String::from_utf8_lossy(&value[..value.len().min(64)]).into_owned();
                m = m.param(name.trim_start_matches('_'), value);
            }
        }
        emitter.emit(m).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_of_the_real_releases() {
        let m = Flavor::of("10.11.19-MariaDB-0+deb12u1");
        assert_eq!(m.wire_version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(
            (m.capabilities, m.mariadb_capabilities, m.charset),
            (0x81ff_f7fe, 0x1d, 45)
        );
        let my = Flavor::of("8.0.39-0ubuntu0.22.04.1");
        assert_eq!(
            (my.plugin, my.charset, my.mariadb),
            (CACHING_SHA2, 255, false)
        );
        assert_eq!(Flavor::of("5.7.44-log").plugin, NATIVE);
        let rng = SystemRandom::new();
        assert!(m.scramble(&rng).iter().all(|b| (33..=126).contains(b)));
        assert!(
            my.scramble(&rng)
                .iter()
                .all(|&b| b != 0 && b != b'$' && b < 0x80)
        );
    }

    #[test]
    fn versions_belong_to_the_distro() {
        for b in 0..10u8 {
            let v = version(
                &crate::roles::decky::persona::tests::persona(b, "ubuntu22"),
                None,
            );
            assert!(v.ends_with("-0ubuntu0.22.04.1"), "{v}");
        }
        let p = crate::roles::decky::persona::tests::persona(1, "debian");
        assert_eq!(version(&p, Some("5.7.44-log")), "5.7.44-log");
    }
}
