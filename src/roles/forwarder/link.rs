//! Who is on the other end of one forwarder connection: what its log lines and its
//! protocol violations name.
use super::Error;
use crate::config::PinOrigin;
use crate::pki::Fingerprint;
use crate::tls::PeerIdentity;

/// The verified peer of one connection and the pin its handshake applied.
pub(super) struct Link {
    /// The verified master identity (`None` without TLS).
    pub(super) peer: Option<PeerIdentity>,
    /// The pin the handshake applied, and where it came from.
    pub(super) pin: Option<(Fingerprint, PinOrigin)>,
}

impl Link {
    /// Logs the accepted connection; warns when no pin was known.
    pub(super) fn log_connected(&self, master: &str) {
        let peer = self.peer.as_ref();
        let cn = peer.map_or("-", |p| p.cn.as_str());
        let fingerprint = peer.map(|p| p.fingerprint.to_string());
        match &self.pin {
            Some((_, origin)) => {
                tracing::info!(%master, cn, ?fingerprint, pin_from = %origin, "connected; shipping");
            }
            None if peer.is_some() => tracing::warn!(
                %master,
                cn,
                ?fingerprint,
                "connected; shipping, but no master fingerprint is known (no --master-fingerprint, \
                 DECNET_MASTER_FINGERPRINT or master.fingerprint in the bundle): only the identity was checked"
            ),
            None => tracing::info!(%master, "connected without TLS; shipping"),
        }
    }

    /// The error for a claim of this peer that cannot be true.
    pub(super) fn violation(&self, reason: String) -> Error {
        let (cn, fingerprint) = match &self.peer {
            Some(p) => (p.cn.clone(), p.fingerprint.to_string()),
            None => ("-".into(), "-".into()),
        };
        Error::Violation {
            cn,
            fingerprint,
            reason,
        }
    }
}
