//! `decnet listener`: the master's syslog-over-TLS sink for worker forwarders.
//!
//! Shape: [`serve`] takes an already-bound `TcpListener`, a [`ListenerConfig`] and a
//! shutdown token; [`run`] binds `host:port` from the configuration and serves until
//! SIGINT/SIGTERM. Each accepted connection runs in its own task ([`conn`]).
//!
//! Who may send (spec README "Security", swarm #20): the TLS server demands a client
//! certificate chaining to the decnet CA; the certificate's CN is the provenance, and the
//! connection is kept only while the store's allow-list names that CN with exactly that
//! certificate fingerprint. The check runs at accept and again every
//! [`Settings::recheck`] (10 s by default, the spec allows 30 s) on live connections, so
//! removing a worker or changing its pin stops its lines without a restart. The HOSTNAME
//! inside a line is attacker-influenced and never used for provenance.
//!
//! What is stored: every line, parsed or not. A line that is not RFC 5424 is kept as an
//! event of type [`UNPARSED_EVENT`] holding the raw text (invalid UTF-8 decoded lossily),
//! so nothing a worker ships is dropped. With `raw_log` set, every received line is also
//! appended to that forensic file (at-least-once: a re-sent line appears again there).
//!
//! What is acknowledged: only what [`Writer::write`](crate::store::Writer::write) has
//! committed. If the store cannot commit (full disk, read-only database) the connection
//! is closed without an acknowledgement, and forwarders retry with backoff. After each
//! committed batch a `system.log` event goes on the bus, fire-and-forget.
//!
//! Bounds in time and bytes (every default in [`Settings`]):
//! - Places: [`Settings::max_unauthenticated`] connections (64) may be between accept and
//!   their first valid frame, each for at most [`Settings::auth_timeout`] (10 s); beyond
//!   that a newcomer evicts the oldest silent one ([`admission`]). Authenticated workers
//!   have their own [`Settings::max_workers`] places (256), so a flood of unauthenticated
//!   connections never keeps an enrolled worker out.
//! - Reads: a frame cap ([`Settings::max_frame`]), a deadline for finishing a started
//!   frame ([`Settings::frame_timeout`]) and an idle limit.
//! - Writes: every reply must be written within [`Settings::write_timeout`] (10 s) and at
//!   most [`Settings::max_reply_bytes`] may wait; a peer that stops reading is dropped
//!   and its place freed. Writes never block the allow-list re-check ([`link`]). The
//!   kernel's send buffer is fixed at [`Settings::send_buffer`] (64 KiB).
//! - Memory: each line is parsed at once into a row of its connection's batch (the
//!   parsed event is dropped), and rows are counted in the bytes they really take (two
//!   to three times their line, more for lines full of escapes). Per connection at most
//!   [`Settings::max_pending`] lines and [`Settings::max_pending_bytes`] of rows
//!   accumulate while its previous batch commits, and all connections together hold at
//!   most [`Settings::max_buffered_bytes`] of rows in pending and committing batches;
//!   then reading pauses and TCP pushes back.
//! - Shutdown: connections get [`Settings::shutdown_grace`] (5 s) to commit and
//!   acknowledge what they hold, then they are cut; with the last commit the listener
//!   is gone within 10 s even with stuck peers.
//!
//! Plain TCP without TLS ([`ListenerConfig::tls`] `None`) exists only for interop
//! tests with rsyslog and is refused on anything but loopback by the CLI.
mod admission;
mod conn;
mod gate;
mod link;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::Bus;
use crate::store::{self, Store};

/// Event type given to lines that are not RFC 5424; the line is kept as `raw_line`.
pub const UNPARSED_EVENT: &str = "unparsed";

/// Why the listener cannot run.
#[derive(Debug, Error)]
pub enum Error {
    /// The store cannot be opened or its writer started.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The forensic file cannot be opened.
    #[error("{path}: cannot open the raw log: {source}")]
    RawLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Binding the port or installing signal handlers failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
}

