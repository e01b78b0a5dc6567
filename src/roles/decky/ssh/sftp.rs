//! A minimal SFTP version 3 server (draft-ietf-secsh-filexfer-02), enough for OpenSSH's
//! `sftp put` and `scp` (which speaks sftp since 9.0): `REALPATH`, `STAT`/`LSTAT`/`FSTAT`,
//! `OPEN`/`WRITE`/`CLOSE`, `OPENDIR`/`READDIR`, and an `OK` for the attribute and
//! directory changes a client makes after an upload. Reads of bait files are not served:
//! downloads get "No such file". A finished upload is handed back to the session for
//! [`super::capture`].
//!
//! Every packet is capped at OpenSSH's `SFTP_MAX_MSG_LENGTH`; a larger one ends the
//! subsystem, as sftp-server does.
use std::collections::BTreeMap;

use super::capture::Upload;

/// sftp-server's `SFTP_MAX_MSG_LENGTH`.
const MAX_MSG: usize = 256 * 1024;
/// Most open handles at once.
const MAX_HANDLES: usize = 64;

const INIT: u8 = 1;
const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const LSTAT: u8 = 7;
const FSTAT: u8 = 8;
const SETSTAT: u8 = 9;
const FSETSTAT: u8 = 10;
const OPENDIR: u8 = 11;
const READDIR: u8 = 12;
const REMOVE: u8 = 13;
const MKDIR: u8 = 14;
const RMDIR: u8 = 15;
const REALPATH: u8 = 16;
const STAT: u8 = 17;
const RENAME: u8 = 18;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const NAME: u8 = 104;
const ATTRS: u8 = 105;

const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;
const FX_NO_SUCH_FILE: u32 = 2;
const FX_FAILURE: u32 = 4;
const FX_BAD_MESSAGE: u32 = 5;
const FX_OP_UNSUPPORTED: u32 = 8;

const OPEN_WRITE: u32 = 0x02;
const OPEN_CREAT: u32 = 0x08;

/// Directories every Linux box has, besides the user's home.
const DIRS: &[&str] = &[
    "/",
    "/tmp",
    "/var",
    "/var/tmp",
    "/dev",
    "/dev/shm",
    "/etc",
    "/root",
    "/home",
    "/opt",
    "/usr",
    "/usr/bin",
    "/usr/local",
    "/usr/local/bin",
    "/var/www",
    "/var/www/html",
];

enum Handle {
    File(Upload),
    Dir { listed: bool },
}

/// What one batch of client bytes produced.
#[derive(Default)]
pub struct Step {
    /// Reply packets to send.
    pub reply: Vec<u8>,
    /// Uploads closed.
    pub done: Vec<Upload>,
    /// The client broke the protocol: close the channel.
    pub fail: bool,
}

/// One sftp subsystem channel.
pub struct Sftp {
    home: String,
    buf: Vec<u8>,
    handles: BTreeMap<u32, Handle>,
    next: u32,
    files: BTreeMap<String, u64>,
}

impl Sftp {
    /// A server whose relative paths start at `home`.
    pub fn new(home: String) -> Self {
        Sftp {
            home,
            buf: Vec::new(),
            handles: BTreeMap::new(),
            next: 0,
            files: BTreeMap::new(),
        }
    }

    /// Whether `path` (absolute, normalised) is a directory here.
    pub fn is_dir(home: &str, path: &str) -> bool {
        DIRS.contains(&path) || path == home
    }

    /// Feeds client bytes; complete packets are answered.
    pub fn feed(&mut self, data: &[u8]) -> Step {
        let mut step = Step::default();
        self.buf.extend_from_slice(data);
        while let Some(len) = self.buf.get(..4).map(|b| be32(b) as usize) {
            if len == 0 || len > MAX_MSG {
                step.fail = true;
                break;
            }
            if self.buf.len() < 4 + len {
                break;
            }
            let packet: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
            if !self.packet(&packet, &mut step) {
                step.fail = true;
                break;
            }
        }
        step
    }

