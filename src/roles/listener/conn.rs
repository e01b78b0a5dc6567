//! One connection: admission (TLS handshake, allow-list gate, first frame), then frames
//! until the peer is done.
//!
//! Until its first valid frame a connection holds a [`Ticket`] of the doorway and must
//! get there within [`Settings::auth_timeout`](super::Settings::auth_timeout), or lose its
//! place to a newer connection ([`super::admission`]); then it trades the ticket for one
//! of the workers' places.
//!
//! Commits are pipelined one deep: while one batch commits, the next accumulates, each
//! line parsed at once into a row of the batch (at most `max_pending` lines and
//! `max_pending_bytes` bytes of rows, each row's bytes also taken from the listener-wide
//! budget, then reading pauses). So a connection never has two batches
//! in flight, and what the store holds of it is always a prefix of what it sent: if a
//! commit fails, nothing later from this connection is queued behind it, and the
//! watermark can never jump over a gap. Replies are queued and drained by the same
//! `select!` that reads, re-checks and commits ([`super::link`]).
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::admission::Ticket;
use super::link::{End, Link, Outbound};
use super::{Shared, UNPARSED_EVENT};
use crate::bus::{publish_safely, topics};
use crate::logship::{self, Downstream, MAX_SOURCES, Upstream, Welcome};
use crate::store::{self, Batch, Committed};
use crate::syslog::{Event, Fields, Timestamp, parse_bytes};
use crate::tls::{self, PeerIdentity};

/// Frames handled in one go before the session looks at its other duties again.
const BURST: usize = 256;

/// The deadline and the doorway place of a connection that has not authenticated yet.
struct Unauthenticated {
    ticket: Ticket,
    deadline: Instant,
    peer: SocketAddr,
    stop: CancellationToken,
}

impl Unauthenticated {
    /// Runs one step of admission; `None` if evicted, stopping or out of time.
    async fn step<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            () = self.ticket.evicted() => {
                tracing::debug!(peer = %self.peer, "unauthenticated connection dropped to make room");
                None
            }
            done = timeout_at(self.deadline, step) => match done {
                Ok(value) => Some(value),
                Err(_) => {
                    tracing::warn!(peer = %self.peer, "connection dropped: no valid first frame in time");
                    None
                }
            },
        }
    }
}

