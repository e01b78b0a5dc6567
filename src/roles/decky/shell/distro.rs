//! What the claimed distro looks like from a shell: `/etc/os-release`, the kernel's build
//! line (`uname -v`, `/proc/version`), the login banner and the prompt. Every string is the
//! one that distro's packages really ship, matched to the kernel build [`Persona`] picked,
//! so `uname -a`, the motd and the ssh banner never disagree.
use super::super::Persona;

/// How the distro's default `PS1` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStyle {
    /// Debian and Ubuntu: `user@host:~$ `.
    Debian,
    /// Red Hat family and Arch: `[user@host ~]$ `.
    Redhat,
    /// Alpine's ash: `host:~$ `.
    Alpine,
    /// Kali's two-line prompt.
    Kali,
}

/// The kernel as `uname` and `/proc/version` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
    /// `/proc/version`.
    pub proc_version: String,
}

/// `uname -v` of each kernel build, by the build part of `uname -r`.
const BUILDS: &[(&str, &[(&str, &str)])] = &[
    (
        "debian",
        &[
            ("13", "Debian 6.1.55-1 (2023-09-29)"),
            ("17", "Debian 6.1.69-1 (2023-12-30)"),
            ("18", "Debian 6.1.76-1 (2024-02-01)"),
            ("20", "Debian 6.1.85-1 (2024-04-11)"),
            ("21", "Debian 6.1.90-1 (2024-05-03)"),
            ("23", "Debian 6.1.99-1 (2024-07-15)"),
            ("25", "Debian 6.1.106-3 (2024-08-26)"),
            ("26", "Debian 6.1.112-1 (2024-09-30)"),
            ("27", "Debian 6.1.115-1 (2024-11-01)"),
            ("28", "Debian 6.1.119-1 (2024-12-07)"),
        ],
    ),
    (
        "ubuntu22",
        &[
            ("88", "#98-Ubuntu SMP Mon Oct 2 15:18:56 UTC 2023"),
            ("91", "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023"),
            ("94", "#104-Ubuntu SMP Tue Jan 9 15:25:40 UTC 2024"),
            ("97", "#107-Ubuntu SMP Fri Feb 9 14:20:11 UTC 2024"),
            ("101", "#111-Ubuntu SMP Tue Mar 5 20:16:58 UTC 2024"),
            ("105", "#115-Ubuntu SMP Mon Apr 15 09:52:04 UTC 2024"),
            ("107", "#117-Ubuntu SMP Fri Apr 26 12:26:49 UTC 2024"),
            ("112", "#122-Ubuntu SMP Thu May 23 07:48:21 UTC 2024"),
            ("116", "#126-Ubuntu SMP Mon Jul 1 10:14:24 UTC 2024"),
            ("119", "#129-Ubuntu SMP Fri Aug 2 19:25:20 UTC 2024"),
        ],
    ),
    (
        "ubuntu20",
        &[
            ("150", "#167-Ubuntu SMP Mon May 15 17:35:05 UTC 2023"),
            ("155", "#172-Ubuntu SMP Fri Jul 7 16:10:02 UTC 2023"),
            ("163", "#180-Ubuntu SMP Tue Sep 5 13:21:23 UTC 2023"),
            ("165", "#182-Ubuntu SMP Mon Oct 2 19:43:28 UTC 2023"),
            ("169", "#187-Ubuntu SMP Thu Nov 23 14:52:28 UTC 2023"),
            ("172", "#190-Ubuntu SMP Fri Feb 2 23:24:22 UTC 2024"),
            ("177", "#197-Ubuntu SMP Thu Mar 28 22:45:47 UTC 2024"),
            ("182", "#202-Ubuntu SMP Fri Apr 26 12:29:36 UTC 2024"),
            ("186", "#206-Ubuntu SMP Fri Apr 26 12:31:10 UTC 2024"),
            ("190", "#210-Ubuntu SMP Fri Jul 5 17:03:38 UTC 2024"),
        ],
    ),
    (
        "rocky9",
        &[
            ("362.24.1.el9_3", "Thu Apr 4 22:31:43 UTC 2024"),
            ("427.13.1.el9_4", "Wed May 1 19:11:28 UTC 2024"),
            ("427.42.1.el9_4", "Wed Oct 30 18:24:03 UTC 2024"),
            ("503.14.1.el9_5", "Fri Nov 15 12:04:32 UTC 2024"),
        ],
    ),
    (
        "centos7",
        &[
            ("71.1", "Tue Jun 28 15:37:28 UTC 2022"),
            ("80.1", "Wed Dec 14 14:00:52 UTC 2022"),
            ("88.1", "Tue Mar 7 15:41:52 UTC 2023"),
            ("95.1", "Wed Jun 14 14:53:04 UTC 2023"),
            ("102.1", "Tue Oct 10 16:01:28 UTC 2023"),
            ("108.1", "Thu Jan 25 16:17:31 UTC 2024"),
            ("114.2", "Tue Mar 19 14:51:01 UTC 2024"),
            ("119.1", "Tue Jun 4 14:43:51 UTC 2024"),
        ],
    ),
    (
        "alpine",
        &[
            ("14", "Fri, 26 Jan 2024 11:08:07 +0000"),
            ("22", "Thu, 21 Mar 2024 08:35:37 +0000"),
            ("31", "Fri, 17 May 2024 07:43:11 +0000"),
            ("41", "Tue, 16 Jul 2024 12:26:54 +0000"),
            ("49", "Tue, 10 Sep 2024 06:02:45 +0000"),
        ],
    ),
    (
        "fedora",
        &[
            ("5.6-300", "Fri Oct 6 19:57:21 UTC 2023"),
            ("6.9-200", "Sat Dec 30 12:57:03 UTC 2023"),
            ("7.7-200", "Sat Mar 2 23:24:56 UTC 2024"),
            ("8.9-200", "Thu May 2 18:50:49 UTC 2024"),
            ("9.7-100", "Thu Jun 27 18:13:34 UTC 2024"),
        ],
    ),
    (
        "kali",
        &[
            ("6.9", "Kali 6.6.9-1kali1 (2024-01-08)"),
            ("8.11", "Kali 6.8.11-1kali2 (2024-05-30)"),
            ("11.2", "Kali 6.11.2-1kali1 (2024-10-15)"),
            ("12.13", "Kali 6.12.13-1kali1 (2025-02-11)"),
        ],
    ),
    (
        "arch",
        &[
            ("9.7-arch1-1", "Fri, 28 Jun 2024 04:32:50 +0000"),
            ("10.10-arch1-1", "Thu, 15 Sep 2024 18:13:51 +0000"),
            ("11.5-arch1-1", "Fri, 25 Oct 2024 12:49:21 +0000"),
            ("12.1-arch1-1", "Fri, 22 Nov 2024 16:04:27 +0000"),
        ],
    ),
];

