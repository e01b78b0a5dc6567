//! ftp: the FTP server of the persona (engine.md §2.8): vsftpd of the distro on Linux,
//! Microsoft's IIS FTP service on Windows ([`flavor`] holds each one's texts). USER and
//! PASS are logged (`user`, `auth_attempt` with the byte-exact secret), a login is
//! accepted per `FTP_LOGIN_MODE` (`always`, `never`, else nine credentials in ten,
//! decided by the seed so a retry gets the same answer), and a logged-in client sees a
//! read-only bait tree generated from the seed: a README, an `.htaccess` (`web.config`
//! on IIS) and a few backup archives.
//!
//! PASV and EPSV open one data listener per transfer that accepts only the control
//! connection's peer; PORT and EPRT ([`active`]) connect back to that peer only, on a
//! port of 1024 or above, and log `port_command` (target, `accepted` or `refused`) and
//! `data_connect` (`connected` or `failed`). As in vsftpd, the data connection is set up
//! before the preliminary reply, so a client that never connects (or cannot be reached)
//! gets `425` alone. `RETR` logs `download_attempt`; `STOR` is read up to [`MAX_UPLOAD`]
//! bytes and, when `FTP_ARTIFACTS_DIR` is set, kept there under the quarantine name of
//! §2.8 with a `file_captured` event.
mod active;
pub mod flavor;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use self::flavor::{Flavor, Reply};
use super::conn::{Conn, Handler, Idle, Limits, Line, read_line};
use super::{Credential, Emitter, Persona, ServiceSpec, quarantine};

/// Settings the emulation reads besides the catalogue's persona keys.
pub const EXTRA_SETTINGS: &[&str] = &["FTP_BANNER", "FTP_LOGIN_MODE", "FTP_ARTIFACTS_DIR"];
/// Largest upload kept; the rest of the stream is read and dropped.
pub const MAX_UPLOAD: usize = 10 * 1024 * 1024;
/// Longest command line.
const MAX_COMMAND: usize = 1024;
/// How long a passive listener waits for the client's data connection.
const DATA_ACCEPT: Duration = Duration::from_secs(30);
/// Longest silence on an open data connection.
const DATA_IDLE: Duration = Duration::from_secs(60);

/// Where the next transfer's data connection comes from (the server keeps one of the two).
enum DataChannel {
    /// PASV/EPSV: a listener the client connects to.
    Passive(TcpListener),
    /// PORT/EPRT: an address of the client's, already checked, to connect to.
    Active(SocketAddr),
}

struct State {
    emitter: Emitter,
    persona: Arc<Persona>,
    flavor: Flavor,
    banner: String,
    mode: String,
    artifacts: Option<PathBuf>,
    files: Vec<(String, Vec<u8>)>,
    installed: OffsetDateTime,
}

/// The per-connection handler of `ftp` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let persona = spec.persona.clone();
    let flavor = Flavor::of(persona.is_windows());
    let banner = spec
        .settings
        .get("FTP_BANNER")
        .cloned()
        .unwrap_or_else(|| flavor.banner(persona.distro.slug));
    let installed = OffsetDateTime::from_unix_timestamp(1_672_531_200)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        + Duration::from_secs(persona.number("ftp-installed", 2 * 365 * 86_400));
    let state = Arc::new(State {
        emitter,
        files: bait_tree(&persona, flavor),
        flavor,
        banner,
        mode: spec
            .settings
            .get("FTP_LOGIN_MODE")
            .cloned()
            .unwrap_or_default(),
        artifacts: spec.settings.get("FTP_ARTIFACTS_DIR").map(PathBuf::from),
        persona,
        installed,
    });
    let limits = Limits {
        max_conns: 128,
        idle: Duration::from_secs(300),
        total: Duration::from_secs(1800),
        max_line: MAX_COMMAND,
    };
    let handler: Handler = Arc::new(move |conn: Conn| Box::pin(session(state.clone(), conn)));
    (handler, limits)
}

