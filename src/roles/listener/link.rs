//! Frames in and frames out of one connection, each direction with its own deadlines.
//!
//! The two halves are separate values so a session can wait on both at once: reading
//! goes on while replies drain, and neither blocks the allow-list re-check. Replies are
//! never written by awaiting a socket write in the middle of the session's logic;
//! [`Outbound::queue`] only appends to a buffer (at most [`Settings::max_reply_bytes`])
//! and [`Outbound::drain`] writes it out, cancel-safe, in the session's `select!`. What
//! is queued must be written within [`Settings::write_timeout`] of being queued: a peer
//! that stops reading makes the session end with [`End::NotReading`] instead of holding
//! its task, its slot and its socket forever.
use std::io;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{Encoder, FramedRead};

use super::Settings;
use crate::logship::{self, Downstream};
use crate::syslog::{CodecError, OctetCodec};

/// How long the last words of a connection (acknowledgements, a refusal, close_notify)
/// may take. They are a few hundred bytes: a reading peer's kernel takes them at once,
/// and waiting longer for one that does not read would keep a revoked worker connected.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum End {
    #[error("peer stalled in the middle of a frame (read timeout)")]
    Stalled,
    #[error("peer idle for too long")]
    Idle,
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("protocol error: {0}")]
    Protocol(#[from] logship::ProtocolError),
    #[error("peer stopped reading: replies not written within {0:?}")]
    NotReading(Duration),
    #[error("peer stopped reading: more than {0} bytes of replies queued")]
    RepliesPiledUp(usize),
    #[error("write failed: {0}")]
    Write(io::Error),
}

impl End {
    /// Whether the peer can still be told why it is dropped.
    pub(super) fn can_reply(&self) -> bool {
        !matches!(
            self,
            Self::Idle | Self::NotReading(_) | Self::RepliesPiledUp(_) | Self::Write(_)
        )
    }
}

/// Both directions of a connection.
pub(super) struct Link<S> {
    pub(super) rx: Inbound<S>,
    pub(super) tx: Outbound<S>,
}

impl<S: AsyncRead + AsyncWrite> Link<S> {
    pub(super) fn new(stream: S, settings: &Settings) -> Self {
        let codec = OctetCodec::new(settings.max_frame);
        let (rd, out) = tokio::io::split(stream);
        Self {
            rx: Inbound {
                frames: FramedRead::new(rd, codec),
                frame_started: None,
                frame_timeout: settings.frame_timeout,
                idle_timeout: settings.idle_timeout,
            },
            tx: Outbound {
                out,
                codec,
                buf: BytesMut::new(),
                unflushed: false,
                deadline: None,
                broken: false,
                write_timeout: settings.write_timeout,
                max_reply_bytes: settings.max_reply_bytes,
            },
        }
    }
}

/// Frames from the peer, with the read deadlines of [`Settings`].
pub(super) struct Inbound<S> {
    frames: FramedRead<ReadHalf<S>, OctetCodec>,
    frame_started: Option<Instant>,
    frame_timeout: Duration,
    idle_timeout: Duration,
}

impl<S: AsyncRead> Inbound<S> {
    /// The next frame; cancel-safe (the partial frame stays buffered).
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, End> {
        loop {
            if self.frame_started.is_none() && !self.frames.read_buffer().is_empty() {
                self.frame_started = Some(Instant::now());
            }
            let deadline = match self.frame_started {
                Some(t) => t + self.frame_timeout,
                None => Instant::now() + self.idle_timeout,
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
    pub(super) fn ready(&mut self) -> Option<Result<Option<Bytes>, End>> {
        let frame = self.frames.next().now_or_never()?;
        self.frame_started = None;
        Some(frame.transpose().map_err(End::from))
    }
}

/// Replies to the peer: queued, then drained under a deadline.
pub(super) struct Outbound<S> {
    out: WriteHalf<S>,
    codec: OctetCodec,
    /// Encoded frames not yet handed to the socket.
    buf: BytesMut,
    /// Bytes handed to the socket (or the TLS layer) since the last flush.
    unflushed: bool,
    /// When what is queued must be written by; `None` when nothing is queued.
    deadline: Option<Instant>,
    /// A write failed or timed out: nothing more is attempted.
    broken: bool,
    write_timeout: Duration,
    max_reply_bytes: usize,
}

impl<S: AsyncWrite> Outbound<S> {
    /// Appends `frames` to what goes out; fails if the peer leaves too much unread.
    pub(super) fn queue(&mut self, frames: &[Downstream]) -> Result<(), End> {
        let mut payload = BytesMut::new();
        for frame in frames {
            payload.clear();
            frame.encode(&mut payload);
            self.codec.encode(&payload[..], &mut self.buf)?;
        }
        if self.buf.len() > self.max_reply_bytes {
            self.broken = true;
            return Err(End::RepliesPiledUp(self.max_reply_bytes));
        }
        if self.deadline.is_none() && self.busy() {
            self.deadline = Some(Instant::now() + self.write_timeout);
        }
        Ok(())
    }

    /// Whether something waits to be written or flushed.
    pub(super) fn busy(&self) -> bool {
        !self.broken && (!self.buf.is_empty() || self.unflushed)
    }

    /// Writes and flushes what is queued; cancel-safe (unwritten bytes stay queued), and
    /// fails once the deadline of the oldest queued reply has passed.
    pub(super) async fn drain(&mut self) -> Result<(), End> {
        if !self.busy() {
            return Ok(());
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + self.write_timeout);
        let (out, buf, unflushed) = (&mut self.out, &mut self.buf, &mut self.unflushed);
        let written = timeout_at(deadline, async {
            while !buf.is_empty() {
                if out.write_buf(buf).await? == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                *unflushed = true;
            }
            out.flush().await?;
            *unflushed = false;
            Ok(())
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.deadline = None;
                Ok(())
            }
            Ok(Err(err)) => {
                self.broken = true;
                Err(End::Write(err))
            }
            Err(_) => {
                self.broken = true;
                Err(End::NotReading(self.write_timeout))
            }
        }
    }

    /// Tells a decnet forwarder why it is being dropped, then closes; best effort, bounded.
    pub(super) async fn refuse(&mut self, reason: &str) {
        if self
            .queue(&[Downstream::Refused(reason.to_owned())])
            .is_ok()
        {
            self.close().await;
        }
    }

    /// Writes what is queued and closes the write side (TLS close_notify), for at most
    /// [`CLOSE_WAIT`]; skipped if the peer already stopped reading.
    pub(super) async fn close(&mut self) {
        if self.broken {
            return;
        }
        let _ = timeout(self.write_timeout.min(CLOSE_WAIT), async {
            if self.drain().await.is_ok() {
                let _ = self.out.shutdown().await;
            }
        })
        .await;
    }
}
