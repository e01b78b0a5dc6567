//! http and https: a web server that answers like the one the persona claims, and logs
//! every request with the credentials it carries (engine.md §2.3, §2.8).
//!
//! hyper serves HTTP/1.1 and HTTP/2 on one port (`hyper-util`'s auto connection: h2c by
//! prior knowledge in clear text, ALPN `h2` over TLS) unless `HTTP_VERSIONS` narrows it.
//! Each request becomes one `request` event (method, path, headers as a JSON object, a
//! body preview of at most 512 characters, and the credential fields when the request
//! carries a Basic/Bearer/Digest `Authorization` or a urlencoded login form), then gets
//! the page of [`fronts`], and an `http_access` event (status, bytes) once answered;
//! [`fingerprint`] adds `http_request_fingerprint` (JA4H, header order) whenever a
//! connection's JA4H changes, and `http2_settings` once per HTTP/2 connection; https
//! adds `tls_client_hello` (JA3, JA4, [`hello`]) once per connection. Bounds: header block 16 KiB (HTTP/1) / header list 16 KiB
//! (HTTP/2), at most 32 concurrent streams, bodies read up to 64 KiB (more is answered
//! 413 and the connection closed), plus the idle and total timeouts of [`conn`](super::conn).
mod auth;
pub mod fingerprint;
pub mod fronts;
pub mod hello;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use self::fingerprint::{RequestParts, Shared, Tap};
use self::fronts::{Ask, Front, Site};
use super::conn::{Conn, Handler, Limits};
use super::events::cap_str;
use super::persona::WebFlavor;
use super::{Emitter, Error, Persona, ServiceSpec};

/// Largest request body read; a bigger one is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;
/// Characters of the body kept in the `request` event.
pub const BODY_PREVIEW: usize = 512;
/// Largest HTTP/1 header block (hyper's read buffer) and HTTP/2 header list.
pub const MAX_HEADERS: usize = 16 * 1024;
/// Bytes of one header value kept in the event.
const MAX_HEADER_VALUE: usize = 1024;
/// Bytes of the path kept in the event.
const MAX_PATH: usize = 2048;

struct State {
    site: Site,
    emitter: Emitter,
    persona: Arc<Persona>,
    tls: Option<TlsAcceptor>,
    h1: bool,
    h2: bool,
    /// Session ids handed out; only the fallback when the system RNG fails uses it.
    requests: AtomicU64,
}

/// The per-connection handler of `http` or `https` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> Result<(Handler, Limits), Error> {
    let setting_err = |reason: String| Error::Setting {
        service: spec.name.clone(),
        reason,
    };
    let get = |k: &str| spec.settings.get(k).map(String::as_str);
    let persona = spec.persona.clone();
    let server = get("SERVER_HEADER").map_or_else(|| persona.web_server_header(), str::to_owned);
    let flavor = flavor_of(&server).unwrap_or_else(|| persona.web_flavor());
    let status = get("RESPONSE_CODE")
        .map(|v| {
            v.trim()
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| setting_err(format!("RESPONSE_CODE={v:?} is not an HTTP status")))
        })
        .transpose()?;
    let extra = get("EXTRA_HEADERS").map(extra_headers).unwrap_or_default();
    let (h1, h2) = match get("HTTP_VERSIONS") {
        Some(v) if v.contains("http/1.1") || v.contains("http/2") => {
            (v.contains("http/1.1"), v.contains("http/2"))
        }
        _ => (true, true),
    };
    let installed = OffsetDateTime::from_unix_timestamp(1_640_995_200)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        + Duration::from_secs(persona.number("web-installed", 3 * 365 * 86_400));
    let site = Site {
        flavor,
        server,
        php: php_version(&persona),
        front: get("FAKE_APP").map_or(Front::None, Front::parse),
        status,
        custom_body: get("CUSTOM_BODY").map(str::to_owned),
        extra,
        distro: persona.distro.display_name.to_owned(),
        installed,
        hostname: persona.hostname.clone(),
    };
    let tls = if spec.name == "https" {
        let mut cert_persona = (*persona).clone();
        if let Some(cn) = get("TLS_CN") {
            cert_persona.hostname = cn.to_owned();
        }
        let alpn: Vec<&[u8]> = [(h2, &b"h2"[..]), (h1, &b"http/1.1"[..])]
            .into_iter()
            .filter_map(|(on, p)| on.then_some(p))
            .collect();
        let config = tls::server_config(&cert_persona, get("TLS_CERT"), get("TLS_KEY"), &alpn)
            .map_err(|e| setting_err(e.to_string()))?;
        Some(TlsAcceptor::from(config))
    } else {
        None
    };
    let state = Arc::new(State {
        site,
        emitter,
        persona,
        tls,
        h1,
        h2,
        requests: AtomicU64::new(0),
    });
    let limits = Limits {
        max_conns: 256,
        idle: Duration::from_secs(30),
        total: Duration::from_secs(300),
        max_line: MAX_HEADERS,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(serve_conn(state.clone(), conn)));
    Ok((handler, limits))
}

