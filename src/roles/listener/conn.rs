//! One connection: TLS handshake, allow-list gate, then frames until the peer is done.
//!
//! Commits are pipelined one deep: while one batch commits, the next accumulates (at most
//! `max_pending` lines, then reading pauses). So a connection never has two batches in
//! flight, and what the store holds of it is always a prefix of what it sent: if a
//! commit fails, nothing later from this connection is queued behind it, and the
//! watermark can never jump over a gap.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{Encoder, FramedRead};
use tokio_util::sync::CancellationToken;

use super::{Settings, Shared, UNPARSED_EVENT};
use crate::bus::{publish_safely, topics};
use crate::logship::{self, Downstream, MAX_SOURCES, Upstream, Welcome};
use crate::store::{self, Committed, LogRecord};
use crate::syslog::{CodecError, Event, Fields, OctetCodec, Timestamp};
use crate::tls::{self, PeerIdentity};

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("peer stalled in the middle of a frame (read timeout)")]
    Stalled,
    #[error("peer idle for too long")]
    Idle,
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("protocol error: {0}")]
    Protocol(#[from] logship::ProtocolError),
}

/// Frames in, frames out, with the read deadlines of [`Settings`].
struct Link<S> {
    frames: FramedRead<ReadHalf<S>, OctetCodec>,
    out: WriteHalf<S>,
    codec: OctetCodec,
    frame_started: Option<Instant>,
    settings: Settings,
}

impl<S: AsyncRead + AsyncWrite> Link<S> {
    fn new(stream: S, settings: &Settings) -> Self {
        let codec = OctetCodec::new(settings.max_frame);
        let (rd, out) = tokio::io::split(stream);
        Self {
            frames: FramedRead::new(rd, codec),
            out,
            codec,
            frame_started: None,
            settings: settings.clone(),
        }
    }

    /// The next frame; cancel-safe (the partial frame stays buffered).
    async fn next(&mut self) -> Result<Option<Bytes>, End> {
        loop {
            if self.frame_started.is_none() && !self.frames.read_buffer().is_empty() {
                self.frame_started = Some(Instant::now());
            }
            let deadline = match self.frame_started {
                Some(t) => t + self.settings.frame_timeout,
                None => Instant::now() + self.settings.idle_timeout,
            };
            match timeout_at(deadline, self.frames.next()).await {
                Ok(frame) => {
                    self.frame_started = None;
                    return frame.transpose().map_err(End::from);
                }
                Err(_) if self.frame_started.is_some() => return Err(End::Stalled),
                Err(_) if self.frames.read_buffer().is_empty() => return Err(End::Idle),
                Err(_) => {}
            }
        }
    }

    /// A frame that is already buffered, without waiting.
    fn ready(&mut self) -> Option<Result<Option<Bytes>, End>> {
        let frame = self.frames.next().now_or_never()?;
        self.frame_started = None;
        Some(frame.transpose().map_err(End::from))
    }

