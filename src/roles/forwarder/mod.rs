//! `decnet forwarder`: ships a worker's log files to the master's listener.
//!
//! [`run`] loops until the shutdown token fires: connect (TCP, then TLS with the worker
//! bundle re-read from the agent directory on every attempt, so a re-issued certificate
//! is picked up without a restart), pump lines, and on any failure wait with a backoff
//! of 1 s doubling to 30 s. The forwarder is a client only, so unlike the servers it
//! takes no listener; tests point it at a listener on port 0.
//!
//! **Who the master is.** With TLS the listener must present the master identity: a
//! certificate from the decnet CA with CN `decnet-master` ([`tls::Error::WrongIdentity`]
//! otherwise), and, whenever a fingerprint is known, exactly the pinned one
//! ([`tls::Error::PinMismatch`]). The pin is the first of `--master-fingerprint`,
//! `DECNET_MASTER_FINGERPRINT` and the bundle's `master.fingerprint`
//! ([`crate::config::master_pin`]); the bundle's file is re-read on every attempt with the
//! certificate. Without any pin only the identity is checked, and the connection log says
//! so. Either refusal happens in the handshake: nothing is sent, and the attempt is retried
//! with the usual backoff. This holds in plain mode over TLS too: whoever receives the
//! worker's logs over TLS holds the master identity.
//!
//! Files are followed by [`tail`] (rotation, truncation, positions). Per connection:
//!
//! - **decnet mode** (default): HELLO declaring the sources, WELCOME with the master's
//!   committed watermarks (lines at or below them are not sent again), then `D` frames
//!   in batches of at most [`Settings::batch_lines`], with at most
//!   [`Settings::window_lines`] / [`Settings::window_bytes`] unacknowledged. A position
//!   is persisted only when the master acknowledges that its lines are committed
//!   (see [`crate::logship`] for why that is exactly-once). Unacknowledged lines are kept
//!   and re-sent after a reconnect. No acknowledgement for [`Settings::ack_timeout`]
//!   while lines wait means a dead link: reconnect. Watermarks and acknowledgements are
//!   checked, never trusted ([`ledger`]): one that claims a line this connection did not
//!   send (or, for a watermark, that the file does not hold) is a protocol violation,
//!   logged with the peer's CN and fingerprint; the connection is dropped and no
//!   position moves because of it.
//! - Every write to the master (frames, close_notify) must finish within
//!   [`Settings::write_timeout`]: a master that stops reading is a dead link too, so the
//!   forwarder reconnects. On shutdown a connection gets [`Settings::shutdown_grace`]
//!   to close cleanly and is then dropped, so a stuck master cannot hold the forwarder.
//! - **plain mode** (`--plain`, rsyslog and other RFC 5425 receivers): bare octet-counted
//!   lines, and the position advances once a batch is flushed to the socket
//!   (advance-after-drain, as the original): at-least-once at best, since bytes in
//!   kernel buffers die with the connection.
//!
//! `--insecure-tcp` drops TLS altogether; it exists for interop tests with receivers
//! that have no TLS module, never for production links.
mod ledger;
mod link;
mod tail;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Encoder, FramedRead};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::logship::{self, Downstream, Hello, Upstream};
use crate::pki::{self, Bundle, Fingerprint, MASTER_CN};
use crate::store::{self, Offsets};
use crate::syslog::OctetCodec;
use crate::tls::{self, ClientOptions};
use ledger::Ledger;
use link::Link;

