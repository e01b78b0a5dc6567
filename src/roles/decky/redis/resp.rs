//! RESP framing: commands in (multibulk arrays or inline lines), replies out.
//!
//! The parser works on the bytes buffered so far and says [`Parse::Incomplete`] when a
//! command is not all there yet, like mini-redis's frame parser. Limits are redis's own
//! error texts at decnet's smaller bounds: at most [`MAX_ARGS`] arguments, each at most
//! [`MAX_BULK`] bytes, inline lines at most [`MAX_INLINE`] bytes. After a protocol error
//! the server replies and closes, as redis does.

/// Most arguments accepted in one command (redis allows 1M; nobody legitimate needs
/// more than this from a honeypot).
pub const MAX_ARGS: usize = 1024;
/// Largest argument accepted.
pub const MAX_BULK: usize = 64 * 1024;
/// Largest inline command line.
pub const MAX_INLINE: usize = 64 * 1024;

/// What the buffered bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not a whole command yet: read more.
    Incomplete,
    /// One command (possibly empty, which redis ignores) and the bytes it took.
    Command(Vec<Vec<u8>>, usize),
    /// A protocol error with redis's text; reply and close.
    Error(String),
}

/// Parses the first command in `buf`.
pub fn parse(buf: &[u8]) -> Parse {
    match buf.first() {
        None => Parse::Incomplete,
        Some(b'*') => multibulk(buf),
        Some(_) => inline(buf),
    }
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..i], from + i + 2))
}

fn number(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn multibulk(buf: &[u8]) -> Parse {
    let Some((count, mut pos)) = line(buf, 1) else {
        return if buf.len() > 64 {
            Parse::Error("Protocol error: too big mbulk count string".into())
        } else {
            Parse::Incomplete
        };
    };
    let count = match number(count) {
        Some(n) if n <= 0 => return Parse::Command(Vec::new(), pos),
        Some(n) if usize::try_from(n).is_ok_and(|n| n <= MAX_ARGS) => {
            usize::try_from(n).unwrap_or(0)
        }
        _ => return Parse::Error("Protocol error: invalid multibulk length".into()),
    };
    let mut args = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        match buf.get(pos) {
            None => return Parse::Incomplete,
            Some(b'$') => {}
            Some(&c) => {
                return Parse::Error(format!(
                    "Protocol error: expected '$', got '{}'",
                    char::from(c)
                ));
            }
        }
        let Some((len, start)) = line(buf, pos + 1) else {
            return if buf.len() - pos > 64 {
                Parse::Error("Protocol error: too big bulk count string".into())
            } else {
                Parse::Incomplete
            };
        };
        let len = match number(len).and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= MAX_BULK => n,
            _ => return Parse::Error("Protocol error: invalid bulk length".into()),
        };
        let end = start + len;
        if buf.len() < end + 2 {
            return Parse::Incomplete;
        }
        args.push(buf[start..end].to_vec());
        pos = end + 2;
    }
    Parse::Command(args, pos)
}

fn inline(buf: &[u8]) -> Parse {
    let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Parse::Error("Protocol error: too big inline request".into())
        } else {
            Parse::Incomplete
        };
    };
    let text = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let args: Vec<Vec<u8>> = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .take(MAX_ARGS)
        .map(<[u8]>::to_vec)
        .collect();
    Parse::Command(args, nl + 1)
}

/// A reply, encoded with [`Reply::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`.
    Simple(String),
    /// `-text` (the text includes the error code, e.g. `ERR …`).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` + bytes.
    Bulk(Vec<u8>),
    /// `$-1`.
    Nil,
    /// `*n` + items.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// A `-ERR …` reply.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply::Error(format!("ERR {}", text.into()))
    }

    /// A bulk string from text.
    pub fn bulk(text: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(text.as_ref().to_vec())
    }

    /// Appends the wire form to `out`; error and simple texts lose CR and LF, which would
    /// break the framing (redis maps them to spaces too).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        match self {
            Reply::Simple(s) => out.extend_from_slice(format!("+{}\r\n", clean(s)).as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{}\r\n", clean(s)).as_bytes()),
            Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(b) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibulk_inline_and_partial() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\n";
        let Parse::Command(args, used) = parse(full) else {
            panic!("a command");
        };
        assert_eq!(args, [b"GET".to_vec(), b"key".to_vec()]);
        assert_eq!(
            parse(&full[used..]),
            Parse::Command(vec![b"PING".to_vec()], 6)
        );
        for cut in 1..used {
            assert_eq!(parse(&full[..cut]), Parse::Incomplete, "cut at {cut}");
        }
        assert_eq!(parse(b"*0\r\n"), Parse::Command(Vec::new(), 4));
    }

    #[test]
    fn limits_use_redis_texts() {
        assert_eq!(
            parse(b"*99999999\r\n"),
            Parse::Error("Protocol error: invalid multibulk length".into())
        );
        assert_eq!(
            parse(b"*1\r\n$999999999\r\n"),
            Parse::Error("Protocol error: invalid bulk length".into())
        );
        assert_eq!(
            parse(b"*1\r\n:1\r\n"),
            Parse::Error("Protocol error: expected '$', got ':'".into())
        );
        assert!(matches!(
            parse(&vec![b'a'; MAX_INLINE + 1]),
            Parse::Error(_)
        ));
    }

    #[test]
    fn replies_encode() {
        let mut out = Vec::new();
        Reply::Array(vec![
            Reply::bulk("a"),
            Reply::Nil,
            Reply::Integer(-1),
            Reply::err("x\r\ny"),
        ])
        .encode(&mut out);
        assert_eq!(out, b"*4\r\n$1\r\na\r\n$-1\r\n:-1\r\n-ERR x  y\r\n");
    }
}
