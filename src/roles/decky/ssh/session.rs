//! One ssh connection after the identification exchange, as russh's [`Handler`]: the
//! login attempts, then the channels. A session channel becomes an emulated shell (with
//! or without a pty), an exec request run by the same shell, a legacy scp sink or the
//! sftp subsystem; port forwarding is logged and refused. When the connection ends the
//! transcript of every shell is reported as `session_recorded`.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::{Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Response, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::time::Instant;

use super::State;
use super::auth::{log_key, log_secret};
use super::capture::{Scp, Sink, Upload};
use super::sftp::Sftp;
use super::startups::Startup;
use crate::roles::decky::shell::{self, Input, LineEditor, MAX_TRANSCRIPT, Shell};

/// Longest user name kept: longer than any account's, and than the principal logged.
const MAX_USER: usize = 1024;

/// sshd's `MaxSessions`: session channels open at once on one connection.
const MAX_SESSIONS: usize = 10;

enum Chan {
    /// Opened, no request yet; `term` is set by a pty request.
    Open { term: Option<String> },
    /// An interactive shell.
    Shell {
        shell: Box<Shell>,
        editor: LineEditor,
        pty: bool,
    },
    /// `scp -t`.
    Scp(Scp),
    /// The sftp subsystem.
    Sftp(Box<Sftp>),
}

/// The state of one connection, owned by russh's session task.
pub struct Conn {
    state: Arc<State>,
    peer: SocketAddr,
    local: SocketAddr,
    started: Instant,
    tries: u32,
    /// The exact user name of the request being checked (at most [`MAX_USER`] bytes).
    claimed: Vec<u8>,
    user: Option<String>,
    channels: HashMap<ChannelId, Chan>,
    transcript: Vec<u8>,
    dropped: u64,
    /// The connection's place among the unauthenticated ones, until it logs in.
    startup: Option<Startup>,
}

impl Conn {
    /// A connection from `peer` to `local`, holding `startup` until it logs in.
    pub fn new(state: Arc<State>, peer: SocketAddr, local: SocketAddr, startup: Startup) -> Self {
        Conn {
            state,
            peer,
            local,
            started: Instant::now(),
            tries: 0,
            claimed: Vec::new(),
            user: None,
            channels: HashMap::new(),
            transcript: Vec::new(),
            dropped: 0,
            startup: Some(startup),
        }
    }

    fn account(&self) -> String {
        self.user.clone().unwrap_or_else(|| "root".to_owned())
    }

    fn shell(&self, term: Option<&str>) -> Shell {
        let sh = Shell::new(shell::Context {
            persona: self.state.persona.clone(),
            emitter: self.state.emitter.clone(),
            peer: self.peer,
            user: self.account(),
            service: "ssh",
        })
        .with_accounts(self.state.policy.accounts.clone())
        .with_local_addr(self.local);
        match term {
            Some(t) => sh.with_term(t),
            None => sh,
        }
    }

    fn sink(&self) -> Sink {
        Sink {
            emitter: self.state.emitter.clone(),
            peer: self.peer,
            user: self.account(),
            dir: self.state.artifacts.clone(),
        }
    }

    fn home(&self) -> String {
        match self.user.as_deref() {
            Some("root") | None => "/root".to_owned(),
            Some(u) => format!("/home/{u}"),
        }
    }

    /// Keeps `shell`'s transcript for the end of the connection.
    fn keep(&mut self, shell: &Shell) {
        let t = shell.transcript();
        let room = MAX_TRANSCRIPT.saturating_sub(self.transcript.len());
        let n = t.len().min(room);
        self.transcript.extend_from_slice(&t[..n]);
        self.dropped += (t.len() - n) as u64 + shell.transcript_dropped();
    }

    async fn password(&mut self, method: &str, secret: &[u8]) -> Auth {
        self.tries += 1;
        let user = &self.claimed;
        let account = self.state.policy.check(user, secret, self.tries);
        let em = &self.state.emitter;
        log_secret(em, self.peer, method, user, secret, account.is_some()).await;
        match account {
            Some(a) => {
                self.user = Some(a);
                self.startup = None;
                Auth::Accept
            }
            None => {
                tokio::time::sleep(self.state.delay.draw()).await;
                self.reject()
            }
        }
    }

