//! What an ssh client sees before it authenticates: the identification line, the KEXINIT
//! name-lists and the host keys, all those of the OpenSSH release the persona's distro
//! ships.
//!
//! Each [`Release`] keeps the name-lists of `myproposal.h` at the matching
//! openssh-portable tag, in order, plus the `kex-strict-s-v00@openssh.com` marker where
//! the distro backported the Terrapin fix (and `ext-info-s` from 9.6 on, as upstream
//! sends it). Every name is advertised and runs: the vendored russh (vendor/russh) adds
//! the `umac-*` MACs and `sntrup761x25519-*` kex upstream lacks, so the HASSH-server of
//! a decky is that of the release it claims.
//!
//! Host keys come from the seed ([`HostKeys::derive`]): the same keys after a restart,
//! unrelated keys on every other decky.
use std::borrow::Cow;

use russh::keys::ssh_key::private::RsaKeypair;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::{Preferred, cipher, compression, kex, mac};

use super::super::Persona;
use super::super::seedrng::SeedRng;

/// One OpenSSH build a distro shipped: what its sshd says and offers by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The software version after `SSH-2.0-` (with the distro's addendum).
    pub version: &'static str,
    /// Key exchange methods, in order.
    pub kex: &'static [&'static str],
    /// Ciphers, in order (one list for both directions, as sshd sends).
    pub ciphers: &'static [&'static str],
    /// MACs, in order.
    pub macs: &'static [&'static str],
    /// Whether `ssh-rsa` (SHA-1) signatures are still offered (before 8.8).
    pub ssh_rsa: bool,
    /// Whether the distro's sshd_config leaves keyboard-interactive on (upstream does;
    /// Debian and Ubuntu turn it off, RHEL too).
    pub kbd_interactive: bool,
}

const MACS: &[&str] = &[
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

const CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];

/// OpenSSH 7.4 (CentOS 7).
const KEX_7_4: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group14-sha1",
];

/// OpenSSH 8.2–8.7, with the strict-kex backport.
const KEX_8_2_STRICT: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "kex-strict-s-v00@openssh.com",
];

/// OpenSSH 8.9 (sntrup761 after the ECDH methods), with the strict-kex backport.
const KEX_8_9_STRICT: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "sntrup761x25519-sha512@openssh.com",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "kex-strict-s-v00@openssh.com",
];

/// OpenSSH 9.0–9.5 (sntrup761 first), with the strict-kex backport.
const KEX_9_2_STRICT: &[&str] = &[
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "kex-strict-s-v00@openssh.com",
];

/// Debian 12's 9.2p1 as updated (deb12u10, checked against the package's sshd): the
/// 9.2 list with the standard sntrup761 name in front and the strict-kex marker.
const KEX_DEBIAN_12: &[&str] = &[
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "kex-strict-s-v00@openssh.com",
];

/// OpenSSH 9.6–9.8: the 9.2 list, then upstream's `ext-info-s` and strict-kex markers.
const KEX_9_6: &[&str] = &[
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "ext-info-s",
    "kex-strict-s-v00@openssh.com",
];

/// OpenSSH 9.9.
const KEX_9_9: &[&str] = &[
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "ext-info-s",
    "kex-strict-s-v00@openssh.com",
];

/// OpenSSH 10.0 (no finite-field DH on the server side any more, GCM before CTR).
const KEX_10_0: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "ext-info-s",
    "kex-strict-s-v00@openssh.com",
];

const CIPHERS_10_0: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
];

const fn release(
    version: &'static str,
    kex: &'static [&'static str],
    ssh_rsa: bool,
    kbd_interactive: bool,
) -> Release {
    Release {
        version,
        kex,
        ciphers: CIPHERS,
        macs: MACS,
        ssh_rsa,
        kbd_interactive,
    }
}