    fn packet(&mut self, p: &[u8], step: &mut Step) -> bool {
        let mut r = Reader(p);
        let Some(kind) = r.u8() else { return false };
        if kind == INIT {
            let mut out = vec![VERSION];
            out.extend_from_slice(&3u32.to_be_bytes());
            frame(&mut step.reply, &out);
            return true;
        }
        let Some(id) = r.u32() else { return false };
        let reply = self.request(kind, id, &mut r, step);
        match reply {
            Some(out) => {
                frame(&mut step.reply, &out);
                true
            }
            None => {
                frame(&mut step.reply, &status(id, FX_BAD_MESSAGE, "Bad message"));
                true
            }
        }
    }

    fn request(
        &mut self,
        kind: u8,
        id: u32,
        r: &mut Reader<'_>,
        step: &mut Step,
    ) -> Option<Vec<u8>> {
        Some(match kind {
            REALPATH => {
                let path = self.resolve(&r.string()?);
                name_reply(id, &path, &self.attrs_of(&path).unwrap_or_else(dir_attrs))
            }
            STAT | LSTAT => {
                let path = self.resolve(&r.string()?);
                match self.attrs_of(&path) {
                    Some(a) => attrs_reply(id, &a),
                    None => status(id, FX_NO_SUCH_FILE, "No such file"),
                }
            }
            FSTAT => match self.handles.get(&handle_id(&r.bytes()?)?) {
                Some(Handle::File(u)) => attrs_reply(id, &file_attrs(u.total)),
                Some(Handle::Dir { .. }) => attrs_reply(id, &dir_attrs()),
                None => status(id, FX_FAILURE, "Failure"),
            },
            OPEN => {
                let path = self.resolve(&r.string()?);
                let flags = r.u32()?;
                if flags & (OPEN_WRITE | OPEN_CREAT) == 0 {
                    return Some(status(id, FX_NO_SUCH_FILE, "No such file"));
                }
                self.open(id, Handle::File(Upload::new(path)))
            }
            OPENDIR => {
                let path = self.resolve(&r.string()?);
                if !Self::is_dir(&self.home, &path) {
                    return Some(status(id, FX_NO_SUCH_FILE, "No such file"));
                }
                self.open(id, Handle::Dir { listed: false })
            }
            READDIR => match self.handles.get_mut(&handle_id(&r.bytes()?)?) {
                Some(Handle::Dir { listed }) if !*listed => {
                    *listed = true;
                    let mut out = vec![NAME];
                    out.extend_from_slice(&id.to_be_bytes());
                    out.extend_from_slice(&2u32.to_be_bytes());
                    for n in [".", ".."] {
                        put_string(&mut out, n.as_bytes());
                        put_string(
                            &mut out,
                            format!("drwxr-xr-x    2 root     root         4096 Jan  1 00:00 {n}")
                                .as_bytes(),
                        );
                        out.extend_from_slice(&dir_attrs());
                    }
                    out
                }
                Some(Handle::Dir { .. }) => status(id, FX_EOF, "End of file"),
                _ => status(id, FX_FAILURE, "Failure"),
            },
            READ => status(id, FX_EOF, "End of file"),
            WRITE => {
                let h = handle_id(&r.bytes()?)?;
                let offset = r.u64()?;
                let data = r.bytes()?;
                match self.handles.get_mut(&h) {
                    Some(Handle::File(u)) => {
                        u.write_at(offset, &data);
                        status(id, FX_OK, "Success")
                    }
                    _ => status(id, FX_FAILURE, "Failure"),
                }
            }
            CLOSE => match self.handles.remove(&handle_id(&r.bytes()?)?) {
                Some(Handle::File(u)) => {
                    self.files.insert(u.path.clone(), u.total);
                    step.done.push(u);
                    status(id, FX_OK, "Success")
                }
                Some(Handle::Dir { .. }) => status(id, FX_OK, "Success"),
                None => status(id, FX_FAILURE, "Failure"),
            },
            SETSTAT | FSETSTAT | MKDIR | RMDIR | REMOVE | RENAME => status(id, FX_OK, "Success"),
            _ => status(id, FX_OP_UNSUPPORTED, "Operation unsupported"),
        })
    }

