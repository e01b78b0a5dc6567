//! redis: RESP and inline commands answered like the redis release the persona claims
//! (engine.md §2.8), every command logged as `command` and every AUTH as `auth` with the
//! byte-exact secret.
//!
//! Error texts follow the real server of that release (checked against redis's source):
//! before 6.0 `Client sent AUTH, but no password is set` / `invalid password`; from 6.0
//! the ACL texts (`AUTH <password> called without any password configured…`,
//! `WRONGPASS …`, "or user is disabled." from 6.2); unknown commands quote their name in
//! backticks before 7.0 and in single quotes after. An unknown command is refused before
//! the authentication check, as redis does. Writes (`SET`, `DEL`) go to a small
//! per-process keyspace capped at [`MAX_KEYS`], so a client sees its own writes. Each
//! reply waits 2–40 ms, the jitter of a loaded server.
mod data;
pub mod resp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::data::Version;
use self::resp::{Parse, Reply};
use super::conn::{Conn, Handler, Limits};
use super::{Credential, Emitter, Persona, ServiceSpec};

/// Settings the emulation reads besides the catalogue's persona keys.
pub const EXTRA_SETTINGS: &[&str] = &["REDIS_PASSWORD"];
/// Most keys the keyspace holds; a `SET` beyond it is answered OK and dropped.
pub const MAX_KEYS: usize = 1024;
/// Arguments of a command kept in its `command` event.
const LOGGED_ARGS: usize = 8;
/// Bytes of one argument kept in a `command` event.
const LOGGED_ARG_BYTES: usize = 256;
/// Largest read buffer: a bulk argument plus framing.
const MAX_BUFFER: usize = resp::MAX_BULK + 1024;

struct State {
    emitter: Emitter,
    persona: Arc<Persona>,
    version: Version,
    os: String,
    gcc: &'static str,
    password: Option<Vec<u8>>,
    keys: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    clients: AtomicUsize,
    started: tokio::time::Instant,
}

/// The per-connection handler of `redis` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let persona = spec.persona.clone();
    let (release, gcc) = persona.redis_build();
    let version = Version::new(
        spec.settings
            .get("REDIS_VERSION")
            .map_or(release, String::as_str),
    );
    let os = spec
        .settings
        .get("REDIS_OS")
        .cloned()
        .unwrap_or_else(|| format!("Linux {} x86_64", persona.kernel_release()));
    let state = Arc::new(State {
        emitter,
        keys: Mutex::new(data::keyspace(&persona)),
        persona,
        version,
        os,
        gcc,
        password: spec
            .settings
            .get("REDIS_PASSWORD")
            .map(|p| p.as_bytes().to_vec()),
        clients: AtomicUsize::new(0),
        started: tokio::time::Instant::now(),
    });
    let limits = Limits {
        max_conns: 256,
        idle: Duration::from_secs(300),
        total: Duration::from_secs(3600),
        max_line: resp::MAX_INLINE,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

/// What a command does to the connection besides its reply.
enum After {
    Continue,
    Close,
}

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        mut stream, peer, ..
    } = conn;
    state.clients.fetch_add(1, Ordering::Relaxed);
    state
        .emitter
        .emit(state.emitter.peer_event("connect", peer))
        .await;
    let mut authed = state.password.is_none();
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut jitter = u64::from_le_bytes(
        state.persona.derive(&format!("redis-jitter-{peer}"))[..8]
            .try_into()
            .unwrap_or([1; 8]),
    ) | 1;
    'conn: loop {
        let mut out = Vec::new();
        let mut close = false;
        loop {
            match resp::parse(&buf) {
                Parse::Incomplete => break,
                Parse::Error(text) => {
                    Reply::err(text).encode(&mut out);
                    close = true;
                    break;
                }
                Parse::Command(args, used) => {
                    buf.drain(..used);
                    if args.is_empty() {
                        continue;
                    }
                    let (reply, after) = command(&state, peer, &mut authed, &args).await;
                    reply.encode(&mut out);
                    if matches!(after, After::Close) {
                        close = true;
                        break;
                    }
                }
            }
        }
        if !out.is_empty() {
            // xorshift: cheap per-connection jitter, no shared generator needed.
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            tokio::time::sleep(Duration::from_millis(2 + jitter % 39)).await;
            if stream.write_all(&out).await.is_err() {
                break 'conn;
            }
        }
        if close {
            let _ = stream.shutdown().await;
            break;
        }
        if buf.len() >= MAX_BUFFER {
            break;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    state.clients.fetch_sub(1, Ordering::Relaxed);
    state
        .emitter
        .emit(state.emitter.peer_event("disconnect", peer))
        .await;
}

/// Commands this redis knows; anything else is an unknown command.
const KNOWN: &[&str] = &[
    "AUTH", "PING", "ECHO", "INFO", "CONFIG", "KEYS", "GET", "SET", "DEL", "EXISTS", "SCAN",
    "TYPE", "TTL", "PTTL", "DBSIZE", "COMMAND", "CLIENT", "SELECT", "QUIT", "FLUSHALL", "FLUSHDB",
    "SAVE", "BGSAVE", "LASTSAVE", "TIME", "MGET",
];

