//! The persona of one decky: who it claims to be (distro, OS family, hostname, software
//! versions), decided once and read by every service, so that the http `Server` header,
//! redis's `INFO`, and later ssh's banner and `uname -a` agree with each other and with the
//! decky's OS profile.
//!
//! Every detail that would otherwise be a constant shared by all installs (a build string,
//! a certificate, a cookie, a run id) is derived from the decky's secret seed: HMAC-SHA256
//! keyed by the seed over a label naming the detail ([`Persona::derive`]). One label gives
//! the same bytes on every restart of the decky and unrelated bytes on any other decky,
//! and nothing about the seed can be learnt from what a service shows. Choices among real
//! values (which Apache release of the distro, which kernel build) are picks indexed by
//! such bytes, so every string shown is one the claimed distro really shipped.
use ring::hmac;

use crate::catalog::{self, DISTROS, Distro, OsProfile};
use crate::model::{DeckySeed, build, rng::Rng};

/// The identity a decky presents.
#[derive(Debug, Clone)]
pub struct Persona {
    /// The decky's name (`NODE_NAME`), the HOSTNAME of its event lines.
    pub node: String,
    /// The cosmetic hostname its services show.
    pub hostname: String,
    /// The distro it claims.
    pub distro: &'static Distro,
    /// Its OS fingerprint family.
    pub os: &'static OsProfile,
    key: hmac::Key,
}

/// Which web server a decky's http services impersonate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebFlavor {
    /// Apache httpd.
    Apache,
    /// nginx.
    Nginx,
    /// Microsoft IIS.
    Iis,
}

/// Apache and nginx `Server` strings each distro's packages really sent (default
/// `ServerTokens`), newest last.
const WEB_SERVERS: &[(&str, &[&str], &[&str])] = &[
    (
        "debian",
        &[
            "Apache/2.4.57 (Debian)",
            "Apache/2.4.59 (Debian)",
            "Apache/2.4.61 (Debian)",
            "Apache/2.4.62 (Debian)",
        ],
        &["nginx/1.22.1"],
    ),
    (
        "ubuntu22",
        &["Apache/2.4.52 (Ubuntu)"],
        &["nginx/1.18.0 (Ubuntu)"],
    ),
    (
        "ubuntu20",
        &["Apache/2.4.41 (Ubuntu)"],
        &["nginx/1.18.0 (Ubuntu)"],
    ),
    (
        "rocky9",
        &[
            "Apache/2.4.53 (Rocky Linux)",
            "Apache/2.4.57 (Rocky Linux)",
            "Apache/2.4.62 (Rocky Linux)",
        ],
        &["nginx/1.20.1"],
    ),
    ("centos7", &["Apache/2.4.6 (CentOS)"], &["nginx/1.20.1"]),
    (
        "alpine",
        &["Apache/2.4.58 (Unix)", "Apache/2.4.59 (Unix)"],
        &["nginx/1.24.0"],
    ),
    (
        "fedora",
        &[
            "Apache/2.4.58 (Fedora Linux)",
            "Apache/2.4.59 (Fedora Linux)",
        ],
        &["nginx/1.24.0", "nginx/1.26.0"],
    ),
    (
        "kali",
        &["Apache/2.4.62 (Debian)", "Apache/2.4.63 (Debian)"],
        &["nginx/1.26.3"],
    ),
    (
        "arch",
        &["Apache/2.4.62 (Unix)"],
        &["nginx/1.26.2", "nginx/1.26.3"],
    ),
];

