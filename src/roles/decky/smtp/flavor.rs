//! Which Postfix the decky runs, and what that release says.
//!
//! Postfix never names its version on the wire, but its replies changed between releases,
//! and a scanner that knows them can date a server (all checked against
//! github:vdukhovni/postfix at each distro's release tag):
//! - unknown commands: `502 5.5.2 Error: command not recognized` up to 3.6, `500 …` from
//!   3.7 (postfix-3.7-20210814);
//! - `SMTPUTF8` and `CHUNKING` in the EHLO list from 3.0 and 3.4 (so not on CentOS 7's 2.10);
//! - the text after `535 5.7.8 Error: authentication failed:`. With Dovecot SASL (what
//!   the distros' mail guides set up), Dovecot's `FAIL` carries no reason; before the fix
//!   of postfix-3.9-20231112 (back-ported to 3.5.25, 3.6.20, 3.7.11 and 3.8.6) Postfix
//!   kept the last challenge in the reply buffer and printed it (the notorious
//!   `authentication failed: UGFzc3dvcmQ6` after AUTH LOGIN), after it the buffer is
//!   empty, and releases since 3.5.x print `(reason unavailable)` for an empty one.
//!
//! The greeting is the distro's `smtpd_banner` from its packaged main.cf:
//! `$myhostname ESMTP $mail_name (Debian/GNU)` on Debian and Kali, `(Ubuntu)` on Ubuntu,
//! and upstream's `$myhostname ESMTP $mail_name` elsewhere.
use crate::roles::decky::Persona;

/// The behaviour of the Postfix release a distro ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postfix {
    /// The release (for the startup line; never shown to clients).
    pub release: &'static str,
    /// What follows `ESMTP Postfix` in the default banner.
    pub banner_tag: &'static str,
    /// Reply code of an unknown command (502 before 3.7, then 500).
    pub unknown_code: u16,
    /// Whether EHLO lists `SMTPUTF8` and `CHUNKING`.
    pub modern_ehlo: bool,
    /// Whether a failed SASL exchange clears the reply buffer (the Dovecot fix).
    pub clears_reply: bool,
    /// Whether an empty reason prints as `(reason unavailable)`.
    pub says_unavailable: bool,
    /// Whether the packaged main.cf turns on opportunistic TLS (`STARTTLS`).
    pub tls: bool,
}

const fn release(
    release: &'static str,
    banner_tag: &'static str,
    unknown_code: u16,
    fixed: bool,
) -> Postfix {
    Postfix {
        release,
        banner_tag,
        unknown_code,
        modern_ehlo: true,
        clears_reply: fixed,
        says_unavailable: fixed,
        tls: true,
    }
}

/// The Postfix of each distro (the package of its current release).
const RELEASES: &[(&str, Postfix)] = &[
    ("debian", release("3.7.11", " (Debian/GNU)", 500, true)),
    ("kali", release("3.10.4", " (Debian/GNU)", 500, true)),
    ("ubuntu22", release("3.6.4", " (Ubuntu)", 502, false)),
    ("ubuntu20", release("3.4.13", " (Ubuntu)", 502, false)),
    ("rocky9", release("3.5.25", "", 502, true)),
    (
        "centos7",
        Postfix {
            modern_ehlo: false,
            // CentOS 7's main.cf leaves smtpd_tls_security_level unset.
            tls: false,
            ..release("2.10.1", "", 502, false)
        },
    ),
    ("alpine", release("3.8.6", "", 500, true)),
    ("fedora", release("3.8.6", "", 500, true)),
    ("arch", release("3.9.1", "", 500, true)),
];

impl Postfix {
    /// The Postfix `persona`'s distro ships.
    pub fn of(persona: &Persona) -> Postfix {
        RELEASES
            .iter()
            .find(|(slug, _)| *slug == persona.distro.slug)
            .map_or(RELEASES[0].1, |(_, p)| *p)
    }

    /// The `535` reply after a failed exchange; `challenge` is the last one sent.
    pub fn auth_failed(&self, challenge: &str) -> String {
        let reason = if self.clears_reply { "" } else { challenge };
        let reason = if reason.is_empty() && self.says_unavailable {
            "(reason unavailable)"
        } else {
            reason
        };
        format!("535 5.7.8 Error: authentication failed: {reason}")
    }
}

/// `$myhostname`: the persona's hostname, with `.localdomain` appended when it has no dot
/// (Postfix's `check_myhostname` with the default `$mydomain`).
pub fn myhostname(persona: &Persona) -> String {
    if persona.hostname.contains('.') {
        persona.hostname.clone()
    } else {
        format!("{}.localdomain", persona.hostname)
    }
}

/// `message_size_limit`: upstream's default on most deckies, a raised one on some, as
/// admins set it.
pub fn message_size_limit(persona: &Persona) -> u64 {
    *persona.pick(
        "smtp-size-limit",
        &[10_240_000, 10_240_000, 10_240_000, 20_480_000, 52_428_800],
    )
}

/// Local parts that exist on the decky: the system accounts of passwd, the aliases every
/// distro ships, and a few mailboxes chosen by the seed.
pub fn local_users(persona: &Persona) -> Vec<String> {
    let mut users: Vec<String> = [
        "root",
        "postmaster",
        "abuse",
        "mailer-daemon",
        "webmaster",
        "hostmaster",
        "daemon",
        "bin",
        "sys",
        "nobody",
        "www-data",
        "postfix",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    const MAILBOXES: &[&str] = &[
        "admin", "info", "support", "sales", "office", "billing", "hr", "jsmith", "mike", "anna",
        "backup", "deploy", "contact", "it", "helpdesk", "accounts",
    ];
    let count = 2 + persona.number("smtp-mailboxes", 4);
    for i in 0..count {
        let name = (*persona.pick(&format!("smtp-mailbox-{i}"), MAILBOXES)).to_owned();
        if !users.contains(&name) {
            users.push(name);
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::decky::persona::tests::persona;

    #[test]
    fn releases_follow_the_distro() {
        let debian = Postfix::of(&persona(1, "debian"));
        assert_eq!(debian.unknown_code, 500);
        assert_eq!(
            debian.auth_failed("UGFzc3dvcmQ6"),
            "535 5.7.8 Error: authentication failed: (reason unavailable)"
        );
        let jammy = Postfix::of(&persona(1, "ubuntu22"));
        assert_eq!(jammy.unknown_code, 502);
        assert_eq!(
            jammy.auth_failed("UGFzc3dvcmQ6"),
            "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6"
        );
        assert_eq!(
            jammy.auth_failed(""),
            "535 5.7.8 Error: authentication failed: "
        );
        assert!(!Postfix::of(&persona(1, "centos7")).modern_ehlo);
        let p = persona(3, "debian");
        assert!(myhostname(&p).ends_with(".localdomain"));
        assert!(local_users(&p).len() >= 14);
    }
}
