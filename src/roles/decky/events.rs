//! What services report: RFC 5424 event lines (engine.md §2.7) and the universal
//! credential shape (engine.md §2.3).
//!
//! Every event a service emits about a connection carries `src_ip` and `src_port` first,
//! so the ingester always knows the attacker (the original left them off some ftp lines;
//! decnet never does). Lines go through a bounded channel to one stdout writer: a stalled
//! reader slows the services down instead of growing memory.
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::syslog::{Message, Severity};

/// Longest secret kept byte-exact; longer ones are cut and flagged (`secret_truncated`).
/// 1,536 bytes are 2,048 in base64, the `credentials` table's limit.
pub const MAX_SECRET: usize = 1536;
/// Longest principal kept.
pub const MAX_PRINCIPAL: usize = 256;

/// Sends one service's event lines to the stdout writer.
#[derive(Debug, Clone)]
pub struct Emitter {
    node: Arc<str>,
    service: Arc<str>,
    tx: mpsc::Sender<String>,
}

impl Emitter {
    /// An emitter writing lines of `service` on decky `node` into `tx`.
    pub fn new(node: &str, service: &str, tx: mpsc::Sender<String>) -> Self {
        Emitter {
            node: Arc::from(node),
            service: Arc::from(service),
            tx,
        }
    }

    /// The service slug, the APP-NAME of its lines.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// A new event of type `msg_id`, not yet about any peer.
    pub fn event(&self, msg_id: &str) -> Message {
        Message::new(
            OffsetDateTime::now_utc(),
            &*self.node,
            &*self.service,
            msg_id,
        )
    }

    /// A new event of type `msg_id` about a connection from `peer`.
    pub fn peer_event(&self, msg_id: &str, peer: SocketAddr) -> Message {
        self.event(msg_id)
            .param("src_ip", peer.ip().to_canonical().to_string())
            .param("src_port", peer.port().to_string())
    }

    /// Writes `message`; waits while the writer is behind. An error means stdout is gone
    /// and the process is ending, so callers may ignore it.
    pub async fn emit(&self, message: Message) {
        let _ = self.tx.send(format!("{message}\n")).await;
    }

    /// Writes a `Warning` event of type `error` with `msg`.
    pub async fn error(&self, peer: SocketAddr, msg: &str) {
        let m = self
            .peer_event("error", peer)
            .severity(Severity::Warning)
            .msg(msg);
        self.emit(m).await;
    }
}

/// A captured credential in the universal shape of engine.md §2.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Who the attacker claimed to be, if the protocol says.
    pub principal: Option<Vec<u8>>,
    /// What the secret is (`plaintext`, `http_bearer`, `http_digest_md5`, …).
    pub kind: &'static str,
    /// The secret's exact bytes.
    pub secret: Vec<u8>,
}

impl Credential {
    /// A plaintext password, optionally with its user name.
    pub fn plaintext(principal: Option<&[u8]>, secret: &[u8]) -> Self {
        Credential {
            principal: principal.map(<[u8]>::to_vec),
            kind: "plaintext",
            secret: secret.to_vec(),
        }
    }

    /// Adds `principal`, `secret_kind`, `secret_printable` and `secret_b64` to `m`.
    ///
    /// The secret is kept byte-exact in base64 (up to [`MAX_SECRET`] bytes);
    /// `secret_printable` replaces every byte outside 0x20..=0x7e by `?`, so it is plain
    /// ASCII whatever the attacker sent. The principal goes in as [`with_principal`]
    /// puts it.
    pub fn apply(&self, mut m: Message) -> Message {
        if let Some(p) = &self.principal {
            m = with_principal(m, p);
        }
        let secret = &self.secret[..self.secret.len().min(MAX_SECRET)];
        m = m
            .param("secret_kind", self.kind)
            .param("secret_printable", printable(secret))
            .param(
                "secret_b64",
                base64::engine::general_purpose::STANDARD.encode(secret),
            );
        if secret.len() < self.secret.len() {
            m = m.param("secret_truncated", "1");
        }
        m
    }
}

