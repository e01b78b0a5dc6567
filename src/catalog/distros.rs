//! Distro profiles (engine.md §2.5): the OS a decky claims to run, and the style of its
//! hostname.
//!
//! decnet pulls no images, so `base_image` and `build_base` are metadata that keeps the
//! original's names (the engine builds every image locally from this binary); the slug
//! still decides the hostname style and the OS identity a decky presents.
use super::Error;

/// How hostnames of a distro look (drawn by the builders from [`HOSTNAME_WORDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostnameStyle {
    /// `SRV-<WORD>-<nn>`, e.g. `SRV-DELTA-42`.
    Generic,
    /// `<word><nn>.localdomain`, e.g. `web17.localdomain`.
    Rhel,
    /// `<word>-<nn>`, e.g. `nova-23`.
    Minimal,
    /// `<word>-<word2>`, e.g. `kilo-proxy`.
    Rolling,
}

impl HostnameStyle {
    /// The style's name as listings show it.
    pub fn name(self) -> &'static str {
        match self {
            HostnameStyle::Generic => "generic",
            HostnameStyle::Rhel => "rhel",
            HostnameStyle::Minimal => "minimal",
            HostnameStyle::Rolling => "rolling",
        }
    }
}

/// The words hostnames are made of.
pub const HOSTNAME_WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "nova", "oscar", "prod", "web", "db", "mail", "proxy", "dev", "stage",
    "backup", "monitor", "files",
];

/// One distro profile of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distro {
    /// The slug used in INI files and flags.
    pub slug: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// The image the original ran the base container from (metadata here).
    pub base_image: &'static str,
    /// The image the original built service containers on (metadata here).
    pub build_base: &'static str,
    /// How its hostnames look.
    pub hostname_style: HostnameStyle,
}

const DEBIAN_IMAGE: &str = "debian:bookworm-slim";

const fn distro_of(
    slug: &'static str,
    display_name: &'static str,
    base_image: &'static str,
    hostname_style: HostnameStyle,
    own_build_base: bool,
) -> Distro {
    Distro {
        slug,
        display_name,
        base_image,
        build_base: if own_build_base {
            base_image
        } else {
            DEBIAN_IMAGE
        },
        hostname_style,
    }
}

/// Every distro profile, in catalogue order (the order builders cycle through).
pub static DISTROS: &[Distro] = &[
    distro_of(
        "debian",
        "Debian 12 (Bookworm)",
        DEBIAN_IMAGE,
        HostnameStyle::Generic,
        true,
    ),
    distro_of(
        "ubuntu22",
        "Ubuntu 22.04 LTS (Jammy)",
        "ubuntu:22.04",
        HostnameStyle::Generic,
        true,
    ),
    distro_of(
        "ubuntu20",
        "Ubuntu 20.04 LTS (Focal)",
        "ubuntu:20.04",
        HostnameStyle::Generic,
        true,
    ),
    distro_of(
        "rocky9",
        "Rocky Linux 9",
        "rockylinux:9-minimal",
        HostnameStyle::Rhel,
        false,
    ),
    distro_of(
        "centos7",
        "CentOS 7",
        "centos:7",
        HostnameStyle::Rhel,
        false,
    ),
    distro_of(
        "alpine",
        "Alpine Linux 3.19",
        "alpine:3.19",
        HostnameStyle::Minimal,
        false,
    ),
    distro_of(
        "fedora",
        "Fedora 39",
        "fedora:39",
        HostnameStyle::Rhel,
        false,
    ),
    distro_of(
        "kali",
        "Kali Linux (Rolling)",
        "kalilinux/kali-rolling",
        HostnameStyle::Rolling,
        true,
    ),
    distro_of(
        "arch",
        "Arch Linux",
        "archlinux:latest",
        HostnameStyle::Rolling,
        false,
    ),
];

/// The distro profile with slug `slug`.
pub fn distro(slug: &str) -> Result<&'static Distro, Error> {
    DISTROS
        .iter()
        .find(|d| d.slug == slug)
        .ok_or_else(|| Error::UnknownDistro {
            name: slug.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_unique_distros_with_their_styles() {
        assert_eq!(DISTROS.len(), 9);
        let mut slugs: Vec<_> = DISTROS.iter().map(|d| d.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), 9);
        let style = |s: &str| distro(s).map(|d| d.hostname_style);
        assert_eq!(style("debian"), Ok(HostnameStyle::Generic));
        assert_eq!(style("rocky9"), Ok(HostnameStyle::Rhel));
        assert_eq!(style("alpine"), Ok(HostnameStyle::Minimal));
        assert_eq!(style("arch"), Ok(HostnameStyle::Rolling));
    }

    #[test]
    fn build_base_is_own_image_or_debian() {
        let d = |s: &str| distro(s).expect("catalogued");
        assert_eq!(d("ubuntu20").build_base, "ubuntu:20.04");
        assert_eq!(d("fedora").build_base, DEBIAN_IMAGE);
        assert_eq!(HOSTNAME_WORDS.len(), 25);
    }
}
