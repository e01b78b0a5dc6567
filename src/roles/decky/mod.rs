//! `decnet decky`: what runs inside a decky's containers.
//!
//! The base container runs `decky --idle`: PID 1 that holds the network namespace (IP, MAC,
//! sysctls) and does nothing else until told to stop. Each service container runs
//! `decky --service <svc>` in that namespace and writes one RFC 5424 line per event on
//! stdout, which the agent's collector follows through the Docker API.
//!
//! Services are still the connect-logging stand-ins of the catalogue (`stub`): they accept
//! on the service's ports, log `connect` with the attacker's address, and close. The
//! protocol honeypots replace the per-connection handler later; the ports, the event line
//! format and the shutdown behaviour stay.
//!
//! The runtime is single-threaded on purpose: a fleet runs hundreds of these processes
//! and each must stay within a few MiB of RSS.
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, Proto};
use crate::syslog::Message;

/// Events buffered between the listeners and stdout; a slow reader back-pressures accept.
const EVENT_QUEUE: usize = 1024;
/// Largest datagram a UDP stand-in reads; the rest is truncated by the kernel.
const MAX_DATAGRAM: usize = 2048;

/// Why a decky process could not run.
#[derive(Debug, Error)]
pub enum Error {
    /// The service is not in the catalogue.
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    /// A port could not be bound (in use, or no permission for a port below 1024).
    #[error("cannot listen on {proto}/{port}: {source}")]
    Bind {
        /// Transport.
        proto: Proto,
        /// Port number.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// Setting up the runtime or signal handling failed.
    #[error("decky runtime: {0}")]
    Runtime(std::io::Error),
}

/// What a decky process does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Hold the network namespace until stopped.
    Idle,
    /// Serve one catalogue service on the given ports (the catalogue's when empty).
    Service {
        /// Service slug.
        name: String,
        /// Ports to serve.
        ports: Vec<(Proto, u16)>,
    },
}

/// The ports `name` serves by default, from the catalogue.
pub fn default_ports(name: &str) -> Result<Vec<(Proto, u16)>, Error> {
    let svc = catalog::service(name)?;
    let tcp = svc.tcp_ports.iter().map(|p| (Proto::Tcp, *p));
    let udp = svc.udp_ports.iter().map(|p| (Proto::Udp, *p));
    Ok(tcp.chain(udp).collect())
}

/// Runs a decky process until SIGTERM or SIGINT; `node` is the decky's name (`NODE_NAME`).
pub fn run(mode: Mode, node: String) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(async move {
        let shutdown = crate::signals::shutdown_on_signals().map_err(Error::Runtime)?;
        match mode {
            Mode::Idle => {
                shutdown.cancelled().await;
                Ok(())
            }
            Mode::Service { name, ports } => {
                let sockets = bind(&ports).await?;
                let (tx, mut rx) = mpsc::channel::<String>(EVENT_QUEUE);
                let writer = tokio::spawn(async move {
                    let mut out = tokio::io::stdout();
                    while let Some(line) = rx.recv().await {
                        let written = out.write_all(line.as_bytes()).await;
                        if written.and(out.flush().await).is_err() {
                            break;
                        }
                    }
                });
                serve(sockets, Arc::from(node), Arc::from(name), tx, shutdown).await;
                let _ = writer.await;
                Ok(())
            }
        }
    })
}

/// Sockets a service listens on, bound before serving so tests can use port 0.
#[derive(Debug, Default)]
pub struct Sockets {
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
}

/// Binds every port on all addresses of the decky's namespace.
pub async fn bind(ports: &[(Proto, u16)]) -> Result<Sockets, Error> {
    let mut sockets = Sockets::default();
    for &(proto, port) in ports {
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        let err = |source| Error::Bind {
            proto,
            port,
            source,
        };
        match proto {
            Proto::Tcp => sockets
                .tcp
                .push(TcpListener::bind(addr).await.map_err(err)?),
            Proto::Udp => sockets.udp.push(UdpSocket::bind(addr).await.map_err(err)?),
        }
    }
    Ok(sockets)
}

/// Serves `sockets` as `service` of decky `node`, sending each event line to `events`.
///
/// Returns when `shutdown` fires; the `startup` line is sent first so operators can tell
/// a running stand-in from a crashed one.
pub async fn serve(
    sockets: Sockets,
    node: Arc<str>,
    service: Arc<str>,
    events: mpsc::Sender<String>,
    shutdown: CancellationToken,
) {
    let startup = Message::new(OffsetDateTime::now_utc(), &*node, &*service, "startup")
        .msg(format!("{service} stand-in listening"));
    if events.send(format!("{startup}\n")).await.is_err() {
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for listener in sockets.tcp {
        tasks.spawn(accept_loop(
            listener,
            node.clone(),
            service.clone(),
            events.clone(),
        ));
    }
    for socket in sockets.udp {
        tasks.spawn(datagram_loop(
            socket,
            node.clone(),
            service.clone(),
            events.clone(),
        ));
    }
    drop(events);
    shutdown.cancelled().await;
    tasks.shutdown().await;
}

fn connect_line(
    node: &str,
    service: &str,
    peer: SocketAddr,
    local_port: u16,
    proto: Proto,
) -> String {
    let message = Message::new(OffsetDateTime::now_utc(), node, service, "connect")
        .param("src_ip", peer.ip().to_string())
        .param("src_port", peer.port().to_string())
        .param("dst_port", local_port.to_string())
        .param("proto", proto.to_string());
    format!("{message}\n")
}

async fn accept_loop(
    listener: TcpListener,
    node: Arc<str>,
    service: Arc<str>,
    events: mpsc::Sender<String>,
) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let line = connect_line(&node, &service, peer, port, Proto::Tcp);
                // The stand-in has nothing to say: closing is its whole protocol.
                drop(stream);
                if events.send(line).await.is_err() {
                    return;
                }
            }
            // Out of descriptors or a reset before accept: keep serving.
            Err(e) => {
                tracing::warn!(error = %e, port, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn datagram_loop(
    socket: UdpSocket,
    node: Arc<str>,
    service: Arc<str>,
    events: mpsc::Sender<String>,
) {
    let port = socket.local_addr().map_or(0, |a| a.port());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if let Ok((_, peer)) = socket.recv_from(&mut buf).await {
            let line = connect_line(&node, &service, peer, port, Proto::Udp);
            if events.send(line).await.is_err() {
                return;
            }
        }
    }
}
