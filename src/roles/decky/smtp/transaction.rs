//! The mail transaction: MAIL, RCPT, VRFY, ETRN, DATA and BDAT, each with Postfix's
//! checks and replies, and the end of a message ([`Session::deliver`]).
use std::sync::atomic::Ordering;

use super::envelope::{PathError, domain, parse_path};
use super::message::{self, Spool};
use super::{RCPT_LIMIT, RCPT_LISTED, Session, cap};

impl Session {
    pub(super) async fn mail(&mut self, args: &str) {
        if self.mail_from.is_some() {
            self.fail("503 5.5.1 Error: nested MAIL command").await;
            return;
        }
        let (addr, params) = match parse_path(args, "FROM:") {
            Ok(p) => p,
            Err(PathError::Syntax) => {
                self.fail("501 5.5.4 Syntax: MAIL FROM:<address>").await;
                return;
            }
            Err(PathError::Address) => {
                self.fail("501 5.1.7 Bad sender address syntax").await;
                return;
            }
        };
        let mut size = 0u64;
        for p in params {
            let upper = p.to_ascii_uppercase();
            if let Some(n) = upper.strip_prefix("SIZE=") {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    self.fail("501 5.5.4 Bad message size syntax").await;
                    return;
                }
                let Ok(n) = n.parse::<i64>() else {
                    self.fail("552 5.3.4 Message size exceeds file system imposed limit")
                        .await;
                    return;
                };
                size = n.unsigned_abs();
            } else if !(matches!(upper.as_str(), "BODY=8BITMIME" | "BODY=7BIT")
                || (upper == "SMTPUTF8" && self.state.postfix.modern_ehlo)
                || upper.starts_with("AUTH=")
                || upper.starts_with("ENVID=")
                || matches!(upper.as_str(), "RET=FULL" | "RET=HDRS"))
            {
                self.fail(&format!("555 5.5.4 Unsupported option: {}", cap(p)))
                    .await;
                return;
            }
        }
        if size > self.state.size_limit {
            self.fail("552 5.3.4 Message size exceeds fixed limit")
                .await;
            return;
        }
        self.emit(
            self.event("mail_from")
                .param("value", cap(&addr))
                .param("domain", cap(&domain(&addr)))
                .param("mail_from", cap(args)),
        )
        .await;
        self.mail_from = Some(addr);
        self.reply("250 2.1.0 Ok").await;
    }

    pub(super) async fn rcpt(&mut self, args: &str) {
        if self.mail_from.is_none() {
            self.fail("503 5.5.1 Error: need MAIL command").await;
            return;
        }
        let (addr, params) = match parse_path(args, "TO:") {
            Ok(p) if !p.0.is_empty() => p,
            Err(PathError::Syntax) => {
                self.fail("501 5.5.4 Syntax: RCPT TO:<address>").await;
                return;
            }
            _ => {
                self.fail("501 5.1.3 Bad recipient address syntax").await;
                return;
            }
        };
        for p in params {
            let upper = p.to_ascii_uppercase();
            if !(upper.starts_with("NOTIFY=") || upper.starts_with("ORCPT=")) {
                self.fail(&format!("555 5.5.4 Unsupported option: {}", cap(p)))
                    .await;
                return;
            }
        }
        if self.rcpt_count >= RCPT_LIMIT {
            self.fail("452 4.5.3 Error: too many recipients").await;
            return;
        }
        let local_ip = self.local.ip().to_canonical().to_string();
        let checked = self.state.mailboxes.check(&addr, &local_ip);
        let name = if checked.is_ok() {
            "rcpt_to"
        } else {
            "rcpt_denied"
        };
        let event = self
            .event(name)
            .param("value", cap(&addr))
            .param("domain", cap(&domain(&addr)));
        match checked {
            Ok(()) => {
                self.emit(event).await;
                self.rcpt_count += 1;
                if self.rcpts.len() < RCPT_LISTED {
                    self.rcpts.push(cap(&addr).to_owned());
                }
                self.reply("250 2.1.5 Ok").await;
            }
            Err(reply) => {
                self.emit(event.param("reason", cap(&reply))).await;
                self.fail(&reply).await;
            }
        }
    }

    pub(super) async fn vrfy(&mut self, args: &str) {
        let modern = self.state.postfix.modern_ehlo;
        let mut words: Vec<&str> = args.split_whitespace().collect();
        if modern
            && words.len() > 1
            && words
                .last()
                .is_some_and(|w| w.eq_ignore_ascii_case("SMTPUTF8"))
        {
            words.pop();
        }
        if words.is_empty() {
            let tail = if modern { " [SMTPUTF8]" } else { "" };
            self.fail(&format!("501 5.5.4 Syntax: VRFY address{tail}"))
                .await;
            return;
        }
        let arg = words.join(" ");
        let addr = arg.trim_start_matches('<').trim_end_matches('>').to_owned();
        self.emit(self.event("vrfy").param("value", cap(&arg)))
            .await;
        if addr.is_empty() || addr.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
            self.fail("501 5.1.3 Bad recipient address syntax").await;
            return;
        }
        let local_ip = self.local.ip().to_canonical().to_string();
        match self.state.mailboxes.check(&addr, &local_ip) {
            Ok(()) => self.reply(&format!("252 2.0.0 {arg}")).await,
            Err(reply) => self.fail(&reply).await,
        }
    }

    pub(super) async fn etrn(&mut self, args: &str, argc: usize) {
        if self.mail_from.is_some() {
            self.fail("503 Error: MAIL transaction in progress").await;
        } else if argc != 2 {
            self.fail("500 Syntax: ETRN domain").await;
        } else {
            let site = args.trim_start_matches(['@', '#']);
            let valid = !site.is_empty()
                && site.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
                });
            if valid {
                self.fail(&format!("459 <{site}>: service unavailable"))
                    .await;
            } else {
                self.fail("501 Error: invalid parameter syntax").await;
            }
        }
    }

    /// A queue id in Postfix's short form: the microseconds in five hex digits, then the
    /// queue file's inode in hex.
    fn queue_id(&self) -> String {
        let micros = time::OffsetDateTime::now_utc().microsecond();
        let n = self.state.queued.fetch_add(1, Ordering::Relaxed);
        format!("{micros:05X}{:X}", self.state.inode + n * 7)
    }

    pub(super) async fn data(&mut self, argc: usize) -> bool {
        if self.bdat.is_some() {
            self.fail("503 5.5.1 Error: DATA after BDAT").await;
            return true;
        }
        if self.rcpt_count == 0 {
            let text = if self.mail_from.is_some() {
                "554 5.5.1 Error: no valid recipients"
            } else {
                "503 5.5.1 Error: need RCPT command"
            };
            self.fail(text).await;
            return true;
        }
        if argc != 1 {
            self.fail("501 5.5.4 Syntax: DATA").await;
            return true;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await;
        if !self.flush().await {
            return false;
        }
        let queue_id = self.queue_id();
        let mut spool = Spool::open(self.state.quarantine.as_deref(), &queue_id).await;
        let complete = message::read_data(&mut self.io, &mut spool).await;
        self.deliver(spool, &queue_id, complete, false).await;
        complete
    }

    pub(super) async fn bdat(&mut self, args: &str, argc: usize) -> bool {
        let mut words = args.split_whitespace();
        let count = words
            .next()
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
        let count = count.and_then(|c| c.parse::<u64>().ok());
        let last = match words.next() {
            None => Some(false),
            Some(w) => w.eq_ignore_ascii_case("LAST").then_some(true),
        };
        let (Some(count), Some(last), true) = (count, last, argc <= 3) else {
            self.fail("521 5.5.4 Syntax: BDAT count [LAST]").await;
            return false;
        };
        if self.bdat.is_none() && self.rcpt_count == 0 {
            if !message::read_chunk(&mut self.io, None, count).await {
                return false;
            }
            let text = if self.mail_from.is_some() {
                "554 5.5.1 Error: no valid recipients"
            } else {
                "503 5.5.1 Error: need RCPT command"
            };
            self.fail(text).await;
            return true;
        }
        if count == 0 && !last {
            let _ = message::read_chunk(&mut self.io, None, 0).await;
            self.fail("551 5.7.1 Null BDAT request").await;
            return true;
        }
        let (queue_id, mut spool) = match self.bdat.take() {
            Some(b) => b,
            None => {
                let id = self.queue_id();
                let spool = Spool::open(self.state.quarantine.as_deref(), &id).await;
                (id, spool)
            }
        };
        let complete = message::read_chunk(&mut self.io, Some(&mut spool), count).await;
        if !complete || last {
            self.deliver(spool, &queue_id, complete, true).await;
            return complete;
        }
        self.bdat = Some((queue_id, spool));
        self.reply(&format!("250 2.0.0 Ok: {count} bytes")).await;
        true
    }

    /// Ends a message: keeps it, logs it, and answers as Postfix would (`chunked` for
    /// BDAT, whose reply also counts the bytes; no reply when the client went away).
    pub(super) async fn deliver(
        &mut self,
        spool: Spool,
        queue_id: &str,
        complete: bool,
        chunked: bool,
    ) {
        let too_big = spool.size > self.state.size_limit;
        let dir = self.state.quarantine.clone();
        let stored = spool.finish(dir.as_deref(), queue_id, true).await;
        let mail_from = self.mail_from.clone().unwrap_or_default();
        let rcpt_json = serde_json::to_string(&self.rcpts).unwrap_or_default();
        let truncated = if stored.truncated { "1" } else { "0" };
        let s = &stored.summary;
        let mut m = self
            .event("message_stored")
            .param("queue_id", queue_id)
            .param("stored_as", stored.stored_as.clone())
            .param("sha256", stored.sha256.clone())
            .param("size", stored.size.to_string())
            .param("subject", s.subject.clone())
            .param("from_hdr", s.from.clone())
            .param("to_hdr", s.to.clone())
            .param("mail_from", cap(&mail_from))
            .param("rcpt_to", rcpt_json.clone())
            .param("attachment_count", s.attachment_count.to_string())
            .param(
                "attachments_json",
                serde_json::to_string(&s.attachments).unwrap_or_default(),
            )
            .param(
                "urls_json",
                serde_json::to_string(&s.urls).unwrap_or_default(),
            )
            .param("content_type", s.content_type.clone())
            .param("truncated", truncated)
            .param("complete", if complete { "1" } else { "0" });
        if dir.is_none() {
            m = m.param("store_error", "no quarantine directory");
        } else if let Some(e) = &stored.store_error {
            m = m.param("store_error", cap(e));
        }
        self.emit(m).await;
        self.reset();
        if !complete {
            return;
        }
        if too_big {
            self.fail("552 5.3.4 Error: message file too big").await;
            return;
        }
        self.emit(
            self.event("message_accepted")
                .param("msg_id", queue_id)
                .param("mail_from", cap(&mail_from))
                .param("rcpt_to", rcpt_json)
                .param("body_bytes", stored.size.to_string())
                .param("truncated", truncated),
        )
        .await;
        self.errors = 0;
        let reply = if chunked {
            format!("250 2.0.0 Ok: {} bytes queued as {queue_id}", stored.size)
        } else {
            format!("250 2.0.0 Ok: queued as {queue_id}")
        };
        self.reply(&reply).await;
    }
}