/// The bait files: name → content, all from the seed; an IIS site keeps `web.config`
/// and zip archives where an Apache one keeps `.htaccess` and tarballs.
fn bait_tree(p: &Persona, flavor: Flavor) -> Vec<(String, Vec<u8>)> {
    let site = p.pick("ftp-site", &["www", "shop", "intranet", "portal", "app"]);
    let keep = 3 + p.number("ftp-keep", 5);
    let (root, access, archive_ext, magic): (String, (String, String), &str, &[u8]) = match flavor {
        Flavor::Vsftpd => (
            format!("/var/www/{site}"),
            (
                ".htaccess".to_owned(),
                format!(
                    "AuthType Basic\nAuthName \"{site} backups\"\nAuthUserFile /etc/apache2/.htpasswd-{site}\nRequire valid-user\n"
                ),
            ),
            "tar.gz",
            &[0x1f, 0x8b, 0x08, 0x00],
        ),
        Flavor::Iis => (
            format!("D:\\inetpub\\{site}"),
            (
                "web.config".to_owned(),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<configuration>\r\n  <system.webServer>\r\n    <security>\r\n      <authentication>\r\n        <anonymousAuthentication enabled=\"false\" />\r\n        <basicAuthentication enabled=\"true\" realm=\"{site} backups\" />\r\n      </authentication>\r\n    </security>\r\n  </system.webServer>\r\n</configuration>\r\n"
                ),
            ),
            "zip",
            &[0x50, 0x4b, 0x03, 0x04],
        ),
    };
    let mut files = vec![
        (
            "README.txt".to_owned(),
            format!(
                "{site} backups\r\n\r\nNightly dumps of {root} and the {site} database.\r\nKeep the last {keep} copies. Contact ops before deleting anything.\r\n"
            )
            .into_bytes(),
        ),
        (access.0, access.1.into_bytes()),
    ];
    let count = 2 + p.number("ftp-archives", 4);
    for i in 0..count {
        let day = 1 + p.number(&format!("ftp-archive-day-{i}"), 28);
        let month = 1 + p.number(&format!("ftp-archive-month-{i}"), 12);
        let len =
            4096 + usize::try_from(p.number(&format!("ftp-archive-len-{i}"), 60_000)).unwrap_or(0);
        let mut content = magic.to_vec();
        let mut block = p.derive(&format!("ftp-archive-{i}"));
        while content.len() < len {
            content.extend_from_slice(&block);
            block = Sha256::digest(block).into();
        }
        content.truncate(len);
        files.push((
            format!("{site}_backup_2024-{month:02}-{day:02}.{archive_ext}"),
            content,
        ));
    }
    files
}

async fn reply(stream: &mut Idle<TcpStream>, text: &str) -> bool {
    stream
        .write_all(format!("{text}\r\n").as_bytes())
        .await
        .is_ok()
}

/// One control connection.
struct Session {
    state: Arc<State>,
    reader: BufReader<Idle<TcpStream>>,
    ends: Ends,
    user: Option<Vec<u8>>,
    logged_in: bool,
    channel: Option<DataChannel>,
    cwd: String,
    binary: bool,
}

/// The two addresses of the control connection.
#[derive(Clone, Copy)]
struct Ends {
    peer: SocketAddr,
    local: SocketAddr,
}

/// What a command leaves the session to do.
enum Next {
    Continue,
    Close,
}

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    let em = state.emitter.clone();
    em.emit(em.peer_event("connection", peer)).await;
    let mut s = Session {
        reader: BufReader::new(stream),
        ends: Ends { peer, local },
        user: None,
        logged_in: false,
        channel: None,
        cwd: "/".to_owned(),
        // Both servers start a session in ASCII mode.
        binary: false,
        state,
    };
    if s.send(&s.state.banner.clone()).await {
        loop {
            let line = match read_line(&mut s.reader, MAX_COMMAND).await {
                Ok(Line::Line(l)) => l,
                Ok(Line::TooLong) => {
                    s.say(Reply::TooLong).await;
                    break;
                }
                _ => break,
            };
            if matches!(s.command(&line).await, Next::Close) {
                break;
            }
        }
    }
    em.emit(em.peer_event("disconnect", peer)).await;
}

impl Session {
    async fn send(&mut self, text: &str) -> bool {
        reply(self.reader.get_mut(), text).await
    }

    async fn say(&mut self, r: Reply) -> bool {
        let text = self.state.flavor.text(r);
        self.send(text).await
    }

