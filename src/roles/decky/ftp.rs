//! ftp: a vsftpd of the persona's distro (engine.md §2.8). USER and PASS are logged
//! (`user`, `auth_attempt` with the byte-exact secret), a login is accepted per
//! `FTP_LOGIN_MODE` (`always`, `never`, else nine credentials in ten, decided by the seed
//! so a retry gets the same answer), and a logged-in client sees a read-only bait tree
//! generated from the seed: a README, an `.htaccess` and a few backup archives. PASV and
//! EPSV open one data listener per transfer that accepts only the control connection's
//! peer; `RETR` logs `download_attempt`; `STOR` is read up to [`MAX_UPLOAD`] bytes and,
//! when `FTP_ARTIFACTS_DIR` is set, kept there under the quarantine name of §2.8 with a
//! `file_captured` event. Replies are vsftpd's texts.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

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

struct State {
    emitter: Emitter,
    persona: Arc<Persona>,
    banner: String,
    mode: String,
    artifacts: Option<PathBuf>,
    files: Vec<(String, Vec<u8>)>,
    installed: OffsetDateTime,
}

/// The per-connection handler of `ftp` and its limits.
pub fn handler(spec: &ServiceSpec, emitter: Emitter) -> (Handler, Limits) {
    let persona = spec.persona.clone();
    let release = match persona.distro.slug {
        "ubuntu20" | "debian" => "3.0.3",
        "centos7" => "3.0.2",
        _ => "3.0.5",
    };
    let banner = spec
        .settings
        .get("FTP_BANNER")
        .cloned()
        .unwrap_or_else(|| format!("220 (vsFTPd {release})"));
    let installed = OffsetDateTime::from_unix_timestamp(1_672_531_200)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        + Duration::from_secs(persona.number("ftp-installed", 2 * 365 * 86_400));
    let state = Arc::new(State {
        emitter,
        files: bait_tree(&persona),
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

/// The bait files: name → content, all from the seed.
fn bait_tree(p: &Persona) -> Vec<(String, Vec<u8>)> {
    let site = p.pick("ftp-site", &["www", "shop", "intranet", "portal", "app"]);
    let mut files = vec![
        (
            "README.txt".to_owned(),
            format!(
                "{site} backups\r\n\r\nNightly dumps of /var/www/{site} and the {site} database.\r\nKeep the last {} copies. Contact ops before deleting anything.\r\n",
                3 + p.number("ftp-keep", 5)
            )
            .into_bytes(),
        ),
        (
            ".htaccess".to_owned(),
            format!(
                "AuthType Basic\nAuthName \"{site} backups\"\nAuthUserFile /etc/apache2/.htpasswd-{site}\nRequire valid-user\n"
            )
            .into_bytes(),
        ),
    ];
    let count = 2 + p.number("ftp-archives", 4);
    for i in 0..count {
        let day = 1 + p.number(&format!("ftp-archive-day-{i}"), 28);
        let month = 1 + p.number(&format!("ftp-archive-month-{i}"), 12);
        let len =
            4096 + usize::try_from(p.number(&format!("ftp-archive-len-{i}"), 60_000)).unwrap_or(0);
        let mut content = vec![0x1f, 0x8b, 0x08, 0x00];
        let mut block = p.derive(&format!("ftp-archive-{i}"));
        while content.len() < len {
            content.extend_from_slice(&block);
            block = Sha256::digest(block).into();
        }
        content.truncate(len);
        files.push((
            format!("{site}_backup_2024-{month:02}-{day:02}.tar.gz"),
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

async fn session(state: Arc<State>, conn: Conn) {
    let Conn {
        stream,
        peer,
        local,
    } = conn;
    let em = &state.emitter;
    em.emit(em.peer_event("connection", peer)).await;
    let mut reader = BufReader::new(stream);
    if !reply(reader.get_mut(), &state.banner).await {
        return;
    }
    let mut user: Option<Vec<u8>> = None;
    let mut logged_in = false;
    let mut passive: Option<TcpListener> = None;
    let mut cwd = "/".to_owned();
    loop {
        let line = match read_line(&mut reader, MAX_COMMAND).await {
            Ok(Line::Line(l)) => l,
            Ok(Line::TooLong) => {
                let _ = reply(reader.get_mut(), "500 Input line too long.").await;
                break;
            }
            _ => break,
        };
        let (verb, arg) = match line.iter().position(|b| *b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (&line[..], &b""[..]),
        };
        let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
        let arg_text = String::from_utf8_lossy(arg).into_owned();
        let out = reader.get_mut();
        let ok = match verb.as_str() {
            "USER" => {
                em.emit(em.peer_event("user", peer).param("username", arg_text.clone())).await;
                user = Some(arg.to_vec());
                logged_in = false;
                reply(out, "331 Please specify the password.").await
            }
            "PASS" => {
                let Some(name) = user.clone() else {
                    let _ = reply(out, "503 Login with USER first.").await;
                    continue;
                };
                let accepted = match state.mode.as_str() {
                    "always" => true,
                    "never" => false,
                    _ => {
                        let label = format!("ftp-login-{}-{}", hex::encode(&name), hex::encode(arg));
                        state.persona.number(&label, 10) < 9
                    }
                };
                let cred = Credential::plaintext(Some(&name), arg);
                let event = cred
                    .apply(em.peer_event("auth_attempt", peer).param("username", String::from_utf8_lossy(&name).into_owned()))
                    .param("outcome", if accepted { "success" } else { "failure" });
                em.emit(event).await;
                if accepted {
                    logged_in = true;
                    reply(out, "230 Login successful.").await
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    reply(out, "530 Login incorrect.").await
                }
            }
            "QUIT" => {
                let _ = reply(out, "221 Goodbye.").await;
                break;
            }
            "FEAT" => reply(out, "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End").await,
            "SYST" if logged_in => reply(out, "215 UNIX Type: L8").await,
            "NOOP" => reply(out, "200 NOOP ok.").await,
            _ if !logged_in => reply(out, "530 Please login with USER and PASS.").await,
            "PWD" | "XPWD" => reply(out, &format!("257 \"{cwd}\" is the current directory")).await,
            "CWD" | "XCWD" => match arg_text.trim_matches('/') {
                "" | "." => {
                    cwd = "/".into();
                    reply(out, "250 Directory successfully changed.").await
                }
                _ => reply(out, "550 Failed to change directory.").await,
            },
            "CDUP" => reply(out, "250 Directory successfully changed.").await,
            "TYPE" => match arg_text.trim().to_ascii_uppercase().as_str() {
                "I" | "L 8" => reply(out, "200 Switching to Binary mode.").await,
                "A" | "A N" => reply(out, "200 Switching to ASCII mode.").await,
                _ => reply(out, "500 Unrecognised TYPE command.").await,
            },
            "PASV" | "EPSV" => {
                let bind = SocketAddr::new(local.ip(), 0);
                match TcpListener::bind(bind).await {
                    Ok(l) => {
                        let port = l.local_addr().map_or(0, |a| a.port());
                        passive = Some(l);
                        if verb == "EPSV" {
                            reply(out, &format!("229 Entering Extended Passive Mode (|||{port}|)")).await
                        } else {
                            let ip = match local.ip().to_canonical() {
                                std::net::IpAddr::V4(v4) => v4.octets(),
                                std::net::IpAddr::V6(_) => [0, 0, 0, 0],
                            };
                            reply(out, &format!(
                                "227 Entering Passive Mode ({},{},{},{},{},{}).",
                                ip[0], ip[1], ip[2], ip[3], port >> 8, port & 0xff
                            )).await
                        }
                    }
                    Err(_) => reply(out, "425 Could not enter passive mode.").await,
                }
            }
            "PORT" | "EPRT" => reply(out, "500 Illegal PORT command.").await,
            "SIZE" => match state.files.iter().find(|(n, _)| *n == basename(&arg_text)) {
                Some((_, c)) => reply(out, &format!("213 {}", c.len())).await,
                None => reply(out, "550 Could not get file size.").await,
            },
            "LIST" | "NLST" | "RETR" | "STOR" => {
                let Some(listener) = passive.take() else {
                    let _ = reply(out, "425 Use PORT or PASV first.").await;
                    continue;
                };
                transfer(&state, &mut reader, listener, peer, &verb, &arg_text, arg).await
            }
            _ => reply(out, "500 Unknown command.").await,
        };
        if !ok {
            break;
        }
    }
    em.emit(em.peer_event("disconnect", peer)).await;
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

async fn data_conn(listener: TcpListener, peer: SocketAddr) -> Option<TcpStream> {
    let (stream, from) = tokio::time::timeout(DATA_ACCEPT, listener.accept())
        .await
        .ok()?
        .ok()?;
    // Only the client of the control connection may use its data port.
    (from.ip().to_canonical() == peer.ip().to_canonical()).then_some(stream)
}

async fn transfer(
    state: &State,
    reader: &mut BufReader<Idle<TcpStream>>,
    listener: TcpListener,
    peer: SocketAddr,
    verb: &str,
    arg_text: &str,
    arg: &[u8],
) -> bool {
    let em = &state.emitter;
    let file = state.files.iter().find(|(n, _)| *n == basename(arg_text));
    let opening = match (verb, file) {
        ("LIST" | "NLST", _) => "150 Here comes the directory listing.".to_owned(),
        ("RETR", Some((name, c))) => format!(
            "150 Opening BINARY mode data connection for {name} ({} bytes).",
            c.len()
        ),
        ("RETR", None) => {
            em.emit(
                em.peer_event("download_attempt", peer)
                    .param("path", arg_text),
            )
            .await;
            return reply(reader.get_mut(), "550 Failed to open file.").await;
        }
        _ => "150 Ok to send data.".to_owned(),
    };
    if !reply(reader.get_mut(), &opening).await {
        return false;
    }
    let Some(mut data) = data_conn(listener, peer).await else {
        return reply(reader.get_mut(), "425 Failed to establish connection.").await;
    };
    match verb {
        "LIST" | "NLST" => {
            let mut text = String::new();
            for (name, content) in &state.files {
                if verb == "NLST" {
                    text.push_str(&format!("{name}\r\n"));
                } else {
                    let when = state.installed;
                    text.push_str(&format!(
                        "-rw-r--r--    1 1000     1000     {:>8} {} {:>2} {:04} {name}\r\n",
                        content.len(),
                        [
                            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                            "Nov", "Dec"
                        ][usize::from(u8::from(when.month()) - 1)],
                        when.day(),
                        when.year()
                    ));
                }
            }
            let _ = data.write_all(text.as_bytes()).await;
            drop(data);
            reply(reader.get_mut(), "226 Directory send OK.").await
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
            drop(data);
            reply(reader.get_mut(), "226 Transfer complete.").await
        }
        _ => {
            let mut kept = Vec::new();
            let mut total = 0usize;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(60), data.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        total += n;
                        let room = MAX_UPLOAD.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    _ => break,
                }
            }
            captured(state, peer, arg, &kept, total).await;
            reply(reader.get_mut(), "226 Transfer complete.").await
        }
    }
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