/// The server family a configured `Server` header names.
fn flavor_of(server: &str) -> Option<WebFlavor> {
    let s = server.to_ascii_lowercase();
    if s.contains("nginx") {
        Some(WebFlavor::Nginx)
    } else if s.contains("iis") {
        Some(WebFlavor::Iis)
    } else if s.contains("apache") {
        Some(WebFlavor::Apache)
    } else {
        None
    }
}

/// `EXTRA_HEADERS`: a JSON object of strings, or `Name: value` lines.
fn extra_headers(raw: &str) -> Vec<(HeaderName, HeaderValue)> {
    let pairs: Vec<(String, String)> =
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw) {
            Ok(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            Err(_) => raw
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        };
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(&v).ok()?,
            ))
        })
        .collect()
}

/// The PHP build the persona's distro ships, as `X-Powered-By` shows it.
fn php_version(p: &Persona) -> String {
    if p.is_windows() {
        // windows.php.net's builds say nothing about a distro.
        return (*p.pick("php-release", &["PHP/8.2.20", "PHP/8.2.24", "PHP/8.3.12"])).to_owned();
    }
    let builds: &[&str] = match p.distro.slug {
        "ubuntu22" => &[
            "PHP/8.1.2-1ubuntu2.14",
            "PHP/8.1.2-1ubuntu2.18",
            "PHP/8.1.2-1ubuntu2.19",
            "PHP/8.1.2-1ubuntu2.20",
        ],
        "ubuntu20" => &[
            "PHP/7.4.3-4ubuntu2.19",
            "PHP/7.4.3-4ubuntu2.22",
            "PHP/7.4.3-4ubuntu2.24",
        ],
        "rocky9" => &["PHP/8.0.30"],
        "centos7" => &["PHP/5.4.16"],
        "alpine" => &["PHP/8.2.20", "PHP/8.2.24"],
        "fedora" => &["PHP/8.2.20", "PHP/8.2.23"],
        "arch" => &["PHP/8.3.12", "PHP/8.3.14"],
        _ => &["PHP/8.2.20", "PHP/8.2.24", "PHP/8.2.26"],
    };
    (*p.pick("php-release", builds)).to_owned()
}

async fn serve_conn(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    match state.tls.clone() {
        Some(acceptor) => {
            // The ClientHello is read off the wire under rustls, which does not show
            // the extension order JA3 and JA4 need; a failed handshake is logged too.
            let (tap, recording) = Tap::new(stream);
            let accepted = acceptor.accept(tap).await;
            let raw = recording
                .lock()
                .map(|mut r| r.take_all())
                .unwrap_or_default();
            if let Some(hello) = hello::ClientHello::parse(&raw) {
                client_hello(&state, &hello, peer).await;
            }
            if let Ok(tls) = accepted {
                serve_http(state, tls, peer, local).await;
            }
        }
        None => serve_http(state, stream, peer, local).await,
    }
}