    /// A refusal that keeps every method on offer, as sshd does (russh would otherwise
    /// drop the method that just failed, and the next "Permission denied" would say so).
    fn reject(&self) -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(self.state.methods.clone()),
            partial_success: false,
        }
    }

    /// Logs what sshd runs itself (an scp sink, the sftp server) in the shell's
    /// `command` shape, since no shell line stands for it.
    async fn log_command(&self, text: &str) {
        let user = self.account();
        let uid = if user == "root" { "0" } else { "1000" };
        let pwd = self.home();
        let em = &self.state.emitter;
        let m = em
            .peer_event("command", self.peer)
            .param("uid", uid)
            .param("user", user.clone())
            .param("pwd", pwd.clone())
            .param("command", text.to_owned())
            .msg(format!(
                "CMD uid={uid} user={user} src={} pwd={pwd} cmd={text}",
                self.peer.ip().to_canonical()
            ));
        em.emit(m).await;
    }

    async fn uploads(&self, done: Vec<Upload>, how: &str) {
        if done.is_empty() {
            return;
        }
        let sink = self.sink();
        for u in done {
            sink.finish(&u, how).await;
        }
    }

    /// Ends a channel as a finished command does: exit status, EOF, close.
    fn finish(
        &mut self,
        channel: ChannelId,
        code: i32,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if let Some(Chan::Shell { shell, .. }) = self.channels.remove(&channel) {
            self.keep(&shell);
        }
        session.exit_status_request(channel, u32::try_from(code).unwrap_or(1))?;
        session.eof(channel)?;
        session.close(channel)
    }

    async fn port_forward(&self, kind: &str, host: &str, port: u32, origin: Option<(&str, u32)>) {
        let em = &self.state.emitter;
        let mut m = em
            .peer_event("port_forward", self.peer)
            .param("kind", kind.to_owned())
            .param("host", super::super::events::cap_str(host, 255).to_owned())
            .param("port", port.to_string())
            .param("outcome", "refused");
        if let Some((addr, p)) = origin {
            m = m
                .param(
                    "originator",
                    super::super::events::cap_str(addr, 64).to_owned(),
                )
                .param("originator_port", p.to_string());
        }
        em.emit(m).await;
    }

    /// Runs the bytes a shell channel received.
    async fn shell_data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let Some(Chan::Shell { shell, editor, pty }) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let pty = *pty;
        let mut out = Vec::new();
        let mut exit = None;
        for input in editor.feed(data) {
            match input {
                Input::Echo(bytes) => {
                    if pty {
                        out.extend_from_slice(&bytes);
                    }
                }
                Input::Line(line) => {
                    let o = shell.run_line(&line).await;
                    out.extend_from_slice(&tty(&o.output, pty));
                    if o.exit.is_some() {
                        exit = o.exit;
                        break;
                    }
                    if pty {
                        out.extend_from_slice(&shell.prompt());
                    }
                }
                Input::Interrupt => {
                    shell.interrupt();
                    if pty {
                        out.extend_from_slice(b"^C\r\n");
                        out.extend_from_slice(&shell.prompt());
                    }
                }
                Input::Eof => {
                    let o = shell.eof();
                    out.extend_from_slice(&tty(&o.output, pty));
                    exit = Some(o.exit.unwrap_or(0));
                    break;
                }
            }
            editor.set_echo(shell.echo());
        }
        if !out.is_empty() {
            session.data(channel, out)?;
        }
        if let Some(code) = exit {
            self.finish(channel, code, session)?;
        }
        Ok(())
    }
}

/// `output` (written with tty line ends) as a pipe without a pty gets it: bare `\n`.
fn tty(output: &[u8], pty: bool) -> Vec<u8> {
    if pty {
        return output.to_vec();
    }
    let mut out = Vec::with_capacity(output.len());
    let mut i = 0;
    while i < output.len() {
        if output[i] == b'\r' && output.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(output[i]);
        i += 1;
    }
    out
}

