//! postgres: a PostgreSQL 15 server's startup and authentication (engine.md §2.8), ending
//! in its `password authentication failed` error, with the secret of every attempt in an
//! `auth` event byte-exact.
//!
//! - SSL and GSSAPI encryption requests get `N` (a server without either); a cancel
//!   request is closed silently; protocol 2 clients get the old-style error text, 4.x
//!   the v3 error, 3.x with x > 0 or `_pq_` options a `NegotiateProtocolVersion`.
//! - `POSTGRES_AUTH` picks the `pg_hba.conf` method: `password` (the cleartext password
//!   is captured), `md5` (a fresh salt per connection; the `md5…` hash is captured with
//!   it) or `scram-sha-256`, the default (the full exchange up to the client's proof; the
//!   salt is per user and stable, as PostgreSQL's mock salt for unknown roles is, and the
//!   proof is logged with the auth message that makes it crackable offline).
//! - Every error carries the S, V, C, M, F, L, R fields PostgreSQL 15 sends, the line
//!   numbers checked against a 15.x server. PostgreSQL only shows its version after a
//!   login, so these lines are the one place the release shows; every distro's decky
//!   claims 15, which PGDG packages for all of them.
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncWriteExt, BufReader};

use self::wire::{Origin, ReadError};
use super::conn::{Conn, Handler, Idle, Limits};
use super::{Credential, Emitter, Persona, ServiceSpec};

/// Settings the emulation reads besides the catalogue's persona keys.
pub const EXTRA_SETTINGS: &[&str] = &["POSTGRES_AUTH"];
/// `authentication_timeout`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Role and database names are cut to `NAMEDATALEN - 1` bytes.
const NAMEDATALEN: usize = 63;
/// SCRAM iterations (`scram_iterations`).
const ITERATIONS: u32 = 4096;
/// Longest SCRAM auth message kept in an event.
const MAX_AUTH_MESSAGE: usize = 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The `pg_hba.conf` method the decky asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `password`: cleartext.
    Password,
    /// `md5`.
    Md5,
    /// `scram-sha-256`.
    Scram,
}

impl Method {
    /// The method a `POSTGRES_AUTH` value names; anything unknown is SCRAM, the default.
    pub fn parse(setting: Option<&str>) -> Method {
        match setting.map(str::trim) {
            Some("password" | "cleartext" | "plain") => Method::Password,
            Some("md5") => Method::Md5,
            _ => Method::Scram,
        }
    }
}

const fn at(file: &'static str, line: u32, routine: &'static str) -> Origin {
    Origin {
        file,
        line,
        routine,
    }
}

/// Where PostgreSQL 15 raises each error this emulation sends.
const AUTH_FAILED: Origin = at("auth.c", 334, "auth_failed");
const UNSUPPORTED_PROTOCOL: Origin = at("postmaster.c", 2220, "ProcessStartupPacket");
const UNENCRYPTED_AFTER_SSL: Origin = at("postmaster.c", 2134, "ProcessStartupPacket");
const BAD_REPLICATION: Origin = at("postmaster.c", 2284, "ProcessStartupPacket");
const BAD_LAYOUT: Origin = at("postmaster.c", 2332, "ProcessStartupPacket");
const NO_USER: Origin = at("postmaster.c", 2349, "ProcessStartupPacket");
const EXPECTED_PASSWORD: Origin = at("auth.c", 718, "recv_password_packet");
const PASSWORD_SIZE: Origin = at("auth.c", 739, "recv_password_packet");
const EMPTY_PASSWORD: Origin = at("auth.c", 757, "recv_password_packet");
const EXPECTED_SASL: Origin = at("auth-sasl.c", 95, "CheckSASLAuth");
const BAD_MECHANISM: Origin = at("auth-scram.c", 256, "scram_init");
const NONCE_MISMATCH: Origin = at("auth-scram.c", 404, "scram_exchange");
const ATTR_EXPECTED: Origin = at("auth-scram.c", 712, "read_attr_value");
const BAD_CBIND_FLAG: Origin = at("auth-scram.c", 1025, "read_client_first_message");
const BAD_PROOF: Origin = at("auth-scram.c", 1353, "read_client_final_message");
const SHORT_MESSAGE: Origin = at("pqformat.c", 515, "pq_getmsgbytes");
const BAD_STRING: Origin = at("pqformat.c", 624, "pq_getmsgrawstring");