/// Emits `tls_client_hello` (JA3, JA4, SNI, ALPN) for one https connection.
async fn client_hello(state: &State, hello: &hello::ClientHello, peer: SocketAddr) {
    let em = &state.emitter;
    let alpn: Vec<String> = hello
        .alpn
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let mut event = em
        .peer_event("tls_client_hello", peer)
        .param("remote_addr", peer.ip().to_canonical().to_string())
        .param("ja3", hello.ja3())
        .param("ja3_full", cap_str(&hello.ja3_full(), MAX_PATH))
        .param("ja4", hello.ja4())
        .param("alpn", cap_str(&alpn.join(","), MAX_HEADER_VALUE));
    if let Some(sni) = &hello.sni {
        event = event.param("sni", cap_str(sni, 255));
    }
    em.emit(event).await;
}

/// What one connection's requests share: the tap's recording and the fingerprints
/// already reported.
#[derive(Default)]
struct ConnSeen {
    recording: Shared,
    last_ja4h: Mutex<String>,
}

async fn serve_http<S>(state: Arc<State>, stream: S, peer: SocketAddr, local: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .title_case_headers(true)
        .max_buf_size(MAX_HEADERS);
    builder
        .http2()
        .max_concurrent_streams(32)
        .max_header_list_size(u32::try_from(MAX_HEADERS).unwrap_or(u32::MAX));
    let builder = match (state.h1, state.h2) {
        (true, false) => builder.http1_only(),
        (false, true) => builder.http2_only(),
        _ => builder,
    };
    let (stream, recording) = Tap::new(stream);
    let seen = Arc::new(ConnSeen {
        recording,
        ..ConnSeen::default()
    });
    let svc_state = state.clone();
    let service = service_fn(move |req| {
        let state = svc_state.clone();
        let seen = seen.clone();
        async move { Ok::<_, Infallible>(respond(&state, &seen, req, peer, local.port()).await) }
    });
    // Errors here are the client's doing (garbage, resets, timeouts): nothing to report.
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(
    state: &State,
    seen: &ConnSeen,
    req: Request<Incoming>,
    peer: SocketAddr,
    port: u16,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let (body, too_large) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => (collected.to_bytes(), false),
        Err(_) => (Bytes::new(), true),
    };
    let method = parts.method.as_str();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned());
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        .filter(|h| !h.is_empty());
    let credential = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| auth::from_authorization(v.as_bytes()))
        .or_else(|| {
            is_form(&parts.headers)
                .then(|| auth::from_form(&body))
                .flatten()
        });
    let mut event = state
        .emitter
        .peer_event("request", peer)
        .param("method", method)
        .param("path", cap_str(&path, MAX_PATH))
        .param("remote_addr", peer.ip().to_canonical().to_string())
        .param("proto", format!("{:?}", parts.version))
        .param("headers", headers_json(&parts.headers));
    if !body.is_empty() {
        let text = String::from_utf8_lossy(&body);
        let preview: String = text.chars().take(BODY_PREVIEW).collect();
        event = event.param("body", preview);
    }
    if let Some(c) = &credential {
        event = c.apply(event);
    }
    state.emitter.emit(event).await;
    fingerprints(state, seen, &parts, &path, peer).await;

    let cookie = session_id(state, peer);
    let login_failed = credential
        .as_ref()
        .filter(|_| state.site.front == Front::Phpmyadmin && method == "POST")
        .map(|c| String::from_utf8_lossy(c.principal.as_deref().unwrap_or_default()).into_owned());
    let ask = Ask {
        method,
        host,
        port,
        cookie,
        login_failed,
    };
    let mut site_override;
    let site = if too_large {
        site_override = state.site.clone();
        site_override.status = Some(StatusCode::PAYLOAD_TOO_LARGE);
        site_override.front = Front::None;
        site_override.custom_body = None;
        &site_override
    } else {
        &state.site
    };
    let page = fronts::page(site, &ask, OffsetDateTime::now_utc());
    let bytes = page.body.len();
    let mut response = Response::new(Full::new(Bytes::from(page.body)));
    *response.status_mut() = page.status;
    let headers = response.headers_mut();
    for (name, value) in page.headers {
        headers.append(name, value);
    }
    if too_large {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let access = state
        .emitter
        .peer_event("http_access", peer)
        .param("remote_addr", peer.ip().to_canonical().to_string())
        .param("method", method)
        .param("path", cap_str(&path, MAX_PATH))
        .param("proto", format!("{:?}", parts.version))
        .param("status", response.status().as_u16().to_string())
        .param("bytes", bytes.to_string());
    state.emitter.emit(access).await;
    response
}

