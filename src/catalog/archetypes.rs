//! Archetypes (engine.md §2.4): named machine roles that bundle services, preferred
//! distros and an OS fingerprint, so `archetype=windows-server` is all a decky needs.
use super::Error;

/// One archetype of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archetype {
    /// The slug used in INI files and flags.
    pub slug: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// What kind of machine it imitates.
    pub description: &'static str,
    /// The services a decky of this archetype runs.
    pub services: &'static [&'static str],
    /// Distro slugs its deckies cycle through.
    pub preferred_distros: &'static [&'static str],
    /// Its OS fingerprint family (an [`OsProfile`](super::OsProfile) name).
    pub nmap_os: &'static str,
}

const fn arch(
    slug: &'static str,
    display_name: &'static str,
    description: &'static str,
    services: &'static [&'static str],
    preferred_distros: &'static [&'static str],
    nmap_os: &'static str,
) -> Archetype {
    Archetype {
        slug,
        display_name,
        description,
        services,
        preferred_distros,
        nmap_os,
    }
}

const DEB_UBU: &[&str] = &["debian", "ubuntu22"];

/// Every archetype, in catalogue order.
pub static ARCHETYPES: &[Archetype] = &[
    arch(
        "windows-workstation",
        "Windows Workstation",
        "Corporate Windows desktop with file sharing and remote desktop",
        &["smb", "rdp"],
        DEB_UBU,
        "windows",
    ),
    arch(
        "windows-server",
        "Windows Server",
        "Windows member server with directory access",
        &["smb", "rdp", "ldap"],
        DEB_UBU,
        "windows_server",
    ),
    arch(
        "domain-controller",
        "Domain Controller",
        "Active Directory domain controller",
        &["ldap", "smb", "rdp", "llmnr"],
        DEB_UBU,
        "windows_server",
    ),
    arch(
        "linux-server",
        "Linux Server",
        "General-purpose Linux host with SSH and a web server",
        &["ssh", "http"],
        &["debian", "ubuntu22", "rocky9", "fedora"],
        "linux",
    ),
    arch(
        "web-server",
        "Web Server",
        "Public-facing web host with FTP uploads",
        &["http", "ftp"],
        &["debian", "ubuntu22", "ubuntu20"],
        "linux",
    ),
    arch(
        "database-server",
        "Database Server",
        "Back-end database host",
        &["mysql", "postgres", "redis"],
        DEB_UBU,
        "linux",
    ),
    arch(
        "mail-server",
        "Mail Server",
        "SMTP/IMAP/POP3 mail host",
        &["smtp", "pop3", "imap"],
        DEB_UBU,
        "linux",
    ),
    arch(
        "file-server",
        "File Server",
        "File share reachable over SMB, FTP and SSH",
        &["smb", "ftp", "ssh"],
        &["debian", "ubuntu22", "rocky9"],
        "linux",
    ),
    arch(
        "printer",
        "Network Printer",
        "Office network printer",
        &["snmp", "ftp"],
        &["alpine", "debian"],
        "embedded",
    ),
    arch(
        "iot-device",
        "IoT Device",
        "Embedded IoT gadget",
        &["mqtt", "snmp", "telnet"],
        &["alpine"],
        "embedded",
    ),
    arch(
        "industrial-control",
        "Industrial Control System",
        "PLC / SCADA controller",
        &["conpot", "snmp"],
        &["debian"],
        "embedded",
    ),
    arch(
        "voip-server",
        "VoIP Server",
        "SIP telephony server",
        &["sip"],
        DEB_UBU,
        "linux",
    ),
    arch(
        "monitoring-node",
        "Monitoring Node",
        "Network monitoring host",
        &["snmp", "ssh"],
        &["debian", "rocky9"],
        "linux",
    ),
    arch(
        "devops-host",
        "DevOps Host",
        "Container and cluster management host",
        &["docker_api", "ssh", "k8s"],
        &["ubuntu22", "debian"],
        "linux",
    ),
    arch(
        "deaddeck",
        "Deaddeck (Entry Point)",
        "Bare SSH box meant as the attacker's way in",
        &["ssh"],
        DEB_UBU,
        "linux",
    ),
];

/// The archetype with slug `slug`.
pub fn archetype(slug: &str) -> Result<&'static Archetype, Error> {
    ARCHETYPES
        .iter()
        .find(|a| a.slug == slug)
        .ok_or_else(|| Error::UnknownArchetype {
            name: slug.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_unique_archetypes() {
        assert_eq!(ARCHETYPES.len(), 15);
        let mut slugs: Vec<_> = ARCHETYPES.iter().map(|a| a.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), 15);
        assert!(ARCHETYPES.iter().all(|a| !a.services.is_empty()));
    }

    #[test]
    fn lookup_by_slug() {
        let a = archetype("domain-controller").expect("catalogued");
        assert_eq!(a.services, &["ldap", "smb", "rdp", "llmnr"]);
        assert_eq!(a.nmap_os, "windows_server");
    }
}