/// Accepts one TCP connection and serves it to the end.
pub(super) async fn handle(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    stop: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let settings = &shared.config.settings;
    if let Err(err) = socket2::SockRef::from(&tcp).set_send_buffer_size(settings.send_buffer) {
        tracing::debug!(%peer, "cannot size the send buffer: {err}");
    }
    let admission = Unauthenticated {
        ticket,
        deadline: Instant::now() + settings.auth_timeout,
        peer,
        stop,
    };
    if !matches!(admission.step(tcp.readable()).await, Some(Ok(()))) {
        return;
    }
    admission.ticket.spoke();
    let Some(acceptor) = &shared.acceptor else {
        let worker = shared.config.plain_worker.clone();
        let link = Link::new(tcp, settings);
        return Session::new(shared.clone(), worker, None, peer)
            .start(link, admission)
            .await;
    };
    let (stream, identity) = match admission.step(tls::accept(acceptor, tcp)).await {
        None => return,
        Some(Err(err)) => {
            // No certificate, one from another CA, expired, or not TLS at all.
            tracing::warn!(%peer, "connection refused: {err}");
            return;
        }
        Some(Ok(pair)) => pair,
    };
    let mut link = Link::new(stream, settings);
    let allowed = shared.gate.allowed(&identity.cn, &identity.fingerprint);
    let Some(allowed) = admission.step(allowed).await else {
        return;
    };
    if !allowed {
        tracing::warn!(
            %peer,
            worker = %identity.cn,
            fingerprint = %identity.fingerprint,
            "connection refused: no enrolled worker with this name and certificate"
        );
        link.tx
            .refuse("not an enrolled worker with this certificate")
            .await;
        return;
    }
    tracing::info!(%peer, worker = %identity.cn, "worker connected");
    let worker = identity.cn.clone();
    Session::new(shared.clone(), worker, Some(identity), peer)
        .start(link, admission)
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

/// A line received but not yet buffered: the listener-wide budget had no room for it.
struct Parked {
    source: String,
    seq: u64,
    line: Bytes,
    /// The bytes its row takes.
    need: usize,
}

/// The state of one connection after the gate.
struct Session {
    shared: Arc<Shared>,
    worker: String,
    identity: Option<PeerIdentity>,
    peer: SocketAddr,
    /// Lines received since the last submit, already formatted into rows (the parsed
    /// event of a line is dropped as soon as its row is written).
    pending: Batch,
    /// Bytes of `pending` (the rows, not the lines: a row takes two to three times its
    /// line, more with escapes).
    pending_bytes: usize,
    /// What `pending` holds of the listener-wide budget.
    charge: Option<OwnedSemaphorePermit>,
    parked: Option<Parked>,
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
            pending: Batch::new(),
            pending_bytes: 0,
            charge: None,
            parked: None,
            raw: Vec::new(),
            inflight: None,
        }
    }

    /// Reads the first frame within the admission deadline, then takes a worker's place.
    async fn start<S: AsyncRead + AsyncWrite>(
        mut self,
        mut link: Link<S>,
        admission: Unauthenticated,
    ) {
        let first = admission.step(self.first(&mut link)).await;
        let mode = match first {
            None | Some(Ok(None)) => return,
            Some(Err(end)) => return self.fail(&mut link, end, None).await,
            Some(Ok(Some(mode))) => mode,
        };
        let stop = admission.stop.clone();
        drop(admission);
        let Ok(place) = self.shared.workers.clone().try_acquire_owned() else {
            tracing::warn!(
                peer = %self.peer,
                worker = %self.worker,
                max = self.shared.config.settings.max_workers,
                "connection refused: every worker place is taken"
            );
            link.tx
                .refuse("the master serves its maximum of worker connections; retry later")
                .await;
            return;
        };
        self.run(link, mode, stop).await;
        drop(place);
    }

    /// Whether another line may be buffered now.
    fn room(&self) -> bool {
        let settings = &self.shared.config.settings;
        self.parked.is_none()
            && self.pending.len() < settings.max_pending
            && self.pending_bytes < settings.max_pending_bytes
    }

    async fn run<S: AsyncRead + AsyncWrite>(
        mut self,
        mut link: Link<S>,
        mut mode: Mode,
        stop: CancellationToken,
    ) {
        self.submit();
        let settings = self.shared.config.settings.clone();
        let budget = self.shared.budget.clone();
        let mut recheck =
            tokio::time::interval_at(Instant::now() + settings.recheck, settings.recheck);
        loop {
            let room = self.room();
            let parked = self.parked.as_ref().map(|p| p.need);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = recheck.tick(), if self.identity.is_some() => {
                    if !self.still_allowed().await {
                        link.tx.refuse("no longer enrolled with this certificate").await;
                        return;
                    }
                }
                written = link.tx.drain(), if link.tx.busy() => {
                    if let Err(end) = written {
                        return self.fail(&mut link, end, Some(&mode)).await;
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
                            link.tx.refuse("the master cannot store lines right now; retry later").await;
                            return;
                        }
                        Err(_) => return,
                    };
                    if let Err(end) = self.acknowledge(&mut link.tx, Some(&mode), committed) {
                        return self.fail(&mut link, end, Some(&mode)).await;
                    }
                    self.submit();
                }
                charge = budget.take(parked.unwrap_or(0)), if parked.is_some() => {
                    if let Some(charge) = charge
                        && let Some(p) = self.parked.take()
                        && let Some(need) = self.record(&p.source, p.seq, &p.line)
                    {
                        self.keep(Some(charge), need, p.line);
                    }
                    if self.inflight.is_none() {
                        self.submit();
                    }
                }
                frame = link.rx.next(), if room => {
                    let mut frame = frame;
                    let mut burst = 0;
                    loop {
                        match frame {
                            Ok(Some(payload)) => {
                                if let Err(end) = self.take(&mut link.tx, &mut mode, payload).await {
                                    return self.fail(&mut link, end, Some(&mode)).await;
                                }
                            }
                            Ok(None) => return self.finish(&mut link, Some(&mode)).await,
                            Err(end) => return self.fail(&mut link, end, Some(&mode)).await,
                        }
                        burst += 1;
                        // A peer that sends faster than we process would otherwise keep
                        // this loop busy forever: replies, re-checks and shutdown wait.
                        if !self.room() || burst >= BURST {
                            break;
                        }
                        match link.rx.ready() {
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
    async fn first<S: AsyncRead + AsyncWrite>(
        &mut self,
        link: &mut Link<S>,
    ) -> Result<Option<Mode>, End> {
        let Some(first) = link.rx.next().await? else {
            return Ok(None);
        };
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
            self.take(&mut link.tx, &mut mode, first).await?;
            return Ok(Some(mode));
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
        link.tx.queue(&[Downstream::Welcome(Welcome {
            version: logship::VERSION,
            watermarks,
        })])?;
        Ok(Some(Mode::Envelope { names, by_name }))
    }

    /// Handles one frame after the first.
    async fn take<S: AsyncWrite>(
        &mut self,
        tx: &mut Outbound<S>,
        mode: &mut Mode,
        payload: Bytes,
    ) -> Result<(), End> {
        match mode {
            Mode::Plain { source, next_seq } => {
                let seq = *next_seq;
                *next_seq += 1;
                let source = source.clone();
                self.push(source, seq, payload);
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
                    self.push(name, seq, line);
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
                    tx.queue(&[Downstream::Ack { idx, seq: mark }])?;
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

    /// Buffers a line if the listener-wide budget has room for its row, else parks it.
    ///
    /// The row is formatted first, so the charge is what it really takes (an attacker's
    /// line of control characters grows several-fold in JSON), and taken out again if
    /// the budget cannot pay for it.
    fn push(&mut self, source: String, seq: u64, line: Bytes) {
        let mark = self.pending.mark();
        let Some(need) = self.record(&source, seq, &line) else {
            return;
        };
        match self.shared.budget.try_take(need) {
            Some(charge) => self.keep(Some(charge), need, line),
            None => {
                self.pending.rollback(mark);
                self.parked = Some(Parked {
                    source,
                    seq,
                    line,
                    need,
                });
            }
        }
    }

    fn charge_with(&mut self, charge: OwnedSemaphorePermit) {
        match &mut self.charge {
            Some(held) => held.merge(charge),
            None => self.charge = Some(charge),
        }
    }

    /// Parses a line into a row of `pending`; returns the bytes the row takes there.
    fn record(&mut self, source: &str, seq: u64, line: &[u8]) -> Option<usize> {
        let received = OffsetDateTime::now_utc();
        let event = parse_bytes(line).unwrap_or_else(|_| unparsed(line, received));
        let before = self.pending.bytes();
        if let Err(err) = self
            .pending
            .push(&self.worker, source, seq, received, Some(&event))
        {
            // `take` refuses sequence numbers the store cannot hold before they get here.
            tracing::error!(worker = %self.worker, source, seq, "line not stored: {err}");
            return None;
        }
        Some(self.pending.bytes() - before)
    }

    /// Keeps a recorded line: its share of the budget, its bytes, its raw copy.
    fn keep(&mut self, charge: Option<OwnedSemaphorePermit>, need: usize, line: Bytes) {
        if let Some(charge) = charge {
            self.charge_with(charge);
        }
        self.pending_bytes += need;
        if self.shared.raw.is_some() {
            self.raw.push(line);
        }
    }

    /// Hands the pending lines to the store writer, if nothing is committing; their
    /// share of the byte budget is returned once the commit is over.
    fn submit(&mut self) {
        if self.inflight.is_some() || self.pending.is_empty() {
            return;
        }
        if let Some(raw) = &self.shared.raw {
            raw.append(self.raw.iter().map(|b| &b[..]));
            self.raw.clear();
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let charge = self.charge.take();
        let writer = self.shared.writer.clone();
        self.inflight = Some(tokio::spawn(async move {
            let committed = writer.write_batch(rows).await;
            drop(charge);
            committed
        }));
    }

    /// Queues the acknowledgements of a committed batch and announces it on the bus.
    fn acknowledge<S: AsyncWrite>(
        &self,
        tx: &mut Outbound<S>,
        mode: Option<&Mode>,
        committed: Committed,
    ) -> Result<(), End> {
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
            return Ok(());
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
        tx.queue(&acks)
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

    /// Commits what was received (the peer is done or we stop) and queues its
    /// acknowledgements; a line still waiting for budget is committed too.
    async fn commit_rest<S: AsyncWrite>(&mut self, tx: &mut Outbound<S>, mode: Option<&Mode>) {
        if let Some(p) = self.parked.take()
            && let Some(need) = self.record(&p.source, p.seq, &p.line)
        {
            self.keep(None, need, p.line);
        }
        for _ in 0..2 {
            if let Some(handle) = self.inflight.take() {
                match handle.await {
                    Ok(Ok(committed)) => {
                        let _ = self.acknowledge(tx, mode, committed);
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

    /// Commits the rest, acknowledges it and closes.
    async fn finish<S: AsyncRead + AsyncWrite>(&mut self, link: &mut Link<S>, mode: Option<&Mode>) {
        self.commit_rest(&mut link.tx, mode).await;
        link.tx.close().await;
    }

    /// Logs why the connection ends, keeps the valid lines it sent, and closes (telling
    /// the peer why when it still listens).
    async fn fail<S: AsyncRead + AsyncWrite>(
        &mut self,
        link: &mut Link<S>,
        end: End,
        mode: Option<&Mode>,
    ) {
        tracing::warn!(peer = %self.peer, worker = %self.worker, "closing connection: {end}");
        self.commit_rest(&mut link.tx, mode).await;
        if end.can_reply() {
            link.tx.refuse(&end.to_string()).await;
        } else {
            link.tx.close().await;
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