/// The OpenSSH builds each distro shipped (package revisions with the strict-kex fix),
/// picked per decky from the seed.
const RELEASES: &[(&str, &[Release])] = &[
    (
        "debian",
        &[release(
            "OpenSSH_9.2p1 Debian-2+deb12u10",
            KEX_DEBIAN_12,
            false,
            false,
        )],
    ),
    (
        "ubuntu22",
        &[
            release(
                "OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
                KEX_8_9_STRICT,
                false,
                false,
            ),
            release(
                "OpenSSH_8.9p1 Ubuntu-3ubuntu0.7",
                KEX_8_9_STRICT,
                false,
                false,
            ),
            release(
                "OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
                KEX_8_9_STRICT,
                false,
                false,
            ),
            release(
                "OpenSSH_8.9p1 Ubuntu-3ubuntu0.11",
                KEX_8_9_STRICT,
                false,
                false,
            ),
            release(
                "OpenSSH_8.9p1 Ubuntu-3ubuntu0.13",
                KEX_8_9_STRICT,
                false,
                false,
            ),
        ],
    ),
    (
        "ubuntu20",
        &[
            release(
                "OpenSSH_8.2p1 Ubuntu-4ubuntu0.10",
                KEX_8_2_STRICT,
                true,
                false,
            ),
            release(
                "OpenSSH_8.2p1 Ubuntu-4ubuntu0.11",
                KEX_8_2_STRICT,
                true,
                false,
            ),
            release(
                "OpenSSH_8.2p1 Ubuntu-4ubuntu0.13",
                KEX_8_2_STRICT,
                true,
                false,
            ),
        ],
    ),
    (
        "rocky9",
        &[release("OpenSSH_8.7", KEX_8_2_STRICT, false, false)],
    ),
    ("centos7", &[release("OpenSSH_7.4", KEX_7_4, true, false)]),
    ("alpine", &[release("OpenSSH_9.6", KEX_9_6, false, true)]),
    (
        "fedora",
        &[release("OpenSSH_9.3", KEX_9_2_STRICT, false, false)],
    ),
    (
        "kali",
        &[release("OpenSSH_9.9p1 Debian-3", KEX_9_9, false, false)],
    ),
    (
        "arch",
        &[
            release("OpenSSH_9.9", KEX_9_9, false, true),
            Release {
                ciphers: CIPHERS_10_0,
                ..release("OpenSSH_10.0", KEX_10_0, false, true)
            },
        ],
    ),
];

impl Release {
    /// The release the persona's distro ships, picked by the seed among its builds.
    pub fn of(persona: &Persona) -> Release {
        let builds = RELEASES
            .iter()
            .find(|(slug, _)| *slug == persona.distro.slug)
            .map_or(RELEASES[0].1, |(_, b)| *b);
        *persona.pick("ssh-release", builds)
    }

    /// The identification line without its CR LF.
    pub fn ident(&self) -> String {
        format!("SSH-2.0-{}", self.version)
    }

    /// The algorithm preferences russh advertises: this release's lists, whole and in
    /// order (a test checks no name is lost in the conversion). Host keys follow sshd's
    /// order (RSA, ECDSA, Ed25519 keys, as its default `HostKey` files load), and russh
    /// offers only those it has a key for.
    pub fn preferred(&self) -> Preferred {
        let kex: Vec<kex::Name> = self.kex.iter().filter_map(|n| kex_name(n)).collect();
        let cipher: Vec<cipher::Name> = self
            .ciphers
            .iter()
            .filter_map(|n| cipher::Name::try_from(*n).ok())
            .collect();
        let mac: Vec<mac::Name> = self
            .macs
            .iter()
            .filter_map(|n| mac::Name::try_from(*n).ok())
            .collect();
        let mut key = vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ];
        if self.ssh_rsa {
            key.push(Algorithm::Rsa { hash: None });
        }
        key.push(Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        });
        key.push(Algorithm::Ed25519);
        Preferred {
            kex: Cow::Owned(kex),
            key: Cow::Owned(key),
            cipher: Cow::Owned(cipher),
            mac: Cow::Owned(mac),
            compression: Cow::Owned(vec![compression::NONE, compression::ZLIB_LEGACY]),
            ..Preferred::DEFAULT
        }
    }
}