/// The target of `scp -t [-d] [-r] [-p] [--] target`, if `command` is an scp sink.
fn scp_target(command: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(command);
    let mut words = text.split_whitespace();
    if words.next()? != "scp" {
        return None;
    }
    let mut sink = false;
    let mut target = None;
    for w in words {
        if w.starts_with('-') && target.is_none() {
            sink |= w.contains('t');
        } else {
            target = Some(w.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    sink.then(|| target.unwrap_or_else(|| ".".to_owned()))
}

impl Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    fn auth_user_bytes(&mut self, user: &[u8]) {
        self.claimed.clear();
        self.claimed
            .extend_from_slice(&user[..user.len().min(MAX_USER)]);
    }

    async fn auth_password(&mut self, _user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.password("password", password.as_bytes()).await)
    }

    async fn auth_password_bytes(
        &mut self,
        _user: &str,
        password: &[u8],
    ) -> Result<Auth, Self::Error> {
        Ok(self.password("password", password).await)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        match response.and_then(|mut r| r.next()) {
            // PAM's pam_unix prompt, as sshd relays it.
            None => Ok(Auth::Partial {
                name: "".into(),
                instructions: "".into(),
                prompts: vec![("Password: ".into(), false)].into(),
            }),
            Some(answer) => Ok(self.password("keyboard-interactive", &answer).await),
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let key = offer.public_key;
        log_key(&self.state.emitter, self.peer, &self.claimed, key).await;
        Ok(self.reject())
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_SESSIONS {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        self.channels
            .insert(channel.id(), Chan::Open { term: None });
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.port_forward(
            "direct-tcpip",
            host,
            port,
            Some((originator, originator_port)),
        )
        .await;
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.port_forward("tcpip-forward", address, *port, None)
            .await;
        Ok(false)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(Chan::Open { term: t }) = self.channels.get_mut(&channel) {
            *t = Some(term.to_owned());
        }
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(Chan::Open { term }) = self.channels.get(&channel) else {
            return session.channel_failure(channel);
        };
        let term = term.clone();
        let pty = term.is_some();
        let shell = self.shell(term.as_deref());
        let mut editor = LineEditor::new();
        editor.set_echo(pty);
        session.channel_success(channel)?;
        if pty {
            let mut hello = shell.motd();
            hello.extend_from_slice(&shell.prompt());
            session.data(channel, hello)?;
        }
        self.channels.insert(
            channel,
            Chan::Shell {
                shell: Box::new(shell),
                editor,
                pty,
            },
        );
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !matches!(self.channels.get(&channel), Some(Chan::Open { .. })) {
            return session.channel_failure(channel);
        }
        session.channel_success(channel)?;
        let command = &data[..data.len().min(shell::MAX_LINE)];
        if let Some(target) = scp_target(command) {
            self.log_command(&String::from_utf8_lossy(command)).await;
            let is_dir = target.ends_with('/')
                || target == "."
                || Sftp::is_dir(&self.home(), target.trim_end_matches('/'));
            self.channels
                .insert(channel, Chan::Scp(Scp::new(target, is_dir)));
            return session.data(channel, vec![0u8]);
        }
        let mut shell = self.shell(None);
        let o = shell.exec(command).await;
        if !o.output.is_empty() {
            session.data(channel, o.output)?;
        }
        self.keep(&shell);
        self.channels.remove(&channel);
        session.exit_status_request(channel, u32::try_from(o.exit.unwrap_or(0)).unwrap_or(1))?;
        session.eof(channel)?;
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" || !matches!(self.channels.get(&channel), Some(Chan::Open { .. })) {
            return session.channel_failure(channel);
        }
        self.log_command(self.state.sftp_server).await;
        self.channels
            .insert(channel, Chan::Sftp(Box::new(Sftp::new(self.home()))));
        session.channel_success(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(Chan::Shell { .. }) => self.shell_data(channel, data, session).await,
            Some(Chan::Scp(scp)) => {
                let step = scp.feed(data);
                if !step.reply.is_empty() {
                    session.data(channel, step.reply)?;
                }
                self.uploads(step.done, "scp").await;
                Ok(())
            }
            Some(Chan::Sftp(sftp)) => {
                let step = sftp.feed(data);
                if !step.reply.is_empty() {
                    session.data(channel, step.reply)?;
                }
                self.uploads(step.done, "sftp").await;
                if step.fail {
                    self.finish(channel, 1, session)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get(&channel) {
            Some(Chan::Scp(_) | Chan::Sftp(_)) => self.finish(channel, 0, session),
            // A shell without a pty reads its commands from stdin: EOF ends it.
            Some(Chan::Shell { pty: false, .. }) => self.finish(channel, 0, session),
            _ => Ok(()),
        }
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(Chan::Shell { shell, .. }) = self.channels.remove(&channel) {
            self.keep(&shell);
        }
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let shells: Vec<Box<Shell>> = self
            .channels
            .drain()
            .filter_map(|(_, c)| match c {
                Chan::Shell { shell, .. } => Some(shell),
                _ => None,
            })
            .collect();
        for s in &shells {
            self.keep(s);
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let em = self.state.emitter.clone();
        let peer = self.peer;
        let transcript = std::mem::take(&mut self.transcript);
        let dropped = self.dropped;
        let duration = self.started.elapsed().as_secs_f64();
        let logged_in = self.user.is_some();
        let sink = self.sink();
        let sid = self
            .state
            .persona
            .hex(&format!("ssh-sid-{peer}-{duration}"), 16);
        rt.spawn(async move {
            if logged_in {
                let mut m = em
                    .peer_event("session_recorded", peer)
                    .param("sid", sid.clone())
                    .param("service", "ssh")
                    .param("duration_s", format!("{duration:.3}"))
                    .param("bytes", (transcript.len() as u64 + dropped).to_string())
                    .param("truncated", if dropped > 0 { "1" } else { "0" });
                if sink.dir.is_some() && !transcript.is_empty() {
                    let mut u = Upload::new(format!("session-{sid}.log"));
                    u.push(&transcript);
                    m = m.param("transcript", "kept");
                    sink.finish(&u, "transcript").await;
                }
                em.emit(m).await;
            }
            em.emit(em.peer_event("disconnect", peer)).await;
        });
    }
}

/// The auth methods a release's sshd offers, in sshd's order.
pub fn methods(kbd_interactive: bool) -> MethodSet {
    let mut m = MethodSet::empty();
    m.push(MethodKind::PublicKey);
    m.push(MethodKind::Password);
    if kbd_interactive {
        m.push(MethodKind::KeyboardInteractive);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_sinks_are_recognised() {
        assert_eq!(scp_target(b"scp -t /tmp/x").as_deref(), Some("/tmp/x"));
        assert_eq!(
            scp_target(b"scp -r -d -t -- /tmp/").as_deref(),
            Some("/tmp/")
        );
        assert_eq!(scp_target(b"scp -f /etc/passwd"), None);
        assert_eq!(scp_target(b"ls -t"), None);
        assert_eq!(tty(b"a\r\nb\r\n", false), b"a\nb\n");
    }
}
