//! `/etc/passwd` of each distro family: the system accounts its base install creates, in
//! its order and with its shells, then the login user and the seed's extra users.
use super::super::Persona;
use super::tree::{Account, PEOPLE};

const SERVICE_USERS: &[&str] = &["deploy", "jenkins", "git", "backup", "ansible", "svc-app"];
fn sys(name: &str, uid: u32, gid: u32, gecos: &str, home: &str, shell: &str) -> Account {
    Account {
        name: name.to_owned(),
        uid,
        gid,
        gecos: gecos.to_owned(),
        home: home.to_owned(),
        shell: shell.to_owned(),
    }
}

/// `/etc/passwd` of the distro, with the login user and the seed's extra users.
pub(super) fn accounts(p: &Persona, login_user: &str) -> Vec<Account> {
    let nl = "/usr/sbin/nologin";
    let rh = "/sbin/nologin";
    let mut list = match p.distro.slug {
        "debian" | "kali" | "ubuntu22" | "ubuntu20" => {
            let mut v = vec![
                sys("root", 0, 0, "root", "/root", "/bin/bash"),
                sys("daemon", 1, 1, "daemon", "/usr/sbin", nl),
                sys("bin", 2, 2, "bin", "/bin", nl),
                sys("sys", 3, 3, "sys", "/dev", nl),
                sys("sync", 4, 65534, "sync", "/bin", "/bin/sync"),
                sys("games", 5, 60, "games", "/usr/games", nl),
                sys("man", 6, 12, "man", "/var/cache/man", nl),
                sys("lp", 7, 7, "lp", "/var/spool/lpd", nl),
                sys("mail", 8, 8, "mail", "/var/mail", nl),
                sys("news", 9, 9, "news", "/var/spool/news", nl),
                sys("uucp", 10, 10, "uucp", "/var/spool/uucp", nl),
                sys("proxy", 13, 13, "proxy", "/bin", nl),
                sys("www-data", 33, 33, "www-data", "/var/www", nl),
                sys("backup", 34, 34, "backup", "/var/backups", nl),
                sys("list", 38, 38, "Mailing List Manager", "/var/list", nl),
                sys("irc", 39, 39, "ircd", "/run/ircd", nl),
            ];
            if p.distro.slug.starts_with("ubuntu") {
                v.push(sys(
                    "gnats",
                    41,
                    41,
                    "Gnats Bug-Reporting System (admin)",
                    "/var/lib/gnats",
                    nl,
                ));
                v.push(sys("nobody", 65534, 65534, "nobody", "/nonexistent", nl));
                v.push(sys("_apt", 100, 65534, "", "/nonexistent", nl));
                v.push(sys(
                    "systemd-network",
                    101,
                    102,
                    "systemd Network Management,,,",
                    "/run/systemd",
                    nl,
                ));
                v.push(sys(
                    "systemd-resolve",
                    102,
                    103,
                    "systemd Resolver,,,",
                    "/run/systemd",
                    nl,
                ));
                v.push(sys("messagebus", 103, 104, "", "/nonexistent", nl));
                v.push(sys(
                    "systemd-timesync",
                    104,
                    105,
                    "systemd Time Synchronization,,,",
                    "/run/systemd",
                    nl,
                ));
                v.push(sys(
                    "pollinate",
                    105,
                    1,
                    "",
                    "/var/cache/pollinate",
                    "/bin/false",
                ));
                v.push(sys("sshd", 106, 65534, "", "/run/sshd", nl));
                v.push(sys("syslog", 107, 113, "", "/home/syslog", nl));
                v.push(sys("uuidd", 108, 114, "", "/run/uuidd", nl));
                v.push(sys("tcpdump", 109, 115, "", "/nonexistent", nl));
                v.push(sys(
                    "tss",
                    110,
                    116,
                    "TPM software stack,,,",
                    "/var/lib/tpm",
                    "/bin/false",
                ));
                v.push(sys("landscape", 111, 117, "", "/var/lib/landscape", nl));
                v.push(sys(
                    "fwupd-refresh",
                    112,
                    118,
                    "fwupd-refresh user,,,",
                    "/run/systemd",
                    nl,
                ));
                v.push(sys(
                    "lxd",
                    999,
                    100,
                    "",
                    "/var/snap/lxd/common/lxd",
                    "/bin/false",
                ));
            } else {
                v.push(sys("_apt", 42, 65534, "", "/nonexistent", nl));
                v.push(sys("nobody", 65534, 65534, "nobody", "/nonexistent", nl));
                v.push(sys(
                    "systemd-network",
                    998,
                    998,
                    "systemd Network Management",
                    "/",
                    nl,
                ));
                v.push(sys("messagebus", 100, 107, "", "/nonexistent", nl));
                v.push(sys("sshd", 101, 65534, "", "/run/sshd", nl));
            }
            v
        }
        "alpine" => vec![
            sys("root", 0, 0, "root", "/root", "/bin/ash"),
            sys("bin", 1, 1, "bin", "/bin", rh),
            sys("daemon", 2, 2, "daemon", "/sbin", rh),
            sys("adm", 3, 4, "adm", "/var/adm", rh),
            sys("lp", 4, 7, "lp", "/var/spool/lpd", rh),
            sys("sync", 5, 0, "sync", "/sbin", "/bin/sync"),
            sys("shutdown", 6, 0, "shutdown", "/sbin", "/sbin/shutdown"),
            sys("halt", 7, 0, "halt", "/sbin", "/sbin/halt"),
            sys("mail", 8, 12, "mail", "/var/mail", rh),
            sys("news", 9, 13, "news", "/usr/lib/news", rh),
            sys("uucp", 10, 14, "uucp", "/var/spool/uucppublic", rh),
            sys("cron", 16, 16, "cron", "/var/spool/cron", rh),
            sys("ftp", 21, 21, "", "/var/lib/ftp", rh),
            sys("sshd", 22, 22, "sshd", "/dev/null", rh),
            sys("games", 35, 35, "games", "/usr/games", rh),
            sys("ntp", 123, 123, "NTP", "/var/empty", rh),
            sys("guest", 405, 100, "guest", "/dev/null", rh),
            sys("nobody", 65534, 65534, "nobody", "/", rh),
        ],
        "arch" => vec![
            sys("root", 0, 0, "", "/root", "/usr/bin/bash"),
            sys("bin", 1, 1, "", "/", "/usr/bin/nologin"),
            sys("daemon", 2, 2, "", "/", "/usr/bin/nologin"),
            sys("mail", 8, 12, "", "/var/spool/mail", "/usr/bin/nologin"),
            sys("ftp", 14, 11, "", "/srv/ftp", "/usr/bin/nologin"),
            sys("http", 33, 33, "", "/srv/http", "/usr/bin/nologin"),
            sys(
                "nobody",
                65534,
                65534,
                "Kernel Overflow User",
                "/",
                "/usr/bin/nologin",
            ),
            sys(
                "dbus",
                81,
                81,
                "System Message Bus",
                "/",
                "/usr/bin/nologin",
            ),
            sys(
                "systemd-coredump",
                984,
                984,
                "systemd Core Dumper",
                "/",
                "/usr/bin/nologin",
            ),
            sys(
                "systemd-network",
                983,
                983,
                "systemd Network Management",
                "/",
                "/usr/bin/nologin",
            ),
            sys(
                "systemd-resolve",
                982,
                982,
                "systemd Resolver",
                "/",
                "/usr/bin/nologin",
            ),
        ],
        _ => vec![
            sys("root", 0, 0, "root", "/root", "/bin/bash"),
            sys("bin", 1, 1, "bin", "/bin", rh),
            sys("daemon", 2, 2, "daemon", "/sbin", rh),
            sys("adm", 3, 4, "adm", "/var/adm", rh),
            sys("lp", 4, 7, "lp", "/var/spool/lpd", rh),
            sys("sync", 5, 0, "sync", "/sbin", "/bin/sync"),
            sys("shutdown", 6, 0, "shutdown", "/sbin", "/sbin/shutdown"),
            sys("halt", 7, 0, "halt", "/sbin", "/sbin/halt"),
            sys("mail", 8, 12, "mail", "/var/spool/mail", rh),
            sys("operator", 11, 0, "operator", "/root", rh),
            sys("games", 12, 100, "games", "/usr/games", rh),
            sys("ftp", 14, 50, "FTP User", "/var/ftp", rh),
            sys("nobody", 65534, 65534, "Kernel Overflow User", "/", rh),
            sys("dbus", 81, 81, "System message bus", "/", rh),
            sys("systemd-coredump", 999, 997, "systemd Core Dumper", "/", rh),
            sys("tss", 59, 59, "Account used for TPM access", "/", rh),
            sys(
                "sshd",
                74,
                74,
                "Privilege-separated SSH",
                "/usr/share/empty.sshd",
                rh,
            ),
            sys("chrony", 998, 996, "", "/var/lib/chrony", rh),
        ],
    };
    let shell = if p.distro.slug == "alpine" {
        "/bin/ash"
    } else {
        "/bin/bash"
    };
    let main = if login_user == "root" {
        (*p.pick("main-user", PEOPLE)).to_owned()
    } else {
        login_user.to_owned()
    };
    let gecos = if p.distro.slug.starts_with("ubuntu") || p.distro.slug == "debian" {
        format!("{main},,,")
    } else {
        String::new()
    };
    list.push(sys(
        &main,
        1000,
        1000,
        &gecos,
        &format!("/home/{main}"),
        shell,
    ));
    let extra = p.number("extra-users", 3);
    for i in 0..extra {
        let name = if i == 0 {
            (*p.pick("extra-service", SERVICE_USERS)).to_owned()
        } else {
            (*p.pick("extra-person", PEOPLE)).to_owned()
        };
        if list.iter().any(|a| a.name == name) {
            continue;
        }
        let uid = 1001 + u32::try_from(i).unwrap_or(0);
        list.push(sys(&name, uid, uid, "", &format!("/home/{name}"), shell));
    }
    list
}
