//! The identification exchange, done here rather than in russh so that every odd first
//! line gets the answer the claimed sshd gives: OpenSSH 8.0 and later (`kex.c`,
//! `kex_exchange_identification`) reject any line before `SSH-` with "Invalid SSH
//! identification string.", SSH-1 with "Protocol major versions differ.", and close on
//! `Probe-*` and scanner versions without a word; 7.x (`sshd.c`) answers "Protocol
//! mismatch." and reads at most 255 bytes.
//!
//! Once a client line passes, [`Replay`] hands the stream to russh as if untouched: it
//! replays the client's line and whatever was read after it, and swallows russh's own
//! copy of the banner that was already sent.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};

/// OpenSSH's `SSH_MAX_BANNER_LEN`.
const MAX_BANNER: usize = 8192;
/// The line buffer of OpenSSH 7.x's `sshd_exchange_identification`, less its NUL.
const LEGACY_MAX: usize = 255;

/// What the client's first line calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A usable SSH-2 identification (without CR LF): go on to key exchange.
    Proceed(Vec<u8>),
    /// Send this text and close.
    Refuse(&'static str, Vec<u8>),
    /// Close without a word (a probe or scanner, or the client went away).
    Close(Vec<u8>),
}

/// Reads the client's identification line and judges it as the claimed sshd would;
/// `legacy` selects OpenSSH 7.x's rules.
pub async fn read<R: AsyncBufRead + Unpin>(reader: &mut R, legacy: bool) -> io::Result<Verdict> {
    let max = if legacy { LEGACY_MAX } else { MAX_BANNER };
    let mut line = Vec::new();
    let mut expect_nl = false;
    loop {
        let buf = reader.fill_buf().await?;
        let Some(&c) = buf.first() else {
            return Ok(Verdict::Close(line));
        };
        reader.consume(1);
        match c {
            b'\r' if !legacy => {
                expect_nl = true;
                continue;
            }
            b'\r' => continue,
            b'\n' => break,
            _ => {}
        }
        if !legacy && (c == 0 || expect_nl) {
            return Ok(Verdict::Refuse(INVALID, line));
        }
        line.push(c);
        if line.len() > max {
            if legacy {
                break;
            }
            return Ok(Verdict::Refuse(INVALID, line));
        }
    }
    Ok(judge(line, legacy))
}

const INVALID: &str = "Invalid SSH identification string.";
const MAJOR: &str = "Protocol major versions differ.";

fn judge(line: Vec<u8>, legacy: bool) -> Verdict {
    // 7.x lets any line through to the version parse below; 8.0 on wants `SSH-` first.
    let ssh_line = line.len() > 4 && line.starts_with(b"SSH-");
    if !(legacy || ssh_line) {
        return Verdict::Refuse(INVALID, line);
    }
    let Some((major, minor, software)) = parse(&line) else {
        let text = if legacy {
            "Protocol mismatch."
        } else {
            INVALID
        };
        return Verdict::Refuse(text, line);
    };
    if !(major == 2 || (major == 1 && minor == 99)) {
        return Verdict::Refuse(MAJOR, line);
    }
    // compat.c: SSH_BUG_PROBE and SSH_BUG_SCANNER end the connection quietly.
    if software.starts_with(b"Probe-")
        || software
            .windows(b"SSH_Version_Mapper".len())
            .any(|w| w == b"SSH_Version_Mapper")
    {
        return Verdict::Close(line);
    }
    Verdict::Proceed(line)
}

/// `sscanf(line, "SSH-%d.%d-%[^\n]")`: the versions and the (non-empty) rest.
fn parse(line: &[u8]) -> Option<(i64, i64, &[u8])> {
    let rest = line.strip_prefix(b"SSH-")?;
    let (major, rest) = number(rest)?;
    let rest = rest.strip_prefix(b".")?;
    let (minor, rest) = number(rest)?;
    let software = rest.strip_prefix(b"-")?;
    (!software.is_empty()).then_some((major, minor, software))
}

/// A `%d`: optional white space and sign, then at least one digit.
fn number(s: &[u8]) -> Option<(i64, &[u8])> {
    let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
    let s = &s[start..];
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let value = s[..digits].iter().fold(0i64, |acc, d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some((if negative { -value } else { value }, &s[digits..]))
}

/// A stream that first yields `prefix`, and drops the first `skip` bytes written.
#[derive(Debug)]
pub struct Replay<S> {
    inner: S,
    prefix: Vec<u8>,
    pos: usize,
    skip: usize,
}

impl<S> Replay<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, prefix: Vec<u8>, skip: usize) -> Self {
        Replay {
            inner,
            prefix,
            pos: 0,
            skip,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::BufReader;

    use super::*;

    async fn verdict(input: &[u8], legacy: bool) -> Verdict {
        read(&mut BufReader::new(input), legacy)
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn first_lines_are_judged_like_openssh() {
        assert_eq!(
            verdict(b"SSH-2.0-OpenSSH_9.6\r\nrest", false).await,
            Verdict::Proceed(b"SSH-2.0-OpenSSH_9.6".to_vec())
        );
        assert!(matches!(
            verdict(b"SSH-1.5-x\r\n", false).await,
            Verdict::Refuse(MAJOR, _)
        ));
        assert!(matches!(
            verdict(b"SSH-1.99-x\n", false).await,
            Verdict::Proceed(_)
        ));
        assert!(matches!(
            verdict(b"GET / HTTP/1.1\r\n", false).await,
            Verdict::Refuse(INVALID, _)
        ));
        assert!(matches!(
            verdict(b"SSH-2.0-a\rb\n", false).await,
            Verdict::Refuse(INVALID, _)
        ));
        assert!(matches!(
            verdict(b"SSH-2.0-Probe-x\n", false).await,
            Verdict::Close(_)
        ));
        assert!(matches!(
            verdict(b"SSH-2.0", false).await,
            Verdict::Close(_)
        ));
        assert!(matches!(
            verdict(b"hello\n", true).await,
            Verdict::Refuse("Protocol mismatch.", _)
        ));
        let long = vec![b'A'; MAX_BANNER + 10];
        assert!(matches!(
            verdict(&long, false).await,
            Verdict::Refuse(INVALID, _)
        ));
    }
}
