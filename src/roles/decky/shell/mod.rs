//! The emulated shell ssh and telnet sessions get after a login: a bash of the persona's
//! distro over a fake file system generated from the seed. Nothing is ever executed and
//! nothing leaves the process: every line is parsed ([`parse`]), answered from the model
//! ([`tree`], [`fs`]) by the command emulations, and logged as a `command` event
//! (engine.md §2.3, the `CMD uid=… cmd=…` shape of the bash hook). `wget`, `curl`, `tftp`
//! and `ftp` log `download_attempt` with the URL and fail as the real tools fail offline.
//!
//! A service drives it like this:
//! - write [`Shell::motd`], then [`Shell::prompt`];
//! - feed the client's bytes to a [`LineEditor`] (with [`LineEditor::set_echo`] following
//!   [`Shell::echo`], off while `sudo` or `su` reads a password), write back every
//!   [`Input::Echo`], and pass each [`Input::Line`] to [`Shell::run_line`];
//! - write the [`Outcome`]'s output, then the prompt again, until its `exit` is set;
//! - [`Input::Interrupt`] goes to [`Shell::interrupt`], [`Input::Eof`] to [`Shell::eof`];
//! - an ssh exec request goes to [`Shell::exec`] instead (output with bare `\n`).
//!
//! [`Shell::transcript`] is the session as the attacker saw it, capped at
//! [`MAX_TRANSCRIPT`] bytes, for `session_recorded`. [`accounts`] is the login check ssh
//! and telnet share; [`Shell::with_accounts`] lets `sudo`/`su` check passwords against it.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Credential, Emitter, Persona};
use crate::syslog::Message;

pub mod accounts;
mod commands;
mod distro;
mod exec;
mod files;
pub mod fs;
mod line;
mod net;
mod netinfo;
mod parse;
mod passwd;
mod sysinfo;
mod text;
mod tree;

pub use accounts::Accounts;
pub use distro::short_host;
pub use line::{Input, LineEditor, MAX_LINE};

/// The distro's `/etc/issue`, `/etc/issue.net` and release files, path → content (what a
/// telnetd shows before `login:`).
pub fn issue_files(p: &Persona) -> Vec<(&'static str, String)> {
    distro::release_files(p)
}

/// `PRETTY_NAME` of the distro's os-release (what `\S` in an issue file stands for).
pub fn pretty_name(p: &Persona) -> String {
    distro::os_release(p)
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or_else(String::new, |v| v.trim_matches('"').to_owned())
}

/// Largest transcript kept; the rest of a session is counted, not stored.
pub const MAX_TRANSCRIPT: usize = 256 * 1024;
/// Most output one line may produce.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Most lines kept in `history`.
const MAX_HISTORY: usize = 500;
/// How long a wrong `sudo` or `su` password takes to be refused (pam_faildelay).
const AUTH_FAIL_DELAY: Duration = Duration::from_secs(2);

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

/// A password the shell is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// `sudo` of `line`, after `tries` wrong passwords.
    Sudo { line: String, tries: u8 },
    /// `su` to `target`; `login` for `su -`.
    Su { target: String, login: bool },
}

/// One emulated shell session.
#[derive(Debug)]
pub struct Shell {
    ctx: Context,
    machine: tree::Machine,
    fs: fs::Fs,
    /// The effective user (changes with `su`, `sudo -i`).
    user: String,
    /// Users and directories to return to when a nested shell exits.
    stack: Vec<(String, String, bool)>,
    cwd: String,
    env: BTreeMap<String, String>,
    status: i32,
    history: Vec<String>,
    pending: Option<Pending>,
    sudo_cached: bool,
    accounts: Option<Accounts>,
    local: Option<SocketAddr>,
    /// Events the current line produced, emitted once it is done.
    events: Vec<Message>,
    /// Extra time the current line takes (a tool "timing out").
    delay: Duration,
    exit: Option<i32>,
    tty: bool,
    /// Nesting of `sh -c` and `| sh` (capped, so a self-feeding script ends).
    depth: u8,
    /// The line being run (what `sudo` re-runs once it has a password).
    current: String,
    transcript: Vec<u8>,
    transcript_dropped: u64,
}

