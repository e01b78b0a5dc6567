//! rustls configurations for decnet's mutual TLS, and who the peer is.
//!
//! Properties kept here, each by a named check:
//! - **Only decnet peers**: servers require a client certificate chaining to the decnet CA
//!   ([`server_config`]); clients trust only the decnet CA, never system roots
//!   ([`client_config`]).
//! - **The right role**: a client that knows whom it is calling (the forwarder calls the
//!   master, CN `decnet-master`) sets [`ClientOptions::identity`] and refuses a server with
//!   another CN, with the distinct [`Error::WrongIdentity`]. Every leaf that may serve carries
//!   serverAuth, so without this check a worker's own certificate could stand in for the
//!   master.
//! - **Exactly this peer**: when the caller knows the server's fingerprint, the client
//!   refuses any other certificate, even one from the decnet CA with the right CN, with the
//!   distinct [`Error::PinMismatch`]. The identity is checked before the pin, so a worker's
//!   certificate is reported as the wrong identity whether or not a pin is set. Servers read
//!   the client's fingerprint with [`peer_identity`] and compare it against the store
//!   themselves.
//! - **Hostname checks are optional** (`DECNET_VERIFY_HOSTNAME=1`): workers are reached by
//!   addresses that certificates issued at enrollment may not list, and the pin is the
//!   stronger check. Chain and validity dates are always verified.
//!
//! The `ring` provider is used explicitly (it builds statically), TLS 1.2 and 1.3 only.
use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::pki::{Bundle, Fingerprint};

/// Why a TLS set-up or handshake failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The server presented a valid decnet certificate, but not the pinned one.
    #[error(transparent)]
    PinMismatch(#[from] PinMismatch),
    /// The server presented a valid decnet certificate issued to another identity.
    #[error(transparent)]
    WrongIdentity(#[from] WrongIdentity),
    /// The bundle cannot be turned into a TLS configuration.
    #[error("unusable TLS identity: {0}")]
    Config(String),
    /// The handshake failed (unknown CA, expired certificate, protocol error, …).
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The peer completed the handshake without a usable certificate.
    #[error("peer presented no usable certificate: {0}")]
    PeerCertificate(String),
}

/// The server's certificate is not the one the client pinned.
#[derive(Debug, Clone, Error)]
pub struct PinMismatch {
    /// The fingerprint the client expected.
    pub expected: Fingerprint,
    /// The fingerprint the server presented.
    pub actual: Fingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate fingerprint mismatch: expected {}, got {} (re-enrolled host or impostor)",
            self.expected, self.actual
        )
    }
}

/// The server's certificate is valid but names another identity than the one expected.
#[derive(Debug, Clone, Error)]
pub struct WrongIdentity {
    /// The CN the client requires (`decnet-master` for the log link).
    pub expected: String,
    /// The CN the server's certificate carries.
    pub got: String,
    /// The presented certificate's fingerprint, for the operator's log.
    pub fingerprint: Fingerprint,
}

impl fmt::Display for WrongIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrong server identity: expected CN {:?}, got CN {:?} (fingerprint {}): \
             another decnet host's certificate stands at this address",
            self.expected, self.got, self.fingerprint
        )
    }
}

/// Who is on the other end of an accepted or established connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject CN of the peer's certificate: the identity decnet authorises by.
    pub cn: String,
    /// The peer certificate's pin.
    pub fingerprint: Fingerprint,
}

/// How a client checks the server beyond the CA chain.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The server certificate's required CN (its role identity), when the caller knows it.
    pub identity: Option<String>,
    /// The server certificate's expected fingerprint, when known.
    pub pin: Option<Fingerprint>,
    /// Also require the server name to match a SAN.
    pub verify_hostname: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(bundle: &Bundle) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(bundle.ca_der().map_err(Error::Config)?)
        .map_err(|e| Error::Config(format!("CA certificate rejected: {e}")))?;
    Ok(roots)
}

/// A server configuration that demands a client certificate from the decnet CA.
pub fn server_config(bundle: &Bundle) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(bundle)?), provider.clone())
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![bundle.cert_der().map_err(Error::Config)?],
            bundle.key_der().map_err(Error::Config)?,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A client configuration presenting `bundle`, trusting only its CA, optionally pinned.
