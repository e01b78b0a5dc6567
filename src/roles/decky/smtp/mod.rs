//! smtp (and smtp_relay): the Postfix `smtpd` of the persona's distro (engine.md §2.8).
//!
//! What a client sees is Postfix's, checked against its source (github:vdukhovni/postfix
//! at each distro's release, see [`flavor`]): the distro's banner, the EHLO list in
//! smtpd's order with `message_size_limit` in `SIZE`, Postfix's reply codes, enhanced
//! status codes and texts, its command-line limit (2,048 bytes, the rest of a longer line
//! dropped), its error limits (after 10 errors each reply line waits a second, after 20
//! `421 … too many errors`), `421 4.4.2 … timeout exceeded` after 300 s of silence,
//! and replies held back while pipelined commands are still buffered, flushed when the
//! input runs dry, as smtpd does. HTTP verbs and header lines get Postfix's
//! `221 2.7.0 Error: I can break rules, too. Goodbye.`
//!
//! - STARTTLS with the decky's certificate (the one https serves, generated from the seed);
//!   commands pipelined after it are dropped, as Postfix does.
//! - AUTH PLAIN, LOGIN and CRAM-MD5 ([`auth`]) log `auth_attempt` with the credential
//!   byte-exact and always fail after Dovecot's two-second delay.
//! - Remote recipients get `554 5.7.1 <x>: Relay access denied` (or the `454 4.7.1`
//!   of Postfix's default, per decky) unless `SMTP_OPEN_RELAY` says open relay; unknown
//!   local users get `550 5.1.1 … User unknown in local recipient table`.
//! - Messages (DATA and BDAT) are kept in `SMTP_QUARANTINE_DIR` ([`message`]) with a
//!   `message_stored` event and never sent anywhere.
//!
//! `SMTP_MTA` may also name exim or sendmail; only Postfix is emulated so far, and such a
//! persona is served as Postfix (a warning says so at startup).
mod auth;
mod envelope;
mod flavor;
mod message;
mod transaction;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use self::auth::Outcome;
use self::envelope::Mailboxes;
use self::flavor::Postfix;
use self::message::Spool;
use super::conn::{Conn, Handler, Limits};
use super::{Emitter, ServiceSpec};

/// Settings the emulation reads besides the catalogue's persona keys.
pub const EXTRA_SETTINGS: &[&str] = &["SMTP_OPEN_RELAY", "SMTP_QUARANTINE_DIR"];
/// Postfix's `line_limit`: a longer command line is cut there.
const LINE_LIMIT: usize = 2048;
/// Bytes of an over-long line skipped before the connection is dropped.
const SKIP_LIMIT: usize = 1024 * 1024;
/// `smtpd_soft_error_limit` and `smtpd_hard_error_limit`.
const SOFT_ERRORS: u32 = 10;
const HARD_ERRORS: u32 = 20;
/// `smtpd_error_sleep_time`.
const ERROR_SLEEP: Duration = Duration::from_secs(1);
/// Dovecot's `auth_failure_delay`.
const AUTH_FAIL_DELAY: Duration = Duration::from_secs(2);
/// Postfix's `smtpd_recipient_limit`, and the recipients an event lists.
const RCPT_LIMIT: usize = 1000;
const RCPT_LISTED: usize = 50;

/// A client stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The buffered client connection.
type Io = BufReader<Box<dyn Stream>>;

struct State {
    emitter: Emitter,
    postfix: Postfix,
    myhostname: String,
    greeting: String,
    size_limit: u64,
    auth_equals: bool,
    mailboxes: Mailboxes,
    quarantine: Option<PathBuf>,
    tls: Option<TlsAcceptor>,
    inode: u64,
    queued: AtomicU64,
}