impl Shell {
    /// A login shell for `ctx.user`, in its home directory.
    pub fn new(ctx: Context) -> Shell {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let machine = tree::Machine::new(&ctx.persona, &ctx.user, now, None);
        let fs = tree::build(&ctx.persona, &machine);
        let user = ctx.user.clone();
        let mut shell = Shell {
            ctx,
            machine,
            fs,
            user,
            stack: Vec::new(),
            cwd: String::new(),
            env: BTreeMap::new(),
            status: 0,
            history: Vec::new(),
            pending: None,
            sudo_cached: false,
            accounts: None,
            local: None,
            events: Vec::new(),
            delay: Duration::ZERO,
            exit: None,
            tty: true,
            depth: 0,
            current: String::new(),
            transcript: Vec::new(),
            transcript_dropped: 0,
        };
        shell.login_env();
        shell
    }

    /// The same shell, with `sudo` and `su` checking passwords against `accounts`
    /// (without, any password is taken).
    pub fn with_accounts(mut self, accounts: Accounts) -> Shell {
        self.accounts = Some(accounts);
        self
    }

    /// The same shell on a machine whose address is the one the client connected to.
    pub fn with_local_addr(mut self, local: SocketAddr) -> Shell {
        self.local = Some(local);
        if let IpAddr::V4(v4) = local.ip().to_canonical()
            && !v4.is_loopback()
            && !v4.is_unspecified()
        {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            self.machine = tree::Machine::new(&self.ctx.persona, &self.ctx.user, now, Some(v4));
            self.fs = tree::build(&self.ctx.persona, &self.machine);
        }
        self.login_env();
        self
    }

    /// The same shell with the client's terminal type (`TERM`).
    pub fn with_term(mut self, term: &str) -> Shell {
        let term: String = term
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(40)
            .collect();
        if !term.is_empty() {
            self.env.insert("TERM".to_owned(), term);
        }
        self
    }

    fn login_env(&mut self) {
        let account = self.machine.account(&self.user).cloned();
        let home = account
            .as_ref()
            .map_or_else(|| format!("/home/{}", self.user), |a| a.home.clone());
        let shell = account.map_or_else(|| "/bin/bash".to_owned(), |a| a.shell);
        self.cwd = home.clone();
        let peer = self.ctx.peer;
        let local_port = self.local.map_or(22, |l| l.port());
        let local_ip = self.local.map_or_else(
            || self.machine.addr.to_string(),
            |l| l.ip().to_canonical().to_string(),
        );
        let term = self
            .env
            .get("TERM")
            .cloned()
            .unwrap_or_else(|| "xterm-256color".to_owned());
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("SHELL", shell);
        set("HOME", home);
        set("USER", self.user.clone());
        set("LOGNAME", self.user.clone());
        set("TERM", term);
        set("SHLVL", "1".to_owned());
        set(
            "PATH",
            commands::path(&self.ctx.persona, self.user == "root"),
        );
        set(
            "LANG",
            if matches!(self.ctx.persona.distro.slug, "alpine" | "arch") {
                "C.UTF-8"
            } else {
                "en_US.UTF-8"
            }
            .to_owned(),
        );
        set("MAIL", format!("/var/mail/{}", self.user));
        if self.ctx.service == "ssh" {
            let ip = peer.ip().to_canonical();
            set("SSH_CLIENT", format!("{ip} {} {local_port}", peer.port()));
            set(
                "SSH_CONNECTION",
                format!("{ip} {} {local_ip} {local_port}", peer.port()),
            );
            set("SSH_TTY", "/dev/pts/0".to_owned());
        }
        self.env = env;
        self.env.insert("PWD".to_owned(), self.cwd.clone());
    }

    /// The banner shown after login, with the `Last login` line.
    pub fn motd(&self) -> Vec<u8> {
        let p = &self.ctx.persona;
        let now = OffsetDateTime::now_utc();
        let mut text = distro::motd(p, &self.machine, &sysinfo::date_utc(now));
        if let Some((_, from, when)) = self
            .machine
            .past_logins
            .iter()
            .find(|(who, ..)| *who == self.user)
        {
            let when = OffsetDateTime::from_unix_timestamp(*when).unwrap_or(now);
            if self.ctx.service == "ssh" {
                text.push_str(&format!(
                    "Last login: {} from {from}\n",
                    sysinfo::ctime(when)
                ));
            } else {
                // pam_lastlog's format under login(1): zone and year, then host and tty.
                let stamp = sysinfo::ctime(when);
                let (head, year) = stamp.rsplit_once(' ').unwrap_or((stamp.as_str(), ""));
                text.push_str(&format!(
                    "Last login: {head} UTC {year} from {from} on pts/1\n"
                ));
            }
        }
        crlf(text.as_bytes())
    }

