//! telnet: a Linux telnetd (netkit/inetutils) in front of `login` and the emulated shell.
//!
//! The negotiation is netkit's: `DO TTYPE, DO TSPEED, DO XDISPLOC, DO NEW-ENVIRON` on
//! connect (the bytes nmap's telnet probe matches Linux telnetd by), `SB … SEND` for each
//! option the client agrees to, then `WILL SGA, DO ECHO, DO NAWS, WILL STATUS, DO LFLOW`
//! and `WILL ECHO`, so the server echoes and the client sends characters as typed.
//! Options nobody asked for are refused (`WONT`/`DONT`), and only changes are answered,
//! so a hostile client cannot start a negotiation loop. Subnegotiations are capped.
//!
//! Then `/etc/issue.net` and `<hostname> login: `, `Password: ` without echo, and
//! `Login incorrect` after the PAM fail delay. Every attempt is an `auth_attempt` with
//! the byte-exact password (engine.md §2.3); the accounts of engine.md §2.2
//! (`TELNET_ROOT_PASSWORD`, `TELNET_USER`, `TELNET_USER_PASSWORD`) get the shell of
//! [`super::shell`], and the session ends with `session_recorded`.
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::conn::{Conn, Handler, Idle, Limits};
use super::shell::{self, Accounts, Context, Input, LineEditor, Shell};
use super::{Credential, Emitter, Persona, ServiceSpec};

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const ECHO: u8 = 1;
const SGA: u8 = 3;
const STATUS: u8 = 5;
const TTYPE: u8 = 24;
const NAWS: u8 = 31;
const TSPEED: u8 = 32;
const LFLOW: u8 = 33;
const XDISPLOC: u8 = 35;
const NEW_ENVIRON: u8 = 39;
/// `SEND` in a subnegotiation.
const SEND: u8 = 1;
/// `IS` in a subnegotiation.
const IS: u8 = 0;

/// Longest subnegotiation kept; the rest is dropped until `IAC SE`.
const MAX_SB: usize = 256;
/// Longest user name or password line.
const MAX_LOGIN_LINE: usize = 512;
/// Tries before `login` gives up, as `LOGIN_RETRIES` in login.defs.
const LOGIN_RETRIES: u32 = 5;
/// How long `login` waits for a login before giving up (`LOGIN_TIMEOUT`).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The PAM fail delay before `Login incorrect`.
const FAIL_DELAY: Duration = Duration::from_secs(3);

/// What the service knows before any connection.
struct State {
    emitter: Emitter,
    persona: Arc<Persona>,
    accounts: Accounts,
}

/// The per-connection handler of `telnet` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let mut persona = (*spec.persona).clone();
    if let Some(h) = spec
        .settings
        .get("TELNET_HOSTNAME")
        .filter(|h| !h.trim().is_empty())
    {
        persona.hostname = h.trim().to_owned();
    }
    let state = Arc::new(State {
        emitter,
        persona: Arc::new(persona),
        accounts: Accounts::from_settings("TELNET", &spec.settings),
    });
    let limits = Limits {
        max_conns: 128,
        idle: Duration::from_secs(300),
        total: Duration::from_secs(3600),
        max_line: MAX_LOGIN_LINE,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

/// Where the option parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    Data,
    Iac,
    Verb(u8),
    Sb,
    SbIac,
}

/// The telnet protocol state of one connection: strips commands out of the byte stream
/// and collects the replies they call for.
#[derive(Debug)]
pub struct Telnet {
    state: Parse,
    sb: Vec<u8>,
    /// Options the client has said WILL to.
    his: [bool; 256],
    /// Options we have said WILL for.
    mine: [bool; 256],
    /// Options we asked the client to DO (so its WILL is the answer, not a request).
    asked: [bool; 256],
    /// Bytes to send back.
    pub reply: Vec<u8>,
    /// The terminal type the client reported.
    pub term: Option<String>,
    /// The window size the client reported.
    pub window: Option<(u16, u16)>,
}