/// Why the forwarder stopped, or why one connection ended.
#[derive(Debug, Error)]
pub enum Error {
    /// The position database failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The worker bundle cannot be loaded.
    #[error(transparent)]
    Pki(#[from] pki::Error),
    /// TLS set-up or handshake failed.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// The connection failed.
    #[error("connection to the master failed: {0}")]
    Io(#[from] std::io::Error),
    /// The listener said something this forwarder cannot accept.
    #[error(transparent)]
    Protocol(#[from] logship::ProtocolError),
    /// A frame could not be read.
    #[error(transparent)]
    Codec(#[from] crate::syslog::CodecError),
    /// The listener refused this worker.
    #[error("the master refused the connection: {0}")]
    Refused(String),
    /// The listener claimed lines committed that this forwarder never sent, or that its
    /// file does not hold: nothing is skipped because of it.
    #[error(
        "protocol violation by the master (CN {cn}, fingerprint {fingerprint}): {reason}; \
         disconnected, no line marked shipped"
    )]
    Violation {
        /// The peer certificate's CN (`-` without TLS).
        cn: String,
        /// The peer certificate's fingerprint (`-` without TLS).
        fingerprint: String,
        /// What it claimed.
        reason: String,
    },
    /// The listener went quiet.
    #[error("no answer from the master for {0:?}")]
    Timeout(Duration),
    /// The listener stopped reading what the forwarder sends.
    #[error("the master stopped reading: a write did not finish within {0:?}")]
    WriteTimeout(Duration),
}

/// Tunables; the defaults are swarm.md §8.2's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lines per batch.
    pub batch_lines: usize,
    /// How far the file may be ahead of the forwarder before the oldest bytes are dropped.
    pub max_lag: u64,
    /// Lines sent and not yet acknowledged, at most.
    pub window_lines: usize,
    /// Bytes sent and not yet acknowledged, at most.
    pub window_bytes: usize,
    /// How often files are checked when idle (and for rotation).
    pub poll: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Time allowed for TCP connect, TLS handshake and WELCOME.
    pub connect_timeout: Duration,
    /// Silence from the master, with lines waiting, that counts as a dead link.
    pub ack_timeout: Duration,
    /// Time one write of queued frames may take before the master counts as not reading.
    pub write_timeout: Duration,
    /// Time a connection gets after shutdown to close cleanly before it is dropped.
    pub shutdown_grace: Duration,
    /// Keep-alive period of an idle decnet-mode connection.
    pub ping: Duration,
    /// Largest frame payload.
    pub max_frame: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_lines: 500,
            max_lag: 128 * 1024 * 1024,
            // Enough for the listener's pipeline (one batch committing, the next one
            // filling) at full speed; every unacknowledged line is held in memory, and
            // 20,000 of them were a quarter of the forwarder's RSS.
            window_lines: 10_000,
            window_bytes: 16 * 1024 * 1024,
            poll: Duration::from_millis(500),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            ping: Duration::from_secs(30),
            max_frame: crate::syslog::DEFAULT_MAX_FRAME,
        }
    }
}

/// What the forwarder ships, where to, and as whom.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Files to follow.
    pub files: Vec<PathBuf>,
    /// Master host name or address.
    pub master_host: String,
    /// Listener port.
    pub master_port: u16,
    /// Directory of the worker bundle (`ca.crt`, `worker.crt`, `worker.key`).
    pub agent_dir: PathBuf,
    /// The position database.
    pub state_db: PathBuf,
    /// Speak bare RFC 5425 (no envelope, advance-after-drain).
    pub plain: bool,
    /// Use TLS (off only for interop tests).
    pub tls: bool,
    /// The master identity's fingerprint from `--master-fingerprint`, if given.
    pub pin_flag: Option<Fingerprint>,
    /// The master identity's fingerprint from `DECNET_MASTER_FINGERPRINT`, if set.
    pub pin_env: Option<Fingerprint>,
    /// Check the master's name against its certificate too.
    pub verify_hostname: bool,
    /// Tunables.
    pub settings: Settings,
}

