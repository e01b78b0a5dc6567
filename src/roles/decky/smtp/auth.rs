//! SMTP AUTH as Postfix with Dovecot SASL runs it: PLAIN, LOGIN and CRAM-MD5, with
//! Dovecot's challenges (`334 ` for PLAIN, `Username:`/`Password:` for LOGIN, a
//! `<digits.time@host>` challenge for CRAM-MD5) and Postfix's checks on each response
//! (`*` aborts, anything but base64 characters fails, 12,288 bytes at most).
//!
//! Nothing is ever accepted: the exchange ends with the credential the client sent,
//! byte-exact, and the caller answers with the release's `535`. A CRAM-MD5 secret is
//! logged in hashcat's mode-16400 form, `$cram_md5$<b64 challenge>$<b64 response>`, so
//! it can be checked against a word list offline.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Piece, Session};
use crate::roles::decky::Credential;

/// Longest SASL response line (Postfix's `smtpd_sasl_response_limit`).
pub const RESPONSE_LIMIT: usize = 12_288;
/// The mechanisms announced, in Dovecot's order.
pub const MECHANISMS: &str = "PLAIN LOGIN CRAM-MD5";

/// How an AUTH exchange ended.
#[derive(Debug)]
pub enum Outcome {
    /// The client finished: log the credential (if one could be decoded), answer 535.
    Failed {
        /// What the client sent.
        credential: Option<Credential>,
        /// Extra event fields (the CRAM-MD5 challenge).
        extra: Vec<(&'static str, String)>,
        /// A reason Postfix prints whatever its release (bad base64, unknown mechanism).
        reason: Option<String>,
    },
    /// The client sent `*`: `501 5.7.0 Authentication aborted`.
    Aborted,
    /// A response over [`RESPONSE_LIMIT`]: `500 5.5.6 SASL response limit exceeded`.
    TooLong,
    /// The connection is gone.
    Closed,
}

fn failed(credential: Option<Credential>, reason: Option<&str>) -> Outcome {
    Outcome::Failed {
        credential,
        extra: Vec::new(),
        reason: reason.map(str::to_owned),
    }
}

fn is_base64_charset(data: &[u8]) -> bool {
    data.iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

fn decode(data: &[u8]) -> Option<Vec<u8>> {
    if data == b"=" {
        return Some(Vec::new());
    }
    STANDARD.decode(data).ok().or_else(|| {
        let trimmed: Vec<u8> = data.iter().copied().filter(|b| *b != b'=').collect();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .ok()
    })
}

/// Sends `334 <challenge>` and reads the response; `Err` is how the exchange ended.
async fn challenge(s: &mut Session, text: &str, last: &mut String) -> Result<Vec<u8>, Outcome> {
    s.reply(&format!("334 {text}")).await;
    text.clone_into(last);
    let response = match s.read(RESPONSE_LIMIT).await {
        Piece::Line(l) => l,
        Piece::TooLong(_) => return Err(Outcome::TooLong),
        Piece::TimedOut | Piece::Closed => return Err(Outcome::Closed),
    };
    if response == b"*" {
        return Err(Outcome::Aborted);
    }
    if !is_base64_charset(&response) {
        return Err(failed(
            None,
            Some("Invalid base64 data in continued response"),
        ));
    }
    Ok(response)
}

/// Runs one AUTH exchange for `mechanism` (upper case) with the optional initial response.
/// `last` holds the last challenge sent in this session (the old releases print it).
pub async fn exchange(
    s: &mut Session,
    mechanism: &str,
    initial: Option<&[u8]>,
    hostname: &str,
    last: &mut String,
) -> Outcome {
    if !MECHANISMS.split(' ').any(|m| m == mechanism) {
        let reason = format!(
            "Invalid authentication mechanism: '{}'",
            crate::roles::decky::events::printable(mechanism.as_bytes())
        );
        return failed(None, Some(&reason));
    }
    if let Some(init) = initial
        && !is_base64_charset(init)
    {
        return failed(None, Some("Invalid base64 data in initial response"));
    }
    match run(s, mechanism, initial, hostname, last).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn run(
    s: &mut Session,
    mechanism: &str,
    initial: Option<&[u8]>,
    hostname: &str,
    last: &mut String,
) -> Result<Outcome, Outcome> {
    match mechanism {
        "PLAIN" => {
            let raw = match initial {
                Some(i) => i.to_vec(),
                None => challenge(s, "", last).await?,
            };
            let Some(blob) = decode(&raw) else {
                return Ok(failed(None, None));
            };
            Ok(failed(Some(plain(&blob)), None))
        }
        "LOGIN" => {
            let user_raw = match initial {
                Some(i) => i.to_vec(),
                None => challenge(s, "VXNlcm5hbWU6", last).await?,
            };
            let pass_raw = challenge(s, "UGFzc3dvcmQ6", last).await?;
            let user = decode(&user_raw).unwrap_or(user_raw);
            let Some(pass) = decode(&pass_raw) else {
                return Ok(failed(None, None));
            };
            Ok(failed(
                Some(Credential::plaintext(Some(&user), &pass)),
                None,
            ))
        }
        _ => {
            let text = cram_challenge(hostname);
            let b64 = STANDARD.encode(&text);
            let raw = challenge(s, &b64, last).await?;
            let Some(response) = decode(&raw) else {
                return Ok(failed(None, None));
            };
            let user = response
                .iter()
                .rposition(|b| *b == b' ')
                .map(|i| response[..i].to_vec());
            let credential = Credential {
                principal: user,
                kind: "cram_md5",
                secret: format!("$cram_md5${b64}${}", STANDARD.encode(&response)).into_bytes(),
            };
            Ok(Outcome::Failed {
                credential: Some(credential),
                extra: vec![("challenge", text)],
                reason: None,
            })
        }
    }
}

/// A PLAIN blob `authzid NUL authcid NUL passwd` as a credential; a malformed one is kept
/// whole as the secret.
fn plain(blob: &[u8]) -> Credential {
    let mut parts = blob.splitn(3, |b| *b == 0);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_authz), Some(user), Some(pass)) => Credential::plaintext(Some(user), pass),
        _ => Credential::plaintext(None, blob),
    }
}

/// Dovecot's CRAM-MD5 challenge: 16 random digits, the time, the short hostname.
fn cram_challenge(hostname: &str) -> String {
    let mut bytes = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut bytes);
    let digits: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let short = hostname.split('.').next().unwrap_or(hostname);
    format!("<{digits}.{now}@{short}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_blobs_split_byte_exact() {
        let c = plain(b"\0bob\0p a]s\\s\xff");
        assert_eq!(c.principal.as_deref(), Some(&b"bob"[..]));
        assert_eq!(c.secret, b"p a]s\\s\xff");
        assert_eq!(plain(b"junk").secret, b"junk");
        assert_eq!(decode(b"dXNlcg"), Some(b"user".to_vec()));
        assert!(!is_base64_charset(b"a b"));
        let ch = cram_challenge("mail.example.com");
        assert!(ch.starts_with('<') && ch.ends_with("@mail>"), "{ch}");
    }
}