    /// The prompt shown before each line (a password prompt while one is pending).
    pub fn prompt(&self) -> Vec<u8> {
        match &self.pending {
            Some(Pending::Sudo { .. }) => {
                return format!("[sudo] password for {}: ", self.user).into_bytes();
            }
            Some(Pending::Su { .. }) => return b"Password: ".to_vec(),
            None => {}
        }
        let host = distro::short_host(&self.ctx.persona.hostname);
        let home = self.env.get("HOME").map_or("", String::as_str);
        let dir = if self.cwd == home {
            "~".to_owned()
        } else if let Some(rest) = self.cwd.strip_prefix(&format!("{home}/")) {
            format!("~/{rest}")
        } else {
            self.cwd.clone()
        };
        let sigil = if self.user == "root" { '#' } else { '$' };
        let user = &self.user;
        let text = match distro::prompt_style(&self.ctx.persona) {
            distro::PromptStyle::Debian => format!("{user}@{host}:{dir}{sigil} "),
            distro::PromptStyle::Redhat => {
                let base = if dir == "~" || self.cwd == "/" {
                    dir.as_str()
                } else {
                    self.cwd.rsplit('/').next().unwrap_or("/")
                };
                format!("[{user}@{host} {base}]{sigil} ")
            }
            distro::PromptStyle::Alpine => format!("{host}:{dir}{sigil} "),
            distro::PromptStyle::Kali => {
                let at = if self.user == "root" { "💀" } else { "㉿" };
                format!("┌──({user}{at}{host})-[{dir}]\r\n└─{sigil} ")
            }
        };
        text.into_bytes()
    }

    /// Whether the client's typing should be echoed now (not while a password is read).
    pub fn echo(&self) -> bool {
        self.pending.is_none()
    }

    /// Runs one interactive line; output has tty line ends (`\r\n`).
    pub async fn run_line(&mut self, line: &[u8]) -> Outcome {
        let prompt = self.prompt();
        self.record(&prompt);
        if self.pending.is_some() {
            self.record(b"\r\n");
            let outcome = self.password(line).await;
            self.record(&outcome.output);
            return outcome;
        }
        self.record(line);
        self.record(b"\r\n");
        self.tty = true;
        let outcome = self.run(line).await;
        self.record(&outcome.output);
        outcome
    }

    /// Runs an ssh exec request; output has bare `\n` line ends and `exit` is always set.
    pub async fn exec(&mut self, command: &[u8]) -> Outcome {
        self.record(command);
        self.record(b"\n");
        self.tty = false;
        let mut outcome = self.run(command).await;
        self.pending = None;
        self.record(&outcome.output);
        if outcome.exit.is_none() {
            outcome.exit = Some(self.status);
        }
        outcome
    }

    /// `^C` at the prompt: anything pending (a password read) is dropped.
    pub fn interrupt(&mut self) {
        self.record(b"^C\r\n");
        self.pending = None;
        self.status = 130;
    }