impl Default for Telnet {
    fn default() -> Self {
        Self::new()
    }
}

impl Telnet {
    /// A connection before any negotiation.
    pub fn new() -> Self {
        Telnet {
            state: Parse::Data,
            sb: Vec::new(),
            his: [false; 256],
            mine: [false; 256],
            asked: [false; 256],
            reply: Vec::new(),
            term: None,
            window: None,
        }
    }

    /// What netkit telnetd sends first.
    pub fn opening(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for opt in [TTYPE, TSPEED, XDISPLOC, NEW_ENVIRON] {
            self.asked[usize::from(opt)] = true;
            out.extend_from_slice(&[IAC, DO, opt]);
        }
        out
    }

    /// What it sends once the terminal options are settled: SGA, echo, window size, flow.
    pub fn settle(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for (verb, opt) in [
            (WILL, SGA),
            (DO, ECHO),
            (DO, NAWS),
            (WILL, STATUS),
            (DO, LFLOW),
            (WILL, ECHO),
        ] {
            if verb == WILL {
                self.mine[usize::from(opt)] = true;
            } else {
                self.asked[usize::from(opt)] = true;
            }
            out.extend_from_slice(&[IAC, verb, opt]);
        }
        out
    }

    /// Runs `bytes` through the protocol; returns the data bytes in them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        for &b in bytes {
            self.state = match (self.state, b) {
                (Parse::Data, IAC) => Parse::Iac,
                (Parse::Data, b) => {
                    data.push(b);
                    Parse::Data
                }
                (Parse::Iac, IAC) => {
                    data.push(IAC);
                    Parse::Data
                }
                (Parse::Iac, WILL | WONT | DO | DONT) => Parse::Verb(b),
                (Parse::Iac, SB) => {
                    self.sb.clear();
                    Parse::Sb
                }
                (Parse::Iac, _) => Parse::Data,
                (Parse::Verb(verb), opt) => {
                    self.option(verb, opt);
                    Parse::Data
                }
                (Parse::Sb, IAC) => Parse::SbIac,
                (Parse::Sb, b) => {
                    if self.sb.len() < MAX_SB {
                        self.sb.push(b);
                    }
                    Parse::Sb
                }
                (Parse::SbIac, SE) => {
                    self.subnegotiation();
                    Parse::Data
                }
                (Parse::SbIac, IAC) => {
                    if self.sb.len() < MAX_SB {
                        self.sb.push(IAC);
                    }
                    Parse::Sb
                }
                (Parse::SbIac, _) => Parse::Sb,
            };
        }
        data
    }

    fn option(&mut self, verb: u8, opt: u8) {
        let i = usize::from(opt);
        match verb {
            WILL => {
                if self.his[i] {
                    return;
                }
                if self.asked[i] {
                    self.his[i] = true;
                    if matches!(opt, TTYPE | TSPEED | XDISPLOC | NEW_ENVIRON) {
                        self.reply.extend_from_slice(&[IAC, SB, opt, SEND, IAC, SE]);
                    }
                } else {
                    self.reply.extend_from_slice(&[IAC, DONT, opt]);
                    self.asked[i] = true;
                }
            }
            WONT => {
                if self.his[i] {
                    self.his[i] = false;
                    self.reply.extend_from_slice(&[IAC, DONT, opt]);
                }
            }
            DO => {
                if self.mine[i] {
                    return;
                }
                if matches!(opt, ECHO | SGA | STATUS) {
                    self.mine[i] = true;
                    self.reply.extend_from_slice(&[IAC, WILL, opt]);
                } else if !self.asked[i] {
                    self.asked[i] = true;
                    self.reply.extend_from_slice(&[IAC, WONT, opt]);
                }
            }
            _ => {
                if self.mine[i] {
                    self.mine[i] = false;
                    self.reply.extend_from_slice(&[IAC, WONT, opt]);
                }
            }
        }
    }

    fn subnegotiation(&mut self) {
        match self.sb.as_slice() {
            [TTYPE, IS, name @ ..] => {
                let term: String = String::from_utf8_lossy(name)
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(40)
                    .collect::<String>()
                    .to_ascii_lowercase();
                self.term = Some(term);
            }
            [NAWS, w1, w2, h1, h2, ..] => {
                self.window = Some((
                    u16::from_be_bytes([*w1, *w2]),
                    u16::from_be_bytes([*h1, *h2]),
                ));
            }
            _ => {}
        }
    }
}

