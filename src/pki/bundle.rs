//! A bundle: CA certificate + one identity's certificate and key, as a directory on disk.
//!
//! Layout: `ca.crt` and `<stem>.crt` (0644) and `<stem>.key` (0600) in a 0700 directory,
//! where the stem names the role of the identity (`worker`, `updater`, `master`, `server`),
//! matching the original's file names so operators find what they expect. A worker bundle
//! also holds [`MASTER_PIN_FILE`], the master identity's fingerprint its forwarder pins.
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{Error, Fingerprint, Result, io_err};
use crate::fsutil;

/// CA certificate file name inside every bundle.
pub const CA_FILE: &str = "ca.crt";
/// File of a worker bundle holding the master identity's fingerprint (one line).
pub const MASTER_PIN_FILE: &str = "master.fingerprint";

/// File of a worker bundle holding the swarm controller's server fingerprint (one line),
/// which the agent's heartbeat pins.
pub const SWARMCTL_PIN_FILE: &str = "swarmctl.fingerprint";

/// Writes the master identity's pin into the worker bundle in `dir` (0644: it is public).
pub fn write_master_pin(dir: &Path, pin: &Fingerprint) -> Result<()> {
    write_pin(dir, MASTER_PIN_FILE, pin)
}

/// Reads the master identity's pin from the bundle in `dir`; `None` when the bundle has
/// none (issued before pins were written). A file that is there but unreadable or not a
/// fingerprint is an error, never silently "no pin".
pub fn read_master_pin(dir: &Path) -> Result<Option<Fingerprint>> {
    read_pin(dir, MASTER_PIN_FILE)
}

/// Writes the swarm controller's pin into the worker bundle in `dir` (0644: it is public).
pub fn write_swarmctl_pin(dir: &Path, pin: &Fingerprint) -> Result<()> {
    write_pin(dir, SWARMCTL_PIN_FILE, pin)
}

/// Reads the swarm controller's pin from the bundle in `dir`; `None` when there is none,
/// an error when the file is there but not a fingerprint (as [`read_master_pin`]).
pub fn read_swarmctl_pin(dir: &Path) -> Result<Option<Fingerprint>> {
    read_pin(dir, SWARMCTL_PIN_FILE)
}

fn write_pin(dir: &Path, file: &str, pin: &Fingerprint) -> Result<()> {
    let path = dir.join(file);
    fsutil::write_atomic(&path, format!("{pin}\n").as_bytes(), 0o644).map_err(io_err(&path))
}

fn read_pin(dir: &Path, file: &str) -> Result<Option<Fingerprint>> {
    let path = dir.join(file);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path, source }),
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|e: super::FingerprintError| Error::Malformed {
            path,
            reason: e.to_string(),
        })
}

/// An identity ready for TLS: its certificate, key and the CA it chains to.
#[derive(Clone)]
pub struct Bundle {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    fingerprint: Fingerprint,
    cn: String,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("cn", &self.cn)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    pub(super) fn from_parts(
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
        fingerprint: Fingerprint,
        cn: String,
    ) -> Self {
        Self {
            ca_pem,
            cert_pem,
            key_pem,
            fingerprint,
            cn,
        }
    }

    /// Whether `dir` holds all three files of a `stem` bundle.
    pub fn exists(dir: &Path, stem: &str) -> bool {
        [
            dir.join(CA_FILE),
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        ]
        .iter()
        .all(|p| p.exists())
    }

    /// Writes the bundle into `dir` (created 0700): keys 0600, certificates 0644.
    ///
    /// The key is written first and the certificate last, so a bundle interrupted halfway
    /// is never "present" with a certificate that has no matching key.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        fsutil::create_dir_with_mode(dir, 0o700).map_err(io_err(dir))?;
        let key = dir.join(format!("{stem}.key"));
        fsutil::write_atomic(&key, self.key_pem.as_bytes(), 0o600).map_err(io_err(&key))?;
        let ca = dir.join(CA_FILE);
        fsutil::write_atomic(&ca, self.ca_pem.as_bytes(), 0o644).map_err(io_err(&ca))?;
        let crt = dir.join(format!("{stem}.crt"));
        fsutil::write_atomic(&crt, self.cert_pem.as_bytes(), 0o644).map_err(io_err(&crt))
    }

    /// Loads a bundle, recomputing the fingerprint from the certificate on disk.
    ///
    /// Refuses a key file readable by group or others, and a certificate whose key does
    /// not match it.
    pub fn load(dir: &Path, stem: &str) -> Result<Self> {
        const HINT: &str = "; issue one with `decnet pki issue`";
        let key_pem = read_private(&dir.join(format!("{stem}.key")), HINT)?;
        let crt_path = dir.join(format!("{stem}.crt"));
        let cert_pem = read_text(&crt_path, HINT)?;
        let ca_pem = read_text(&dir.join(CA_FILE), HINT)?;
        let der = super::pem_to_der(&cert_pem).map_err(|reason| Error::Malformed {
            path: crt_path.clone(),
            reason,
        })?;
        let cn = super::cert::subject_cn(&der).ok_or_else(|| Error::Malformed {
            path: crt_path.clone(),
            reason: "certificate has no subject CN".into(),
        })?;
        let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| Error::Malformed {
            path: dir.join(format!("{stem}.key")),
            reason: format!("not a PEM private key: {e}"),
        })?;
        let info = x509_spki(&der).map_err(|reason| Error::Malformed {
            path: crt_path.clone(),
            reason,
        })?;
        if info != key.public_key_raw() {
            return Err(Error::Malformed {
                path: crt_path,
                reason: format!("certificate does not match the key {stem}.key"),
            });
        }
        Ok(Self {
            fingerprint: super::Fingerprint::of_der(&der),
            ca_pem,
            cert_pem,
            key_pem,
            cn,
        })
    }

    /// The identity's CN.
    pub fn cn(&self) -> &str {
        &self.cn
    }

    /// The identity certificate's pin.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The identity certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM: handed to a new worker once, at enrolment.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The identity certificate, DER, for rustls.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, String> {
        super::pem_to_der(&self.cert_pem)
    }

    /// The CA certificate, DER, for rustls trust stores.
    pub fn ca_der(&self) -> Result<CertificateDer<'static>, String> {
        super::pem_to_der(&self.ca_pem)
    }

    /// The private key, DER, for rustls.
    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| format!("not a PEM private key: {e}"))
    }
}

/// The raw subject public key bits of a DER certificate.
fn x509_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// Reads a text file, mapping absence to [`Error::Missing`] with `hint`.
pub(super) fn read_text(path: &Path, hint: &'static str) -> Result<String> {
    fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Missing {
                path: path.to_path_buf(),
                hint,
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Reads a private key, refusing it when group or others may read or write it.
pub(super) fn read_private(path: &Path, hint: &'static str) -> Result<String> {
    let mode = match fsutil::mode_of(path) {
        Ok(mode) => mode,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Missing {
                path: path.to_path_buf(),
                hint,
            });
        }
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if mode & 0o077 != 0 {
        return Err(Error::InsecureKey {
            path: PathBuf::from(path),
            mode,
        });
    }
    read_text(path, hint)
}