    /// `^D` on an empty line: a login shell says `logout` and ends.
    pub fn eof(&mut self) -> Outcome {
        if self.pending.take().is_some() {
            let output = b"\r\n".to_vec();
            self.record(&output);
            return Outcome { output, exit: None };
        }
        let output = self.leave(0);
        self.record(&output.output);
        output
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

    /// Ends the innermost shell: back to the user before `su`, or the end of the session.
    fn leave(&mut self, code: i32) -> Outcome {
        match self.stack.pop() {
            Some((user, cwd, login)) => {
                self.user = user;
                self.cwd = cwd;
                self.env.insert("USER".to_owned(), self.user.clone());
                self.env.insert("PWD".to_owned(), self.cwd.clone());
                if let Some(a) = self.machine.account(&self.user) {
                    self.env.insert("HOME".to_owned(), a.home.clone());
                }
                let word: &[u8] = if login { b"logout\r\n" } else { b"exit\r\n" };
                Outcome {
                    output: word.to_vec(),
                    exit: None,
                }
            }
            None => Outcome {
                output: if self.tty {
                    b"logout\r\n".to_vec()
                } else {
                    Vec::new()
                },
                exit: Some(code),
            },
        }
    }

    /// Handles a line typed at a password prompt: logged as a credential, never as a command.
    async fn password(&mut self, line: &[u8]) -> Outcome {
        let Some(pending) = self.pending.take() else {
            return Outcome::default();
        };
        let (principal, via) = match &pending {
            Pending::Sudo { .. } => (self.user.clone(), "sudo"),
            Pending::Su { target, .. } => (target.clone(), "su"),
        };
        let cred = Credential::plaintext(Some(principal.as_bytes()), line);
        let ok = match &self.accounts {
            Some(a) => a.check(principal.as_bytes(), line).is_some(),
            None => true,
        };
        let em = self.ctx.emitter.clone();
        let m = cred
            .apply(em.peer_event("auth_attempt", self.ctx.peer))
            .param("username", principal.as_str())
            .param("via", via)
            .param("outcome", if ok { "success" } else { "failure" });
        em.emit(m).await;
        if !ok {
            tokio::time::sleep(AUTH_FAIL_DELAY).await;
        }
        let text = match pending {
            Pending::Sudo { line: cmd, tries } => {
                if ok {
                    self.sudo_cached = true;
                    return self.as_root(&cmd).await;
                }
                if tries >= 2 {
                    self.status = 1;
                    "sudo: 3 incorrect password attempts\n".to_owned()
                } else {
                    self.pending = Some(Pending::Sudo {
                        line: cmd,
                        tries: tries + 1,
                    });
                    "Sorry, try again.\n".to_owned()
                }
            }
            Pending::Su { target, login } => {
                if ok {
                    self.switch_user(&target, login);
                    String::new()
                } else {
                    self.status = 1;
                    "su: Authentication failure\n".to_owned()
                }
            }
        };
        Outcome {
            output: crlf(text.as_bytes()),
            exit: None,
        }
    }

    /// Runs `cmd` as root, as `sudo` does once the password is given.
    async fn as_root(&mut self, cmd: &str) -> Outcome {
        let before = self.user.clone();
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if matches!(
            words.as_slice(),
            ["-i"] | ["-s"] | ["su"] | ["su", "-"] | ["-su"] | ["bash"] | ["-i", "bash"]
        ) {
            self.switch_user("root", words.first() != Some(&"-s") && words != ["bash"]);
            return Outcome::default();
        }
        self.user = "root".to_owned();
        let mut outcome = self.run_parsed(cmd).await;
        if self.user == "root" {
            self.user = before;
        }
        if self.tty {
            outcome.output = crlf(&outcome.output);
            outcome.output.truncate(MAX_OUTPUT);
        }
        outcome
    }

    /// Becomes `target` in a nested shell (`su`, `sudo -i`).
    fn switch_user(&mut self, target: &str, login: bool) {
        self.stack
            .push((self.user.clone(), self.cwd.clone(), login));
        self.user = target.to_owned();
        let home = self
            .machine
            .account(target)
            .map_or_else(|| "/".to_owned(), |a| a.home.clone());
        if login {
            self.cwd = home.clone();
        }
        self.env.insert("USER".to_owned(), target.to_owned());
        self.env.insert("LOGNAME".to_owned(), target.to_owned());
        self.env.insert("HOME".to_owned(), home);
        self.env.insert("PWD".to_owned(), self.cwd.clone());
        self.env.insert(
            "PATH".to_owned(),
            commands::path(&self.ctx.persona, target == "root"),
        );
    }

    /// What bash puts before its own error messages.
    fn err_prefix(&self) -> &'static str {
        if self.ctx.persona.distro.slug == "alpine" {
            if self.tty { "-ash" } else { "sh" }
        } else if self.tty {
            "-bash"
        } else if matches!(self.ctx.persona.distro.slug, "centos7" | "ubuntu20") {
            "bash"
        } else {
            "bash: line 1"
        }
    }

    fn uid(&self) -> u32 {
        self.machine.account(&self.user).map_or(1000, |a| a.uid)
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Queues `m` for emission when the line is done.
    fn event(&mut self, m: Message) {
        if self.events.len() < parse::MAX_COMMANDS {
            self.events.push(m);
        }
    }

    async fn log_command(&self, text: &str) {
        let uid = self.uid();
        let em = &self.ctx.emitter;
        let m = em
            .peer_event("command", self.ctx.peer)
            .param("uid", uid.to_string())
            .param("user", self.user.as_str())
            .param("pwd", self.cwd.as_str())
            .param("command", text)
            .msg(format!(
                "CMD uid={uid} user={} src={} pwd={} cmd={text}",
                self.user,
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

#[cfg(test)]
mod tests;