/// The per-connection handler of `smtp`/`smtp_relay` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let persona = spec.persona.clone();
    let get = |k: &str| spec.settings.get(k).filter(|v| !v.trim().is_empty());
    if let Some(mta) = get("SMTP_MTA").filter(|m| m.as_str() != "postfix") {
        tracing::warn!(mta = %mta, "only Postfix is emulated; serving Postfix");
    }
    let postfix = Postfix::of(&persona);
    let myhostname = flavor::myhostname(&persona);
    let greeting = match get("SMTP_BANNER") {
        Some(b) => format!("220 {b}"),
        None => format!("220 {myhostname} ESMTP Postfix{}", postfix.banner_tag),
    };
    let open_relay = get("SMTP_OPEN_RELAY")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
    let tls = if postfix.tls {
        match super::http::tls::server_config(&persona, None, None, &[]) {
            Ok(config) => Some(TlsAcceptor::from(config)),
            Err(e) => {
                tracing::warn!(error = %e, "no certificate; STARTTLS not offered");
                None
            }
        }
    } else {
        None
    };
    let state = Arc::new(State {
        emitter,
        postfix,
        greeting,
        size_limit: flavor::message_size_limit(&persona),
        auth_equals: persona.number("smtp-broken-auth-clients", 2) == 0,
        mailboxes: Mailboxes::new(&persona, open_relay),
        quarantine: get("SMTP_QUARANTINE_DIR").map(PathBuf::from),
        tls,
        inode: 0x10_0000 + persona.number("smtp-inode", 0xE0_0000),
        queued: AtomicU64::new(0),
        myhostname,
    });
    let limits = Limits {
        max_conns: 64,
        idle: Duration::from_secs(300),
        total: Duration::from_secs(1800),
        max_line: LINE_LIMIT,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

/// What one read of a line gave.
#[derive(Debug)]
enum Piece {
    /// A line without its line end.
    Line(Vec<u8>),
    /// The first `max` bytes of a longer line (the rest was skipped).
    TooLong(Vec<u8>),
    /// Nothing arrived for the idle time.
    TimedOut,
    /// The client is gone.
    Closed,
}

/// Reads a line of at most `max` bytes, skipping (up to [`SKIP_LIMIT`]) what is beyond.
async fn read_piece<R: AsyncBufRead + Unpin>(io: &mut R, max: usize) -> Piece {
    let mut line = Vec::new();
    let mut skipped = 0usize;
    loop {
        let available = match io.fill_buf().await {
            Ok([]) => return Piece::Closed,
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Piece::TimedOut,
            Err(_) => return Piece::Closed,
        };
        let (chunk, end) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        skipped += chunk.len().saturating_sub(room);
        let used = end.unwrap_or(available.len());
        io.consume(used);
        if end.is_some() {
            if skipped > 0 {
                return Piece::TooLong(line);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Piece::Line(line);
        }
        if skipped > SKIP_LIMIT {
            return Piece::Closed;
        }
    }
}

/// One client's conversation.
struct Session {
    state: Arc<State>,
    io: Io,
    out: Vec<u8>,
    peer: SocketAddr,
    local: SocketAddr,
    errors: u32,
    tls: bool,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    rcpt_count: usize,
    bdat: Option<(String, Spool)>,
    last_challenge: String,
}

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    let em = state.emitter.clone();
    em.emit(
        em.peer_event("connect", peer)
            .param("dst_port", local.port().to_string()),
    )
    .await;
    let stream: Box<dyn Stream> = Box::new(stream);
    let mut s = Session {
        out: Vec::new(),
        io: BufReader::new(stream),
        peer,
        local,
        errors: 0,
        tls: false,
        mail_from: None,
        rcpts: Vec::new(),
        rcpt_count: 0,
        bdat: None,
        last_challenge: String::new(),
        state,
    };
    let greeting = s.state.greeting.clone();
    s.reply(&greeting).await;
    loop {
        if s.errors >= HARD_ERRORS {
            let host = s.state.myhostname.clone();
            s.reply(&format!("421 4.7.0 {host} Error: too many errors"))
                .await;
            break;
        }
        let line = match s.read(LINE_LIMIT).await {
            Piece::Line(l) | Piece::TooLong(l) => l,
            Piece::TimedOut => {
                let host = s.state.myhostname.clone();
                s.reply(&format!("421 4.4.2 {host} Error: timeout exceeded"))
                    .await;
                break;
            }
            Piece::Closed => break,
        };
        if !s.command(&line).await {
            break;
        }
    }
    s.flush().await;
    if let Some((queue_id, spool)) = s.bdat.take() {
        s.deliver(spool, &queue_id, false, true).await;
    }
    em.emit(em.peer_event("disconnect", peer)).await;
}

/// Whether `token` is a message header name with its colon (`Host:`), which Postfix
/// takes for a client that is not speaking SMTP.
fn is_header(token: &str) -> bool {
    token.len() > 1
        && token.ends_with(':')
        && token[..token.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':')
}

impl Session {
    /// Queues a reply line; past the soft error limit every reply line waits first
    /// ("sleep-on-anything", smtpd_chat.c).
    async fn reply(&mut self, text: &str) {
        if self.errors >= SOFT_ERRORS {
            self.flush().await;
            tokio::time::sleep(ERROR_SLEEP).await;
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Queues an error reply and counts the error.
    async fn fail(&mut self, text: &str) {
        self.reply(text).await;
        self.errors += 1;
    }

    /// Sends the queued replies; false when the client is gone.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let out = std::mem::take(&mut self.out);
        let stream = self.io.get_mut();
        stream.write_all(&out).await.is_ok() && stream.flush().await.is_ok()
    }

    /// Reads the next line, sending the queued replies first unless more pipelined input
    /// is already buffered.
    async fn read(&mut self, max: usize) -> Piece {
        if self.io.buffer().is_empty() && !self.flush().await {
            return Piece::Closed;
        }
        read_piece(&mut self.io, max).await
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
        self.rcpt_count = 0;
    }

    fn event(&self, msg_id: &str) -> crate::syslog::Message {
        self.state.emitter.peer_event(msg_id, self.peer)
    }

    /// Sends an event; the future holds no borrow of the session, which is not `Sync`.
    fn emit(&self, m: crate::syslog::Message) -> impl Future<Output = ()> + Send + 'static {
        let emitter = self.state.emitter.clone();
        async move { emitter.emit(m).await }
    }

    /// Handles one command line; false ends the session.
    async fn command(&mut self, line: &[u8]) -> bool {
        if self.state.postfix.modern_ehlo && std::str::from_utf8(line).is_err() {
            self.fail("500 5.5.2 Error: bad UTF-8 syntax").await;
            return true;
        }
        let text = String::from_utf8_lossy(line).into_owned();
        let trimmed = text.trim_start();
        let Some(word) = trimmed.split_whitespace().next() else {
            self.fail("500 5.5.2 Error: bad syntax").await;
            return true;
        };
        let args = trimmed[word.len()..].trim();
        let argc = 1 + args.split_whitespace().count();
        let verb = word.to_ascii_uppercase();
        if is_header(word) || matches!(verb.as_str(), "CONNECT" | "GET" | "POST") {
            self.emit(self.event("unknown_command").param("command", cap(&text)))
                .await;
            self.reply("221 2.7.0 Error: I can break rules, too. Goodbye.")
                .await;
            return false;
        }
        match verb.as_str() {
            "HELO" | "EHLO" => self.helo(&verb, args).await,
            "STARTTLS" => return self.starttls(argc).await,
            "AUTH" => return self.auth(args, argc).await,
            "MAIL" => self.mail(args).await,
            "RCPT" => self.rcpt(args).await,
            "DATA" => return self.data(argc).await,
            "BDAT" if self.state.postfix.modern_ehlo => return self.bdat(args, argc).await,
            "RSET" if argc > 1 => self.fail("501 5.5.4 Syntax: RSET").await,
            "RSET" => {
                self.reset();
                self.bdat = None;
                self.reply("250 2.0.0 Ok").await;
            }
            "NOOP" => self.reply("250 2.0.0 Ok").await,
            "VRFY" => self.vrfy(args).await,
            "ETRN" => self.etrn(args, argc).await,
            "XCLIENT" | "XFORWARD" if self.mail_from.is_some() => {
                self.fail("503 5.5.1 Error: MAIL transaction in progress")
                    .await;
            }
            "XCLIENT" | "XFORWARD" if argc < 2 => {
                self.fail(&format!("501 5.5.4 Syntax: {verb} attribute=value..."))
                    .await;
            }
            "XCLIENT" | "XFORWARD" => {
                self.fail("550 5.7.0 Error: insufficient authorization")
                    .await;
            }
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await;
                return false;
            }
            _ => {
                self.emit(self.event("unknown_command").param("command", cap(&text)))
                    .await;
                let code = self.state.postfix.unknown_code;
                self.fail(&format!("{code} 5.5.2 Error: command not recognized"))
                    .await;
            }
        }
        true
    }

    async fn helo(&mut self, verb: &str, args: &str) {
        if args.is_empty() {
            self.fail(&format!("501 Syntax: {verb} hostname")).await;
            return;
        }
        self.reset();
        self.bdat = None;
        self.emit(
            self.event("ehlo")
                .param("domain", cap(args))
                .param("command", verb),
        )
        .await;
        let host = self.state.myhostname.clone();
        if verb == "HELO" {
            self.reply(&format!("250 {host}")).await;
            return;
        }
        let mut lines = vec![
            host,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.state.size_limit),
            "VRFY".to_owned(),
            "ETRN".to_owned(),
        ];
        if self.state.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        lines.push(format!("AUTH {}", auth::MECHANISMS));
        if self.state.auth_equals {
            lines.push(format!("AUTH={}", auth::MECHANISMS));
        }
        lines.extend(["ENHANCEDSTATUSCODES", "8BITMIME", "DSN"].map(str::to_owned));
        if self.state.postfix.modern_ehlo {
            lines.extend(["SMTPUTF8", "CHUNKING"].map(str::to_owned));
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{line}")).await;
        }
    }

    async fn starttls(&mut self, argc: usize) -> bool {
        if argc != 1 {
            self.fail("501 5.5.4 Syntax: STARTTLS").await;
            return true;
        }
        if self.tls {
            self.fail("554 5.5.1 Error: TLS already active").await;
            return true;
        }
        let Some(acceptor) = self.state.tls.clone() else {
            self.fail("502 5.5.1 Error: command not implemented").await;
            return true;
        };
        self.reply("220 2.0.0 Ready to start TLS").await;
        if !self.flush().await {
            return false;
        }
        // Dropping the reader drops whatever was pipelined after STARTTLS, as Postfix
        // does (a command injected before the handshake must not run inside TLS).
        let placeholder: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        let Ok(tls) = acceptor.accept(plain).await else {
            return false;
        };
        let tls: Box<dyn Stream> = Box::new(tls);
        self.io = BufReader::new(tls);
        self.tls = true;
        self.reset();
        self.bdat = None;
        self.emit(self.event("starttls")).await;
        true
    }

    async fn auth(&mut self, args: &str, argc: usize) -> bool {
        if self.mail_from.is_some() {
            self.fail("503 5.5.1 Error: MAIL transaction in progress")
                .await;
            return true;
        }
        if !(2..=3).contains(&argc) {
            self.fail("501 5.5.4 Syntax: AUTH mechanism").await;
            return true;
        }
        let mut words = args.split_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next().map(|w| w.as_bytes().to_vec());
        let mut last = std::mem::take(&mut self.last_challenge);
        let host = self.state.myhostname.clone();
        let outcome = auth::exchange(self, &mechanism, initial.as_deref(), &host, &mut last).await;
        let ok = match outcome {
            Outcome::Failed {
                credential,
                extra,
                reason,
            } => {
                if let Some(cred) = credential {
                    let mut m = cred
                        .apply(
                            self.event("auth_attempt")
                                .param("mechanism", mechanism.clone()),
                        )
                        .param("outcome", "failure");
                    for (k, v) in extra {
                        m = m.param(k, v);
                    }
                    self.emit(m).await;
                    if !self.flush().await {
                        return false;
                    }
                    tokio::time::sleep(AUTH_FAIL_DELAY).await;
                }
                let line = match reason {
                    Some(r) => {
                        let line = format!("535 5.7.8 Error: authentication failed: {r}");
                        last = r;
                        line
                    }
                    None => self.state.postfix.auth_failed(&last),
                };
                self.fail(&line).await;
                true
            }
            Outcome::Aborted => {
                self.fail("501 5.7.0 Authentication aborted").await;
                true
            }
            Outcome::TooLong => {
                self.fail("500 5.5.6 SASL response limit exceeded").await;
                true
            }
            Outcome::Closed => false,
        };
        self.last_challenge = last;
        ok
    }
}

/// At most 512 bytes of an attacker-chosen text, for an event field.
fn cap(text: &str) -> &str {
    super::events::cap_str(text, 512)
}