/// Data bytes made safe for the wire: every 0xff doubled.
fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// The connection: the stream, the protocol state and the line discipline.
struct Wire {
    stream: Idle<TcpStream>,
    telnet: Telnet,
    editor: LineEditor,
    /// Lines and signals decoded but not yet taken.
    queue: std::collections::VecDeque<Input>,
    bytes: u64,
}

impl Wire {
    async fn send(&mut self, data: &[u8]) -> bool {
        self.bytes += u64::try_from(data.len()).unwrap_or(0);
        self.stream.write_all(&escape(data)).await.is_ok()
    }

    async fn flush_replies(&mut self) -> bool {
        if self.telnet.reply.is_empty() {
            return true;
        }
        let reply = std::mem::take(&mut self.telnet.reply);
        self.stream.write_all(&reply).await.is_ok()
    }

    /// Reads until a line, `^C` or `^D` arrives (echoing as the editor says), or the
    /// deadline passes; `None` when the connection is gone or the time is up.
    async fn next_input(&mut self, deadline: Option<Instant>) -> Option<Input> {
        let mut buf = [0u8; 2048];
        loop {
            while let Some(input) = self.queue.pop_front() {
                match input {
                    Input::Echo(bytes) => {
                        if !self.send(&bytes).await {
                            return None;
                        }
                    }
                    other => return Some(other),
                }
            }
            let read = self.stream.read(&mut buf);
            let n = match deadline {
                Some(d) => tokio::time::timeout_at(d, read).await.ok()?.ok()?,
                None => read.await.ok()?,
            };
            if n == 0 {
                return None;
            }
            let data = self.telnet.feed(&buf[..n]);
            if !self.flush_replies().await {
                return None;
            }
            self.queue.extend(self.editor.feed(&data));
        }
    }

    /// Lets the client answer the opening options for up to `wait`.
    async fn negotiate(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return true,
                Ok(Ok(0) | Err(_)) => return false,
                Ok(Ok(n)) => {
                    let data = self.telnet.feed(&buf[..n]);
                    self.queue.extend(self.editor.feed(&data));
                    if !self.flush_replies().await {
                        return false;
                    }
                    if self.telnet.term.is_some() {
                        return true;
                    }
                }
            }
        }
    }
}