async fn command(
    state: &State,
    peer: SocketAddr,
    authed: &mut bool,
    args: &[Vec<u8>],
) -> (Reply, After) {
    let verb = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let logged: Vec<String> = if verb == "AUTH" {
        Vec::new()
    } else {
        args[1..]
            .iter()
            .take(LOGGED_ARGS)
            .map(|a| String::from_utf8_lossy(&a[..a.len().min(LOGGED_ARG_BYTES)]).into_owned())
            .collect()
    };
    let event = state
        .emitter
        .peer_event("command", peer)
        .param("cmd", verb.clone())
        .param(
            "args",
            serde_json::to_string(&logged).unwrap_or_else(|_| "[]".into()),
        );
    state.emitter.emit(event).await;

    if !KNOWN.contains(&verb.as_str()) {
        return (
            Reply::err(unknown_command(&state.version, args)),
            After::Continue,
        );
    }
    if !*authed && verb != "AUTH" && verb != "QUIT" {
        return (
            Reply::Error("NOAUTH Authentication required.".into()),
            After::Continue,
        );
    }
    let arity = |n: usize| args.len() == n;
    let wrong = || {
        Reply::err(format!(
            "wrong number of arguments for '{}' command",
            verb.to_ascii_lowercase()
        ))
    };
    let reply = match verb.as_str() {
        "AUTH" if arity(2) || arity(3) => {
            return (auth(state, peer, authed, args).await, After::Continue);
        }
        "PING" if args.len() <= 2 => args
            .get(1)
            .map_or(Reply::Simple("PONG".into()), Reply::bulk),
        "ECHO" if arity(2) => Reply::bulk(&args[1]),
        "INFO" => {
            let section = args.get(1).map(|s| String::from_utf8_lossy(s).into_owned());
            let keys = state.keys.lock().map_or(0, |k| k.len());
            let clients = state.clients.load(Ordering::Relaxed);
            let uptime = state.started.elapsed().as_secs();
            let facts = data::Facts {
                version: &state.version,
                os: &state.os,
                gcc: state.gcc,
                uptime,
                clients,
                keys,
            };
            Reply::bulk(data::info(&state.persona, &facts, section.as_deref()))
        }
        "CONFIG" => config(state, args),
        "KEYS" if arity(2) => {
            let keys = state.keys.lock().map(|k| {
                k.keys()
                    .filter(|name| data::glob(&args[1], name))
                    .map(|name| Reply::Bulk(name.clone()))
                    .collect()
            });
            Reply::Array(keys.unwrap_or_default())
        }
        "SCAN" if args.len() >= 2 => {
            let pattern = args
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case(b"match"))
                .map_or(&b"*"[..], |w| &w[1][..]);
            let keys = state.keys.lock().map(|k| {
                k.keys()
                    .filter(|name| data::glob(pattern, name))
                    .map(|name| Reply::Bulk(name.clone()))
                    .collect()
            });
            Reply::Array(vec![
                Reply::bulk("0"),
                Reply::Array(keys.unwrap_or_default()),
            ])
        }
        "GET" if arity(2) => state
            .keys
            .lock()
            .ok()
            .and_then(|k| k.get(&args[1]).cloned())
            .map_or(Reply::Nil, Reply::Bulk),
        "MGET" if args.len() >= 2 => {
            let keys = state.keys.lock().ok();
            Reply::Array(
                args[1..]
                    .iter()
                    .map(|name| {
                        keys.as_ref()
                            .and_then(|k| k.get(name).cloned())
                            .map_or(Reply::Nil, Reply::Bulk)
                    })
                    .collect(),
            )
        }
        "SET" if args.len() >= 3 => {
            if let Ok(mut k) = state.keys.lock()
                && (k.len() < MAX_KEYS || k.contains_key(&args[1]))
            {
                k.insert(args[1].clone(), args[2].clone());
            }
            Reply::ok()
        }
        "DEL" | "EXISTS" if args.len() >= 2 => {
            let mut k = match state.keys.lock() {
                Ok(k) => k,
                Err(_) => return (Reply::Integer(0), After::Continue),
            };
            let n = args[1..]
                .iter()
                .filter(|name| {
                    if verb == "DEL" {
                        k.remove(*name).is_some()
                    } else {
                        k.contains_key(*name)
                    }
                })
                .count();
            Reply::Integer(i64::try_from(n).unwrap_or(0))
        }
        "TYPE" if arity(2) => {
            let exists = state.keys.lock().is_ok_and(|k| k.contains_key(&args[1]));
            Reply::Simple(if exists { "string" } else { "none" }.into())
        }
        "TTL" | "PTTL" if arity(2) => {
            let exists = state.keys.lock().is_ok_and(|k| k.contains_key(&args[1]));
            Reply::Integer(if exists { -1 } else { -2 })
        }
        "DBSIZE" if arity(1) => Reply::Integer(
            state
                .keys
                .lock()
                .map_or(0, |k| i64::try_from(k.len()).unwrap_or(0)),
        ),
        "COMMAND" => Reply::Array(Vec::new()),
        "CLIENT" if args.len() >= 2 => Reply::ok(),
        "SELECT" if arity(2) => match String::from_utf8_lossy(&args[1]).parse::<i64>() {
            Ok(0..=15) => Reply::ok(),
            Ok(_) => Reply::err("DB index is out of range"),
            Err(_) => Reply::err("value is not an integer or out of range"),
        },
        "QUIT" => return (Reply::ok(), After::Close),
        "FLUSHALL" | "FLUSHDB" | "SAVE" => Reply::ok(),
        "BGSAVE" => Reply::Simple("Background saving started".into()),
        "LASTSAVE" => Reply::Integer(time::OffsetDateTime::now_utc().unix_timestamp() - 1800),
        "TIME" => {
            let now = time::OffsetDateTime::now_utc();
            Reply::Array(vec![
                Reply::bulk(now.unix_timestamp().to_string()),
                Reply::bulk(now.microsecond().to_string()),
            ])
        }
        _ => wrong(),
    };
    (reply, After::Continue)
}