/// Kernel releases of each distro as `(prefix, builds, suffix)`: `uname -r` is
/// `prefix + build + suffix`.
const KERNELS: &[(&str, &str, &[&str], &str)] = &[
    (
        "debian",
        "6.1.0-",
        &["13", "17", "18", "20", "21", "23", "25", "26", "27", "28"],
        "-amd64",
    ),
    (
        "ubuntu22",
        "5.15.0-",
        &[
            "88", "91", "94", "97", "101", "105", "107", "112", "116", "119",
        ],
        "-generic",
    ),
    (
        "ubuntu20",
        "5.4.0-",
        &[
            "150", "155", "163", "165", "169", "172", "177", "182", "186", "190",
        ],
        "-generic",
    ),
    (
        "rocky9",
        "5.14.0-",
        &[
            "362.24.1.el9_3",
            "427.13.1.el9_4",
            "427.42.1.el9_4",
            "503.14.1.el9_5",
        ],
        ".x86_64",
    ),
    (
        "centos7",
        "3.10.0-1160.",
        &[
            "71.1", "80.1", "88.1", "95.1", "102.1", "108.1", "114.2", "119.1",
        ],
        ".el7.x86_64",
    ),
    ("alpine", "6.6.", &["14", "22", "31", "41", "49"], "-0-lts"),
    (
        "fedora",
        "6.",
        &["5.6-300", "6.9-200", "7.7-200", "8.9-200", "9.7-100"],
        ".fc39.x86_64",
    ),
    ("kali", "6.", &["6.9", "8.11", "11.2", "12.13"], "-amd64"),
    (
        "arch",
        "6.",
        &[
            "9.7-arch1-1",
            "10.10-arch1-1",
            "11.5-arch1-1",
            "12.1-arch1-1",
        ],
        "",
    ),
];

/// Redis releases each distro packaged, and the compiler version its `INFO` reports.
const REDIS: &[(&str, &[&str], &str)] = &[
    ("debian", &["7.0.11", "7.0.15"], "12.2.0"),
    ("ubuntu22", &["6.0.16"], "11.2.0"),
    ("ubuntu20", &["5.0.7"], "9.3.0"),
    ("rocky9", &["6.2.7", "6.2.17"], "11.4.1"),
    ("centos7", &["3.2.12"], "4.8.5"),
    ("alpine", &["7.2.4", "7.2.5"], "13.2.1"),
    ("fedora", &["7.2.3", "7.2.4"], "13.2.1"),
    ("kali", &["7.0.15", "7.2.5"], "13.2.0"),
    ("arch", &["7.2.4", "7.2.5"], "13.2.1"),
];

