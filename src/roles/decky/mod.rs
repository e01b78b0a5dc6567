//! `decnet decky`: what runs inside a decky's containers.
//!
//! The base container runs `decky --idle`: PID 1 that holds the network namespace (IP, MAC,
//! sysctls) and does nothing else until told to stop. Each service container runs
//! `decky --service <svc>` in that namespace and writes one RFC 5424 line per event on
//! stdout, which the agent's collector follows through the Docker API.
//!
//! # Layout
//! - [`persona`]: the decky's identity (distro, hostname, versions) and the seed-keyed
//!   derivation of every detail that must differ between deckies.
//! - [`events`]: the event emitter and the universal credential shape.
//! - [`conn`]: accept loop, concurrency cap, idle and total timeouts, capped lines.
//! - one module per emulated service ([`ftp`], [`http`] for http and https, [`mysql`],
//!   [`postgres`], [`redis`], [`smtp`] for smtp and smtp_relay, [`ssh`], [`telnet`]); every
//!   other catalogue service is still the connect-logging stand-in of [`stub`].
//! - [`quarantine`]: names and writes of captured files, shared by ftp, smtp and ssh.
//! - [`shell`]: the emulated bash that ssh and telnet sessions get after a login.
//!
//! The runtime is single-threaded on purpose: a fleet runs hundreds of these processes
//! and each must stay within a few MiB of RSS.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, Proto};

pub mod conn;
pub mod events;
pub mod ftp;
pub mod http;
pub mod mysql;
pub mod persona;
pub mod postgres;
pub mod quarantine;
pub mod redis;
pub mod seedrng;
pub mod shell;
pub mod smtp;
pub mod ssh;
mod stub;
pub mod telnet;

pub use events::{Credential, Emitter};
pub use persona::Persona;

/// Events buffered between the listeners and stdout; a slow reader back-pressures accept.
const EVENT_QUEUE: usize = 1024;
/// Bytes of event lines gathered into one write to stdout.
const WRITE_BATCH: usize = 64 * 1024;

/// Whether `name` has a protocol emulation here (the catalogue's `stub` flag says the
/// same, and a test keeps the two in step); every other service is a stand-in.
pub fn is_emulated(name: &str) -> bool {
    matches!(
        name,
        "ftp"
            | "http"
            | "https"
            | "mysql"
            | "postgres"
            | "redis"
            | "smtp"
            | "smtp_relay"
            | "ssh"
            | "telnet"
    )
}

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
    /// The seed given is not 64 hex digits.
    #[error("the decky seed must be 64 hex digits (DECNET_DECKY_SEED or --seed)")]
    Seed,
    /// A service setting could not be used (a TLS key that does not parse, …).
    #[error("{service}: {reason}")]
    Setting {
        /// The service.
        service: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// What a decky process does.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Hold the network namespace until stopped.
    Idle,
    /// Serve one catalogue service on the given ports (the catalogue's when empty).
    Service(ServiceSpec),
}

/// One service to run, with everything it needs to know about its decky.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Service slug.
    pub name: String,
    /// Ports to serve.
    pub ports: Vec<(Proto, u16)>,
    /// The decky's persona.
    pub persona: Arc<Persona>,
    /// The service's persona settings (engine.md §2.2) by variable name.
    pub settings: BTreeMap<String, String>,
}

/// The ports `name` serves by default, from the catalogue.
pub fn default_ports(name: &str) -> Result<Vec<(Proto, u16)>, Error> {
    let svc = catalog::service(name)?;
    let tcp = svc.tcp_ports.iter().map(|p| (Proto::Tcp, *p));
    let udp = svc.udp_ports.iter().map(|p| (Proto::Udp, *p));
    Ok(tcp.chain(udp).collect())
}

/// The environment variables service `name` reads its settings from: its persona keys'
/// and the ones the emulation adds.
pub fn setting_names(name: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = catalog::service(name)
        .map(|s| s.persona.iter().filter_map(|k| k.env).collect())
        .unwrap_or_default();
    names.extend(match name {
        "redis" => redis::EXTRA_SETTINGS,
        "ftp" => ftp::EXTRA_SETTINGS,
        "smtp" | "smtp_relay" => smtp::EXTRA_SETTINGS,
        "postgres" => postgres::EXTRA_SETTINGS,
        "ssh" => ssh::EXTRA_SETTINGS,
        _ => &[],
    });
    names
}