/// Adds `principal` to `m`: the name as text, cut at [`MAX_PRINCIPAL`] bytes. A name
/// that is not UTF-8 shows decoded lossily (the text is an index), and its exact bytes
/// (as cut) go in `principal_b64` too, so every credential byte survives the line.
pub fn with_principal(m: Message, principal: &[u8]) -> Message {
    let m = m.param("principal", principal_text(principal));
    match std::str::from_utf8(principal) {
        Ok(_) => m,
        Err(_) => {
            let p = &principal[..principal.len().min(MAX_PRINCIPAL)];
            m.param(
                "principal_b64",
                base64::engine::general_purpose::STANDARD.encode(p),
            )
        }
    }
}

/// A user name as text: cut at [`MAX_PRINCIPAL`] bytes (on a character boundary when it
/// is UTF-8), else decoded lossily.
pub fn principal_text(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(text) => cap_str(text, MAX_PRINCIPAL).to_owned(),
        Err(_) => String::from_utf8_lossy(&name[..name.len().min(MAX_PRINCIPAL)]).into_owned(),
    }
}

pub use crate::text::{cap_str, printable};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog;

    #[tokio::test]
    async fn credentials_survive_the_line_byte_exact() {
        let (tx, mut rx) = mpsc::channel(4);
        let emitter = Emitter::new("decky-01", "http", tx);
        let secret = "p a\"s]s\\w'ö\u{0}rd".as_bytes();
        let peer: SocketAddr = "[::ffff:203.0.113.9]:4242".parse().expect("addr");
        let cred = Credential::plaintext(Some(b"admin"), secret);
        emitter
            .emit(cred.apply(emitter.peer_event("request", peer)))
            .await;
        let line = rx.recv().await.expect("a line");
        let event = syslog::parse(&line).expect("valid");
        assert_eq!(event.attacker_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(event.fields.get("src_port"), Some("4242"));
        assert_eq!(event.fields.get("principal"), Some("admin"));
        assert_eq!(event.fields.get("secret_kind"), Some("plaintext"));
        assert_eq!(
            event.fields.get("secret_printable"),
            Some("p a\"s]s\\w'???rd")
        );
        let b64 = event.fields.get("secret_b64").expect("b64");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        assert_eq!(decoded, secret);
    }

    #[test]
    fn long_secrets_are_cut_and_flagged() {
        let cred = Credential {
            principal: None,
            kind: "http_bearer",
            secret: vec![b'a'; MAX_SECRET + 5],
        };
        let m = cred.apply(Message::new(OffsetDateTime::UNIX_EPOCH, "d", "s", "e"));
        assert_eq!(m.params.get("secret_truncated"), Some("1"));
        assert_eq!(m.params.get("secret_b64").map(str::len), Some(2048));
        assert!(m.params.get("principal").is_none());
        assert_eq!(cap_str("héllo", 2), "h");
    }

    #[test]
    fn a_principal_that_is_not_utf8_is_kept_in_base64() {
        let at = |p: &[u8]| {
            Credential::plaintext(Some(p), b"pw").apply(Message::new(
                OffsetDateTime::UNIX_EPOCH,
                "d",
                "s",
                "e",
            ))
        };
        let m = at(b"r\xf6ot\x80");
        assert_eq!(m.params.get("principal"), Some("r\u{fffd}ot\u{fffd}"));
        assert_eq!(m.params.get("principal_b64"), Some("cvZvdIA="));
        let m = at("röot".as_bytes());
        assert_eq!(m.params.get("principal"), Some("röot"));
        assert!(m.params.get("principal_b64").is_none());
        let long = "é".repeat(MAX_PRINCIPAL);
        assert_eq!(
            at(long.as_bytes()).params.get("principal").map(str::len),
            Some(256)
        );
    }
}
