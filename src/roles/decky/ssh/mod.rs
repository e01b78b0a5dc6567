//! ssh: an OpenSSH server of the persona's distro, on russh (engine.md §2.8).
//!
//! A connection goes through three stages:
//! - [`ident`]: the banner of the claimed release goes out first, and the client's
//!   identification line is judged as that sshd would (SSH-1 probes, garbage, scanners);
//! - [`transport`]: russh runs the key exchange with that release's name-lists (less
//!   what russh cannot run) and the decky's seed-derived host keys;
//! - [`session`]: logins are checked against the persona's accounts ([`auth`]) and every
//!   attempt is logged byte-exact; a login gets the shared emulated shell, exec requests
//!   run in it, uploads by scp and sftp ([`sftp`]) are captured ([`capture`]), and port
//!   forwarding is refused.
//!
//! Settings besides the persona keys: `SSH_ACCEPT_AFTER` (from the Nth password try on
//! a connection, any password opens root's or the user's account), `SSH_ARTIFACTS_DIR`
//! (where uploads and transcripts are kept), `SSH_AUTH_DELAY_MS` (the mean pause before
//! a refused password, randomised by a quarter either way: 2000 by default, PAM's, and
//! 0 on Alpine, whose sshd has no PAM; see [`delay`]),
//! `SSH_RSA_HOST_KEY=0` (no RSA host key; else it is generated in the background after
//! start and offered from then on, first in the list as sshd has it).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::Config;
use russh::{MethodSet, SshId};
use tokio::io::{AsyncWriteExt, BufReader};

use super::conn::{Conn, Handler, Limits};
use super::shell::Accounts;
use super::{Emitter, Error, Persona, ServiceSpec};

pub mod auth;
pub mod capture;
pub mod delay;
pub mod ident;
pub mod session;
pub mod sftp;
pub mod startups;
pub mod transport;

/// Settings the emulation reads besides the catalogue's persona keys.
pub const EXTRA_SETTINGS: &[&str] = &[
    "SSH_ACCEPT_AFTER",
    "SSH_ARTIFACTS_DIR",
    "SSH_AUTH_DELAY_MS",
    "SSH_RSA_HOST_KEY",
];

/// sshd's `MaxAuthTries`.
const MAX_AUTH_TRIES: usize = 6;

/// What every connection of one decky's ssh shares.
pub struct State {
    /// The service's emitter.
    pub emitter: Emitter,
    /// The persona (with `SSH_HOSTNAME` applied).
    pub persona: Arc<Persona>,
    /// Who may log in.
    pub policy: auth::Policy,
    /// The auth methods offered.
    pub methods: MethodSet,
    /// Where uploads and transcripts are kept.
    pub artifacts: Option<PathBuf>,
    /// The path sshd runs for the sftp subsystem on this distro.
    pub sftp_server: &'static str,
    release: transport::Release,
    delay: delay::FailDelay,
    idle: Duration,
    config: RwLock<Arc<Config>>,
    startups: startups::Startups,
}

impl State {
    /// The russh configuration with host keys `keys`.
    fn config(&self, keys: Vec<PrivateKey>) -> Config {
        Config {
            server_id: SshId::Standard(self.release.ident().into()),
            methods: self.methods.clone(),
            auth_rejection_time: delay::FLOOR,
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys,
            preferred: self.release.preferred(),
            max_auth_attempts: MAX_AUTH_TRIES,
            inactivity_timeout: Some(self.idle),
            nodelay: true,
            ..Config::default()
        }
    }

