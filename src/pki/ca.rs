//! The decnet root CA: created once, then only loaded, and used to sign leaf certificates.
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use super::{
    Bundle, CA_CN, CA_DAYS, Error, Fingerprint, Kind, LEAF_DAYS, LEAF_OU, ORG, Result, io_err,
    roles,
};
use crate::fsutil;

const CA_KEY: &str = "ca.key";
const CA_CRT: &str = "ca.crt";

/// The root CA: its certificate and the key that signs every decnet leaf.
pub struct Ca {
    cert_pem: String,
    fingerprint: Fingerprint,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// What a leaf certificate is issued for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The role: decides the key usages and which CNs are allowed ([`roles`]).
    pub kind: Kind,
    /// Subject CN: the identity peers authorise by.
    pub cn: String,
    /// Requested SANs: each is an IP SAN if it parses as an address, else a DNS SAN.
    pub sans: Vec<String>,
    /// Validity window; `None` means now − 5 min to now + 825 days. Tests set past dates.
    pub validity: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl IssueRequest {
    /// A request with the standard validity, for the role its CN names (a host name is a
    /// worker; see [`roles::role_of`]).
    pub fn new(cn: impl Into<String>, sans: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let cn = cn.into();
        Self {
            kind: roles::role_of(&cn).unwrap_or(Kind::Worker),
            cn,
            sans: sans.into_iter().map(Into::into).collect(),
            validity: None,
        }
    }

    /// The same request for the role `kind`, which must own the CN or [`Ca::issue`] refuses.
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
}

impl Ca {
    /// Generates a fresh CA in memory (see [`Ca::ensure`] for the on-disk one).
    pub fn generate() -> Result<Self> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name =
            dn(&[(DnType::CommonName, CA_CN), (DnType::OrganizationName, ORG)]);
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(CA_DAYS);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            fingerprint: Fingerprint::of_der(cert.der()),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA in `dir`, creating it first if absent. Returns whether it was created.
    ///
    /// Idempotent: once both files exist the CA is never regenerated, because every
    /// issued certificate and every pinned fingerprint depends on it. A directory holding
    /// only one of the two files is an error rather than a silent regeneration.
    pub fn ensure(dir: &Path) -> Result<(Self, bool)> {
        let (key, crt) = (dir.join(CA_KEY), dir.join(CA_CRT));
        match (key.exists(), crt.exists()) {
            (true, true) => Ok((Self::load(dir)?, false)),
            (false, false) => {
                let ca = Self::generate()?;
                ca.save(dir)?;
                Ok((ca, true))
            }
            (true, false) => Err(Error::Malformed {
                path: dir.to_path_buf(),
                reason: format!(
                    "{CA_KEY} exists without {CA_CRT}; restore it from backup rather than regenerating the CA"
                ),
            }),
            (false, true) => Err(Error::Malformed {
                path: dir.to_path_buf(),
                reason: format!(
                    "{CA_CRT} exists without {CA_KEY}; restore it from backup rather than regenerating the CA"
                ),
            }),
        }
    }

