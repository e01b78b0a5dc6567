//! The DATA phase: reading a message up to its `.` line, keeping it in the quarantine,
//! and summing it up for the `message_stored` event.
//!
//! The message is never held whole in memory: it is dot-unstuffed and streamed to a
//! temporary file in the quarantine directory (`SMTP_QUARANTINE_DIR`) while its SHA-256
//! is computed, then renamed to the quarantine name of engine.md §2.8
//! (`<UTC time>_<sha256[:12]>_<queue id>.eml`). At most [`MAX_STORED`] bytes are kept;
//! the rest is read, counted and dropped. Only the first [`HEAD_KEPT`] bytes stay in
//! memory, for the headers, attachment names and URLs the event reports. Nothing is
//! ever sent on: the honeypot has no outbound path.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::Io;
use crate::roles::decky::quarantine;

/// Most bytes of one message kept in the quarantine.
pub const MAX_STORED: u64 = 10 * 1024 * 1024;
/// Bytes of a message kept in memory for the summary.
pub const HEAD_KEPT: usize = 64 * 1024;
/// Longest piece of a data line handled at once; longer lines arrive in pieces.
const PIECE: usize = 4096;
/// Most URLs and attachment names an event lists.
const MAX_LISTED: usize = 20;
/// Longest header value an event carries.
const MAX_HEADER: usize = 256;

/// A message being received: spooled to the quarantine and hashed as it arrives.
#[derive(Debug)]
pub struct Spool {
    file: Option<(PathBuf, tokio::fs::File)>,
    hasher: Sha256,
    /// The first [`HEAD_KEPT`] bytes.
    pub head: Vec<u8>,
    /// Bytes received (after dot-unstuffing).
    pub size: u64,
    kept: u64,
    /// Why the message could not be kept, if it could not.
    pub store_error: Option<String>,
}

impl Spool {
    /// A spool writing into `dir` (hashing only when there is none).
    pub async fn open(dir: Option<&Path>, queue_id: &str) -> Spool {
        let mut spool = Spool {
            file: None,
            hasher: Sha256::new(),
            head: Vec::new(),
            size: 0,
            kept: 0,
            store_error: None,
        };
        if let Some(dir) = dir {
            let path = dir.join(format!(".incoming-{queue_id}"));
            let opened = async {
                tokio::fs::create_dir_all(dir).await?;
                tokio::fs::File::create(&path).await
            };
            match opened.await {
                Ok(file) => spool.file = Some((path, file)),
                Err(e) => spool.store_error = Some(e.to_string()),
            }
        }
        spool
    }

    /// Adds `data` to the message; past [`MAX_STORED`] it is only counted.
    pub async fn write(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        let room = usize::try_from(MAX_STORED.saturating_sub(self.kept)).unwrap_or(usize::MAX);
        let keep = &data[..data.len().min(room)];
        if keep.is_empty() {
            return;
        }
        self.kept += keep.len() as u64;
        self.hasher.update(keep);
        let head_room = HEAD_KEPT.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(&keep[..keep.len().min(head_room)]);
        if let Some((path, file)) = self.file.as_mut()
            && let Err(e) = file.write_all(keep).await
        {
            self.store_error = Some(e.to_string());
            let _ = tokio::fs::remove_file(&*path).await;
            self.file = None;
        }
    }

    /// Whether more arrived than was kept.
    pub fn truncated(&self) -> bool {
        self.size > self.kept
    }

    /// Ends the message: moves it to `dir` under its quarantine name (returned with the
    /// SHA-256 of the kept bytes), or deletes it when `keep` is false.
    pub async fn finish(mut self, dir: Option<&Path>, queue_id: &str, keep: bool) -> Stored {
        let sha256 = hex::encode(self.hasher.clone().finalize());
        let stored_as = stored_as(&sha256, queue_id);
        if let Some((path, mut file)) = self.file.take() {
            let flushed = file.flush().await;
            drop(file);
            match (dir, flushed) {
                (Some(dir), Ok(())) if keep => {
                    if let Err(e) = tokio::fs::rename(&path, dir.join(&stored_as)).await {
                        self.store_error = Some(e.to_string());
                        let _ = tokio::fs::remove_file(&path).await;
                    }
                }
                (_, flushed) => {
                    if let Err(e) = flushed {
                        self.store_error = Some(e.to_string());
                    }
                    let _ = tokio::fs::remove_file(&path).await;
                }
            }
        }
        Stored {
            stored_as,
            sha256,
            truncated: self.truncated(),
            size: self.size,
            summary: summarize(&self.head),
            store_error: self.store_error,
        }
    }
}

/// A message at its end, as the `message_stored` event reports it.
#[derive(Debug)]
pub struct Stored {
    /// Its quarantine name.
    pub stored_as: String,
    /// SHA-256 (hex) of the bytes kept.
    pub sha256: String,
    /// Whether more arrived than was kept.
    pub truncated: bool,
    /// Bytes received.
    pub size: u64,
    /// Headers, attachments, URLs.
    pub summary: Summary,
    /// Why it could not be kept, if it could not.
    pub store_error: Option<String>,
}

/// Reads one data piece: up to and including `\n`, or [`PIECE`] bytes. Empty at EOF.
async fn piece(io: &mut Io, out: &mut Vec<u8>) -> std::io::Result<()> {
    out.clear();
    while out.len() < PIECE {
        let available = io.fill_buf().await?;
        if available.is_empty() {
            return Ok(());
        }
        let room = PIECE - out.len();
        let window = &available[..available.len().min(room)];
        match window.iter().position(|b| *b == b'\n') {
            Some(i) => {
                out.extend_from_slice(&window[..=i]);
                io.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = window.len();
                out.extend_from_slice(window);
                io.consume(n);
            }
        }
    }
    Ok(())
}