/// `/etc/issue.net` with login's escapes expanded.
fn issue(p: &Persona, kernel: &str) -> String {
    let files = shell::issue_files(p);
    let raw = files
        .iter()
        .find(|(path, _)| *path == "/etc/issue.net")
        .or_else(|| files.iter().find(|(path, _)| *path == "/etc/issue"))
        .map_or_else(String::new, |(_, t)| t.clone());
    let pretty = shell::pretty_name(p);
    raw.replace("\\S", &pretty)
        .replace("\\r", kernel)
        .replace("\\m", "x86_64")
        .replace("\\n", shell::short_host(&p.hostname))
        .replace("\\l", "pts/0")
        .replace(" (pts/0)", "")
        .trim_end()
        .to_owned()
}

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    let em = &state.emitter;
    em.emit(em.peer_event("connection", peer)).await;
    let started = Instant::now();
    let mut wire = Wire {
        stream,
        telnet: Telnet::new(),
        editor: LineEditor::new(),
        queue: std::collections::VecDeque::new(),
        bytes: 0,
    };
    let opening = wire.telnet.opening();
    if wire.stream.write_all(&opening).await.is_err() {
        return;
    }
    if !wire.negotiate(Duration::from_millis(700)).await {
        disconnect(em, peer).await;
        return;
    }
    let settle = wire.telnet.settle();
    if wire.stream.write_all(&settle).await.is_err() {
        return;
    }
    let p = &state.persona;
    let banner = String::from_utf8_lossy(&shell::crlf(
        format!("{}\n", issue(p, &p.kernel_release())).as_bytes(),
    ))
    .into_owned();
    let login_prompt = format!("{} login: ", shell::short_host(&p.hostname));
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    let mut account = None;
    let mut first = true;
    for _ in 0..LOGIN_RETRIES {
        let intro = if first {
            format!("{banner}{login_prompt}")
        } else {
            login_prompt.clone()
        };
        first = false;
        if !wire.send(intro.as_bytes()).await {
            return;
        }
        let user = loop {
            match wire.next_input(Some(deadline)).await {
                Some(Input::Line(l)) if l.is_empty() => {
                    if !wire.send(login_prompt.as_bytes()).await {
                        return;
                    }
                }
                Some(Input::Line(l)) => break l,
                Some(Input::Interrupt | Input::Eof) => {
                    if !wire.send(login_prompt.as_bytes()).await {
                        return;
                    }
                }
                _ => {
                    let _ = wire
                        .send(
                            format!(
                                "\r\nLogin timed out after {} seconds.\r\n",
                                LOGIN_TIMEOUT.as_secs()
                            )
                            .as_bytes(),
                        )
                        .await;
                    disconnect(em, peer).await;
                    return;
                }
            }
        };
        let user: Vec<u8> = user.into_iter().take(MAX_LOGIN_LINE).collect();
        if !wire.send(b"Password: ").await {
            return;
        }
        wire.editor.set_echo(false);
        let password = match wire.next_input(Some(deadline)).await {
            Some(Input::Line(l)) => l,
            Some(_) => Vec::new(),
            None => {
                disconnect(em, peer).await;
                return;
            }
        };
        wire.editor.set_echo(true);
        let ok = state.accounts.check(&user, &password);
        let cred = Credential::plaintext(Some(user.as_slice()), &password);
        let m = cred
            .apply(em.peer_event("auth_attempt", peer))
            .param("username", String::from_utf8_lossy(&user).into_owned())
            .param("outcome", if ok.is_some() { "success" } else { "failure" });
        em.emit(m).await;
        if let Some(name) = ok {
            account = Some(name);
            break;
        }
        tokio::time::sleep(FAIL_DELAY).await;
        if !wire.send(b"\r\nLogin incorrect\r\n").await {
            return;
        }
    }
    let Some(user) = account else {
        disconnect(em, peer).await;
        return;
    };
    let ctx = Context {
        persona: state.persona.clone(),
        emitter: em.clone(),
        peer,
        user,
        service: "telnet",
    };
    let mut sh = Shell::new(ctx)
        .with_accounts(state.accounts.clone())
        .with_local_addr(local);
    if let Some(term) = wire.telnet.term.clone() {
        sh = sh.with_term(&term);
    }
    let mut out = sh.motd();
    out.extend_from_slice(&sh.prompt());
    let mut status = 0;
    if wire.send(&out).await {
        loop {
            wire.editor.set_echo(sh.echo());
            let outcome = match wire.next_input(None).await {
                Some(Input::Line(line)) => sh.run_line(&line).await,
                Some(Input::Interrupt) => {
                    sh.interrupt();
                    shell::Outcome::default()
                }
                Some(Input::Eof) => sh.eof(),
                Some(Input::Echo(_)) => shell::Outcome::default(),
                None => break,
            };
            let mut out = outcome.output;
            if let Some(code) = outcome.exit {
                status = code;
                let _ = wire.send(&out).await;
                break;
            }
            out.extend_from_slice(&sh.prompt());
            if !wire.send(&out).await {
                break;
            }
        }
    }
    let transcript = sh.transcript();
    let m = em
        .peer_event("session_recorded", peer)
        .param("sid", format!("{:016x}", rand_sid(p, peer, started)))
        .param("service", "telnet")
        .param("duration_s", started.elapsed().as_secs().to_string())
        .param(
            "bytes",
            (transcript.len() as u64 + sh.transcript_dropped()).to_string(),
        )
        .param(
            "truncated",
            if sh.transcript_dropped() > 0 {
                "1"
            } else {
                "0"
            },
        )
        .param("exit", status.to_string());
    em.emit(m).await;
    disconnect(em, peer).await;
}