/// Emits `http2_settings` on an HTTP/2 connection's first request and
/// `http_request_fingerprint` whenever the connection's JA4H changes.
async fn fingerprints(
    state: &State,
    seen: &ConnSeen,
    parts: &http::request::Parts,
    path: &str,
    peer: SocketAddr,
) {
    let em = &state.emitter;
    let remote = peer.ip().to_canonical().to_string();
    let proto = format!("{:?}", parts.version);
    let (version, names) = if parts.version == http::Version::HTTP_2 {
        let h2 = seen.recording.lock().ok().and_then(|mut r| r.take_h2());
        if let Some(fp) = h2 {
            let event = em
                .peer_event("http2_settings", peer)
                .param("remote_addr", remote.clone())
                .param("settings", fp.settings.clone())
                .param("window_update", fp.window_update.to_string())
                .param("priority", fp.priority.clone())
                .param("pseudo_header_order", fp.pseudo_header_order.clone())
                .param("frame_order", fp.frame_order.clone())
                .param("akamai", fp.akamai());
            em.emit(event).await;
        }
        let names = parts.headers.keys().map(|n| n.as_str().to_owned());
        ("20", names.collect::<Vec<_>>())
    } else {
        let target = parts.uri.to_string();
        let taken = seen
            .recording
            .lock()
            .ok()
            .and_then(|mut r| r.take_head(parts.method.as_str(), &target));
        let names = taken.unwrap_or_else(|| {
            parts
                .headers
                .keys()
                .map(|n| title_case(n.as_str()))
                .collect()
        });
        let version = match parts.version {
            http::Version::HTTP_10 => "10",
            http::Version::HTTP_09 => "09",
            _ => "11",
        };
        (version, names)
    };
    let cookies: Vec<&str> = parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let cookie = (!cookies.is_empty()).then(|| cookies.join("; "));
    let language = parts
        .headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let ja4h = fingerprint::ja4h(&RequestParts {
        method: parts.method.as_str(),
        version,
        names: &names,
        cookie: cookie.as_deref(),
        accept_language: language,
    });
    if let Ok(mut last) = seen.last_ja4h.lock() {
        if *last == ja4h {
            return;
        }
        last.clone_from(&ja4h);
    }
    let mut event = em
        .peer_event("http_request_fingerprint", peer)
        .param("remote_addr", remote)
        .param("proto", proto)
        .param("method", parts.method.as_str())
        .param("path", cap_str(path, MAX_PATH))
        .param("ja4h", ja4h)
        .param("headers_ordered", cap_str(&names.join(","), MAX_HEADERS));
    if let Some(c) = &cookie {
        event = event.param("cookie", cap_str(c, MAX_HEADER_VALUE));
    }
    if let Some(l) = language {
        event = event.param("accept_language", cap_str(l, MAX_HEADER_VALUE));
    }
    em.emit(event).await;
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The request headers as one JSON object (repeated names joined by `, `), each value
/// cut to [`MAX_HEADER_VALUE`] bytes.
fn headers_json(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        let text = cap_str(&text, MAX_HEADER_VALUE).to_owned();
        let key = title_case(name.as_str());
        match map.get_mut(&key) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&text);
            }
            _ => {
                map.insert(key, serde_json::Value::String(text));
            }
        }
    }
    serde_json::Value::Object(map).to_string()
}

/// `user-agent` → `User-Agent`, the casing the ingester and the original expect.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A new 26-hex-digit session id, as PHP's default session module makes: random, so no two
/// requests, restarts or deckies ever hand out the same one (a sequence derived from the
/// seed would start over identically after every restart).
fn session_id(state: &State, peer: SocketAddr) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 13];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_ok() {
        return hex::encode(bytes);
    }
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
    state.persona.hex(
        &format!("http-session-{}-{now}-{n}", peer.ip().to_canonical()),
        26,
    )
}