    async fn send(&mut self, frames: &[Downstream]) -> std::io::Result<()> {
        let mut buf = BytesMut::new();
        let mut payload = BytesMut::new();
        for frame in frames {
            payload.clear();
            frame.encode(&mut payload);
            self.codec
                .encode(&payload[..], &mut buf)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        self.out.write_all(&buf).await?;
        self.out.flush().await
    }

    /// Tells a decnet forwarder why it is being dropped; best effort, bounded.
    async fn refuse(&mut self, reason: &str) {
        let frame = [Downstream::Refused(reason.to_owned())];
        let _ = timeout(self.settings.frame_timeout, async {
            let _ = self.send(&frame).await;
            let _ = self.out.shutdown().await;
        })
        .await;
    }
}

/// Accepts one TCP connection and serves it to the end.
pub(super) async fn handle(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let settings = &shared.config.settings;
    let Some(acceptor) = &shared.acceptor else {
        let worker = shared.config.plain_worker.clone();
        let link = Link::new(tcp, settings);
        return Session::new(shared.clone(), worker, None, peer)
            .run(link, stop)
            .await;
    };
    let (stream, identity) =
        match timeout(settings.handshake_timeout, tls::accept(acceptor, tcp)).await {
            Err(_) => {
                tracing::warn!(%peer, "connection refused: TLS handshake timed out");
                return;
            }
            Ok(Err(err)) => {
                // No certificate, one from another CA, expired, or not TLS at all.
                tracing::warn!(%peer, "connection refused: {err}");
                return;
            }
            Ok(Ok(pair)) => pair,
        };
    let mut link = Link::new(stream, settings);
    if !shared
        .gate
        .allowed(&identity.cn, &identity.fingerprint)
        .await
    {
        tracing::warn!(
            %peer,
            worker = %identity.cn,
            fingerprint = %identity.fingerprint,
            "connection refused: no enrolled worker with this name and certificate"
        );
        link.refuse("not an enrolled worker with this certificate")
            .await;
        return;
    }
    tracing::info!(%peer, worker = %identity.cn, "worker connected");
    let worker = identity.cn.clone();
    Session::new(shared.clone(), worker, Some(identity), peer)
        .run(link, stop)
        .await;
}

/// What the payloads of this connection are.
enum Mode {
    /// decnet envelope: declared sources by index.
    Envelope {
        names: Vec<Option<String>>,
        by_name: HashMap<String, u32>,
    },
    /// Plain RFC 5425: every frame a line of one per-connection source.
    Plain { source: String, next_seq: u64 },
}

/// The state of one connection after the gate.
struct Session {
    shared: Arc<Shared>,
    worker: String,
    identity: Option<PeerIdentity>,
    peer: SocketAddr,
    pending: Vec<LogRecord>,
    raw: Vec<Bytes>,
    inflight: Option<JoinHandle<store::Result<Committed>>>,
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        worker: String,
        identity: Option<PeerIdentity>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            shared,
            worker,
            identity,
            peer,
            pending: Vec::new(),
            raw: Vec::new(),
            inflight: None,
        }
    }

    async fn run<S: AsyncRead + AsyncWrite>(mut self, mut link: Link<S>, stop: CancellationToken) {
        let first = match link.next().await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(end) => return self.fail(&mut link, end, None).await,
        };
        let mut mode = match self.open(&mut link, first).await {
            Ok(mode) => mode,
            Err(end) => return self.fail(&mut link, end, None).await,
        };
        let settings = self.shared.config.settings.clone();
        let mut recheck =
            tokio::time::interval_at(Instant::now() + settings.recheck, settings.recheck);
        loop {
            let room = self.pending.len() < settings.max_pending;
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = recheck.tick(), if self.identity.is_some() => {
                    if !self.still_allowed().await {
                        link.refuse("no longer enrolled with this certificate").await;
                        return;
                    }
                }
                done = async {
                    match self.inflight.as_mut() {
                        Some(handle) => handle.await,
                        None => std::future::pending().await,
                    }
                }, if self.inflight.is_some() => {
                    self.inflight = None;
                    let committed = match done {
                        Ok(Ok(c)) => c,
                        Ok(Err(err)) => {
                            tracing::error!(worker = %self.worker, "store did not commit, not acknowledging: {err}");
                            link.refuse("the master cannot store lines right now; retry later").await;
                            return;
                        }
                        Err(_) => return,
                    };
                    if !self.acknowledge(&mut link, Some(&mode), committed).await {
                        return;
                    }
                    self.submit();
                }
                frame = link.next(), if room => {
                    let mut frame = frame;
                    loop {
                        match frame {
                            Ok(Some(payload)) => {
                                if let Err(end) = self.take(&mut link, &mut mode, payload).await {
                                    return self.fail(&mut link, end, Some(&mode)).await;
                                }
                            }
                            Ok(None) => return self.finish(&mut link, Some(&mode)).await,
                            Err(end) => return self.fail(&mut link, end, Some(&mode)).await,
                        }
                        if self.pending.len() >= settings.max_pending {
                            break;
                        }
                        match link.ready() {
                            Some(next) => frame = next,
                            None => break,
                        }
                    }
                    if self.inflight.is_none() {
                        self.submit();
                    }
                }
            }
        }
        self.finish(&mut link, Some(&mode)).await;
    }

    /// Reads the first frame: a HELLO (answered with WELCOME) or the first plain line.
    async fn open<S: AsyncRead + AsyncWrite>(
        &mut self,
        link: &mut Link<S>,
        first: Bytes,
    ) -> Result<Mode, End> {
        if !logship::is_hello(&first) {
            let source = format!(
                "rfc5425:{}:{}",
                self.peer,
                OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000
            );
            tracing::info!(worker = %self.worker, %source, "plain RFC 5425 sender (no acknowledgements)");
            let mut mode = Mode::Plain {
                source,
                next_seq: 1,
            };
            self.take(link, &mut mode, first).await?;
            self.submit();
            return Ok(mode);
        }
        let Upstream::Hello(hello) = Upstream::decode(first)? else {
            return Err(End::Protocol(logship::ProtocolError::Malformed {
                what: "HELLO",
            }));
        };
        let marks = self.shared.gate.watermarks(&self.worker).await.unwrap_or_else(|err| {
            tracing::warn!(worker = %self.worker, "cannot read watermarks, forwarder will re-send: {err}");
            HashMap::new()
        });
        let watermarks = hello
            .sources
            .iter()
            .map(|s| marks.get(s).copied().unwrap_or(0))
            .collect();
        tracing::debug!(worker = %self.worker, agent = %hello.agent, sources = hello.sources.len(), "HELLO");
        let by_name = hello
            .sources
            .iter()
            .zip(0u32..)
            .map(|(s, i)| (s.clone(), i))
            .collect();
        let names = hello.sources.into_iter().map(Some).collect();
        let welcome = Downstream::Welcome(Welcome {
            version: logship::VERSION,
            watermarks,
        });
        if link.send(&[welcome]).await.is_err() {
            return Err(End::Idle);
        }
        Ok(Mode::Envelope { names, by_name })
    }

    /// Handles one frame after the first.
    async fn take<S: AsyncRead + AsyncWrite>(
        &mut self,
        link: &mut Link<S>,
        mode: &mut Mode,
        payload: Bytes,
    ) -> Result<(), End> {
        match mode {
            Mode::Plain { source, next_seq } => {
                let seq = *next_seq;
                *next_seq += 1;
                let source = source.clone();
                self.push(&source, seq, payload);
            }
            Mode::Envelope { names, by_name } => match Upstream::decode(payload)? {
                Upstream::Line { idx, seq, line } => {
                    let name = names.get(idx as usize).and_then(Option::as_ref).ok_or(
                        logship::ProtocolError::Unexpected(format!(
                            "line of undeclared source {idx}"
                        )),
                    )?;
                    if seq == 0 || i64::try_from(seq).is_err() {
                        return Err(End::Protocol(logship::ProtocolError::Malformed {
                            what: "D",
                        }));
                    }
                    let name = name.clone();
                    self.push(&name, seq, line);
                }
                Upstream::Source { idx, name } => {
                    let i = idx as usize;
                    if i >= MAX_SOURCES {
                        return Err(End::Protocol(logship::ProtocolError::Limit("sources")));
                    }
                    if names.len() <= i {
                        names.resize(i + 1, None);
                    }
                    names[i] = Some(name.clone());
                    let mark = self
                        .shared
                        .gate
                        .watermarks(&self.worker)
                        .await
                        .ok()
                        .and_then(|m| m.get(&name).copied())
                        .unwrap_or(0);
                    by_name.insert(name, idx);
                    let _ = link.send(&[Downstream::Ack { idx, seq: mark }]).await;
                }
                Upstream::Ping => {}
                Upstream::Hello(_) => {
                    return Err(End::Protocol(logship::ProtocolError::Unexpected(
                        "second HELLO".into(),
                    )));
                }
            },
        }
        Ok(())
    }

    fn push(&mut self, source: &str, seq: u64, line: Bytes) {
        let mut record = LogRecord::from_line(self.worker.as_str(), source, seq, &line);
        if record.event.is_none() {
            record.event = Some(unparsed(&line, record.received_at));
        }
        self.pending.push(record);
        if self.shared.raw.is_some() {
            self.raw.push(line);
        }
    }

    /// Hands the pending lines to the store writer, if nothing is committing.
    fn submit(&mut self) {
        if self.inflight.is_some() || self.pending.is_empty() {
            return;
        }
        if let Some(raw) = &self.shared.raw {
            raw.append(self.raw.iter().map(|b| &b[..]));
            self.raw.clear();
        }
        let records = std::mem::take(&mut self.pending);
        let writer = self.shared.writer.clone();
        self.inflight = Some(tokio::spawn(async move { writer.write(records).await }));
    }

    /// Sends the acknowledgements of a committed batch and announces it on the bus.
    async fn acknowledge<S: AsyncRead + AsyncWrite>(
        &self,
        link: &mut Link<S>,
        mode: Option<&Mode>,
        committed: Committed,
    ) -> bool {
        publish_safely(
            Some(self.shared.config.bus.as_ref()),
            topics::SYSTEM_LOG,
            &serde_json::json!({
                "worker": self.worker,
                "inserted": committed.inserted,
                "duplicates": committed.duplicates,
            }),
            "logs.committed",
        );
        let Some(Mode::Envelope { by_name, .. }) = mode else {
            return true;
        };
        let acks: Vec<Downstream> = committed
            .watermarks
            .iter()
            .filter_map(|w| {
                by_name
                    .get(&w.source)
                    .map(|&idx| Downstream::Ack { idx, seq: w.seq })
            })
            .collect();
        link.send(&acks).await.is_ok()
    }

    async fn still_allowed(&self) -> bool {
        let Some(id) = &self.identity else {
            return true;
        };
        let allowed = self.shared.gate.allowed(&id.cn, &id.fingerprint).await;
        if !allowed {
            tracing::warn!(
                peer = %self.peer,
                worker = %id.cn,
                fingerprint = %id.fingerprint,
                "worker no longer enrolled with this certificate; closing its connection"
            );
        }
        allowed
    }

    /// Commits what is pending (the peer is done or we stop), acknowledging it.
    async fn finish<S: AsyncRead + AsyncWrite>(&mut self, link: &mut Link<S>, mode: Option<&Mode>) {
        for _ in 0..2 {
            if let Some(handle) = self.inflight.take() {
                match handle.await {
                    Ok(Ok(committed)) => {
                        let _ = self.acknowledge(link, mode, committed).await;
                    }
                    Ok(Err(err)) => {
                        tracing::error!(worker = %self.worker, "store did not commit: {err}");
                        return;
                    }
                    Err(_) => return,
                }
            }
            self.submit();
        }
    }

    /// Logs why the connection ends, keeps the valid lines it sent, and closes.
    async fn fail<S: AsyncRead + AsyncWrite>(
        &mut self,
        link: &mut Link<S>,
        end: End,
        mode: Option<&Mode>,
    ) {
        tracing::warn!(peer = %self.peer, worker = %self.worker, "closing connection: {end}");
        self.finish(link, mode).await;
        if !matches!(end, End::Idle) {
            link.refuse(&end.to_string()).await;
        }
    }
}

/// The event a line that is not RFC 5424 is kept as.
fn unparsed(line: &[u8], received: OffsetDateTime) -> Event {
    Event {
        timestamp: Timestamp::Parsed(received),
        decky: "-".into(),
        service: "-".into(),
        event_type: UNPARSED_EVENT.into(),
        attacker_ip: None,
        fields: Fields::new(),
        msg: None,
        raw: String::from_utf8_lossy(line).into_owned(),
    }
}