/// A session id no other decky and no other session shares.
fn rand_sid(p: &Persona, peer: std::net::SocketAddr, started: Instant) -> u64 {
    let wall = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let label = format!("telnet-sid-{peer}-{wall}-{:?}", started.elapsed());
    let b = p.derive(&label);
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

async fn disconnect(em: &Emitter, peer: std::net::SocketAddr) {
    em.emit(em.peer_event("disconnect", peer)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_is_netkits_and_never_loops() {
        let mut t = Telnet::new();
        assert_eq!(
            t.opening(),
            [
                IAC,
                DO,
                TTYPE,
                IAC,
                DO,
                TSPEED,
                IAC,
                DO,
                XDISPLOC,
                IAC,
                DO,
                NEW_ENVIRON
            ]
        );
        let data = t.feed(&[IAC, WILL, TTYPE, IAC, WONT, TSPEED, b'x', IAC, IAC]);
        assert_eq!(data, [b'x', IAC]);
        assert_eq!(t.reply, [IAC, SB, TTYPE, SEND, IAC, SE]);
        t.reply.clear();
        t.feed(&[IAC, WILL, TTYPE]);
        assert!(t.reply.is_empty(), "a repeated WILL is not answered");
        t.feed(&[IAC, SB, TTYPE, IS, b'X', b'T', b'E', b'R', b'M', IAC, SE]);
        assert_eq!(t.term.as_deref(), Some("xterm"));
        t.feed(&[IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]);
        assert_eq!(t.window, Some((80, 24)));
        t.feed(&[IAC, DO, 99, IAC, DO, 99, IAC, WILL, 98, IAC, WILL, 98]);
        assert_eq!(t.reply, [IAC, WONT, 99, IAC, DONT, 98]);
        let settle = t.settle();
        assert_eq!(&settle[settle.len() - 3..], [IAC, WILL, ECHO]);
        t.reply.clear();
        t.feed(&[IAC, DO, ECHO]);
        assert!(t.reply.is_empty(), "DO ECHO confirms our WILL");
        assert_eq!(escape(&[1, IAC, 2]), [1, IAC, IAC, 2]);
    }

    #[test]
    fn the_issue_is_the_distros() {
        use crate::roles::decky::persona::tests::persona;
        let debian = persona(1, "debian");
        assert_eq!(
            issue(&debian, &debian.kernel_release()),
            "Debian GNU/Linux 12"
        );
        let rocky = persona(1, "rocky9");
        let text = issue(&rocky, &rocky.kernel_release());
        assert_eq!(
            text,
            format!(
                "Rocky Linux 9.4 (Blue Onyx)\nKernel {} on an x86_64",
                rocky.kernel_release()
            )
        );
        let alpine = persona(1, "alpine");
        assert!(issue(&alpine, "6.6.14-0-lts").ends_with("Kernel 6.6.14-0-lts on an x86_64"));
    }

    #[test]
    fn garbage_subnegotiations_are_capped() {
        let mut t = Telnet::new();
        let mut junk = vec![IAC, SB, TTYPE, IS];
        junk.extend(std::iter::repeat_n(b'a', 10_000));
        t.feed(&junk);
        assert!(t.sb.len() <= MAX_SB);
        t.feed(&[IAC, SE, b'o', b'k']);
        assert_eq!(t.term.as_deref().map(str::len), Some(40));
    }
}
