//! The emulated shell ssh and telnet sessions get after a login: a bash of the persona's
//! distro over a fake file system generated from the seed. Nothing is ever executed and
//! nothing leaves the process: every line is parsed, answered from the model and logged
//! as a `command` event (engine.md §2.3, the `CMD uid=… cmd=…` shape of the bash hook).
//!
//! A service drives it like this:
//! - write [`Shell::motd`], then [`Shell::prompt`];
//! - feed the client's bytes to a [`LineEditor`] (with [`LineEditor::set_echo`] following
//!   [`Shell::echo`], off while `sudo` reads a password), write back every
//!   [`Input::Echo`], and pass each [`Input::Line`] to [`Shell::run_line`];
//! - write the [`Outcome`]'s output, then the prompt again, until its `exit` is set;
//! - [`Input::Interrupt`] goes to [`Shell::interrupt`], [`Input::Eof`] to [`Shell::eof`];
//! - an ssh exec request goes to [`Shell::exec`] instead (output with bare `\n`).
//!
//! [`Shell::transcript`] is the session as the attacker saw it, capped at
//! [`MAX_TRANSCRIPT`] bytes, for `session_recorded`. [`accounts`] is the login check ssh
//! and telnet share.
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Emitter, Persona};

pub mod accounts;
mod line;

pub use accounts::Accounts;
pub use line::{Input, LineEditor, MAX_LINE};

/// Largest transcript kept; the rest of a session is counted, not stored.
pub const MAX_TRANSCRIPT: usize = 256 * 1024;

/// Who is at the shell, and where its events go.
#[derive(Debug, Clone)]
pub struct Context {
    /// The decky's persona.
    pub persona: Arc<Persona>,
    /// The emitter of the service the session came in through.
    pub emitter: Emitter,
    /// The attacker's address.
    pub peer: SocketAddr,
    /// The account logged in to (`root` or the persona's user).
    pub user: String,
    /// The service slug (`ssh`, `telnet`).
    pub service: &'static str,
}

/// What one line or exec request produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes to write to the client.
    pub output: Vec<u8>,
    /// Set when the session ends, with the shell's exit status.
    pub exit: Option<i32>,
}

/// One emulated shell session.
#[derive(Debug)]
pub struct Shell {
    ctx: Context,
    cwd: String,
    transcript: Vec<u8>,
    transcript_dropped: u64,
}

impl Shell {
    /// A login shell for `ctx.user`, in its home directory.
    pub fn new(ctx: Context) -> Shell {
        let cwd = if ctx.user == "root" {
            "/root".to_owned()
        } else {
            format!("/home/{}", ctx.user)
        };
        Shell {
            ctx,
            cwd,
            transcript: Vec::new(),
            transcript_dropped: 0,
        }
    }

    /// The banner shown after login.
    pub fn motd(&self) -> Vec<u8> {
        Vec::new()
    }

    /// The prompt shown before each line.
    pub fn prompt(&self) -> Vec<u8> {
        let sigil = if self.ctx.user == "root" { '#' } else { '$' };
        format!("{}@{}:{}{sigil} ", self.ctx.user, self.ctx.persona.hostname, self.cwd)
            .into_bytes()
    }

    /// Whether the client's typing should be echoed now.
    pub fn echo(&self) -> bool {
        true
    }

    /// Runs one interactive line; output has tty line ends (`\r\n`).
    pub async fn run_line(&mut self, line: &[u8]) -> Outcome {
        let prompt = self.prompt();
        self.record(&prompt);
        self.record(line);
        self.record(b"\r\n");
        let outcome = self.run(line, true).await;
        self.record(&outcome.output);
        outcome
    }

    /// Runs an ssh exec request; output has bare `\n` line ends.
    pub async fn exec(&mut self, command: &[u8]) -> Outcome {
        self.record(command);
        self.record(b"\n");
        let mut outcome = self.run(command, false).await;
        self.record(&outcome.output);
        if outcome.exit.is_none() {
            outcome.exit = Some(0);
        }
        outcome
    }

    /// `^C` at the prompt: anything pending (a password read) is dropped.
    pub fn interrupt(&mut self) {
        self.record(b"^C\r\n");
    }

    /// `^D` on an empty line: a login shell says `logout` and ends.
    pub fn eof(&mut self) -> Outcome {
        let output = b"logout\r\n".to_vec();
        self.record(&output);
        Outcome {
            output,
            exit: Some(0),
        }
    }

    /// The session so far as the client saw it, at most [`MAX_TRANSCRIPT`] bytes.
    pub fn transcript(&self) -> &[u8] {
        &self.transcript
    }

    /// How many transcript bytes were dropped over the cap.
    pub fn transcript_dropped(&self) -> u64 {
        self.transcript_dropped
    }

    fn record(&mut self, bytes: &[u8]) {
        let room = MAX_TRANSCRIPT.saturating_sub(self.transcript.len());
        let kept = bytes.len().min(room);
        self.transcript.extend_from_slice(&bytes[..kept]);
        self.transcript_dropped += u64::try_from(bytes.len() - kept).unwrap_or(u64::MAX);
    }

    async fn run(&mut self, line: &[u8], tty: bool) -> Outcome {
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]).into_owned();
        let text = text.trim();
        if text.is_empty() {
            return Outcome::default();
        }
        self.log_command(text).await;
        let word = text.split_whitespace().next().unwrap_or_default();
        let (output, exit) = match word {
            "exit" | "logout" => (String::from(if tty { "logout\n" } else { "" }), Some(0)),
            other => (format!("-bash: {other}: command not found\n"), None),
        };
        Outcome {
            output: if tty { crlf(output.as_bytes()) } else { output.into_bytes() },
            exit,
        }
    }

    async fn log_command(&self, text: &str) {
        let uid = if self.ctx.user == "root" { "0" } else { "1000" };
        let em = &self.ctx.emitter;
        let m = em
            .peer_event("command", self.ctx.peer)
            .param("uid", uid)
            .param("user", self.ctx.user.as_str())
            .param("pwd", self.cwd.as_str())
            .param("command", text)
            .msg(format!(
                "CMD uid={uid} user={} src={} pwd={} cmd={text}",
                self.ctx.user,
                self.ctx.peer.ip().to_canonical(),
                self.cwd
            ));
        em.emit(m).await;
    }
}

/// `text` with every bare `\n` turned into `\r\n`, as a tty's `onlcr` does.
pub fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    let mut prev = 0u8;
    for &b in text {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}
