//! The machine behind the shell, generated from the seed: its accounts, uptime, memory,
//! addresses, and the file system with `/etc`, `/proc`, home directories and the bait
//! files of engine.md §2.8 (a project `.env`, a `.my.cnf`, a backup script, AWS keys),
//! whose names, paths and secrets all differ between deckies.
use std::net::Ipv4Addr;

use base64::Engine as _;

use super::super::Persona;
use super::distro::{self, Kernel};
use super::fs::{Fs, Kind, Node};

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// GECOS field.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Everything about the fake machine a command may show.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The kernel.
    pub kernel: Kernel,
    /// Every account, system ones first.
    pub accounts: Vec<Account>,
    /// Boot time (seconds since the epoch).
    pub boot: i64,
    /// When the system was installed.
    pub installed: i64,
    /// Memory in KiB.
    pub mem_kib: u64,
    /// CPU count.
    pub cpus: u64,
    /// Size of `/` in KiB.
    pub disk_kib: u64,
    /// Used part of `/` in KiB.
    pub disk_used_kib: u64,
    /// The network interface's name.
    pub iface: String,
    /// Its IPv4 address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// Its MAC address.
    pub mac: String,
    /// Addresses earlier logins came from.
    pub past_logins: Vec<(String, Ipv4Addr, i64)>,
}

pub(super) const PEOPLE: &[&str] = &[
    "mark", "anna", "james", "lucas", "sofia", "daniel", "maria", "peter", "laura", "tom", "nina",
    "kevin", "sarah", "alex", "julia", "chris", "emma", "david", "olga", "ivan",
];
const SITES: &[&str] = &[
    "shop",
    "portal",
    "crm",
    "billing",
    "intranet",
    "api",
    "booking",
    "inventory",
    "hr",
    "wiki",
    "payroll",
    "tickets",
];
const WORDS: &[&str] = &[
    "Summer", "Winter", "Falcon", "Dragon", "Monkey", "Sunshine", "Shadow", "Master", "Tiger",
    "Rocket", "Galaxy", "Phoenix", "Welcome", "Octopus", "Harbor", "Maple",
];

impl Machine {
    /// The machine of `p`, seen at `now`; `local` is the address the client reached, if known.
    pub fn new(p: &Persona, login_user: &str, now: i64, local: Option<Ipv4Addr>) -> Machine {
        let uptime = 3_600 + i64::try_from(p.number("uptime", 180 * 86_400)).unwrap_or(0);
        let boot = now - uptime;
        let installed =
            boot - 86_400 - i64::try_from(p.number("installed", 500 * 86_400)).unwrap_or(0);
        let mem_gib = *p.pick("mem", &[2u64, 4, 4, 8, 8, 16, 32]);
        let cpus = *p.pick("cpus", &[1u64, 2, 2, 4, 4, 8]);
        let disk_gib = *p.pick("disk", &[20u64, 30, 40, 50, 80, 100, 160, 250]);
        let disk_kib = disk_gib * 1024 * 1024 - 1024 * (100 + p.number("disk-meta", 900));
        let disk_used_kib = disk_kib / 100 * (8 + p.number("disk-used", 60));
        let iface = (*p.pick(
            "iface",
            &["eth0", "ens3", "ens18", "ens160", "enp1s0", "ens192"],
        ))
        .to_owned();
        let raw = p.derive("addr");
        let addr = local.unwrap_or_else(|| match raw[0] % 3 {
            0 => Ipv4Addr::new(10, raw[1], raw[2], 10 + raw[3] % 200),
            1 => Ipv4Addr::new(192, 168, raw[2], 10 + raw[3] % 200),
            _ => Ipv4Addr::new(172, 16 + raw[1] % 16, raw[2], 10 + raw[3] % 200),
        });
        let mac_bytes = p.derive("mac");
        let oui: &[u8; 3] = p.pick(
            "mac-oui",
            &[
                [0x52, 0x54, 0x00],
                [0x00, 0x50, 0x56],
                [0x00, 0x0c, 0x29],
                [0xbc, 0x24, 0x11],
            ],
        );
        let mac = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            oui[0], oui[1], oui[2], mac_bytes[0], mac_bytes[1], mac_bytes[2]
        );
        let accounts = super::passwd::accounts(p, login_user);
        let octets = addr.octets();
        let humans: Vec<&Account> = accounts.iter().filter(|a| is_human(a)).collect();
        let mut past_logins = Vec::new();
        let count = 3 + p.number("logins", 8);
        let mut t = now - 3_600;
        for i in 0..count {
            let b = p.derive(&format!("login-{i}"));
            t -= 1_800 + i64::from(u16::from_le_bytes([b[0], b[1]])) * 20;
            let who = humans[usize::from(b[2]) % humans.len().max(1)].name.clone();
            let from = Ipv4Addr::new(
                octets[0],
                octets[1],
                octets[2].saturating_sub(1).wrapping_add(b[3] % 4),
                2 + b[4] % 250,
            );
            past_logins.push((who, from, t));
        }
        Machine {
            kernel: distro::kernel(p),
            accounts,
            boot,
            installed,
            mem_kib: mem_gib * 1024 * 1024 - 1024 * (150 + p.number("mem-reserved", 200)),
            cpus,
            disk_kib,
            disk_used_kib,
            iface,
            addr,
            prefix: *p.pick("prefix", &[24u8, 24, 24, 16, 22, 23]),
            mac,
            past_logins,
        }
    }

    /// The account named `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// The share of memory in use, in percent (`free` and the Ubuntu motd agree on it).
