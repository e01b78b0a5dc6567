//! Command output on stdout, with a closed pipe told apart from every other broken pipe.
//!
//! `decnet logs tail | head` closes stdout early; that is the operator's choice, so the
//! command ends with success. An EPIPE from a socket (the bus, a TLS peer, the Docker
//! engine) is a runtime failure like any other. Both are `io::ErrorKind::BrokenPipe`, so
//! [`Stdout`] tags its own: the error it returns carries a [`StdoutClosed`] payload that
//! [`is_stdout_closed`] recognises through any `anyhow` context. Writers that wrap the
//! `io::Error` without exposing it as a source (`serde_json::to_writer`) would hide it,
//! so commands render JSON to a string first and write that.
use std::io::{self, Write};

use thiserror::Error;

/// The payload of the error [`Stdout`] returns when the reader of stdout has gone.
#[derive(Debug, Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// A writer for command output whose broken-pipe errors say they came from stdout.
#[derive(Debug)]
pub struct Stdout<W>(pub W);

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(tag)
    }
}

/// Marks a broken pipe as stdout's; other errors pass unchanged.
fn tag(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        err
    }
}

/// Whether `err` (or any cause in its chain) is stdout's reader going away.
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone, as a pipe or a socket would report it.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn only_stdouts_broken_pipe_is_recognised() {
        let err = writeln!(Stdout(Closed), "x").expect_err("closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::from(err).context("printing the log");
        assert!(is_stdout_closed(&err));

        let socket = writeln!(Closed, "x").expect_err("closed");
        let err = anyhow::Error::from(socket).context("sending to the bus");
        assert!(!is_stdout_closed(&err));
    }
}