/// Reads a DATA body up to its `.` line into `spool`, undoing dot-stuffing; false when
/// the client went away (or fell silent) first.
pub async fn read_data(io: &mut Io, spool: &mut Spool) -> bool {
    let mut at_line_start = true;
    let mut buf = Vec::with_capacity(PIECE);
    loop {
        if piece(io, &mut buf).await.is_err() || buf.is_empty() {
            return false;
        }
        let mut data = &buf[..];
        if at_line_start && data.first() == Some(&b'.') {
            if data == b".\r\n" || data == b".\n" {
                return true;
            }
            data = &data[1..];
        }
        at_line_start = buf.last() == Some(&b'\n');
        spool.write(data).await;
    }
}

/// Reads exactly `len` bytes of a BDAT chunk into `spool`; false when the client went
/// away first.
pub async fn read_chunk(io: &mut Io, spool: Option<&mut Spool>, len: u64) -> bool {
    let mut left = len;
    let mut spool = spool;
    while left > 0 {
        let available = match io.fill_buf().await {
            Ok(a) if !a.is_empty() => a,
            _ => return false,
        };
        let n = available
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let chunk = available[..n].to_vec();
        io.consume(n);
        left -= n as u64;
        if let Some(s) = spool.as_deref_mut() {
            s.write(&chunk).await;
        }
    }
    true
}

/// The quarantine name of a message (engine.md §2.8).
fn stored_as(sha256: &str, queue_id: &str) -> String {
    quarantine::stored_name(
        OffsetDateTime::now_utc(),
        sha256,
        &format!("{queue_id}.eml"),
    )
}

/// The headers, attachments and URLs of a message, from its first bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `Subject:`.
    pub subject: String,
    /// `From:`.
    pub from: String,
    /// `To:`.
    pub to: String,
    /// `Content-Type:`.
    pub content_type: String,
    /// Attachment file names.
    pub attachments: Vec<String>,
    /// Parts marked as attachments (named or not).
    pub attachment_count: usize,
    /// Distinct http(s) URLs.
    pub urls: Vec<String>,
}

/// Sums up `head` (the first bytes of a message).
pub fn summarize(head: &[u8]) -> Summary {
    let text = String::from_utf8_lossy(head);
    let header_end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    let mut summary = Summary::default();
    let mut current: Option<(String, String)> = None;
    let mut headers = Vec::new();
    for line in text[..header_end].lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some(done) = current.take() {
            headers.push(done);
        }
        if let Some((name, value)) = line.split_once(':') {
            current = Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    headers.extend(current);
    for (name, value) in headers {
        let slot = match name.as_str() {
            "subject" => &mut summary.subject,
            "from" => &mut summary.from,
            "to" => &mut summary.to,
            "content-type" => &mut summary.content_type,
            _ => continue,
        };
        if slot.is_empty() {
            *slot = crate::roles::decky::events::cap_str(&value, MAX_HEADER).to_owned();
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("content-disposition:") {
        let start = at + i;
        let rest = &lower[start..];
        let line_end = rest.find("\n\n").or_else(|| rest.find("\r\n\r\n"));
        let block = crate::roles::decky::events::cap_str(
            &text[start..start + line_end.unwrap_or(rest.len())],
            512,
        );
        if block.to_ascii_lowercase().contains("attachment") {
            summary.attachment_count += 1;
            if let Some(name) = filename(block)
                && summary.attachments.len() < MAX_LISTED
            {
                summary.attachments.push(name);
            }
        }
        at = start + "content-disposition:".len();
    }
    for scheme in ["http://", "https://"] {
        let mut at = 0;
        while let Some(i) = lower[at..].find(scheme) {
            let start = at + i;
            let end = text[start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
                .map_or(text.len(), |e| start + e);
            let url = crate::roles::decky::events::cap_str(&text[start..end], 512).to_owned();
            if !summary.urls.contains(&url) && summary.urls.len() < MAX_LISTED {
                summary.urls.push(url);
            }
            at = end.max(start + scheme.len());
        }
    }
    summary
}

fn filename(block: &str) -> Option<String> {
    let lower = block.to_ascii_lowercase();
    let i = lower.find("filename=")? + "filename=".len();
    let rest = block[i..].trim_start_matches('"');
    let end = rest.find(['"', ';', '\r', '\n']).unwrap_or(rest.len());
    Some(crate::roles::decky::events::cap_str(&rest[..end], MAX_HEADER).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_headers_attachments_and_urls() {
        let msg = b"From: Bob <bob@example.com>\r\nTo: alice@x\r\nSubject: Invoice\r\n  overdue\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPay at https://evil.example/pay?id=1 now, or http://x.test/a.\r\n--b\r\nContent-Disposition: attachment; filename=\"inv.pdf.exe\"\r\n\r\nMZ\r\n--b--\r\n";
        let s = summarize(msg);
        assert_eq!(s.subject, "Invoice overdue");
        assert_eq!(s.from, "Bob <bob@example.com>");
        assert_eq!(s.to, "alice@x");
        assert!(s.content_type.starts_with("multipart/mixed"));
        assert_eq!(s.attachment_count, 1);
        assert_eq!(s.attachments, vec!["inv.pdf.exe".to_owned()]);
        assert_eq!(
            s.urls,
            vec![
                "http://x.test/a.".to_owned(),
                "https://evil.example/pay?id=1".to_owned()
            ]
        );
        assert_eq!(summarize(b"\xff\xfe garbage"), Summary::default());
    }
}