impl Persona {
    /// The persona of decky `node`; a missing distro, OS family or hostname is chosen from
    /// the seed (an unknown OS family falls back to `linux`, as the engine does).
    pub fn new(
        node: impl Into<String>,
        hostname: Option<String>,
        distro: Option<&str>,
        os: Option<&str>,
        seed: &DeckySeed,
    ) -> Result<Self, catalog::Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, seed.expose());
        let mut persona = Persona {
            node: node.into(),
            hostname: String::new(),
            distro: &DISTROS[0],
            os: catalog::os_profile(os.unwrap_or("linux")),
            key,
        };
        persona.distro = match distro {
            Some(slug) => catalog::distro(slug)?,
            None => persona.pick("distro", DISTROS),
        };
        persona.hostname = match hostname.filter(|h| !h.trim().is_empty()) {
            Some(h) => h,
            None => {
                let mut rng = Rng::new(persona.number("hostname", u64::MAX));
                build::hostname(persona.distro.hostname_style, &mut rng)
            }
        };
        Ok(persona)
    }

    /// 32 bytes that stand for `label` on this decky: stable across restarts, unrelated
    /// between labels and between deckies.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.key, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// A number in `0..n` for `label` (`0` when `n` is 0); the bias of 64 bits reduced
    /// modulo a small `n` is far below what any observer could measure.
    pub fn number(&self, label: &str, n: u64) -> u64 {
        let bytes = self.derive(label);
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(first).checked_rem(n).unwrap_or(0)
    }

    /// One of `items` for `label`; `items` must not be empty.
    pub fn pick<'a, T>(&self, label: &str, items: &'a [T]) -> &'a T {
        let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let i = usize::try_from(self.number(label, n)).unwrap_or(0);
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// `len` lowercase hex digits for `label` (at most 64).
    pub fn hex(&self, label: &str, len: usize) -> String {
        let mut s = hex::encode(self.derive(label));
        s.truncate(len);
        s
    }

    /// Whether the decky claims to be a Windows machine.
    pub fn is_windows(&self) -> bool {
        self.os.name.starts_with("windows")
    }

    /// The web server this decky's http and https claim to be.
    pub fn web_flavor(&self) -> WebFlavor {
        if self.is_windows() {
            WebFlavor::Iis
        } else if self.number("web-flavor", 3) == 0 {
            WebFlavor::Nginx
        } else {
            WebFlavor::Apache
        }
    }

    /// The `Server` header of that web server, a release the distro really shipped.
    pub fn web_server_header(&self) -> String {
        let (apache, nginx) = WEB_SERVERS
            .iter()
            .find(|(slug, ..)| *slug == self.distro.slug)
            .map_or(
                (&["Apache/2.4.62 (Debian)"][..], &["nginx/1.22.1"][..]),
                |r| (r.1, r.2),
            );
        match self.web_flavor() {
            WebFlavor::Iis => "Microsoft-IIS/10.0".to_owned(),
            WebFlavor::Nginx => (*self.pick("nginx-release", nginx)).to_owned(),
            WebFlavor::Apache => (*self.pick("apache-release", apache)).to_owned(),
        }
    }

    /// The kernel release (`uname -r`) of the claimed distro.
    pub fn kernel_release(&self) -> String {
        let (prefix, builds, suffix) = KERNELS
            .iter()
            .find(|k| k.0 == self.distro.slug)
            .map_or(("6.1.0-", &["28"][..], "-amd64"), |k| (k.1, k.2, k.3));
        format!("{prefix}{}{suffix}", self.pick("kernel-build", builds))
    }

    /// The redis release the distro packaged and the compiler that built it.
    pub fn redis_build(&self) -> (&'static str, &'static str) {
        let (versions, gcc) = REDIS
            .iter()
            .find(|r| r.0 == self.distro.slug)
            .map_or((&["7.0.15"][..], "12.2.0"), |r| (r.1, r.2));
        (*self.pick("redis-release", versions), gcc)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn persona(seed_byte: u8, distro: &str) -> Persona {
        let seed = DeckySeed::from_hex(&format!("{seed_byte:02x}").repeat(32)).expect("hex");
        Persona::new("decky-01", None, Some(distro), None, &seed).expect("catalogued")
    }

    #[test]
    fn one_seed_one_identity_two_seeds_two() {
        let a = persona(1, "debian");
        let again = persona(1, "debian");
        assert_eq!(a.derive("x"), again.derive("x"));
        assert_eq!(a.hostname, again.hostname);
        assert_ne!(a.derive("x"), a.derive("y"));
        let differing = (2..40u8)
            .filter(|b| persona(*b, "debian").hex("cookie", 16) != a.hex("cookie", 16))
            .count();
        assert_eq!(differing, 38);
        assert!(a.hostname.starts_with("SRV-"), "{}", a.hostname);
    }

    #[test]
    fn versions_belong_to_the_distro() {
        for b in 0..20u8 {
            let u = persona(b, "ubuntu22");
            let header = u.web_server_header();
            assert!(
                header == "Apache/2.4.52 (Ubuntu)" || header == "nginx/1.18.0 (Ubuntu)",
                "{header}"
            );
            assert!(u.kernel_release().starts_with("5.15.0-"));
            assert_eq!(u.redis_build(), ("6.0.16", "11.2.0"));
            let r = persona(b, "rocky9").web_server_header();
            assert!(r.contains("Rocky Linux") || r == "nginx/1.20.1", "{r}");
        }
        let seed = DeckySeed::from_hex(&"07".repeat(32)).expect("hex");
        let w = Persona::new("w", None, Some("debian"), Some("windows"), &seed).expect("ok");
        assert_eq!(w.web_server_header(), "Microsoft-IIS/10.0");
        let flavors: std::collections::BTreeSet<_> = (0..30u8)
            .map(|b| format!("{:?}", persona(b, "debian").web_flavor()))
            .collect();
        assert_eq!(flavors.len(), 2, "both Apache and nginx occur: {flavors:?}");
    }
}
