//! One failed login as a brute-forcer makes it: a new TCP connection, the identification
//! exchange, a full key exchange (russh's client, which picks curve25519-sha256 and
//! ssh-ed25519 from an OpenSSH server's lists, as libssh- and Go-based tools do), one
//! wrong password, then a disconnect.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Config, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{Disconnect, Preferred, kex};
use tokio::net::TcpStream;

use super::BenchResult;

/// Longest one attempt (connect to rejection) may take before it counts as failed.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How an attempt ended, when it did not end in the expected rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The TCP connection was refused or reset.
    Connect,
    /// The identification or key exchange failed (or the server closed it).
    Handshake,
    /// The password request got no answer (connection closed).
    Auth,
    /// The wrong password was accepted.
    Accepted,
    /// Nothing came back within [`ATTEMPT_TIMEOUT`].
    Timeout,
}

/// The client: trusts any host key, as a scanner does.
struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The client configuration; `kex` (comma-separated names) replaces russh's key
/// exchange preference, e.g. `sntrup761x25519-sha512@openssh.com` as OpenSSH's client
/// would pick from a 9.x server.
pub fn config(kex: Option<&str>) -> BenchResult<Arc<Config>> {
    let mut preferred = Preferred::default();
    if let Some(list) = kex {
        let names = list
            .split(',')
            .map(|n| kex::Name::try_from(n.trim()).map_err(|()| format!("unknown kex {n:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        preferred.kex = names.into();
    }
    Ok(Arc::new(Config {
        preferred,
        nodelay: true,
        inactivity_timeout: Some(ATTEMPT_TIMEOUT),
        ..Config::default()
    }))
}

async fn handshake(config: Arc<Config>, addr: SocketAddr) -> Result<Handle<Client>, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    client::connect_stream(config, stream, Client)
        .await
        .map_err(|_| Failure::Handshake)
}

/// One attempt at `user` with `password`; `Ok` when the server said no.
pub async fn attempt(
    config: Arc<Config>,
    addr: SocketAddr,
    user: &str,
    password: String,
) -> Result<(), Failure> {
    let work = async {
        let mut handle = handshake(config, addr).await?;
        let answer = handle
            .authenticate_password(user, password)
            .await
            .map_err(|_| Failure::Auth)?;
        let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
        match answer {
            AuthResult::Failure { .. } => Ok(()),
            AuthResult::Success => Err(Failure::Accepted),
        }
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, work)
        .await
        .unwrap_or(Err(Failure::Timeout))
}