pub fn client_config(bundle: &Bundle, opts: &ClientOptions) -> Result<Arc<ClientConfig>, Error> {
    let provider = provider();
    let verifier = PinnedVerifier {
        roots: roots(bundle)?,
        algs: provider.signature_verification_algorithms,
        identity: opts.identity.clone(),
        pin: opts.pin.clone(),
        verify_hostname: opts.verify_hostname,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            vec![bundle.cert_der().map_err(Error::Config)?],
            bundle.key_der().map_err(Error::Config)?,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Verifies the chain to the decnet CA, then the identity, the pin, and (optionally) the name.
#[derive(Debug)]
struct PinnedVerifier {
    roots: RootCertStore,
    algs: WebPkiSupportedAlgorithms,
    identity: Option<String>,
    pin: Option<Fingerprint>,
    verify_hostname: bool,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        // Chain and validity first: a pin never excuses an untrusted or expired certificate.
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        if let Some(expected) = &self.identity {
            // Exact comparison: the CA refuses role names for hosts in any case, and a CN
            // that merely resembles the role is not the role.
            let got = crate::pki::cert_info(end_entity)
                .map(|info| info.cn)
                .unwrap_or_default();
            if &got != expected {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(WrongIdentity {
                        expected: expected.clone(),
                        got,
                        fingerprint: Fingerprint::of_der(end_entity),
                    })),
                )));
            }
        }
        if let Some(expected) = &self.pin {
            let actual = Fingerprint::of_der(end_entity);
            if &actual != expected {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(PinMismatch {
                        expected: expected.clone(),
                        actual,
                    })),
                )));
            }
        }
        if self.verify_hostname {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The name sent in SNI and checked when hostname verification is on.
///
/// Anything that is neither an IP nor a DNS name (it can only fail a hostname check)
/// is replaced by a fixed placeholder so the handshake can still be pinned.
fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("decnet.invalid").expect("static name is valid"))
}

/// Runs the client handshake over `stream`, turning a pin or identity failure into
/// [`Error::PinMismatch`] or [`Error::WrongIdentity`].
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    host: &str,
    stream: S,
) -> Result<client::TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    TlsConnector::from(config)
        .connect(server_name(host), stream)
        .await
        .map_err(handshake_error)
}

/// Runs the server handshake over `stream` and returns the verified client's identity.
pub async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
) -> Result<(server::TlsStream<S>, PeerIdentity), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = acceptor.accept(stream).await.map_err(handshake_error)?;
    let peer = peer_identity(tls.get_ref().1)?;
    Ok((tls, peer))
}

/// The CN and fingerprint of the peer's end-entity certificate.
pub fn peer_identity(conn: &rustls::CommonState) -> Result<PeerIdentity, Error> {
    let der = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| Error::PeerCertificate("none presented".into()))?;
    let cn = crate::pki::cert_info(der)
        .map_err(Error::PeerCertificate)?
        .cn;
    if cn.is_empty() {
        return Err(Error::PeerCertificate("certificate has no CN".into()));
    }
    Ok(PeerIdentity {
        cn,
        fingerprint: Fingerprint::of_der(der),
    })
}

/// Finds a [`PinMismatch`] or [`WrongIdentity`] inside the `io::Error` tokio-rustls wraps
/// rustls errors in.
fn handshake_error(err: io::Error) -> Error {
    let other = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|rustls_err| match rustls_err {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                Some(other.0.clone())
            }
            _ => None,
        });
    if let Some(other) = other {
        if let Some(m) = other.downcast_ref::<PinMismatch>() {
            return Error::PinMismatch(m.clone());
        }
        if let Some(w) = other.downcast_ref::<WrongIdentity>() {
            return Error::WrongIdentity(w.clone());
        }
    }
    Error::Handshake(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_host_names_still_get_a_server_name() {
        assert!(matches!(server_name("10.0.0.1"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("worker-1"), ServerName::DnsName(_)));
        assert!(matches!(server_name("updater@w1"), ServerName::DnsName(_)));
    }
}