    /// Loads an existing CA from `dir`, refusing a key readable beyond its owner.
    pub fn load(dir: &Path) -> Result<Self> {
        let key_path = dir.join(CA_KEY);
        let crt_path = dir.join(CA_CRT);
        let key_pem = super::bundle::read_private(&key_path, "; run `decnet pki init` first")?;
        let cert_pem = super::bundle::read_text(&crt_path, "; run `decnet pki init` first")?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::Malformed {
            path: key_path.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        let der = super::pem_to_der(&cert_pem).map_err(|reason| Error::Malformed {
            path: crt_path.clone(),
            reason,
        })?;
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| Error::Malformed {
            path: crt_path.clone(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
        Ok(Self {
            fingerprint: Fingerprint::of_der(&der),
            cert_pem,
            issuer,
        })
    }

    /// Writes `ca.key` (0600) and `ca.crt` (0644) into `dir` (0700).
    pub fn save(&self, dir: &Path) -> Result<()> {
        fsutil::create_dir_with_mode(dir, 0o700).map_err(io_err(dir))?;
        let key_path = dir.join(CA_KEY);
        fsutil::write_atomic(
            &key_path,
            self.issuer.key().serialize_pem().as_bytes(),
            0o600,
        )
        .map_err(io_err(&key_path))?;
        let crt_path = dir.join(CA_CRT);
        fsutil::write_atomic(&crt_path, self.cert_pem.as_bytes(), 0o644).map_err(io_err(&crt_path))
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate's pin.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Issues a leaf certificate with a fresh key, as a bundle that also carries the CA.
    ///
    /// The key usages are the role's ([`roles`]); a CN that names another role than
    /// `req.kind` is refused ([`Error::ReservedName`]), whoever calls. The CN is always
    /// added as a DNS SAN when it is a valid DNS name; SANs are de-duplicated.
    pub fn issue(&self, req: &IssueRequest) -> Result<Bundle> {
        roles::check_cn(req.kind, &req.cn)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&[
            (DnType::CommonName, req.cn.as_str()),
            (DnType::OrganizationName, ORG),
            (DnType::OrganizationalUnitName, LEAF_OU),
        ]);
        params.serial_number = Some(random_serial());
        let (not_before, not_after) = req.validity.unwrap_or_else(|| {
            let now = OffsetDateTime::now_utc();
            (now - Duration::minutes(5), now + Duration::days(LEAF_DAYS))
        });
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        // ECDSA keys sign; keyEncipherment (in the original's RSA profile) has no meaning here.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = roles::usages(req.kind);
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = san_set(&req.cn, &req.sans)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Bundle::from_parts(
            self.cert_pem.clone(),
            cert.pem(),
            key.serialize_pem(),
            Fingerprint::of_der(cert.der()),
            req.cn.clone(),
        ))
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in parts {
        dn.push(ty.clone(), *value);
    }
    dn
}

/// The SAN list of a leaf: requested names plus the CN, without duplicates.
///
/// A CN that is not a valid DNS name (the updater's `updater@host`) is not added as a SAN:
/// nothing verifies it, and webpki would reject the malformed name.
fn san_set(cn: &str, requested: &[String]) -> Result<Vec<SanType>> {
    let mut ips = BTreeSet::new();
    let mut dns = BTreeSet::new();
    for san in requested.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match san.parse::<IpAddr>() {
            Ok(ip) => {
                ips.insert(ip);
            }
            Err(_) if is_dns_name(san) => {
                dns.insert(san.to_ascii_lowercase());
            }
            Err(_) => {
                return Err(Error::InvalidName {
                    name: san.to_owned(),
                    reason: "a SAN must be an IP address or a DNS name (letters, digits, '-', '.')",
                });
            }
        }
    }
    if is_dns_name(cn) {
        dns.insert(cn.to_ascii_lowercase());
    }
    let mut out = Vec::with_capacity(ips.len() + dns.len());
    for name in dns {
        out.push(SanType::DnsName(name.try_into()?));
    }
    out.extend(ips.into_iter().map(SanType::IpAddress));
    Ok(out)
}

/// RFC 1123 host names, which is what webpki accepts as a DNS SAN.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A random positive 128-bit serial (RFC 5280 §4.1.2.2 allows up to 20 octets).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails when the OS has no entropy source at all; a fixed fallback
    // would silently repeat serials, so fall back to the clock mixed in instead.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_be_bytes();
        bytes.copy_from_slice(&nanos);
    }
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_set_adds_cn_and_deduplicates() {
        let sans = san_set(
            "worker-1",
            &[
                "10.0.0.1".into(),
                "Worker-1".into(),
                "10.0.0.1".into(),
                "db.lan".into(),
            ],
        )
        .expect("valid sans");
        let shown: Vec<String> = sans.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(sans.len(), 3, "{shown:?}");
        assert!(san_set("x", &["bad name!".into()]).is_err());
        let updater = san_set("updater@w1", &["127.0.0.1".into()]).expect("updater sans");
        assert_eq!(updater.len(), 1, "the updater CN is not a DNS name");
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_ne!(a, b);
        assert_eq!(a[0] & 0x80, 0);
    }
}
