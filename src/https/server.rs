//! Serving an axum router over mutual TLS (or plain HTTP on loopback), with the peer's
//! certificate identity and address available to every handler.
//!
//! The agent and the swarm controller authorise by who is on the other end, so each
//! connection's verified [`PeerIdentity`] (from the rustls session, `None` on plain HTTP)
//! and TCP peer address are put into every request as a [`Peer`] extension: a handler
//! cannot forget to look, and cannot see an identity the handshake did not prove.
//!
//! Bounds, each against a peer that holds resources: the TLS handshake within
//! [`ServeOptions::handshake_timeout`], request headers within
//! [`ServeOptions::header_timeout`] (also the longest an idle keep-alive connection is
//! kept), at most [`ServeOptions::max_connections`] at once (further ones wait in the
//! kernel's backlog). At shutdown, connections finish their request in flight within
//! [`ServeOptions::grace`], then are cut.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::tls::{self, PeerIdentity};

/// Who sent a request: the verified certificate identity (TLS only) and the TCP address.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client certificate's CN and fingerprint; `None` on plain HTTP.
    pub identity: Option<PeerIdentity>,
    /// The TCP peer.
    pub addr: SocketAddr,
}

impl Peer {
    /// Whether the request came over loopback.
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
            || match self.addr.ip() {
                std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
                std::net::IpAddr::V4(_) => false,
            }
    }
}

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time for a client to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for a request's headers to arrive, also on an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long requests in flight may finish after shutdown.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            max_connections: 4096,
            grace: Duration::from_secs(5),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`: over mutual TLS with `tls`, else plain.
///
/// With `tls`, the acceptor's own verifier decides which certificates may connect at all
/// (the decnet CA, [`tls::server_config`]); handlers decide what each identity may do.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: CancellationToken,
    opts: ServeOptions,
) {
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let tasks = TaskTracker::new();
    let opts = Arc::new(opts);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, opts, stop) = (app.clone(), tls.clone(), opts.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let accepted = tokio::time::timeout(
                        opts.handshake_timeout,
                        tls::accept(&acceptor, stream),
                    )
                    .await;
                    match accepted {
                        Ok(Ok((stream, identity))) => {
                            let peer = Peer {
                                identity: Some(identity),
                                addr,
                            };
                            connection(stream, peer, app, &opts, stop).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                }
                None => {
                    let peer = Peer {
                        identity: None,
                        addr,
                    };
                    connection(stream, peer, app, &opts, stop).await;
                }
            }
        });
    }
    tasks.close();
    if tokio::time::timeout(opts.grace + Duration::from_secs(1), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace");
    }
}

/// Serves one connection's requests, each carrying `peer`.
async fn connection<S>(
    stream: S,
    peer: Peer,
    app: Router,
    opts: &ServeOptions,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer.clone());
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer.addr));
            app.clone().oneshot(req)
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(opts.grace, conn).await;
        }
    }
}
