//! A small HTTPS client over decnet's mutual TLS: JSON requests to one peer, one
//! keep-alive connection, every phase under a timeout, every answer bounded.
//!
//! The master drives agents and a worker sends heartbeats with this. The TLS
//! configuration ([`crate::tls::client_config`]) carries the identity and the pin, so a
//! wrong peer fails in the handshake of the very connection that would carry the request
//! (no separate pin probe, no window between check and use).
//!
//! One connection is kept and reused while the server keeps it open; a request that finds
//! it closed dials again. Requests through one [`Client`] are serialised (a heartbeat
//! loop or one operator action at a time; parallel work uses one client per peer).
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::tls;

/// Largest answer body read from a peer.
pub const MAX_RESPONSE: usize = 8 * 1024 * 1024;

/// How long each phase of a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect and TLS handshake, together.
    pub connect: Duration,
    /// Sending the request.
    pub write: Duration,
    /// Waiting for and reading the whole answer.
    pub read: Duration,
}

impl Timeouts {
    /// Quick control calls (swarm.md §7: connect 5 s, read 15 s, write 5 s).
    pub const CONTROL: Self = Self {
        connect: Duration::from_secs(5),
        write: Duration::from_secs(5),
        read: Duration::from_secs(15),
    };
    /// Heartbeats and lifecycle pushes (connect 5 s, read 10 s, write 5 s).
    pub const HEARTBEAT: Self = Self {
        connect: Duration::from_secs(5),
        write: Duration::from_secs(5),
        read: Duration::from_secs(10),
    };
    /// Long synchronous work on the peer, such as a whole-host teardown (connect 10 s,
    /// read 300 s, write 30 s).
    pub const LONG: Self = Self {
        connect: Duration::from_secs(10),
        write: Duration::from_secs(30),
        read: Duration::from_secs(300),
    };
}

/// Why a request got no answer.
#[derive(Debug, Error)]
pub enum Error {
    /// The peer could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed: unknown CA, wrong identity, pin mismatch, ….
    #[error("{addr}: {source}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why.
        source: tls::Error,
    },
    /// A phase took longer than its timeout.
    #[error("{addr}: no answer within {after:?} ({phase})")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// Which phase.
        phase: &'static str,
        /// Its timeout.
        after: Duration,
    },
    /// The HTTP exchange failed.
    #[error("{addr}: {reason}")]
    Http {
        /// `host:port`.
        addr: String,
        /// What happened.
        reason: String,
    },
}

impl Error {
    /// Whether the peer presented a certificate other than the pinned or expected one.
    pub fn is_wrong_peer(&self) -> bool {
        matches!(
            self,
            Error::Tls {
                source: tls::Error::PinMismatch(_) | tls::Error::WrongIdentity(_),
                ..
            }
        )
    }
}

/// An answer: status and (bounded) body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The `detail` of a `{"detail": …}` error body, else the body as text (clipped).
    pub fn detail(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("detail").map(|d| match d {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
            .unwrap_or_else(|| {
                crate::text::cap_str(&String::from_utf8_lossy(&self.body), 200).to_owned()
            })
    }
}

/// Runs the HTTP/1.1 client handshake over `io` and drives the connection in a task.
async fn handshake<S>(io: S, addr: &str) -> Result<SendRequest<Full<Bytes>>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Error::Http {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// A client of one HTTPS peer (or, for an operator on loopback, one plain HTTP peer).
pub struct Client {
    config: Option<Arc<ClientConfig>>,
    host: String,
    port: u16,
    bearer: Option<String>,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `host:port` with TLS `config` (identity, trust, pin).
    pub fn new(config: Arc<ClientConfig>, host: impl Into<String>, port: u16) -> Self {
        Self {
            config: Some(config),
            host: host.into(),
            port,
            bearer: None,
            conn: Mutex::new(None),
        }
    }

    /// A plain-HTTP client of `host:port` (the controller on loopback).
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            config: None,
            host: host.into(),
            port,
            bearer: None,
            conn: Mutex::new(None),
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    #[must_use]
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// `host:port`, as errors name it.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    async fn dial(&self, t: Timeouts) -> Result<SendRequest<Full<Bytes>>, Error> {
        let addr = self.addr();
        let work = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|source| Error::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let Some(config) = self.config.clone() else {
                return handshake(tcp, &addr).await;
            };
            let stream = tls::connect(config, &self.host, tcp)
                .await
                .map_err(|source| Error::Tls {
                    addr: addr.clone(),
                    source,
                })?;
            handshake(stream, &addr).await
        };
        tokio::time::timeout(t.connect, work)
            .await
            .map_err(|_| Error::Timeout {
                addr: addr.clone(),
                phase: "connect",
                after: t.connect,
            })?
    }

    /// Sends `method path` with an optional JSON `body` and reads the answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        t: Timeouts,
    ) -> Result<Response, Error> {
        let addr = self.addr();
        let mut slot = self.conn.lock().await;
        let reusable = match slot.as_mut() {
            Some(s) => !s.is_closed() && s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *slot = None;
            *slot = Some(self.dial(t).await?);
        }
        let Some(send) = slot.as_mut() else {
            return Err(Error::Http {
                addr,
                reason: "no connection".into(),
            });
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.as_str());
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Http {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let outcome = tokio::time::timeout(t.write + t.read, async {
            let resp = send.send_request(req).await.map_err(|e| Error::Http {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| Error::Http {
                    addr: addr.clone(),
                    reason: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok(Response { status, body })
        })
        .await;
        match outcome {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                *slot = None;
                Err(e)
            }
            Err(_) => {
                *slot = None;
                Err(Error::Timeout {
                    addr,
                    phase: "answer",
                    after: t.write + t.read,
                })
            }
        }
    }

    /// Sends `value` as JSON to `method path`.
    pub async fn json<T: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        value: &T,
        t: Timeouts,
    ) -> Result<Response, Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::Http {
            addr: self.addr(),
            reason: e.to_string(),
        })?;
        self.send(method, path, Some(body), t).await
    }

    /// Drops the kept connection (the next request dials anew).
    pub async fn reset(&self) {
        *self.conn.lock().await = None;
    }
}