/// Ships until `shutdown` fires; returns early only if the position database fails.
pub async fn run(config: ForwarderConfig, shutdown: CancellationToken) -> Result<(), Error> {
    let s = &config.settings;
    let offsets = Offsets::open(&config.state_db)?;
    let mut tailer = tail::Tailer::open(
        &config.files,
        offsets,
        s.max_lag,
        logship::max_line(s.max_frame),
        s.poll,
    )?;
    let mut backoff = s.backoff_min;
    while !shutdown.is_cancelled() {
        let mut accepted = false;
        let link = async {
            match connect(&config).await {
                Ok((Transport::Tls(stream), link)) => {
                    pump(
                        stream,
                        &mut tailer,
                        &config,
                        &link,
                        &shutdown,
                        &mut accepted,
                    )
                    .await
                }
                Ok((Transport::Plain(stream), link)) => {
                    pump(
                        stream,
                        &mut tailer,
                        &config,
                        &link,
                        &shutdown,
                        &mut accepted,
                    )
                    .await
                }
                Err(err) => Err(err),
            }
        };
        // Unacknowledged lines stay in the tailer, so dropping a stuck link loses nothing.
        let outcome = tokio::select! {
            outcome = link => outcome,
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(s.shutdown_grace).await;
            } => Ok(()),
        };
        if accepted {
            backoff = s.backoff_min;
        }
        match outcome {
            Ok(()) => {}
            Err(Error::Store(err)) => return Err(Error::Store(err)),
            Err(err @ Error::Violation { .. }) => {
                tracing::error!(
                    master = %config.master_host,
                    port = config.master_port,
                    retry_in = ?backoff,
                    "{err}"
                );
            }
            Err(err) => {
                tracing::warn!(
                    master = %config.master_host,
                    port = config.master_port,
                    retry_in = ?backoff,
                    "{err}"
                );
            }
        }
        tailer.persist()?;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(s.backoff_max);
    }
    tailer.persist()?;
    Ok(())
}

enum Transport {
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

async fn connect(config: &ForwarderConfig) -> Result<(Transport, Link), Error> {
    let limit = config.settings.connect_timeout;
    let addr = (config.master_host.as_str(), config.master_port);
    let tcp = timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::Timeout(limit))??;
    tcp.set_nodelay(true)?;
    if !config.tls {
        let link = Link {
            peer: None,
            pin: None,
        };
        return Ok((Transport::Plain(tcp), link));
    }
    // Re-read on every attempt: a renewed certificate or pin takes effect without a restart.
    let bundle = Bundle::load(&config.agent_dir, "worker")?;
    let bundle_pin = pki::read_master_pin(&config.agent_dir)?;
    let pin = config::master_pin(
        config.pin_flag.as_ref(),
        config.pin_env.as_ref(),
        bundle_pin.as_ref(),
    );
    let client = tls::client_config(
        &bundle,
        &ClientOptions {
            identity: Some(MASTER_CN.to_owned()),
            pin: pin.as_ref().map(|(fp, _)| fp.clone()),
            verify_hostname: config.verify_hostname,
        },
    )?;
    let stream = timeout(limit, tls::connect(client, &config.master_host, tcp))
        .await
        .map_err(|_| Error::Timeout(limit))?
        .inspect_err(|err| {
            if let (tls::Error::PinMismatch(_), Some((_, origin))) = (err, &pin) {
                tracing::warn!(pin_from = %origin, "the master's certificate is not the pinned one");
            }
        })?;
    let link = Link {
        peer: Some(tls::peer_identity(stream.get_ref().1)?),
        pin,
    };
    Ok((Transport::Tls(Box::new(stream)), link))
}

/// Frames on their way to the master, written in one go.
struct Outbox {
    codec: OctetCodec,
    buf: BytesMut,
    payload: BytesMut,
    /// How long one flush may take.
    limit: Duration,
}