    fn open(&mut self, id: u32, handle: Handle) -> Vec<u8> {
        if self.handles.len() >= MAX_HANDLES {
            return status(id, FX_FAILURE, "Failure");
        }
        let h = self.next;
        self.next = self.next.wrapping_add(1);
        self.handles.insert(h, handle);
        let mut out = vec![HANDLE];
        out.extend_from_slice(&id.to_be_bytes());
        put_string(&mut out, h.to_string().as_bytes());
        out
    }

    fn attrs_of(&self, path: &str) -> Option<Vec<u8>> {
        if Self::is_dir(&self.home, path) {
            Some(dir_attrs())
        } else {
            self.files.get(path).map(|size| file_attrs(*size))
        }
    }

    /// `path` made absolute (relative to the home directory) and normalised.
    fn resolve(&self, path: &[u8]) -> String {
        let path = String::from_utf8_lossy(path);
        let joined = if path.starts_with('/') {
            path.into_owned()
        } else {
            format!("{}/{path}", self.home)
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }
}

fn handle_id(h: &[u8]) -> Option<u32> {
    std::str::from_utf8(h).ok()?.parse().ok()
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(payload);
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

fn status(id: u32, code: u32, msg: &str) -> Vec<u8> {
    let mut out = vec![STATUS];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    put_string(&mut out, msg.as_bytes());
    put_string(&mut out, b"");
    out
}

/// Attributes: size, uid/gid 0, permissions, times (flags 0x0f).
fn attrs(size: u64, mode: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&0x0fu32.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&mode.to_be_bytes());
    let t = u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out
}

fn dir_attrs() -> Vec<u8> {
    attrs(4096, 0o040_755)
}

fn file_attrs(size: u64) -> Vec<u8> {
    attrs(size, 0o100_644)
}

fn attrs_reply(id: u32, a: &[u8]) -> Vec<u8> {
    let mut out = vec![ATTRS];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(a);
    out
}

fn name_reply(id: u32, path: &str, a: &[u8]) -> Vec<u8> {
    let mut out = vec![NAME];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, path.as_bytes());
    put_string(&mut out, path.as_bytes());
    out.extend_from_slice(a);
    out
}

/// A cursor over one packet; every read is checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.0.get(..4)?;
        let v = be32(b);
        self.0 = &self.0[4..];
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let hi = u64::from(self.u32()?);
        let lo = u64::from(self.u32()?);
        Some(hi << 32 | lo)
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        let b = self.0.get(..n)?.to_vec();
        self.0 = &self.0[n..];
        Some(b)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, id: u32, body: &[u8]) -> Vec<u8> {
        let mut p = vec![kind];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(body);
        let mut out = Vec::new();
        frame(&mut out, &p);
        out
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_string(&mut out, s);
        out
    }

    #[test]
    fn an_upload_goes_through() {
        let mut s = Sftp::new("/root".to_owned());
        let step = s.feed(&[0, 0, 0, 5, INIT, 0, 0, 0, 3]);
        assert_eq!(step.reply, [0, 0, 0, 5, VERSION, 0, 0, 0, 3]);
        let step = s.feed(&packet(REALPATH, 1, &string(b".")));
        assert!(step.reply.windows(5).any(|w| w == b"/root"));
        let mut open = string(b"/tmp/x.sh");
        open.extend_from_slice(&(OPEN_WRITE | OPEN_CREAT).to_be_bytes());
        open.extend_from_slice(&0u32.to_be_bytes());
        let step = s.feed(&packet(OPEN, 2, &open));
        assert_eq!(step.reply[4], HANDLE);
        let mut write = string(b"0");
        write.extend_from_slice(&0u64.to_be_bytes());
        write.extend_from_slice(&string(b"#!/bin/sh\n"));
        // A packet split across two channel messages still parses.
        let w = packet(WRITE, 3, &write);
        assert!(s.feed(&w[..7]).reply.is_empty());
        let step = s.feed(&w[7..]);
        assert_eq!(step.reply[4], STATUS);
        let step = s.feed(&packet(CLOSE, 4, &string(b"0")));
        assert_eq!(step.done.len(), 1);
        assert_eq!(step.done[0].kept, b"#!/bin/sh\n");
        assert_eq!(step.done[0].path, "/tmp/x.sh");
        assert!(s.feed(&[0xff, 0xff, 0xff, 0xff, 1]).fail);
    }
}