/// Tunables; the defaults are what `decnet listener` uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Authenticated worker connections served at once (256); one more is refused and
    /// retries with backoff.
    pub max_workers: usize,
    /// Connections not yet past their first valid frame at once (64); a newcomer beyond
    /// it evicts the oldest silent one.
    pub max_unauthenticated: usize,
    /// Time from accept to the first valid frame, TLS handshake included (10 s).
    pub auth_timeout: Duration,
    /// Time a peer has to finish a frame it started (10 s).
    pub frame_timeout: Duration,
    /// Time a connection may stay silent (120 s; forwarders ping every 30 s when idle).
    pub idle_timeout: Duration,
    /// Time a reply may take to be written before the peer counts as not reading (10 s).
    pub write_timeout: Duration,
    /// How often live connections are checked against the allow-list again (10 s).
    pub recheck: Duration,
    /// Largest frame payload (64 KiB).
    pub max_frame: usize,
    /// Lines one connection may buffer while its previous batch commits (8,192).
    pub max_pending: usize,
    /// Bytes of rows one connection may buffer while its previous batch commits (4 MiB).
    pub max_pending_bytes: usize,
    /// Bytes of rows all connections together may hold, pending or committing (32 MiB).
    pub max_buffered_bytes: usize,
    /// Reply bytes that may wait for a peer to read them (256 KiB).
    pub max_reply_bytes: usize,
    /// Kernel send buffer of each connection (`SO_SNDBUF`, 64 KiB): replies are small
    /// ACKs, and a fixed size stops autotuning from parking megabytes per idle reader.
    pub send_buffer: usize,
    /// Time connections get after shutdown to commit and acknowledge (5 s).
    pub shutdown_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_workers: 256,
            max_unauthenticated: 64,
            auth_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(10),
            recheck: Duration::from_secs(10),
            max_frame: crate::syslog::DEFAULT_MAX_FRAME,
            max_pending: 8192,
            max_pending_bytes: 4 * 1024 * 1024,
            max_buffered_bytes: 32 * 1024 * 1024,
            max_reply_bytes: 256 * 1024,
            send_buffer: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Everything [`serve`] needs besides the socket.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The master's store (events, watermarks, allow-list).
    pub store: Store,
    /// The mTLS server configuration; `None` serves plain TCP (interop tests only).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Provenance of plain-TCP peers (there is no certificate to take it from).
    pub plain_worker: String,
    /// Optional forensic file every received line is appended to.
    pub raw_log: Option<PathBuf>,
    /// Where `system.log` is published after each commit.
    pub bus: Arc<dyn Bus>,
    /// Bounds and timers.
    pub settings: Settings,
}

/// The append-only forensic file, shared by every connection.
#[derive(Debug)]
pub(crate) struct RawLog(Mutex<BufWriter<File>>);

impl RawLog {
    fn open(path: &Path) -> Result<Self, Error> {
        let err = |source| Error::RawLog {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(Self(Mutex::new(BufWriter::new(file))))
    }

    /// Appends `lines`, one per line, and flushes; failures are logged, never fatal.
    pub(crate) fn append<'a>(&self, lines: impl Iterator<Item = &'a [u8]>) {
        use std::io::Write;
        let Ok(mut out) = self.0.lock() else {
            return;
        };
        let result = lines
            .into_iter()
            .try_for_each(|line| out.write_all(line).and_then(|()| out.write_all(b"\n")))
            .and_then(|()| out.flush());
        if let Err(err) = result {
            tracing::warn!("raw log write failed: {err}");
        }
    }
}

/// State shared by the connection tasks.
struct Shared {
    config: ListenerConfig,
    acceptor: Option<TlsAcceptor>,
    gate: gate::Gate,
    writer: store::Writer,
    raw: Option<RawLog>,
    /// Places of the connections that have not authenticated yet.
    doorway: Arc<admission::Doorway>,
    /// Places of authenticated workers.
    workers: Arc<Semaphore>,
    /// Line bytes buffered by every connection together.
    budget: admission::Budget,
}

/// Serves `listener` until `shutdown` is cancelled, then drains connections for
/// [`Settings::shutdown_grace`] and cuts whatever is still open.
pub async fn serve(
    listener: TcpListener,
    config: ListenerConfig,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (writer, writer_task) = config.store.spawn_writer()?;
    let raw = config.raw_log.as_deref().map(RawLog::open).transpose()?;
    let settings = config.settings.clone();
    let shared = Arc::new(Shared {
        acceptor: config.tls.clone().map(TlsAcceptor::from),
        gate: gate::Gate::new(&config.store)?,
        writer,
        raw,
        doorway: admission::Doorway::new(settings.max_unauthenticated),
        workers: Arc::new(Semaphore::new(settings.max_workers.max(1))),
        budget: admission::Budget::new(settings.max_buffered_bytes, settings.max_frame),
        config,
    });
    let tracker = TaskTracker::new();
    // Cancelled once the grace period is over: drops every connection still open.
    let cut = CancellationToken::new();
    loop {
        // Never waits for a place: the doorway makes room, so the accept queue of the
        // kernel cannot fill up with connections an enrolled worker would wait behind.
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let ticket = shared.doorway.admit();
        let shared = shared.clone();
        let stop = shutdown.clone();
        let cut = cut.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = conn::handle(shared, tcp, peer, ticket, stop) => {}
                () = cut.cancelled() => {}
            }
        });
    }
    tracker.close();
    if tokio::time::timeout(settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after the grace period; cutting them"
        );
        cut.cancel();
        tracker.wait().await;
    }
    drop(shared);
    let _ = writer_task.await;
    Ok(())
}

/// Binds `addr` and serves until SIGINT or SIGTERM.
pub async fn run(addr: SocketAddr, config: ListenerConfig) -> Result<(), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: format!("cannot listen on {addr}"),
        source,
    })?;
    let shutdown = crate::signals::shutdown_on_signals().map_err(|source| Error::Io {
        what: "installing the SIGTERM handler".into(),
        source,
    })?;
    let mode = if config.tls.is_some() {
        "mTLS"
    } else {
        "plain TCP (interop test mode)"
    };
    tracing::info!(
        %addr,
        mode,
        db = %config.store.path().display(),
        "log listener ready"
    );
    serve(listener, config, shutdown).await
}