    async fn command(&mut self, line: &[u8]) -> Next {
        let (verb, arg) = match line.iter().position(|b| *b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
        let arg_text = String::from_utf8_lossy(arg).into_owned();
        let state = self.state.clone();
        let em = &state.emitter;
        let peer = self.ends.peer;
        let ok = match verb.as_str() {
            "USER" => {
                em.emit(
                    em.peer_event("user", peer)
                        .param("username", arg_text.clone()),
                )
                .await;
                self.user = Some(arg.to_vec());
                self.logged_in = false;
                self.say(Reply::NeedPassword).await
            }
            "PASS" => self.pass(arg).await,
            "QUIT" => {
                self.say(Reply::Goodbye).await;
                return Next::Close;
            }
            "FEAT" => self.say(Reply::Feat).await,
            "SYST" if self.logged_in || state.flavor == Flavor::Iis => self.say(Reply::Syst).await,
            "NOOP" => self.say(Reply::Noop).await,
            _ if !self.logged_in => self.say(Reply::NotLoggedIn).await,
            "PWD" | "XPWD" => {
                let text = state.flavor.pwd(&self.cwd);
                self.send(&text).await
            }
            "CWD" | "XCWD" => match arg_text.trim_matches(['/', '\\']) {
                "" | "." => {
                    self.cwd = "/".into();
                    self.say(Reply::CwdOk).await
                }
                _ => self.say(Reply::CwdFailed).await,
            },
            "CDUP" | "XCUP" => self.say(Reply::CwdOk).await,
            "TYPE" => match arg_text.trim().to_ascii_uppercase().as_str() {
                "I" | "L 8" => {
                    self.binary = true;
                    self.say(Reply::TypeBinary).await
                }
                "A" | "A N" => {
                    self.binary = false;
                    self.say(Reply::TypeAscii).await
                }
                _ => self.say(Reply::TypeBad).await,
            },
            "PASV" | "EPSV" => self.passive(&verb).await,
            "PORT" | "EPRT" => self.active(&verb, &arg_text).await,
            "SIZE" => match state.files.iter().find(|(n, _)| *n == basename(&arg_text)) {
                Some((_, c)) => self.send(&format!("213 {}", c.len())).await,
                None => self.say(Reply::SizeFailed).await,
            },
            "LIST" | "NLST" | "RETR" | "STOR" => match self.channel.take() {
                Some(data) => self.transfer(data, &verb, &arg_text, arg).await,
                None => self.say(Reply::UsePortOrPasv).await,
            },
            _ => self.say(Reply::Unknown).await,
        };
        if ok { Next::Continue } else { Next::Close }
    }

    async fn pass(&mut self, arg: &[u8]) -> bool {
        let Some(name) = self.user.clone() else {
            return self.say(Reply::UserFirst).await;
        };
        let state = self.state.clone();
        let em = &state.emitter;
        let accepted = match state.mode.as_str() {
            "always" => true,
            "never" => false,
            _ => {
                let label = format!("ftp-login-{}-{}", hex::encode(&name), hex::encode(arg));
                state.persona.number(&label, 10) < 9
            }
        };
        let username = String::from_utf8_lossy(&name).into_owned();
        let event = Credential::plaintext(Some(&name), arg)
            .apply(
                em.peer_event("auth_attempt", self.ends.peer)
                    .param("username", username),
            )
            .param("outcome", if accepted { "success" } else { "failure" });
        em.emit(event).await;
        if accepted {
            self.logged_in = true;
            self.say(Reply::LoggedIn).await
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.say(Reply::LoginIncorrect).await
        }
    }

    async fn passive(&mut self, verb: &str) -> bool {
        let local = self.ends.local;
        let Ok(listener) = TcpListener::bind(SocketAddr::new(local.ip(), 0)).await else {
            return self.say(Reply::PassiveFailed).await;
        };
        let port = listener.local_addr().map_or(0, |a| a.port());
        self.channel = Some(DataChannel::Passive(listener));
        if verb == "EPSV" {
            return self
                .send(&format!("229 Entering Extended Passive Mode (|||{port}|)"))
                .await;
        }
        let ip = match local.ip().to_canonical() {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(_) => [0, 0, 0, 0],
        };
        let text = format!(
            "227 Entering Passive Mode ({},{},{},{},{},{}).",
            ip[0],
            ip[1],
            ip[2],
            ip[3],
            port >> 8,
            port & 0xff
        );
        self.send(&text).await
    }

    async fn active(&mut self, verb: &str, arg: &str) -> bool {
        let (ok, illegal) = match verb {
            "PORT" => (Reply::PortOk, Reply::PortIllegal),
            _ => (Reply::EprtOk, Reply::EprtIllegal),
        };
        // vsftpd forgets any earlier PASV or PORT first, whatever this one says.
        self.channel = None;
        let target = if verb == "PORT" {
            active::parse_port(arg).ok_or(self.state.flavor.text(illegal))
        } else {
            active::parse_eprt(arg, self.ends.local.is_ipv6()).map_err(|vsftpd| {
                match self.state.flavor {
                    Flavor::Vsftpd => vsftpd,
                    Flavor::Iis => self.state.flavor.text(illegal),
                }
            })
        };
        let target = match target {
            Ok(t) => t,
            Err(text) => return self.send(text).await,
        };
        let refused = active::refusal(target, self.ends.peer);
        let em = &self.state.emitter;
        let mut event = em
            .peer_event("port_command", self.ends.peer)
            .param("verb", verb)
            .param("target_ip", target.ip().to_canonical().to_string())
            .param("target_port", target.port().to_string())
            .param(
                "outcome",
                if refused.is_some() {
                    "refused"
                } else {
                    "accepted"
                },
            );
        if let Some(reason) = refused {
            event = event.param("reason", reason);
        }
        em.emit(event).await;
        if refused.is_some() {
            return self.say(illegal).await;
        }
        self.channel = Some(DataChannel::Active(target));
        self.say(ok).await
    }

    /// Opens the data connection of one transfer, logging an active-mode attempt.
    async fn data_conn(&self, channel: DataChannel) -> Option<Idle<TcpStream>> {
        let ends = self.ends;
        let stream = match channel {
            DataChannel::Passive(listener) => {
                let (stream, from) = tokio::time::timeout(DATA_ACCEPT, listener.accept())
                    .await
                    .ok()?
                    .ok()?;
                // Only the client of the control connection may use its data port.
                (from.ip().to_canonical() == ends.peer.ip().to_canonical()).then_some(stream)?
            }
            DataChannel::Active(target) => {
                let result = active::connect(target, ends.local.ip()).await;
                let em = &self.state.emitter;
                let mut event = em
                    .peer_event("data_connect", ends.peer)
                    .param("target_ip", target.ip().to_canonical().to_string())
                    .param("target_port", target.port().to_string())
                    .param(
                        "outcome",
                        if result.is_ok() {
                            "connected"
                        } else {
                            "failed"
                        },
                    );
                if let Err(e) = &result {
                    event = event.param("error", e.to_string());
                }
                em.emit(event).await;
                result.ok()?
            }
        };
        Some(Idle::new(stream, DATA_IDLE))
    }

    async fn transfer(
        &mut self,
        channel: DataChannel,
        verb: &str,
        arg_text: &str,
        arg: &[u8],
    ) -> bool {
        let state = self.state.clone();
        let em = &state.emitter;
        let peer = self.ends.peer;
        let flavor = state.flavor;
        let file = state.files.iter().find(|(n, _)| *n == basename(arg_text));
        if verb == "RETR" && file.is_none() {
            em.emit(
                em.peer_event("download_attempt", peer)
                    .param("path", arg_text),
            )
            .await;
            return self.say(Reply::NoSuchFile).await;
        }
        let passive = matches!(channel, DataChannel::Passive(_));
        let Some(mut data) = self.data_conn(channel).await else {
            return self.say(Reply::DataFailed).await;
        };
        let listing = matches!(verb, "LIST" | "NLST");
        let opening = flavor.opening(
            verb,
            file.map(|(n, c)| (n.as_str(), c.len())),
            self.binary && !listing,
            passive,
        );
        if !self.send(&opening).await {
            return false;
        }
        match verb {
            "LIST" | "NLST" => {
                let mut text = String::new();
                for (name, content) in &state.files {
                    if verb == "NLST" {
                        text.push_str(&format!("{name}\r\n"));
                    } else {
                        text.push_str(&flavor.list_line(name, content.len(), state.installed));
                    }
                }
                let _ = data.write_all(text.as_bytes()).await;
                let _ = data.shutdown().await;
                self.say(Reply::ListDone).await
            }
            "RETR" => {
                em.emit(
                    em.peer_event("download_attempt", peer)
                        .param("path", arg_text),
                )
                .await;
                if let Some((_, content)) = file {
                    let _ = data.write_all(content).await;
                }
                let _ = data.shutdown().await;
                self.say(Reply::TransferDone).await
            }
            _ => {
                let mut kept = Vec::new();
                let mut total = 0usize;
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = data.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n;
                    let room = MAX_UPLOAD.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                captured(&state, peer, arg, &kept, total).await;
                self.say(Reply::TransferDone).await
            }
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Logs (and, with an artifacts directory, keeps) an uploaded file.
async fn captured(state: &State, peer: SocketAddr, path: &[u8], content: &[u8], total: usize) {
    let sha = hex::encode(Sha256::digest(content));
    let stored_as = quarantine::stored_name(
        OffsetDateTime::now_utc(),
        &sha,
        &quarantine::basename(&String::from_utf8_lossy(path)),
    );
    let mut event = state
        .emitter
        .peer_event("file_captured", peer)
        .param("stored_as", stored_as.clone())
        .param("sha256", sha)
        .param("size", total.to_string())
        .param("orig_path", String::from_utf8_lossy(path).into_owned())
        .param("truncated", if total > content.len() { "1" } else { "0" });
    if let Some(dir) = &state.artifacts
        && let Err(e) = quarantine::store(dir, &stored_as, content).await
    {
        event = event.param("store_error", e.to_string());
    }
    state.emitter.emit(event).await;
}