    fn current(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, config: Config) {
        let config = Arc::new(config);
        match self.config.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

/// Makes the RSA host key off the runtime thread, then offers it ahead of the others.
fn add_rsa_key(state: Arc<State>) {
    let persona = state.persona.clone();
    let made =
        tokio::task::spawn_blocking(move || transport::rsa_host_key(&persona, transport::RSA_BITS));
    tokio::spawn(async move {
        let Ok(Some(rsa)) = made.await else {
            return;
        };
        let mut keys = vec![rsa];
        keys.extend(state.current().keys.iter().cloned());
        state.set(state.config(keys));
    });
}

fn setting<T: std::str::FromStr>(spec: &ServiceSpec, key: &str) -> Result<Option<T>, Error> {
    match spec.settings.get(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Setting {
            service: spec.name.clone(),
            reason: format!("{key} must be a whole number, not {v:?}"),
        }),
    }
}

/// The per-connection handler of `ssh` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> Result<(Handler, Limits), Error> {
    let mut persona = (*spec.persona).clone();
    if let Some(h) = spec
        .settings
        .get("SSH_HOSTNAME")
        .filter(|h| !h.trim().is_empty())
    {
        persona.hostname = h.trim().to_owned();
    }
    let release = transport::Release::of(&persona);
    let methods = session::methods(release.kbd_interactive);
    let delay = setting::<u64>(spec, "SSH_AUTH_DELAY_MS")?
        .unwrap_or_else(|| delay::FailDelay::default_ms(persona.distro.slug));
    let limits = Limits {
        max_conns: 256,
        idle: Duration::from_secs(300),
        total: Duration::from_secs(3600),
        max_line: 8192,
    };
    let sftp_server = match persona.distro.slug {
        "rocky9" | "centos7" | "fedora" => "/usr/libexec/openssh/sftp-server",
        "alpine" | "arch" => "/usr/lib/ssh/sftp-server",
        _ => "/usr/lib/openssh/sftp-server",
    };
    let state = Arc::new(State {
        emitter,
        policy: auth::Policy {
            accounts: Accounts::from_settings("SSH", &spec.settings),
            accept_after: setting(spec, "SSH_ACCEPT_AFTER")?,
        },
        methods,
        artifacts: spec.settings.get("SSH_ARTIFACTS_DIR").map(PathBuf::from),
        sftp_server,
        persona: Arc::new(persona),
        release,
        delay: delay::FailDelay::new(delay),
        idle: limits.idle,
        config: RwLock::new(Arc::new(Config::default())),
        startups: startups::Startups::default(),
    });
    state.set(state.config(transport::HostKeys::derive(&state.persona).0));
    let rsa = spec.settings.get("SSH_RSA_HOST_KEY").map(|v| v.trim());
    if !matches!(rsa, Some("0" | "no" | "false" | "off")) {
        add_rsa_key(state.clone());
    }
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(connection(state.clone(), conn)));
    Ok((handler, limits))
}

/// Disconnects a russh session whose connection task is dropped (total timeout or
/// shutdown), since russh runs it on a task of its own.
struct Hangup(Option<russh::server::Handle>);

impl Drop for Hangup {
    fn drop(&mut self) {
        if let (Some(h), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = h
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        String::new(),
                        String::new(),
                    )
                    .await;
            });
        }
    }
}

async fn connection(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    let em = &state.emitter;
    em.emit(em.peer_event("connect", peer)).await;
    let Some(startup) = state.startups.admit() else {
        let mut stream = stream;
        let _ = stream.write_all(startups::REFUSAL).await;
        let m = em
            .peer_event("disconnect", peer)
            .param("reason", "MaxStartups");
        return em.emit(m).await;
    };
    let mut reader = BufReader::with_capacity(4096, stream);
    let banner = state.release.ident();
    if reader
        .get_mut()
        .write_all(format!("{banner}\r\n").as_bytes())
        .await
        .is_err()
    {
        return disconnected(em, peer).await;
    }
    let legacy = state.release.version.starts_with("OpenSSH_7.");
    let line = match ident::read(&mut reader, legacy).await {
        Ok(ident::Verdict::Proceed(line)) => line,
        Ok(ident::Verdict::Refuse(text, line)) => {
            client_version(em, peer, &line, Some(text)).await;
            let _ = reader
                .get_mut()
                .write_all(format!("{text}\r\n").as_bytes())
                .await;
            return disconnected(em, peer).await;
        }
        Ok(ident::Verdict::Close(line)) => {
            if !line.is_empty() {
                client_version(em, peer, &line, None).await;
            }
            return disconnected(em, peer).await;
        }
        Err(_) => return disconnected(em, peer).await,
    };
    client_version(em, peer, &line, None).await;
    let mut replay = line;
    replay.extend_from_slice(b"\r\n");
    replay.extend_from_slice(reader.buffer());
    let stream = ident::Replay::new(reader.into_inner(), replay, banner.len() + 2);
    let handler = session::Conn::new(state.clone(), peer, local, startup);
    let Ok(running) = russh::server::run_stream(state.current(), stream, handler).await else {
        return;
    };
    let _hangup = Hangup(Some(running.handle()));
    let _ = running.await;
}

/// Logs the client's identification line (its software, for fingerprinting).
async fn client_version(em: &Emitter, peer: SocketAddr, line: &[u8], refused: Option<&str>) {
    let shown = &line[..line.len().min(256)];
    let mut m = em
        .peer_event("client_version", peer)
        .param("version", String::from_utf8_lossy(shown).into_owned());
    if let Some(text) = refused {
        m = m.param("refused", text.to_owned());
    }
    em.emit(m).await;
}

async fn disconnected(em: &Emitter, peer: SocketAddr) {
    em.emit(em.peer_event("disconnect", peer)).await;
}
