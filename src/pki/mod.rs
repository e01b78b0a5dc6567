//! The decnet private CA: creation, certificate issue, bundles on disk, fingerprints.
//!
//! Every link between decnet hosts is mutual TLS under one CA that lives on the master.
//! Identities are told apart by certificate CN (`decnet-master`, `swarmctl`, `<worker>`,
//! `updater@<worker>`), and each peer is additionally pinned by its [`Fingerprint`]: the
//! lowercase hex SHA-256 of the certificate DER. Keys are ECDSA P-256 (fast handshakes);
//! the CA lives 10 years and leaves 825 days, as in the original. A CN is a claim to a
//! role, so the CA refuses host names that are role identities and gives each role only
//! the key usages it needs ([`roles`] has the table and the reasons).
//!
//! A worker bundle also carries `master.fingerprint` ([`MASTER_PIN_FILE`]): the pin of the
//! master identity the log listener serves with, written when the bundle is issued, so a
//! forwarder knows exactly which certificate is the master before its first connection.
//!
//! Private keys are written 0600 inside 0700 directories, atomically, and a bundle whose
//! key is readable by group or others is refused at load time: a leaked worker key lets
//! an attacker ship forged events, so fail closed rather than warn.
mod bundle;
mod ca;
mod cert;
mod layout;
pub mod roles;

pub use bundle::{
    Bundle, MASTER_PIN_FILE, SWARMCTL_PIN_FILE, read_master_pin, read_swarmctl_pin,
    write_master_pin, write_swarmctl_pin,
};
pub use ca::{Ca, IssueRequest};
pub use cert::{CertInfo, Fingerprint, FingerprintError, cert_info, pem_to_der};
pub use layout::{Kind, Layout, validate_name};

use std::path::PathBuf;

use thiserror::Error;

/// Subject CN of the decnet root CA.
pub const CA_CN: &str = "DECNET SWARM Root CA";
/// Organisation of every decnet certificate.
pub const ORG: &str = "DECNET";
/// Organisational unit of every leaf certificate.
pub const LEAF_OU: &str = "swarm-worker";
/// CN of the master's own client identity (drives agents and updaters, serves the listener).
pub const MASTER_CN: &str = "decnet-master";
/// CN of the swarm controller's server certificate.
pub const SWARMCTL_CN: &str = "swarmctl";
/// Days a CA certificate is valid.
pub const CA_DAYS: i64 = 3650;
/// Days a leaf certificate is valid.
pub const LEAF_DAYS: i64 = 825;

/// CN of the updater identity of worker `host`.
pub fn updater_cn(host: &str) -> String {
    format!("updater@{host}")
}

/// Why a PKI operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading or writing a PKI file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A required file is absent.
    #[error("{path} does not exist{hint}")]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// What to run to create it (may be empty).
        hint: &'static str,
    },
    /// A private key can be read by group or others.
    #[error(
        "refusing to use private key {path}: its mode is {mode:04o}, readable beyond its owner; \
         fix it with `chmod 600 {path}` (and check nobody copied it)"
    )]
    InsecureKey {
        /// The key file.
        path: PathBuf,
        /// Its current permission bits.
        mode: u32,
    },
    /// A file does not hold what it should.
    #[error("{path}: {reason}")]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A name cannot be used as an identity or directory name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A worker or updater name that is a role identity: such a certificate could pose as
    /// that role.
    #[error(
        "the name {name:?} is reserved for {role}: a worker or updater certificate with it \
         could pose as that role; pick another name"
    )]
    ReservedName {
        /// The refused name.
        name: String,
        /// The role that owns it.
        role: &'static str,
    },
    /// A bundle already exists where a new one would be written.
    #[error(
        "a bundle already exists in {path}; pass --force to reissue it (its fingerprint will change)"
    )]
    Exists {
        /// The bundle directory.
        path: PathBuf,
    },
    /// Key generation or certificate signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Shorthand for PKI results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it happened on.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
