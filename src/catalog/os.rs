//! OS fingerprint profiles (engine.md §2.6): the kernel settings a decky's base container
//! gets so that nmap's OS detection sees the claimed family, keyed by `nmap_os`.
//!
//! Unknown families fall back to `linux` ([`os_profile`] never fails): an odd `nmap_os`
//! must not stop a deploy, it only makes the decky look like Linux. The two Windows
//! families also need the cloak, which rewrites SYN-ACK shapes the kernel cannot be told
//! to produce (needs `NET_RAW`).

/// How the cloak numbers outgoing IP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpId {
    /// Each packet's IP ID is the previous one plus one.
    Incrementing,
    /// IP IDs are random.
    Random,
}

/// The SYN-ACK shape the cloak enforces for a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cloak {
    /// TCP window of SYN-ACKs.
    pub window: u16,
    /// Maximum segment size option.
    pub mss: u16,
    /// Window scale option.
    pub wscale: u8,
    /// IP ID behaviour.
    pub ip_id: IpId,
}

/// One OS fingerprint profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsProfile {
    /// The `nmap_os` family name.
    pub name: &'static str,
    /// `(sysctl, value)` pairs for the base container, values as strings.
    pub sysctls: &'static [(&'static str, &'static str)],
    /// The cloak settings, for families that need one.
    pub cloak: Option<Cloak>,
}

/// Builds the ten sysctls of a profile, in the order of the spec's table.
macro_rules! sysctls {
    ($ttl:literal, $syn:literal, $ts:literal, $ws:literal, $sack:literal, $ecn:literal,
     $pmtu:literal, $fin:literal, $icmp_rl:literal, $icmp_mask:literal) => {
        &[
            ("net.ipv4.ip_default_ttl", $ttl),
            ("net.ipv4.tcp_syn_retries", $syn),
            ("net.ipv4.tcp_timestamps", $ts),
            ("net.ipv4.tcp_window_scaling", $ws),
            ("net.ipv4.tcp_sack", $sack),
            ("net.ipv4.tcp_ecn", $ecn),
            ("net.ipv4.ip_no_pmtu_disc", $pmtu),
            ("net.ipv4.tcp_fin_timeout", $fin),
            ("net.ipv4.icmp_ratelimit", $icmp_rl),
            ("net.ipv4.icmp_ratemask", $icmp_mask),
        ]
    };
}

const WINDOWS_CLOAK: Cloak = Cloak {
    window: 8192,
    mss: 1460,
    wscale: 8,
    ip_id: IpId::Incrementing,
};

/// Every OS profile; the first (`linux`) is the fallback.
pub static OS_PROFILES: &[OsProfile] = &[
    OsProfile {
        name: "linux",
        sysctls: sysctls!("64", "6", "1", "1", "1", "2", "0", "60", "1000", "6168"),
        cloak: None,
    },
    OsProfile {
        name: "windows",
        sysctls: sysctls!("128", "2", "1", "1", "1", "0", "0", "30", "0", "0"),
        cloak: Some(WINDOWS_CLOAK),
    },
    OsProfile {
        name: "windows_server",
        sysctls: sysctls!("128", "2", "1", "1", "1", "1", "0", "30", "0", "0"),
        cloak: Some(Cloak {
            ip_id: IpId::Random,
            ..WINDOWS_CLOAK
        }),
    },
    OsProfile {
        name: "bsd",
        sysctls: sysctls!("64", "6", "1", "1", "1", "0", "0", "60", "250", "6168"),
        cloak: None,
    },
    OsProfile {
        name: "embedded",
        sysctls: sysctls!("255", "3", "0", "0", "0", "0", "1", "15", "0", "0"),
        cloak: None,
    },
    OsProfile {
        name: "cisco",
        sysctls: sysctls!("255", "2", "0", "0", "0", "0", "1", "15", "0", "0"),
        cloak: None,
    },
];

/// The profile of family `nmap_os`, or `linux` for a family not in the table.
pub fn os_profile(nmap_os: &str) -> &'static OsProfile {
    OS_PROFILES
        .iter()
        .find(|p| p.name == nmap_os)
        .unwrap_or(&OS_PROFILES[0])
}

/// Services whose emulation can only pass for Linux software, so a Windows persona
/// cannot offer them without contradicting its TTL, its IIS and its FTP banner: the
/// emulated shell behind ssh and telnet is bash on a Linux file system, redis's `INFO`
/// shows a Linux build (epoll, systemd, `/usr/bin/redis-server`) and smtp speaks as
/// Postfix, Exim or Sendmail. Windows personas get IIS for http/https, Microsoft FTP
/// Service for ftp, and the vendor's Windows builds for mysql; postgres shows nothing
/// OS-specific before authentication fails.
const LINUX_ONLY: &[(&str, &str)] = &[
    ("ssh", "its shell is an emulated Linux bash"),
    ("telnet", "its shell is an emulated Linux bash"),
    ("redis", "its INFO describes a Linux build of redis"),
    ("smtp", "it speaks as Postfix, Exim or Sendmail"),
    ("smtp_relay", "it speaks as Postfix, Exim or Sendmail"),
];

/// Why `service` cannot run on a decky of OS family `nmap_os` without contradicting it,
/// if it cannot.
pub fn service_conflict(nmap_os: &str, service: &str) -> Option<&'static str> {
    if !os_profile(nmap_os).name.starts_with("windows") {
        return None;
    }
    LINUX_ONLY
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_refuses_linux_only_services() {
        assert_eq!(
            service_conflict("windows", "ssh"),
            Some("its shell is an emulated Linux bash")
        );
        assert!(service_conflict("windows_server", "redis").is_some());
        for ok in ["ftp", "http", "https", "mysql", "postgres", "smb", "rdp"] {
            assert_eq!(service_conflict("windows_server", ok), None, "{ok}");
        }
        assert_eq!(service_conflict("linux", "ssh"), None);
        assert_eq!(service_conflict("embedded", "telnet"), None);
    }

    fn value(profile: &str, key: &str) -> Option<&'static str> {
        os_profile(profile)
            .sysctls
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    #[test]
    fn six_profiles_of_ten_sysctls() {
        assert_eq!(OS_PROFILES.len(), 6);
        for p in OS_PROFILES {
            assert_eq!(p.sysctls.len(), 10, "{}", p.name);
        }
        assert_eq!(value("windows", "net.ipv4.ip_default_ttl"), Some("128"));
        assert_eq!(value("cisco", "net.ipv4.tcp_syn_retries"), Some("2"));
        assert_eq!(value("windows_server", "net.ipv4.tcp_ecn"), Some("1"));
        assert_eq!(value("bsd", "net.ipv4.icmp_ratelimit"), Some("250"));
    }

    #[test]
    fn unknown_family_is_linux_and_only_windows_cloaks() {
        assert_eq!(os_profile("plan9").name, "linux");
        let cloaked: Vec<_> = OS_PROFILES
            .iter()
            .filter(|p| p.cloak.is_some())
            .map(|p| p.name)
            .collect();
        assert_eq!(cloaked, ["windows", "windows_server"]);
        assert_eq!(
            os_profile("windows_server").cloak.map(|c| c.ip_id),
            Some(IpId::Random)
        );
    }
}