/// The unknown-command error text of `version`.
fn unknown_command(version: &Version, args: &[Vec<u8>]) -> String {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let quote_old = version.major_minor < (7, 0);
    let mut list = String::new();
    for a in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let text = String::from_utf8_lossy(&a[..a.len().min(room)]).into_owned();
        if quote_old {
            list.push_str(&format!("`{text}`, "));
        } else {
            list.push_str(&format!("'{text}' "));
        }
    }
    if version.major_minor < (5, 0) {
        format!("unknown command '{name}'")
    } else if quote_old {
        format!("unknown command `{name}`, with args beginning with: {list}")
    } else {
        format!("unknown command '{name}', with args beginning with: {list}")
    }
}

async fn auth(state: &State, peer: SocketAddr, authed: &mut bool, args: &[Vec<u8>]) -> Reply {
    let (user, secret) = match args {
        [_, pass] => (None, pass),
        [_, user, pass] => (Some(user.as_slice()), pass),
        _ => return Reply::err("syntax error"),
    };
    let cred = Credential::plaintext(user, secret);
    let event = cred.apply(state.emitter.peer_event("auth", peer));
    state.emitter.emit(event).await;
    let v = &state.version;
    let default_user = user.is_none_or(|u| u == b"default");
    let wrongpass = if v.major_minor >= (6, 2) {
        Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    } else {
        Reply::Error("WRONGPASS invalid username-password pair".into())
    };
    if user.is_some() && !v.has_acl() {
        return Reply::err("wrong number of arguments for 'auth' command");
    }
    match &state.password {
        None if !v.has_acl() => Reply::err("Client sent AUTH, but no password is set"),
        None if user.is_none() => Reply::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        // The default user has `nopass`: any password logs it in; other users do not exist.
        None if default_user => Reply::ok(),
        None => wrongpass,
        Some(p) if p == secret && default_user => {
            *authed = true;
            Reply::ok()
        }
        Some(_) if !v.has_acl() => Reply::err("invalid password"),
        Some(_) => wrongpass,
    }
}

fn config(state: &State, args: &[Vec<u8>]) -> Reply {
    let sub = args
        .get(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase());
    match (sub.as_deref(), args.len()) {
        (Some("GET"), n) if n >= 3 => {
            let mut items = Vec::new();
            for (k, v) in data::config(&state.persona, &state.version) {
                if args[2..]
                    .iter()
                    .any(|p| data::glob(&p.to_ascii_lowercase(), k.as_bytes()))
                {
                    items.push(Reply::bulk(k));
                    items.push(Reply::bulk(v));
                }
            }
            Reply::Array(items)
        }
        (Some("SET"), n) if n >= 4 => Reply::ok(),
        (Some("RESETSTAT" | "REWRITE"), 2) => Reply::ok(),
        (Some(other), _) if ["GET", "SET", "RESETSTAT", "REWRITE", "HELP"].contains(&other) => {
            Reply::err(format!(
                "wrong number of arguments for 'config|{}' command",
                other.to_ascii_lowercase()
            ))
        }
        (Some(_), _) => Reply::err(format!(
            "unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
                .chars()
                .take(128)
                .collect::<String>()
        )),
        (None, _) => Reply::err("wrong number of arguments for 'config' command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_texts_per_release() {
        let args = vec![b"foo".to_vec(), b"a".to_vec(), b"b".to_vec()];
        assert_eq!(
            unknown_command(&Version::new("7.0.15"), &args),
            "unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command(&Version::new("6.0.16"), &args),
            "unknown command `foo`, with args beginning with: `a`, `b`, "
        );
        assert_eq!(
            unknown_command(&Version::new("3.2.12"), &args),
            "unknown command 'foo'"
        );
    }
}
