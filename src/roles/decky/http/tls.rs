//! The https certificate: the operator's (`TLS_CERT`/`TLS_KEY`, PEM) or one generated
//! from the decky's seed that looks like the self-signed certificate a distro makes at
//! install time (Debian's `ssl-cert` snakeoil, RHEL's `localhost.crt`, IIS's own).
//!
//! Those are all RSA-2048 keys signed with SHA-256 (`make-ssl-cert`, `sscg` and IIS's
//! defaults), so this one is too: an ECDSA snakeoil would be a tell. The generated one is
//! a pure function of the seed: the key comes from seeded randomness ([`SeedRng`]), the
//! serial and install date from the seed, and PKCS #1 v1.5 signatures need no randomness,
//! so a restarted decky serves the very same certificate (same SHA-256 fingerprint, which
//! is what scanners index) and no two deckies ever share one.
use std::sync::Arc;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256, SanType, SerialNumber,
};
use rsa::pkcs8::EncodePrivateKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::roles::decky::Persona;
use crate::roles::decky::seedrng::SeedRng;

/// What went wrong building the https identity.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `TLS_CERT` or `TLS_KEY` is not usable PEM.
    #[error("TLS_CERT/TLS_KEY: {0}; give a PEM certificate chain and its PEM private key")]
    Configured(String),
    /// The certificate could not be generated (should not happen).
    #[error("generating the decky certificate: {0}")]
    Generate(String),
}

/// The rustls configuration https serves with, ALPN set to `alpn`.
pub fn server_config(
    persona: &Persona,
    cert_pem: Option<&str>,
    key_pem: Option<&str>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = match (cert_pem, key_pem) {
        (Some(cert), Some(key)) => configured(cert, key)?,
        _ => {
            let (cert, key) = generated(persona)?;
            (vec![cert], key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Configured(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn configured(cert: &str, key: &str) -> Result<Identity, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Configured(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Configured("no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| TlsError::Configured(e.to_string()))?;
    Ok((chain, key))
}

/// The size of the key `make-ssl-cert`, `sscg` and IIS make.
pub const RSA_BITS: usize = 2048;

/// The decky's own certificate and key, derived from its seed. RSA prime generation
/// takes a fraction of a second optimised; the service makes it once, at start.
pub fn generated(
    persona: &Persona,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let gen_err = |e: &dyn std::fmt::Display| TlsError::Generate(e.to_string());
    let mut rng = SeedRng::new(persona, &format!("tls-key-rsa-{RSA_BITS}"));
    let rsa = rsa::RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(|e| gen_err(&e))?;
    let pkcs8 = rsa.to_pkcs8_der().map_err(|e| gen_err(&e))?;
    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_RSA_SHA256).map_err(|e| gen_err(&e))?;
    let params = params(persona).map_err(|e| gen_err(&e))?;
    let cert = params.self_signed(&key).map_err(|e| gen_err(&e))?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

/// Subject, validity and serial like the distro's install-time certificate.
fn params(persona: &Persona) -> Result<CertificateParams, rcgen::Error> {
    let host = persona.hostname.clone();
    let mut params = CertificateParams::new(vec![host.clone()])?;
    let mut dn = DistinguishedName::new();
    let rhel = matches!(persona.distro.slug, "rocky9" | "centos7" | "fedora");
    if rhel {
        // RHEL's sscg/`make-dummy-cert` style: country and organisation filled in.
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Unspecified");
        dn.push(
            DnType::OrganizationalUnitName,
            format!("ca-{}", persona.number("tls-ou", 1 << 31)),
        );
    }
    dn.push(DnType::CommonName, host.clone());
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName(host.try_into()?)];
    // Installed some day between March 2023 and August 2025, fixed per decky so the
    // certificate survives restarts byte for byte; ssl-cert signs for ten years.
    let installed =
        OffsetDateTime::from_unix_timestamp(1_677_628_800).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let offset = i64::try_from(persona.number("tls-installed", 900 * 86_400)).unwrap_or(0);
    let not_before = installed + Duration::seconds(offset);
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(3650);
    let mut serial = persona.derive("tls-serial")[..20].to_vec();
    serial[0] &= 0x7f; // positive, as RFC 5280 wants
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::roles::decky::persona::tests::persona;

    #[test]
    fn the_seed_decides_the_whole_certificate() {
        let (a, _) = generated(&persona(1, "debian")).expect("generated");
        let (again, _) = generated(&persona(1, "debian")).expect("generated");
        let (b, _) = generated(&persona(2, "debian")).expect("generated");
        assert_eq!(a, again, "same seed, same certificate bytes");
        assert_ne!(a, b);
        let (_, cert) = X509Certificate::from_der(&a).expect("parses");
        let p = persona(1, "debian");
        assert_eq!(cert.subject().to_string(), format!("CN={}", p.hostname));
        assert_eq!(cert.issuer(), cert.subject(), "self-signed");
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 3650);
        assert!(server_config(&p, None, None, &[b"h2"]).is_ok());
        let spki = cert.public_key();
        assert_eq!(
            spki.algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.11",
            "sha256WithRSAEncryption"
        );
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(k)) => assert_eq!(k.key_size(), RSA_BITS),
            other => panic!("not an RSA key: {other:?}"),
        }
    }
}
