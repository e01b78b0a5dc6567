//! The part every TCP service shares: accepting, the concurrency cap, and the timeouts.
//!
//! - Each service has a [`Limits`]: at most `max_conns` connections at once (a semaphore;
//!   one over the cap is closed at once, before a byte is read, so a flood costs a
//!   descriptor for a moment and nothing else), an idle timeout and a total lifetime.
//! - The stream handed to a service is wrapped in [`Idle`], which fails a read or write
//!   with `TimedOut` once nothing has moved for the idle time: a slow-loris client or a
//!   half-open connection is cut whatever the protocol code is waiting for, hyper and
//!   TLS included.
//! - Lines are read with [`read_line`], which never buffers more than its cap.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How much one service may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; the next one is closed on accept.
    pub max_conns: usize,
    /// Longest silence (no byte read or written) before the connection is cut.
    pub idle: Duration,
    /// Longest life of one connection.
    pub total: Duration,
    /// Longest protocol line or header block.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 256,
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
            max_line: 8192,
        }
    }
}

/// One accepted connection as a service handler gets it.
#[derive(Debug)]
pub struct Conn {
    /// The stream, with the idle timeout applied.
    pub stream: Idle<TcpStream>,
    /// The attacker's address.
    pub peer: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
}

/// The future a handler returns for one connection.
pub type ConnFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service's per-connection handler.
pub type Handler = Arc<dyn Fn(Conn) -> ConnFuture + Send + Sync>;

/// Accepts on `listener` until `shutdown`, running `handler` for each connection within
/// `limits`; then waits up to two seconds for open connections to finish.
pub async fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_conns));
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            // Out of descriptors or a reset before accept: back off, keep serving.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the cap: closing now keeps the cost of a flood at one descriptor.
            drop(stream);
            continue;
        };
        let local = stream.local_addr().unwrap_or(peer);
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            stream: Idle::new(stream, limits.idle),
            peer,
            local,
        };
        let work = handler(conn);
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = stop.cancelled() => {}
                _ = tokio::time::timeout(limits.total, work) => {}
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
}

/// A stream whose reads and writes fail with `TimedOut` after `idle` without progress.
#[derive(Debug)]
pub struct Idle<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: S, idle: Duration) -> Self {
        Idle {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn progress(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What [`read_line`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line without its `\n` (and `\r`).
    Line(Vec<u8>),
    /// More than the cap arrived without a line feed; the caller closes the connection,
    /// since the rest of that line cannot be told from the next one.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one `\n`-terminated line of at most `max` bytes, never buffering more.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > max {
            let n = available.len();
            reader.consume(n);
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        match done {
            Some(n) => {
                reader.consume(n);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Line(line));
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[tokio::test]
    async fn lines_are_capped() {
        let data = b"USER a\r\nxxxxxxxxxxxxxxxxxxxx\nlast".to_vec();
        let mut r = BufReader::with_capacity(4, &data[..]);
        assert_eq!(
            read_line(&mut r, 10).await.ok(),
            Some(Line::Line(b"USER a".to_vec()))
        );
        assert_eq!(read_line(&mut r, 10).await.ok(), Some(Line::TooLong));
        let mut r = BufReader::new(&b"partial"[..]);
        assert_eq!(read_line(&mut r, 10).await.ok(), Some(Line::Eof));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut idle = Idle::new(a, Duration::from_secs(5));
        b.write_all(b"hi").await.expect("write");
        let mut buf = [0u8; 2];
        idle.read_exact(&mut buf).await.expect("data arrives");
        let e = idle.read(&mut buf).await.expect_err("times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
