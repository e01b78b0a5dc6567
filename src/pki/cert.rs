//! Reading certificates: PEM to DER, fingerprints, and the fields operators look at.
use std::fmt;
use std::str::FromStr;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use thiserror::Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Lowercase hex SHA-256 of a certificate's DER encoding: the pin every peer is checked by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A string that is not a SHA-256 fingerprint.
#[derive(Debug, Error)]
#[error("not a SHA-256 fingerprint (64 hex digits, colons allowed): {0:?}")]
pub struct FingerprintError(String);

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Accepts either case and the `AA:BB:…` form openssl prints, so operators can paste.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cleaned: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(cleaned.to_ascii_lowercase(), &mut out)
            .map_err(|_| FingerprintError(s.to_owned()))?;
        Ok(Self(out))
    }
}

/// Decodes the first certificate of a PEM text.
pub fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

/// What `decnet pki show` prints about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name (empty when absent).
    pub cn: String,
    /// Issuer common name.
    pub issuer_cn: String,
    /// Subject alternative names, as `DNS:x` / `IP:y`.
    pub sans: Vec<String>,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Whether the certificate is a CA.
    pub is_ca: bool,
    /// SHA-256 pin.
    pub fingerprint: Fingerprint,
}

/// Parses the fields of a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let cn_of = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(b) => sans.push(format!("IP:{}", ip_from_bytes(b))),
                other => sans.push(format!("{other}")),
            }
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        cn: cn_of(cert.subject()),
        issuer_cn: cn_of(cert.issuer()),
        sans,
        not_before: rfc3339(validity.not_before),
        not_after: rfc3339(validity.not_after),
        is_ca: cert.is_ca(),
        fingerprint: Fingerprint::of_der(der),
    })
}

/// The subject CN of a DER certificate, if it has one.
pub(crate) fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn ip_from_bytes(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(b);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => hex::encode(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_lowercase_sha256_hex_and_parses_back() {
        let fp = Fingerprint::of_der(b"abc");
        let shown = fp.to_string();
        assert_eq!(
            shown,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(shown.parse::<Fingerprint>().expect("parses"), fp);
        let openssl_style = shown
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(openssl_style.parse::<Fingerprint>().expect("parses"), fp);
        assert!("abc".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }
}
