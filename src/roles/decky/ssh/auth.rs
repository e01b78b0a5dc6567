//! Who gets in: the accounts of the persona (engine.md §2.2 `SSH_*` keys, through the
//! shared [`Accounts`]), optionally any password for those accounts from the Nth try on
//! (`SSH_ACCEPT_AFTER`), and the `auth_attempt` event for every password,
//! keyboard-interactive answer and public key offered.
use std::net::SocketAddr;

use russh::keys::{HashAlg, PublicKey};

use super::super::events::{principal_text, with_principal};
use super::super::shell::Accounts;
use super::super::{Credential, Emitter};

/// The login policy of one decky's ssh.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The accounts and their passwords.
    pub accounts: Accounts,
    /// From this many password tries on one connection, any password is accepted for
    /// an existing account (`None`: never).
    pub accept_after: Option<u32>,
}

impl Policy {
    /// The account `user` (the name's exact bytes) logs in to with `secret` on try
    /// number `attempt` (from 1).
    pub fn check(&self, user: &[u8], secret: &[u8], attempt: u32) -> Option<String> {
        if let Some(account) = self.accounts.check(user, secret) {
            return Some(account);
        }
        let known = [b"root".as_slice(), self.accounts.user().as_bytes()]
            .into_iter()
            .find(|k| *k == user)?;
        match self.accept_after {
            Some(n) if attempt >= n => Some(String::from_utf8_lossy(known).into_owned()),
            _ => None,
        }
    }
}

/// Logs one password or keyboard-interactive answer for `user` (the name's exact
/// bytes), byte-exact.
pub async fn log_secret(
    emitter: &Emitter,
    peer: SocketAddr,
    method: &str,
    user: &[u8],
    secret: &[u8],
    accepted: bool,
) {
    let m = emitter
        .peer_event("auth_attempt", peer)
        .param("username", principal_text(user))
        .param("method", method.to_owned());
    let m = Credential::plaintext(Some(user), secret)
        .apply(m)
        .param("outcome", if accepted { "success" } else { "failure" });
    emitter.emit(m).await;
}

/// Logs a public key offered for `user`: its type and SHA256 fingerprint, as sshd's
/// "Failed publickey for … ssh-ed25519 SHA256:…" line has them.
pub async fn log_key(emitter: &Emitter, peer: SocketAddr, user: &[u8], key: &PublicKey) {
    let m = emitter
        .peer_event("auth_attempt", peer)
        .param("username", principal_text(user))
        .param("method", "publickey");
    let m = with_principal(m, user)
        .param("key_type", key.algorithm().to_string())
        .param("fingerprint", key.fingerprint(HashAlg::Sha256).to_string())
        .param("outcome", "failure");
    emitter.emit(m).await;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn accounts_and_accept_after() {
        let settings: BTreeMap<String, String> =
            [("SSH_ROOT_PASSWORD".to_owned(), "s3cret".to_owned())].into();
        let mut p = Policy {
            accounts: Accounts::from_settings("SSH", &settings),
            accept_after: None,
        };
        assert_eq!(p.check(b"root", b"s3cret", 1).as_deref(), Some("root"));
        assert_eq!(p.check(b"root", b"nope", 9), None);
        p.accept_after = Some(3);
        assert_eq!(p.check(b"root", b"nope", 2), None);
        assert_eq!(p.check(b"root", b"nope", 3).as_deref(), Some("root"));
        assert_eq!(p.check(b"oracle", b"nope", 5), None);
        assert_eq!(p.check(b"ro\xffot", b"nope", 5), None);
    }
}