/// The build part of `release`: what the distro's table in persona.rs varies.
fn build_of<'a>(slug: &str, release: &'a str) -> &'a str {
    let (prefix, suffix) = match slug {
        "debian" => ("6.1.0-", "-amd64"),
        "ubuntu22" => ("5.15.0-", "-generic"),
        "ubuntu20" => ("5.4.0-", "-generic"),
        "rocky9" => ("5.14.0-", ".x86_64"),
        "centos7" => ("3.10.0-1160.", ".el7.x86_64"),
        "alpine" => ("6.6.", "-0-lts"),
        "fedora" => ("6.", ".fc39.x86_64"),
        "kali" => ("6.", "-amd64"),
        _ => ("6.", ""),
    };
    release
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
        .unwrap_or(release)
}

/// The kernel of `p`, built as its distro builds kernels.
pub fn kernel(p: &Persona) -> Kernel {
    let release = p.kernel_release();
    let slug = p.distro.slug;
    let build = build_of(slug, &release);
    let stamp = BUILDS
        .iter()
        .find(|(s, _)| *s == slug)
        .and_then(|(_, b)| b.iter().find(|(k, _)| *k == build))
        .map_or("", |(_, v)| *v);
    let buildd = 10 + p.number("kernel-buildd", 80);
    let (version, builder, compiler) = match slug {
        "debian" => (
            format!("#1 SMP PREEMPT_DYNAMIC {stamp}"),
            "debian-kernel@lists.debian.org".to_owned(),
            "gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
        ),
        "ubuntu22" => (
            stamp.to_owned(),
            format!("buildd@lcy02-amd64-{buildd:03}"),
            "gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38",
        ),
        "ubuntu20" => (
            stamp.to_owned(),
            format!("buildd@lcy02-amd64-{buildd:03}"),
            "gcc (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0, GNU ld (GNU Binutils for Ubuntu) 2.34",
        ),
        "rocky9" => (
            format!("#1 SMP PREEMPT_DYNAMIC {stamp}"),
            "mockbuild@iad1-prod-build001.bld.equ.rockylinux.org".to_owned(),
            "gcc (GCC) 11.4.1 20231218 (Red Hat 11.4.1-3), GNU ld version 2.35.2-43.el9",
        ),
        "centos7" => (
            format!("#1 SMP {stamp}"),
            "mockbuild@kbuilder.bsys.centos.org".to_owned(),
            "gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) ",
        ),
        "alpine" => (
            format!("#1-Alpine SMP PREEMPT_DYNAMIC {stamp}"),
            "buildozer@build-3-19-x86_64".to_owned(),
            "gcc (Alpine 13.2.1_git20231014) 13.2.1 20231014, GNU ld (GNU Binutils) 2.41",
        ),
        "fedora" => (
            format!("#1 SMP PREEMPT_DYNAMIC {stamp}"),
            "mockbuild@f39-build-vm".to_owned(),
            "gcc (GCC) 13.2.1 20231205 (Red Hat 13.2.1-6), GNU ld version 2.40-14.fc39",
        ),
        "kali" => (
            format!("#1 SMP PREEMPT_DYNAMIC {stamp}"),
            "devel@kali.org".to_owned(),
            "gcc-13 (Debian 13.2.0-9) 13.2.0, GNU ld (GNU Binutils for Debian) 2.41.50.20231227",
        ),
        _ => (
            format!("#1 SMP PREEMPT_DYNAMIC {stamp}"),
            "linux@archlinux".to_owned(),
            "gcc (GCC) 14.1.1 20240522, GNU ld (GNU Binutils) 2.42.0",
        ),
    };
    let proc_version = format!("Linux version {release} ({builder}) ({compiler}) {version}\n");
    Kernel {
        release,
        version,
        proc_version,
    }
}