pub fn mem_used_percent(p: &Persona) -> u64 {
    9 + p.number("mem-used", 25)
}

/// Whether `a` is root or a person's account (one with a password and a home).
pub fn is_human(a: &Account) -> bool {
    a.uid == 0 || (1000..60_000).contains(&a.uid)
}

/// A password as people pick them, or as a generator makes them.
pub fn password(p: &Persona, label: &str) -> String {
    let b = p.derive(label);
    if b[0].is_multiple_of(2) {
        let word = WORDS[usize::from(b[1]) % WORDS.len()];
        let sym = ["!", "#", "@", "$", "", "*"][usize::from(b[2]) % 6];
        format!(
            "{word}{}{sym}",
            10 + u32::from(b[3]) % 90 + 2000 * u32::from(b[4] % 2)
        )
    } else {
        let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        b[5..21]
            .iter()
            .map(|x| char::from(alphabet[usize::from(*x) % alphabet.len()]))
            .collect()
    }
}

/// The bait project's name, also used by the history.
pub fn site(p: &Persona) -> &'static str {
    let n = u64::try_from(SITES.len()).unwrap_or(1);
    SITES[usize::try_from(p.number("site", n)).unwrap_or(0)]
}

/// The file system of `m` as `p` describes it.
pub fn build(p: &Persona, m: &Machine) -> Fs {
    let mut nodes: Vec<(String, Node)> = Vec::new();
    let t = |label: &str| m.installed + i64::try_from(p.number(label, 86_400 * 30)).unwrap_or(0);
    let recent = |label: &str| m.boot - i64::try_from(p.number(label, 86_400 * 20)).unwrap_or(0);
    let mut add = |path: &str, node: Node| nodes.push((path.to_owned(), node));
    let merged = !matches!(p.distro.slug, "alpine");
    for d in [
        "boot", "dev", "etc", "home", "media", "mnt", "opt", "proc", "root", "run", "srv", "sys",
        "tmp", "usr", "var",
    ] {
        let mode = match d {
            "root" => 0o700,
            "tmp" => 0o1777,
            "proc" | "sys" => 0o555,
            _ => 0o755,
        };
        add(&format!("/{d}"), Node::dir(mode, "root", t(d)));
    }
    for d in [
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/share",
        "usr/local/bin",
        "var/log",
        "var/tmp",
        "var/www",
        "var/backups",
        "var/lib",
        "dev/shm",
    ] {
        add(
            &format!("/{d}"),
            Node::dir(
                if d.ends_with("tmp") || d == "dev/shm" {
                    0o1777
                } else {
                    0o755
                },
                "root",
                t(d),
            ),
        );
    }
    if merged {
        for (l, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            add(
                &format!("/{l}"),
                Node::new(Kind::Link(target.to_owned()), 0o777, "root", t("usrmerge")),
            );
        }
    } else {
        add("/bin", Node::dir(0o755, "root", t("bin")));
        add("/sbin", Node::dir(0o755, "root", t("sbin")));
        add("/lib", Node::dir(0o755, "root", t("lib")));
    }
    let bindir = if merged { "/usr/bin" } else { "/bin" };
    for cmd in super::commands::BINARIES {
        let size = 14_000 + p.number(&format!("bin-{cmd}"), 300_000);
        add(
            &format!("{bindir}/{cmd}"),
            Node::new(
                Kind::File {
                    data: Vec::new(),
                    size,
                },
                0o755,
                "root",
                t("bins"),
            ),
        );
    }
    for dev in ["null", "zero", "random", "urandom", "tty"] {
        add(
            &format!("/dev/{dev}"),
            Node::new(Kind::Device, 0o666, "root", m.boot),
        );
    }
    add(
        "/etc/hostname",
        Node::file(format!("{}\n", p.hostname), 0o644, "root", t("hostname")),
    );
    add(
        "/etc/hosts",
        Node::file(
            format!(
                "127.0.0.1\tlocalhost\n127.0.1.1\t{0}\n{1}\t{0}\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n",
                p.hostname, m.addr
            ),
            0o644,
            "root",
            t("hosts"),
        ),
    );
    add(
        "/etc/os-release",
        Node::file(distro::os_release(p), 0o644, "root", t("os")),
    );
    for (path, text) in distro::release_files(p) {
        add(path, Node::file(text, 0o644, "root", t("os")));
    }
    let passwd: String = m
        .accounts
        .iter()
        .map(|a| {
            format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                a.name, a.uid, a.gid, a.gecos, a.home, a.shell
            )
        })
        .collect();
    add(
        "/etc/passwd",
        Node::file(passwd, 0o644, "root", t("passwd")),
    );
    let group: String = m
        .accounts
        .iter()
        .filter(|a| a.uid == a.gid || a.uid == 0)
        .map(|a| format!("{}:x:{}:\n", a.name, a.gid))
        .collect();
    add("/etc/group", Node::file(group, 0o644, "root", t("passwd")));
    let days = (m.installed / 86_400).to_string();
    let shadow: String = m
        .accounts
        .iter()
        .map(|a| {
            let hash = if is_human(a) {
                let salt = base64::engine::general_purpose::STANDARD_NO_PAD
                    .encode(&p.derive(&format!("salt-{}", a.name))[..12])
                    .replace('+', ".");
                let raw = [
                    p.derive(&format!("hash-{}", a.name)),
                    p.derive(&format!("hash2-{}", a.name)),
                ]
                .concat();
                let digest = base64::engine::general_purpose::STANDARD_NO_PAD
                    .encode(raw)
                    .replace('+', ".");
                format!("$6${salt}${digest}")
            } else {
                "*".to_owned()
            };
            format!("{}:{hash}:{days}:0:99999:7:::\n", a.name)
        })
        .collect();
    let mut shadow_node = Node::file(shadow, 0o640, "root", t("passwd"));
    shadow_node.group = "shadow".to_owned();
    add("/etc/shadow", shadow_node);
    add(
        "/proc/version",
        Node::file(m.kernel.proc_version.clone(), 0o444, "root", m.boot),
    );
    add(
        "/proc/cpuinfo",
        Node::file(cpuinfo(p, m), 0o444, "root", m.boot),
    );
    add(
        "/proc/meminfo",
        Node::file(
            format!(
                "MemTotal:       {:>8} kB\nMemFree:        {:>8} kB\nMemAvailable:   {:>8} kB\nBuffers:        {:>8} kB\nCached:         {:>8} kB\nSwapCached:            0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
                m.mem_kib,
                m.mem_kib / 3,
                m.mem_kib / 10 * 7,
                m.mem_kib / 40,
                m.mem_kib / 4
            ),
            0o444,
            "root",
            m.boot,
        ),
    );
    let site = site(p);
    for a in m.accounts.iter().filter(|a| is_human(a)) {
        let owner = a.name.as_str();
        add(
            &a.home,
            Node::dir(
                if a.uid == 0 { 0o700 } else { 0o750 },
                owner,
                t(&format!("home-{owner}")),
            ),
        );
        add(
            &format!("{}/.bashrc", a.home),
            Node::file(bashrc(p), 0o644, owner, t("skel")),
        );
        add(
            &format!("{}/.profile", a.home),
            Node::file(PROFILE, 0o644, owner, t("skel")),
        );
        let history = history(p, owner, site, m).join("\n") + "\n";
        add(
            &format!("{}/.bash_history", a.home),
            Node::file(history, 0o600, owner, recent(&format!("hist-{owner}"))),
        );
        add(
            &format!("{}/.ssh", a.home),
            Node::dir(0o700, owner, t(&format!("ssh-{owner}"))),
        );
        add(
            &format!("{}/.ssh/authorized_keys", a.home),
            Node::file(
                authorized_key(p, owner),
                0o600,
                owner,
                t(&format!("ssh-{owner}")),
            ),
        );
    }
    let root = "/root";
    let dir = format!(
        "{root}/{}/{site}",
        p.pick("projects-dir", &["projects", "apps", "src", "deploy"])
    );
    let db_host = Ipv4Addr::new(
        m.addr.octets()[0],
        m.addr.octets()[1],
        m.addr.octets()[2],
        2 + p.derive("db-host")[0] % 250,
    );
    let app_key = base64::engine::general_purpose::STANDARD.encode(p.derive("app-key"));
    let aws_id: String = p.derive("aws-id")[..16]
        .iter()
        .map(|b| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[usize::from(*b) % 32]))
        .collect();
    let aws_secret = base64::engine::general_purpose::STANDARD
        .encode(&p.derive("aws-secret")[..30])
        .replace('+', "/");
    let db_pw = password(p, "db-password");
    let env = format!(
        "APP_NAME={site}\nAPP_ENV=production\nAPP_KEY=base64:{app_key}\nAPP_DEBUG=false\nAPP_URL=https://{site}.{}\n\nDB_CONNECTION=mysql\nDB_HOST={db_host}\nDB_PORT=3306\nDB_DATABASE={site}_prod\nDB_USERNAME={site}_app\nDB_PASSWORD={db_pw}\n\nREDIS_HOST=127.0.0.1\nREDIS_PASSWORD={}\nREDIS_PORT=6379\n\nMAIL_MAILER=smtp\nMAIL_HOST=smtp.{}\nMAIL_PORT=587\nMAIL_USERNAME=noreply@{}\nMAIL_PASSWORD={}\n\nAWS_ACCESS_KEY_ID=AKIA{aws_id}\nAWS_SECRET_ACCESS_KEY={aws_secret}\nAWS_DEFAULT_REGION={}\n",
        domain(p),
        password(p, "redis-password"),
        domain(p),
        domain(p),
        password(p, "mail-password"),
        p.pick(
            "aws-region",
            &["eu-west-1", "us-east-1", "eu-central-1", "us-west-2"]
        )
    );
    add(
        &format!("{dir}/.env"),
        Node::file(env, 0o600, "root", recent("env")),
    );
    add(
        &format!("{root}/.my.cnf"),
        Node::file(
            format!("[client]\nuser={site}_app\npassword={db_pw}\nhost={db_host}\n"),
            0o600,
            "root",
            t("mycnf"),
        ),
    );
    add(
        &format!("{root}/.aws/credentials"),
        Node::file(
            format!(
                "[default]\naws_access_key_id = AKIA{aws_id}\naws_secret_access_key = {aws_secret}\n"
            ),
            0o600,
            "root",
            t("aws"),
        ),
    );
    let script = p.pick(
        "backup-script",
        &["backup.sh", "db-backup.sh", "nightly.sh", "dump.sh"],
    );
    add(
        &format!("/usr/local/bin/{script}"),
        Node::file(
            format!(
                "#!/bin/bash\n# nightly dump of {site}, kept {} days\nset -e\nDEST=/var/backups/{site}\nmkdir -p \"$DEST\"\nmysqldump -h {db_host} -u {site}_app -p'{db_pw}' {site}_prod | gzip > \"$DEST/{site}_$(date +%F).sql.gz\"\nfind \"$DEST\" -mtime +{} -delete\n",
                7 + p.number("keep", 20),
                7 + p.number("keep", 20)
            ),
            0o750,
            "root",
            t("script"),
        ),
    );
    add(
        "/var/log/auth.log",
        Node::file(Vec::new(), 0o640, "root", m.boot),
    );
    add(
        "/var/log/syslog",
        Node::file(Vec::new(), 0o640, "root", m.boot),
    );
    Fs::from_nodes(nodes)
}