impl Outbox {
    fn push(&mut self, frame: impl FnOnce(&mut BytesMut)) -> Result<(), Error> {
        self.payload.clear();
        frame(&mut self.payload);
        self.codec.encode(&self.payload[..], &mut self.buf)?;
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, out: &mut W) -> Result<(), Error> {
        if !self.buf.is_empty() {
            timeout(self.limit, async {
                out.write_all(&self.buf).await?;
                out.flush().await
            })
            .await
            .map_err(|_| Error::WriteTimeout(self.limit))??;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Declares sources that have no index on this connection yet.
fn declare(
    tailer: &mut tail::Tailer,
    next_idx: &mut u32,
    outbox: &mut Outbox,
    ledger: &mut Ledger,
) -> Result<(), Error> {
    for stream in tailer.streams_mut() {
        if stream.idx.is_none() {
            stream.idx = Some(*next_idx);
            ledger.declare(*next_idx, true);
            let frame = Upstream::Source {
                idx: *next_idx,
                name: stream.source.clone(),
            };
            outbox.push(|b| frame.encode(b))?;
            *next_idx += 1;
        }
    }
    Ok(())
}

/// Serves one connection until shutdown (`Ok`) or failure; sets `accepted` once the
/// master has let us in (that resets the backoff).
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tailer: &mut tail::Tailer,
    config: &ForwarderConfig,
    link: &Link,
    shutdown: &CancellationToken,
    accepted: &mut bool,
) -> Result<(), Error> {
    let s = &config.settings;
    let max_line = logship::max_line(s.max_frame);
    let mut ledger = Ledger::default();
    let codec = OctetCodec::new(s.max_frame);
    let (rd, mut wr) = tokio::io::split(stream);
    let mut frames = FramedRead::new(rd, codec);
    let mut outbox = Outbox {
        codec,
        buf: BytesMut::new(),
        payload: BytesMut::new(),
        limit: s.write_timeout,
    };
    let mut next_idx = 0u32;
    if !config.plain {
        tailer.poll()?;
        let mut sources = Vec::new();
        for stream in tailer.streams_mut() {
            stream.idx = Some(next_idx);
            ledger.declare(next_idx, false);
            next_idx += 1;
            sources.push(stream.source.clone());
        }
        let hello = Upstream::Hello(Hello {
            version: logship::VERSION,
            sources,
            agent: crate::VERSION.to_owned(),
        });
        outbox.push(|b| hello.encode(b))?;
        outbox.flush(&mut wr).await?;
        let reply = timeout(s.connect_timeout, frames.next())
            .await
            .map_err(|_| Error::Timeout(s.connect_timeout))?;
        let Some(reply) = reply.transpose()? else {
            return Err(Error::Refused("connection closed before WELCOME".into()));
        };
        match Downstream::decode(&reply)? {
            Downstream::Welcome(welcome) => {
                if welcome.watermarks.len() != next_idx as usize {
                    return Err(link.violation(format!(
                        "WELCOME carries {} watermarks for {next_idx} declared sources",
                        welcome.watermarks.len()
                    )));
                }
                // Every claim is checked before any is applied: a lie moves nothing.
                for (stream, &mark) in tailer.streams_mut().zip(&welcome.watermarks) {
                    if !stream.holds(mark, max_line) {
                        return Err(link.violation(format!(
                            "WELCOME claims line {mark} of {} is committed, but its file holds fewer lines",
                            stream.source
                        )));
                    }
                }
                for (idx, (stream, mark)) in
                    (0u32..).zip(tailer.streams_mut().zip(welcome.watermarks))
                {
                    stream.ack(mark);
                    ledger.accept_mark(idx, mark);
                }
            }
            Downstream::Refused(reason) => return Err(Error::Refused(reason)),
            Downstream::Ack { .. } => {
                return Err(Error::Refused("acknowledgement before WELCOME".into()));
            }
        }
        tailer.persist()?;
        *accepted = true;
        link.log_connected(&config.master_host);
        // Lines read before the last connection died go first, in order.
        for stream in tailer.streams_mut() {
            let Some(idx) = stream.idx else { continue };
            for line in &stream.inflight {
                outbox.push(|b| logship::encode_line(idx, line.seq, &line.bytes, b))?;
                ledger.sent(idx, line.seq);
            }
        }
        outbox.flush(&mut wr).await?;
    } else {
        *accepted = true;
        tracing::info!(master = %config.master_host, "connected (plain RFC 5425, no acknowledgements)");
    }
    let mut last_poll = Instant::now()
        .checked_sub(s.poll)
        .unwrap_or_else(Instant::now);
    let mut last_sent = Instant::now();
    let mut last_heard = Instant::now();
    loop {
        if last_poll.elapsed() >= s.poll {
            tailer.poll()?;
            last_poll = Instant::now();
        }
        let (lines, bytes) = tailer.unacked();
        let room = lines < s.window_lines && bytes < s.window_bytes;
        let mut full_batch = false;
        if room {
            if !config.plain {
                declare(tailer, &mut next_idx, &mut outbox, &mut ledger)?;
            }
            let batch = tailer.read(s.batch_lines);
            full_batch = batch.len() >= s.batch_lines;
            for (f, st, line) in &batch {
                if config.plain {
                    outbox.push(|b| b.extend_from_slice(&line.bytes))?;
                } else if let Some(idx) = tailer.stream_mut(*f, *st).and_then(|x| x.idx) {
                    outbox.push(|b| logship::encode_line(idx, line.seq, &line.bytes, b))?;
                    ledger.sent(idx, line.seq);
                }
            }
            if !outbox.buf.is_empty() {
                outbox.flush(&mut wr).await?;
                last_sent = Instant::now();
                if config.plain {
                    // Advance-after-drain: the batch is in the socket, call it delivered.
                    for stream in tailer.streams_mut() {
                        if let Some(last) = stream.inflight.back().map(|l| l.seq) {
                            stream.ack(last);
                        }
                    }
                }
            }
        }
        if config.plain {
            tailer.persist()?;
        }
        let waiting = tailer.unacked().0 > 0;
        if waiting && last_heard.elapsed() >= s.ack_timeout {
            return Err(Error::Timeout(s.ack_timeout));
        }
        if !config.plain && last_sent.elapsed() >= s.ping {
            outbox.push(|b| Upstream::Ping.encode(b))?;
            outbox.flush(&mut wr).await?;
            last_sent = Instant::now();
        }
        let pause = if full_batch && room {
            Duration::ZERO
        } else {
            s.poll
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                // close_notify, so the listener sees a clean end rather than a cut.
                let _ = timeout(s.write_timeout.min(s.connect_timeout), wr.shutdown()).await;
                return Ok(());
            }
            frame = frames.next() => {
                let mut frame = frame;
                loop {
                    let Some(payload) = frame.transpose()? else {
                        return Err(Error::Refused("the master closed the connection".into()));
                    };
                    match Downstream::decode(&payload)? {
                        Downstream::Ack { idx, seq } => {
                            let mut stream = tailer.streams_mut().find(|x| x.idx == Some(idx));
                            let holds = |seq| stream.as_ref().is_some_and(|x| x.holds(seq, max_line));
                            if let Err(reason) = ledger.check_ack(idx, seq, holds) {
                                // Acknowledgements applied before were each checked and
                                // stay; `run` persists them.
                                return Err(link.violation(reason));
                            }
                            if let Some(stream) = stream.as_mut() {
                                stream.ack(seq);
                            }
                        }
                        Downstream::Refused(reason) => return Err(Error::Refused(reason)),
                        Downstream::Welcome(_) => {
                            return Err(Error::Refused("unexpected second WELCOME".into()));
                        }
                    }
                    match frames.next().now_or_never() {
                        Some(next) => frame = next,
                        None => break,
                    }
                }
                last_heard = Instant::now();
                tailer.persist()?;
            }
            _ = tokio::time::sleep(pause) => {
                if !waiting {
                    last_heard = Instant::now();
                }
            }
        }
    }
}