/// Runs a decky process until SIGTERM or SIGINT.
pub fn run(mode: Mode) -> Result<(), Error> {
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
            Mode::Service(spec) => {
                let sockets = bind(&spec.ports).await?;
                let (tx, mut rx) = mpsc::channel::<String>(EVENT_QUEUE);
                let writer = tokio::spawn(async move {
                    // Tokio's stdout hands every write to its blocking pool, a thread
                    // hop each: lines queued meanwhile go out in one write, so a busy
                    // service pays one hop per batch, not per event.
                    let mut out = tokio::io::stdout();
                    let mut batch = Vec::new();
                    while let Some(line) = rx.recv().await {
                        batch.extend_from_slice(line.as_bytes());
                        while batch.len() < WRITE_BATCH {
                            match rx.try_recv() {
                                Ok(more) => batch.extend_from_slice(more.as_bytes()),
                                Err(_) => break,
                            }
                        }
                        let written = out.write_all(&batch).await;
                        batch.clear();
                        if written.and(out.flush().await).is_err() {
                            break;
                        }
                    }
                });
                let served = serve(sockets, spec, tx, shutdown).await;
                let _ = writer.await;
                served
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

/// Serves `sockets` as `spec`'s service, sending each event line to `events`.
///
/// Returns when `shutdown` fires. The `startup` line comes first and names the ports
/// really bound (`ports="tcp/8080"`), so an operator can tell a running service from a
/// crashed one and a test that bound port 0 learns its port.
pub async fn serve(
    sockets: Sockets,
    spec: ServiceSpec,
    events: mpsc::Sender<String>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if let Some(why) = catalog::service_conflict(spec.persona.os.name, &spec.name) {
        return Err(Error::Setting {
            service: spec.name.clone(),
            reason: format!(
                "cannot pass for a {} host ({why}); run it on a decky with a Linux OS profile",
                spec.persona.os.name
            ),
        });
    }
    let emitter = Emitter::new(&spec.persona.node, &spec.name, events);
    let bound: Vec<String> = sockets
        .tcp
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| format!("tcp/{}", a.port()))
        .chain(
            sockets
                .udp
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .map(|a| format!("udp/{}", a.port())),
        )
        .collect();
    let handler = match spec.name.as_str() {
        "http" | "https" => Some(http::handler(&spec, emitter.clone())?),
        "redis" => Some(redis::handler(&spec, emitter.clone())),
        "ftp" => Some(ftp::handler(&spec, emitter.clone())),
        "smtp" | "smtp_relay" => Some(smtp::handler(&spec, emitter.clone())),
        "mysql" => Some(mysql::handler(&spec, emitter.clone())),
        "postgres" => Some(postgres::handler(&spec, emitter.clone())),
        "ssh" => Some(ssh::handler(&spec, emitter.clone())?),
        "telnet" => Some(telnet::handler(&spec, emitter.clone())),
        other => {
            debug_assert!(!is_emulated(other));
            None
        }
    };
    let kind = if handler.is_some() {
        "emulated"
    } else {
        "stand-in"
    };
    let startup = emitter
        .event("startup")
        .param("ports", bound.join(","))
        .msg(format!("{} {kind} listening", spec.name));
    emitter.emit(startup).await;
    let mut tasks = tokio::task::JoinSet::new();
    match handler {
        Some((handler, limits)) => {
            for listener in sockets.tcp {
                tasks.spawn(conn::accept_loop(
                    listener,
                    limits,
                    handler.clone(),
                    shutdown.clone(),
                ));
            }
        }
        None => stub::spawn(&mut tasks, sockets, &emitter),
    }
    drop(emitter);
    shutdown.cancelled().await;
    // Emulated services drain their open connections (bounded in `accept_loop`);
    // stand-ins have nothing to drain and are stopped.
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), drain).await;
    tasks.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_marks_exactly_the_emulated_services() {
        for s in crate::catalog::SERVICES {
            assert_eq!(super::is_emulated(s.name), !s.stub, "{}", s.name);
        }
    }
}