struct State {
    emitter: Emitter,
    persona: Arc<Persona>,
    method: Method,
    rng: SystemRandom,
}

/// The per-connection handler of `postgres` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let state = Arc::new(State {
        emitter,
        persona: spec.persona.clone(),
        method: Method::parse(spec.settings.get("POSTGRES_AUTH").map(String::as_str)),
        rng: SystemRandom::new(),
    });
    let limits = Limits {
        max_conns: 256,
        idle: AUTH_TIMEOUT,
        total: Duration::from_secs(120),
        max_line: wire::MAX_SASL,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

type Io = BufReader<Idle<tokio::net::TcpStream>>;

async fn session(state: Arc<State>, conn: Conn) {
    let Conn { stream, peer, .. } = conn;
    state
        .emitter
        .emit(state.emitter.peer_event("connect", peer))
        .await;
    let mut io = BufReader::with_capacity(8192, stream);
    let _ = tokio::time::timeout(AUTH_TIMEOUT, startup(&state, &mut io, peer)).await;
    let _ = io.get_mut().shutdown().await;
    state
        .emitter
        .emit(state.emitter.peer_event("disconnect", peer))
        .await;
}

async fn send(io: &mut Io, bytes: &[u8]) -> Option<()> {
    let stream = io.get_mut();
    stream.write_all(bytes).await.ok()?;
    stream.flush().await.ok()
}

/// Sends a FATAL error; the connection ends after it.
async fn fatal(
    io: &mut Io,
    sqlstate: &str,
    text: &[u8],
    detail: Option<&str>,
    origin: Origin,
) -> Option<()> {
    send(io, &wire::fatal(sqlstate, text, detail, None, origin)).await?;
    None
}

/// A startup-stage read; a bad length is logged and the connection closed unanswered.
async fn log_bad(state: &State, peer: SocketAddr, err: ReadError) -> Option<()> {
    if let ReadError::BadLength(n) = err {
        let msg = format!("invalid message length {n}");
        state.emitter.error(peer, &msg).await;
    }
    None
}

/// What the startup message said.
struct Login {
    user: Vec<u8>,
    database: Vec<u8>,
}

async fn startup(state: &State, io: &mut Io, peer: SocketAddr) -> Option<()> {
    let (mut ssl_done, mut gss_done) = (false, false);
    let (code, body) = loop {
        let (code, body) = match wire::read_startup(io).await {
            Ok(p) => p,
            Err(e) => return log_bad(state, peer, e).await,
        };
        match code {
            wire::CANCEL => {
                let m = state.emitter.peer_event("cancel_request", peer);
                state.emitter.emit(m).await;
                return None;
            }
            wire::SSL if !ssl_done => {
                ssl_done = true;
                send(io, b"N").await?;
                if !io.buffer().is_empty() {
                    let detail = "This could be either a client-software bug or evidence \
                                  of an attempted man-in-the-middle attack.";
                    let text = b"received unencrypted data after SSL request";
                    return fatal(io, "08P01", text, Some(detail), UNENCRYPTED_AFTER_SSL).await;
                }
            }
            wire::GSSENC if !gss_done => {
                gss_done = true;
                send(io, b"N").await?;
            }
            _ => break (code, body),
        }
    };
    let (major, minor) = (code >> 16, code & 0xffff);
    let unsupported =
        format!("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0");
    if major < 3 {
        return send(io, &wire::fatal_v2(&unsupported)).await;
    }
    if major > 3 {
        return fatal(
            io,
            "0A000",
            unsupported.as_bytes(),
            None,
            UNSUPPORTED_PROTOCOL,
        )
        .await;
    }
    let Some(params) = wire::parameters(&body) else {
        let text = b"invalid startup packet layout: expected terminator as last byte";
        return fatal(io, "08P01", text, None, BAD_LAYOUT).await;
    };
    let value = |name: &[u8]| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    if let Some(r) = value(b"replication")
        && !valid_replication(r)
    {
        let text = format!(
            "invalid value for parameter \"replication\": \"{}\"",
            String::from_utf8_lossy(r)
        );
        let hint = "Valid values are: \"false\", 0, \"true\", 1, \"database\".";
        let e = wire::fatal("22023", text.as_bytes(), None, Some(hint), BAD_REPLICATION);
        return send(io, &e).await;
    }
    let unknown: Vec<Vec<u8>> = params
        .iter()
        .filter(|(k, _)| k.starts_with(b"_pq_."))
        .map(|(k, _)| k.clone())
        .collect();
    if minor > 0 || !unknown.is_empty() {
        send(io, &wire::negotiate(&unknown)).await?;
    }
    let user = value(b"user").unwrap_or_default();
    if user.is_empty() {
        let text = b"no PostgreSQL user name specified in startup packet";
        return fatal(io, "28000", text, None, NO_USER).await;
    }
    let database = value(b"database").filter(|d| !d.is_empty()).unwrap_or(user);
    let login = Login {
        user: user[..user.len().min(NAMEDATALEN)].to_vec(),
        database: database[..database.len().min(NAMEDATALEN)].to_vec(),
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut m = state
        .emitter
        .peer_event("startup_message", peer)
        .param("username", lossy(&login.user))
        .param("database", lossy(&login.database))
        .param("protocol", format!("{major}.{minor}"));
    if let Some(app) = value(b"application_name") {
        m = m.param("application_name", lossy(&app[..app.len().min(64)]));
    }
    state.emitter.emit(m).await;
    match state.method {
        Method::Password => password(state, io, peer, &login, None).await,
        Method::Md5 => {
            let mut salt = [0u8; 4];
            state.rng.fill(&mut salt).ok()?;
            password(state, io, peer, &login, Some(salt)).await
        }
        Method::Scram => scram(state, io, peer, &login).await,
    }
}

/// `replication`'s accepted values: a boolean (`parse_bool`) or `database`.
fn valid_replication(v: &[u8]) -> bool {
    let v = String::from_utf8_lossy(v).to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    v == "database"
        || v == "1"
        || v == "0"
        || prefix_of("true")
        || prefix_of("false")
        || prefix_of("yes")
        || prefix_of("no")
        || (v.len() >= 2 && (prefix_of("on") || prefix_of("off")))
}

/// `password` or, with a salt, `md5`: one password message, then the failure.
async fn password(
    state: &State,
    io: &mut Io,
    peer: SocketAddr,
    login: &Login,
    salt: Option<[u8; 4]>,
) -> Option<()> {
    let request = match salt {
        Some(s) => wire::auth_request(5, &s),
        None => wire::auth_request(3, &[]),
    };
    send(io, &request).await?;
    let (kind, body) = match wire::read_message(io, wire::MAX_PASSWORD).await {
        Ok(m) => m,
        Err(e) => return log_bad(state, peer, e).await,
    };
    if kind != b'p' {
        let text = format!("expected password response, got message type {kind}");
        return fatal(io, "08P01", text.as_bytes(), None, EXPECTED_PASSWORD).await;
    }
    // One string, its NUL the last byte.
    if body.iter().position(|&b| b == 0) != Some(body.len().wrapping_sub(1)) {
        return fatal(
            io,
            "08P01",
            b"invalid password packet size",
            None,
            PASSWORD_SIZE,
        )
        .await;
    }
    let secret = &body[..body.len() - 1];
    let (kind, mut extra) = match salt {
        Some(s) => ("postgres_md5", vec![("salt", hex::encode(s))]),
        None => ("plaintext", Vec::new()),
    };
    if salt.is_some() {
        extra.push(("pw_hash", String::from_utf8_lossy(secret).into_owned()));
    }
    record(state, peer, login, kind, secret, &extra).await;
    if secret.is_empty() {
        let text = b"empty password returned by client";
        return fatal(io, "28P01", text, None, EMPTY_PASSWORD).await;
    }
    auth_failed(io, login).await
}

async fn auth_failed(io: &mut Io, login: &Login) -> Option<()> {
    let mut text = b"password authentication failed for user \"".to_vec();
    text.extend_from_slice(&login.user);
    text.push(b'"');
    fatal(io, "28P01", &text, None, AUTH_FAILED).await
}

/// `scram-sha-256`: mechanism list, client-first, server-first, client-final, failure.
async fn scram(state: &State, io: &mut Io, peer: SocketAddr, login: &Login) -> Option<()> {
    send(io, &wire::auth_request(10, b"SCRAM-SHA-256\0\0")).await?;
    let body = sasl_message(state, io, peer, login).await?;
    let Some((mechanism, rest)) = wire::cstring(&body) else {
        return fatal(io, "08P01", b"invalid string in message", None, BAD_STRING).await;
    };
    if mechanism != b"SCRAM-SHA-256" {
        let text = b"client selected an invalid SASL authentication mechanism";
        return fatal(io, "08P01", text, None, BAD_MECHANISM).await;
    }
    let declared = rest
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let first = match declared.map(usize::try_from) {
        Some(Ok(n)) if rest.len() - 4 >= n => &rest[4..4 + n],
        _ => {
            let text = b"insufficient data left in message";
            return fatal(io, "08P01", text, None, SHORT_MESSAGE).await;
        }
    };
    let bare = match client_first_bare(first) {
        Ok(bare) => bare,
        Err((detail, origin)) => {
            let text = b"malformed SCRAM message";
            return fatal(io, "08P01", text, Some(detail.as_str()), origin).await;
        }
    };
    let client_nonce = bare
        .split(|&b| b == b',')
        .nth(1)
        .and_then(|a| a.strip_prefix(b"r="))
        .unwrap_or_default();
    let mut raw_nonce = [0u8; 18];
    state.rng.fill(&mut raw_nonce).ok()?;
    let derived = state
        .persona
        .derive(&format!("postgres-scram-salt:{}", hex::encode(&login.user)));
    let salt = &derived[..16];
    let mut server_first = b"r=".to_vec();
    server_first.extend_from_slice(client_nonce);
    server_first.extend_from_slice(B64.encode(raw_nonce).as_bytes());
    server_first.extend_from_slice(format!(",s={},i={ITERATIONS}", B64.encode(salt)).as_bytes());
    send(io, &wire::auth_request(11, &server_first)).await?;
    let last = sasl_message(state, io, peer, login).await?;
    if !last.starts_with(b"c=") {
        let found = last.first().copied().unwrap_or(0);
        let detail = format!(
            "Expected attribute \"c\" but found \"{}\".",
            sanitize(found)
        );
        let text = b"malformed SCRAM message";
        return fatal(io, "08P01", text, Some(detail.as_str()), ATTR_EXPECTED).await;
    }
    let split = last.windows(3).rposition(|w| w == b",p=");
    let proof = split.and_then(|i| B64.decode(&last[i + 3..]).ok());
    let (Some(i), Some(proof)) = (split, proof.filter(|p| p.len() == 32)) else {
        let detail = "Malformed proof in client-final-message.";
        return fatal(
            io,
            "08P01",
            b"malformed SCRAM message",
            Some(detail),
            BAD_PROOF,
        )
        .await;
    };
    let without_proof = &last[..i];
    let mut auth_message = bare.to_vec();
    auth_message.push(b',');
    auth_message.extend_from_slice(&server_first);
    auth_message.push(b',');
    auth_message.extend_from_slice(without_proof);
    let extra = [
        ("salt", B64.encode(salt)),
        ("iterations", ITERATIONS.to_string()),
        (
            "auth_message",
            String::from_utf8_lossy(&auth_message[..auth_message.len().min(MAX_AUTH_MESSAGE)])
                .into_owned(),
        ),
    ];
    record(state, peer, login, "scram_sha_256", &proof, &extra).await;
    let final_nonce = without_proof
        .split(|&b| b == b',')
        .find_map(|a| a.strip_prefix(b"r="));
    let nonce_ok =
        final_nonce.is_some_and(|n| server_first.starts_with(&[&b"r="[..], n, &b","[..]].concat()));
    if !nonce_ok {
        let text = b"invalid SCRAM response";
        return fatal(
            io,
            "08P01",
            text,
            Some("Nonce does not match."),
            NONCE_MISMATCH,
        )
        .await;
    }
    auth_failed(io, login).await
}

/// Reads one SASL message (`p`), answering anything else as PostgreSQL does: an
/// oversized one fails the authentication, another message type is a protocol error.
async fn sasl_message(
    state: &State,
    io: &mut Io,
    peer: SocketAddr,
    login: &Login,
) -> Option<Vec<u8>> {
    let (kind, body) = match wire::read_message(io, wire::MAX_SASL).await {
        Ok(m) => m,
        Err(ReadError::Closed) => return None,
        Err(e) => {
            log_bad(state, peer, e).await;
            auth_failed(io, login).await;
            return None;
        }
    };
    if kind != b'p' {
        let text = format!("expected SASL response, got message type {kind}");
        fatal(io, "08P01", text.as_bytes(), None, EXPECTED_SASL).await;
        return None;
    }
    Some(body)
}

/// The client-first-message without its GS2 header, or the error PostgreSQL gives.
fn client_first_bare(first: &[u8]) -> Result<&[u8], (String, Origin)> {
    let flag = first.first().copied().unwrap_or(0);
    if flag != b'n' && flag != b'y' {
        let detail = format!("Unexpected channel-binding flag \"{}\".", sanitize(flag));
        return Err((detail, BAD_CBIND_FLAG));
    }
    // "n," then an optional "a=authzid", then ",".
    let mut commas = first.iter().enumerate().filter(|(_, b)| **b == b',');
    let second = commas.nth(1).map(|(i, _)| i + 1);
    let bare = second.and_then(|i| first.get(i..)).unwrap_or_default();
    let expect = |attr: u8, at: Option<&[u8]>| -> Result<(), (String, Origin)> {
        match at {
            Some([a, b'=', ..]) if *a == attr => Ok(()),
            other => {
                let found = other.and_then(|o| o.first().copied()).unwrap_or(0);
                let detail = format!(
                    "Expected attribute \"{}\" but found \"{}\".",
                    char::from(attr),
                    sanitize(found)
                );
                Err((detail, ATTR_EXPECTED))
            }
        }
    };
    let mut attrs = bare.split(|&b| b == b',');
    expect(b'n', attrs.next())?;
    expect(b'r', attrs.next())?;
    Ok(bare)
}

/// A byte as PostgreSQL's `sanitize_char` shows it.
fn sanitize(c: u8) -> String {
    if (0x21..=0x7e).contains(&c) {
        format!("'{}'", char::from(c))
    } else {
        format!("0x{c:02x}")
    }
}

async fn record(
    state: &State,
    peer: SocketAddr,
    login: &Login,
    kind: &'static str,
    secret: &[u8],
    extra: &[(&str, String)],
) {
    let cred = Credential {
        principal: Some(login.user.clone()),
        kind,
        secret: secret.to_vec(),
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut m = cred.apply(
        state
            .emitter
            .peer_event("auth", peer)
            .param("username", lossy(&login.user))
            .param("database", lossy(&login.database)),
    );
    if kind == "scram_sha_256" {
        m = m.param("secret_printable", hex::encode(secret));
    }
    for (k, v) in extra {
        m = m.param(*k, v.clone());
    }
    state.emitter.emit(m).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_messages_are_checked_like_postgres() {
        assert_eq!(
            client_first_bare(b"n,,n=,r=abc").ok(),
            Some(&b"n=,r=abc"[..])
        );
        assert_eq!(
            client_first_bare(b"y,a=x,n=u,r=q").ok(),
            Some(&b"n=u,r=q"[..])
        );
        let (detail, origin) = client_first_bare(b"abcdef").expect_err("bad flag");
        assert_eq!(detail, "Unexpected channel-binding flag \"'a'\".");
        assert_eq!(origin, BAD_CBIND_FLAG);
        let (detail, _) = client_first_bare(b"n,,n=,x").expect_err("no nonce");
        assert_eq!(detail, "Expected attribute \"r\" but found \"'x'\".");
        for cut in 0..11 {
            let _ = client_first_bare(&b"n,,n=,r=abc"[..cut]);
        }
    }

    #[test]
    fn methods_and_replication_values() {
        assert_eq!(Method::parse(Some("md5")), Method::Md5);
        assert_eq!(Method::parse(Some("password")), Method::Password);
        assert_eq!(Method::parse(None), Method::Scram);
        assert!(valid_replication(b"database") && valid_replication(b"t"));
        assert!(!valid_replication(b"zz") && !valid_replication(b"o"));
    }
}