/// The Ubuntu point release a kernel build came with.
fn ubuntu_point(p: &Persona) -> &'static str {
    let release = p.kernel_release();
    let abi: u32 = build_of(p.distro.slug, &release).parse().unwrap_or(0);
    match p.distro.slug {
        "ubuntu20" => "20.04.6",
        _ if abi >= 116 => "22.04.5",
        _ if abi >= 101 => "22.04.4",
        _ => "22.04.3",
    }
}

/// `/etc/os-release`.
pub fn os_release(p: &Persona) -> String {
    let lines: &[&str] = match p.distro.slug {
        "debian" => &[
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"",
            "NAME=\"Debian GNU/Linux\"",
            "VERSION_ID=\"12\"",
            "VERSION=\"12 (bookworm)\"",
            "VERSION_CODENAME=bookworm",
            "ID=debian",
            "HOME_URL=\"https://www.debian.org/\"",
            "SUPPORT_URL=\"https://www.debian.org/support\"",
            "BUG_REPORT_URL=\"https://bugs.debian.org/\"",
        ],
        "ubuntu22" | "ubuntu20" => {
            let point = ubuntu_point(p);
            let (name, id) = if point.starts_with("20") {
                ("focal", "20.04")
            } else {
                ("jammy", "22.04")
            };
            let codename = if name == "focal" {
                "Focal Fossa"
            } else {
                "Jammy Jellyfish"
            };
            return format!(
                "PRETTY_NAME=\"Ubuntu {point} LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"{id}\"\nVERSION=\"{point} LTS ({codename})\"\nVERSION_CODENAME={name}\nID=ubuntu\nID_LIKE=debian\nHOME_URL=\"https://www.ubuntu.com/\"\nSUPPORT_URL=\"https://help.ubuntu.com/\"\nBUG_REPORT_URL=\"https://bugs.launchpad.net/ubuntu/\"\nPRIVACY_POLICY_URL=\"https://www.ubuntu.com/legal/terms-and-policies/privacy-policy\"\nUBUNTU_CODENAME={name}\n"
            );
        }
        "rocky9" => &[
            "NAME=\"Rocky Linux\"",
            "VERSION=\"9.4 (Blue Onyx)\"",
            "ID=\"rocky\"",
            "ID_LIKE=\"rhel centos fedora\"",
            "VERSION_ID=\"9.4\"",
            "PLATFORM_ID=\"platform:el9\"",
            "PRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"",
            "ANSI_COLOR=\"0;32\"",
            "LOGO=\"fedora-logo-icon\"",
            "CPE_NAME=\"cpe:/o:rocky:rocky:9::baseos\"",
            "HOME_URL=\"https://rockylinux.org/\"",
            "BUG_REPORT_URL=\"https://bugs.rockylinux.org/\"",
            "SUPPORT_END=\"2032-05-31\"",
            "ROCKY_SUPPORT_PRODUCT=\"Rocky-Linux-9\"",
            "ROCKY_SUPPORT_PRODUCT_VERSION=\"9.4\"",
            "REDHAT_SUPPORT_PRODUCT=\"Rocky Linux\"",
            "REDHAT_SUPPORT_PRODUCT_VERSION=\"9.4\"",
        ],
        "centos7" => &[
            "NAME=\"CentOS Linux\"",
            "VERSION=\"7 (Core)\"",
            "ID=\"centos\"",
            "ID_LIKE=\"rhel fedora\"",
            "VERSION_ID=\"7\"",
            "PRETTY_NAME=\"CentOS Linux 7 (Core)\"",
            "ANSI_COLOR=\"0;31\"",
            "CPE_NAME=\"cpe:/o:centos:centos:7\"",
            "HOME_URL=\"https://www.centos.org/\"",
            "BUG_REPORT_URL=\"https://bugs.centos.org/\"",
            "",
            "CENTOS_MANTISBT_PROJECT=\"CentOS-7\"",
            "CENTOS_MANTISBT_PROJECT_VERSION=\"7\"",
            "REDHAT_SUPPORT_PRODUCT=\"centos\"",
            "REDHAT_SUPPORT_PRODUCT_VERSION=\"7\"",
            "",
        ],
        "alpine" => &[
            "NAME=\"Alpine Linux\"",
            "ID=alpine",
            "VERSION_ID=3.19.1",
            "PRETTY_NAME=\"Alpine Linux v3.19\"",
            "HOME_URL=\"https://alpinelinux.org/\"",
            "BUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"",
        ],
        "fedora" => &[
            "NAME=\"Fedora Linux\"",
            "VERSION=\"39 (Server Edition)\"",
            "ID=fedora",
            "VERSION_ID=39",
            "VERSION_CODENAME=\"\"",
            "PLATFORM_ID=\"platform:f39\"",
            "PRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"",
            "ANSI_COLOR=\"0;38;2;60;110;180\"",
            "LOGO=fedora-logo-icon",
            "CPE_NAME=\"cpe:/o:fedoraproject:fedora:39\"",
            "HOME_URL=\"https://fedoraproject.org/\"",
            "DOCUMENTATION_URL=\"https://docs.fedoraproject.org/en-US/fedora/f39/system-administrators-guide/\"",
            "SUPPORT_URL=\"https://ask.fedoraproject.org/\"",
            "BUG_REPORT_URL=\"https://bugzilla.redhat.com/\"",
            "REDHAT_BUGZILLA_PRODUCT=\"Fedora\"",
            "REDHAT_BUGZILLA_PRODUCT_VERSION=39",
            "REDHAT_SUPPORT_PRODUCT=\"Fedora\"",
            "REDHAT_SUPPORT_PRODUCT_VERSION=39",
            "SUPPORT_END=2024-11-12",
            "VARIANT=\"Server Edition\"",
            "VARIANT_ID=server",
        ],
        "kali" => &[
            "PRETTY_NAME=\"Kali GNU/Linux Rolling\"",
            "NAME=\"Kali GNU/Linux\"",
            "VERSION_ID=\"2024.4\"",
            "VERSION=\"2024.4\"",
            "VERSION_CODENAME=kali-rolling",
            "ID=kali",
            "ID_LIKE=debian",
            "HOME_URL=\"https://www.kali.org/\"",
            "SUPPORT_URL=\"https://forums.kali.org/\"",
            "BUG_REPORT_URL=\"https://bugs.kali.org/\"",
            "ANSI_COLOR=\"1;31\"",
        ],
        _ => &[
            "NAME=\"Arch Linux\"",
            "PRETTY_NAME=\"Arch Linux\"",
            "ID=arch",
            "BUILD_ID=rolling",
            "ANSI_COLOR=\"38;2;23;147;209\"",
            "HOME_URL=\"https://archlinux.org/\"",
            "DOCUMENTATION_URL=\"https://wiki.archlinux.org/\"",
            "SUPPORT_URL=\"https://bbs.archlinux.org/\"",
            "BUG_REPORT_URL=\"https://gitlab.archlinux.org/groups/archlinux/-/issues\"",
            "PRIVACY_POLICY_URL=\"https://terms.archlinux.org/docs/privacy-policy/\"",
            "LOGO=archlinux-logo",
        ],
    };
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Extra release files the distro has besides os-release, path → content.
pub fn release_files(p: &Persona) -> Vec<(&'static str, String)> {
    match p.distro.slug {
        "debian" => vec![
            ("/etc/debian_version", "12.8\n".to_owned()),
            ("/etc/issue", "Debian GNU/Linux 12 \\n \\l\n\n".to_owned()),
            ("/etc/issue.net", "Debian GNU/Linux 12\n".to_owned()),
        ],
        "kali" => vec![
            ("/etc/debian_version", "kali-rolling\n".to_owned()),
            (
                "/etc/issue",
                "Kali GNU/Linux Rolling \\n \\l\n\n".to_owned(),
            ),
            ("/etc/issue.net", "Kali GNU/Linux Rolling\n".to_owned()),
        ],
        "ubuntu22" | "ubuntu20" => {
            let point = ubuntu_point(p);
            let debian = if point.starts_with("20") {
                "bullseye/sid"
            } else {
                "bookworm/sid"
            };
            vec![
                ("/etc/debian_version", format!("{debian}\n")),
                ("/etc/issue", format!("Ubuntu {point} LTS \\n \\l\n\n")),
                ("/etc/issue.net", format!("Ubuntu {point} LTS\n")),
                (
                    "/etc/lsb-release",
                    format!(
                        "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={}\nDISTRIB_CODENAME={}\nDISTRIB_DESCRIPTION=\"Ubuntu {point} LTS\"\n",
                        &point[..5],
                        if point.starts_with("20") {
                            "focal"
                        } else {
                            "jammy"
                        }
                    ),
                ),
            ]
        }
        "rocky9" => vec![
            (
                "/etc/redhat-release",
                "Rocky Linux release 9.4 (Blue Onyx)\n".to_owned(),
            ),
            ("/etc/issue", "\\S\nKernel \\r on an \\m\n\n".to_owned()),
        ],
        "centos7" => vec![
            (
                "/etc/redhat-release",
                "CentOS Linux release 7.9.2009 (Core)\n".to_owned(),
            ),
            ("/etc/issue", "\\S\nKernel \\r on an \\m\n\n".to_owned()),
        ],
        "fedora" => vec![
            (
                "/etc/redhat-release",
                "Fedora release 39 (Thirty Nine)\n".to_owned(),
            ),
            (
                "/etc/issue",
                "\\S\nKernel \\r on an \\m (\\l)\n\n".to_owned(),
            ),
        ],
        "alpine" => vec![
            ("/etc/alpine-release", "3.19.1\n".to_owned()),
            (
                "/etc/issue",
                "Welcome to Alpine Linux 3.19\nKernel \\r on an \\m (\\l)\n\n".to_owned(),
            ),
        ],
        _ => vec![("/etc/issue", "Arch Linux \\r (\\l)\n\n".to_owned())],
    }
}

/// The distro's prompt style.
pub fn prompt_style(p: &Persona) -> PromptStyle {
    match p.distro.slug {
        "debian" | "ubuntu22" | "ubuntu20" => PromptStyle::Debian,
        "alpine" => PromptStyle::Alpine,
        "kali" => PromptStyle::Kali,
        _ => PromptStyle::Redhat,
    }
}

/// The text shown between a successful login and the first prompt, before the
/// `Last login` line, with the figures of `m` (disk, memory, address); `now` is the
/// `date`-style time.
pub fn motd(p: &Persona, m: &super::tree::Machine, now: &str) -> String {
    let kernel = &m.kernel;
    let addr = &m.addr.to_string();
    let iface = &m.iface;
    let host = short_host(&p.hostname);
    match p.distro.slug {
        "debian" | "kali" => {
            let name = if p.distro.slug == "kali" {
                "Kali"
            } else {
                "Debian"
            };
            format!(
                "Linux {host} {} {} x86_64\n\nThe programs included with the {name} GNU/Linux system are free software;\nthe exact distribution terms for each program are described in the\nindividual files in /usr/share/doc/*/copyright.\n\n{name} GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent\npermitted by applicable law.\n",
                kernel.release, kernel.version
            )
        }
        "ubuntu22" | "ubuntu20" => {
            let point = ubuntu_point(p);
            let support = if point.starts_with("20") {
                "https://ubuntu.com/advantage"
            } else {
                "https://ubuntu.com/pro"
            };
            let load = p.number("motd-load", 40);
            let disk = m.disk_kib as f64 * 1024.0 / 1e9;
            let permille = m.disk_used_kib * 1000 / m.disk_kib.max(1);
            let (used, used_tenth) = (permille / 10, permille % 10);
            let procs = 96 + p.number("motd-procs", 60);
            let mem = super::tree::mem_used_percent(p);
            let updates = p.number("motd-updates", 60);
            let load_col = format!("0.{load:02}");
            let usage = format!("{used}.{used_tenth}% of {disk:.2}GB");
            let mem_col = format!("{mem}%");
            format!(
                "Welcome to Ubuntu {point} LTS (GNU/Linux {} x86_64)\n\n * Documentation:  https://help.ubuntu.com\n * Management:     https://landscape.canonical.com\n * Support:        {support}\n\n  System information as of {now}\n\n  System load:  {load_col:<18} Processes:             {procs}\n  Usage of /:   {usage:<18} Users logged in:       0\n  Memory usage: {mem_col:<18} IPv4 address for {iface}: {addr}\n  Swap usage:   0%\n\n{}",
                kernel.release,
                if updates == 0 {
                    "Expanded Security Maintenance for Applications is not enabled.\n\n0 updates can be applied immediately.\n\nEnable ESM Apps to receive additional future security updates.\nSee https://ubuntu.com/esm or run: sudo pro status\n\n\n".to_owned()
                } else {
                    format!(
                        "Expanded Security Maintenance for Applications is not enabled.\n\n{updates} updates can be applied immediately.\nTo see these additional updates run: apt list --upgradable\n\nEnable ESM Apps to receive additional future security updates.\nSee https://ubuntu.com/esm or run: sudo pro status\n\n\n"
                    )
                }
            )
        }
        "rocky9" | "fedora" => {
            "Web console: https://localhost:9090/ or https://{addr}:9090/\n\n".replace("{addr}", addr)
        }
        "alpine" => "Welcome to Alpine!\n\nThe Alpine Wiki contains a large amount of how-to guides and general\ninformation about administrating Alpine systems.\nSee <https://wiki.alpinelinux.org/>.\n\nYou can setup the system with the command: setup-alpine\n\nYou may change this message by editing /etc/motd.\n\n".to_owned(),
        _ => String::new(),
    }
}

/// The hostname up to its first dot, as bash's `\h` shows it.
pub fn short_host(hostname: &str) -> &str {
    hostname.split('.').next().unwrap_or(hostname)
}

#[cfg(test)]
mod tests {
    use super::super::super::persona::tests::persona;
    use super::*;

    #[test]
    fn every_kernel_build_has_a_version_line() {
        for slug in [
            "debian", "ubuntu22", "ubuntu20", "rocky9", "centos7", "alpine", "fedora", "kali",
            "arch",
        ] {
            for seed in 0..24u8 {
                let k = kernel(&persona(seed, slug));
                assert!(k.version.len() > 12, "{slug}: {} has no stamp", k.release);
                assert!(
                    k.proc_version
                        .starts_with(&format!("Linux version {} (", k.release))
                );
            }
        }
        let u = kernel(&persona(3, "ubuntu22"));
        assert!(u.version.contains("-Ubuntu SMP"), "{}", u.version);
    }

    #[test]
    fn release_texts_agree() {
        let p = persona(5, "ubuntu22");
        let os = os_release(&p);
        let machine = super::super::tree::Machine::new(&p, "root", 1_700_000_000, None);
        let m = motd(&p, &machine, "now");
        let pretty = os.lines().next().unwrap_or_default();
        let point = pretty
            .trim_start_matches("PRETTY_NAME=\"Ubuntu ")
            .trim_end_matches(" LTS\"");
        assert!(m.starts_with(&format!("Welcome to Ubuntu {point} LTS (GNU/Linux 5.15.0-")));
        assert!(os_release(&persona(1, "centos7")).contains("CentOS Linux 7 (Core)"));
    }
}