/// russh's name for kex method `name`: its algorithms, and the two server markers it
/// knows but does not list among them.
fn kex_name(name: &str) -> Option<kex::Name> {
    match name {
        "ext-info-s" => Some(kex::EXTENSION_SUPPORT_AS_SERVER),
        "kex-strict-s-v00@openssh.com" => Some(kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER),
        other => kex::Name::try_from(other).ok(),
    }
}

/// The size of RSA host keys ssh-keygen makes by default (OpenSSH 8.x and later).
pub const RSA_BITS: usize = 3072;

/// The persona's RSA host key of `bits` bits, from the seed. Prime generation takes a
/// while (about a second optimised, far longer in a debug build), so the service makes
/// it in the background.
pub fn rsa_host_key(persona: &Persona, bits: usize) -> Option<PrivateKey> {
    let mut rng = SeedRng::new(persona, &format!("ssh-hostkey-rsa-{bits}"));
    RsaKeypair::random(&mut rng, bits)
        .ok()
        .map(PrivateKey::from)
}

/// The decky's host keys, in sshd's loading order.
#[derive(Debug, Clone)]
pub struct HostKeys(pub Vec<PrivateKey>);

impl HostKeys {
    /// The persona's ECDSA P-256 and Ed25519 host keys, generated from the seed (the
    /// RSA key comes later, from [`rsa_host_key`]).
    pub fn derive(persona: &Persona) -> HostKeys {
        let keys = [
            (
                "ssh-hostkey-ecdsa",
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
            ),
            ("ssh-hostkey-ed25519", Algorithm::Ed25519),
        ]
        .into_iter()
        .filter_map(|(label, alg)| PrivateKey::random(&mut SeedRng::new(persona, label), alg).ok())
        .collect();
        HostKeys(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::decky::persona::tests::persona;

    #[test]
    fn keys_follow_the_seed() {
        let a = HostKeys::derive(&persona(1, "debian"));
        let again = HostKeys::derive(&persona(1, "debian"));
        let other = HostKeys::derive(&persona(2, "debian"));
        assert_eq!(a.0.len(), 2);
        let fp = |k: &HostKeys| -> Vec<String> {
            k.0.iter()
                .map(|k| k.public_key().fingerprint(HashAlg::Sha256).to_string())
                .collect()
        };
        assert_eq!(fp(&a), fp(&again));
        assert!(fp(&a).iter().zip(fp(&other)).all(|(x, y)| *x != y));
    }

    #[test]
    fn rsa_keys_follow_the_seed() {
        let a = rsa_host_key(&persona(1, "debian"), 1024).expect("a key");
        let again = rsa_host_key(&persona(1, "debian"), 1024).expect("a key");
        let other = rsa_host_key(&persona(2, "debian"), 1024).expect("a key");
        assert!(a.algorithm().is_rsa());
        assert_eq!(a.public_key(), again.public_key());
        assert_ne!(a.public_key(), other.public_key());
    }

    #[test]
    fn releases_match_the_distro_and_advertise_every_name() {
        let d = Release::of(&persona(3, "debian"));
        assert_eq!(d.ident(), "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10");
        let u = Release::of(&persona(3, "ubuntu20"));
        assert!(
            u.ident()
                .starts_with("SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.")
        );
        for (_, builds) in RELEASES {
            for r in *builds {
                let p = r.preferred();
                let names = |v: &[&str]| v.join(",");
                let kex: Vec<&str> = p.kex.iter().map(AsRef::as_ref).collect();
                let ciphers: Vec<&str> = p.cipher.iter().map(AsRef::as_ref).collect();
                let macs: Vec<&str> = p.mac.iter().map(AsRef::as_ref).collect();
                assert_eq!(names(&kex), names(r.kex), "{}", r.version);
                assert_eq!(names(&ciphers), names(r.ciphers), "{}", r.version);
                assert_eq!(names(&macs), names(r.macs), "{}", r.version);
            }
        }
    }
}