/// The organisation's mail and web domain.
pub fn domain(p: &Persona) -> String {
    let word = p.pick(
        "domain-word",
        &[
            "acme",
            "northwind",
            "contoso",
            "globex",
            "initech",
            "umbrella",
            "vandelay",
            "stark",
            "wayne",
            "hooli",
        ],
    );
    let tld = p.pick("domain-tld", &["com", "net", "io", "co.uk", "de", "local"]);
    format!("{word}{}.{tld}", p.hex("domain-tag", 2))
}

fn authorized_key(p: &Persona, owner: &str) -> String {
    let mut blob = Vec::new();
    blob.extend_from_slice(&[0, 0, 0, 11]);
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&p.derive(&format!("authorized-{owner}")));
    let who = p.pick(&format!("key-owner-{owner}"), PEOPLE);
    let host = p.pick(
        &format!("key-host-{owner}"),
        &["laptop", "workstation", "jumphost", "bastion", "mbp"],
    );
    format!(
        "ssh-ed25519 {} {who}@{host}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

fn history(p: &Persona, owner: &str, site: &str, m: &Machine) -> Vec<String> {
    let o = m.addr.octets();
    let peer = format!(
        "{}.{}.{}.{}",
        o[0],
        o[1],
        o[2],
        2 + p.derive(&format!("hist-peer-{owner}"))[0] % 250
    );
    let pool = [
        "ls -la".to_owned(),
        "df -h".to_owned(),
        "free -m".to_owned(),
        "uptime".to_owned(),
        "htop".to_owned(),
        "sudo apt update".to_owned(),
        "sudo apt upgrade -y".to_owned(),
        format!("cd /var/www/{site}"),
        "git pull".to_owned(),
        "git status".to_owned(),
        format!(
            "sudo systemctl restart {}",
            p.pick(
                "hist-svc",
                &["nginx", "apache2", "php8.2-fpm", "mysql", "redis-server"]
            )
        ),
        "sudo journalctl -xe".to_owned(),
        "tail -f /var/log/syslog".to_owned(),
        format!("mysql -u {site}_app -p {site}_prod"),
        format!("ssh {}@{peer}", p.pick("hist-user", PEOPLE)),
        format!("scp {site}_dump.sql.gz {peer}:/tmp/"),
        "crontab -l".to_owned(),
        "crontab -e".to_owned(),
        "docker ps".to_owned(),
        "ps aux | grep php".to_owned(),
        format!("ping -c 3 {}.{}.{}.1", o[0], o[1], o[2]),
        "netstat -tulpn".to_owned(),
        "cat /etc/os-release".to_owned(),
        format!("vim /etc/nginx/sites-available/{site}"),
        "exit".to_owned(),
    ];
    let n = 12 + usize::try_from(p.number(&format!("hist-len-{owner}"), 30)).unwrap_or(0);
    (0..n)
        .map(|i| pool[usize::from(p.derive(&format!("hist-{owner}-{i}"))[0]) % pool.len()].clone())
        .collect()
}

fn cpuinfo(p: &Persona, m: &Machine) -> String {
    let model = p.pick(
        "cpu-model",
        &[
            "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
            "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
            "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
            "AMD EPYC 7302P 16-Core Processor",
            "AMD EPYC 7543 32-Core Processor",
        ],
    );
    let vendor = if model.starts_with("AMD") {
        "AuthenticAMD"
    } else {
        "GenuineIntel"
    };
    (0..m.cpus).map(|i| format!("processor\t: {i}\nvendor_id\t: {vendor}\nmodel name\t: {model}\ncpu MHz\t\t: {}.{:03}\ncache size\t: 16384 KB\ncpu cores\t: {}\n\n", 2000 + p.number("mhz", 1000), p.number("mhz-frac", 1000), m.cpus)).collect()
}

fn bashrc(p: &Persona) -> String {
    match distro::prompt_style(p) {
        distro::PromptStyle::Redhat => "# .bashrc\n\n# Source global definitions\nif [ -f /etc/bashrc ]; then\n\t. /etc/bashrc\nfi\n".to_owned(),
        _ => "# ~/.bashrc: executed by bash(1) for non-login shells.\n\ncase $- in\n    *i*) ;;\n      *) return;;\nesac\n\nHISTCONTROL=ignoreboth\nshopt -s histappend\nHISTSIZE=1000\nHISTFILESIZE=2000\n\nalias ll='ls -alF'\nalias la='ls -A'\nalias l='ls -CF'\n".to_owned(),
    }
}

const PROFILE: &str = "# ~/.profile: executed by the command interpreter for login shells.\n\nif [ -n \"$BASH_VERSION\" ]; then\n    if [ -f \"$HOME/.bashrc\" ]; then\n\t. \"$HOME/.bashrc\"\n    fi\nfi\n\nif [ -d \"$HOME/bin\" ] ; then\n    PATH=\"$HOME/bin:$PATH\"\nfi\n";
