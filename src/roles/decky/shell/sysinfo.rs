//! System commands: `id`, `uname`, `ps`, `w`/`who`, `last`, `uptime`, `free`, `df`, in
//! the layout of the procps and util-linux releases the distros ship, with figures from
//! the seeded [`Machine`]. Network views are in [`super::netinfo`].
use time::OffsetDateTime;

use super::Shell;
use super::commands::Io;
use super::tree::Machine;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The English month abbreviation of `t`.
pub fn month(t: OffsetDateTime) -> &'static str {
    MONTHS[usize::from(u8::from(t.month())) - 1]
}

fn weekday(t: OffsetDateTime) -> &'static str {
    DAYS[usize::from(t.weekday().number_days_from_monday())]
}

/// `date`'s default output in UTC: `Tue Dec  1 12:26:27 UTC 2026`.
pub fn date_utc(t: OffsetDateTime) -> String {
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} UTC {}",
        weekday(t),
        month(t),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

/// `ctime(3)` without the newline: `Tue Dec  1 12:26:27 2026`.
pub fn ctime(t: OffsetDateTime) -> String {
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        weekday(t),
        month(t),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn hm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Supplementary groups of a human account, as the distro's installer sets them.
fn groups(sh: &Shell, uid: u32) -> String {
    let name = &sh.user;
    if uid == 0 {
        return "0(root)".to_owned();
    }
    let extra = match sh.ctx.persona.distro.slug {
        "ubuntu22" | "ubuntu20" => ",4(adm),24(cdrom),27(sudo),30(dip),46(plugdev),110(lxd)",
        "debian" | "kali" => {
            ",24(cdrom),25(floppy),27(sudo),29(audio),30(dip),44(video),46(plugdev),100(users),106(netdev)"
        }
        "arch" => ",998(wheel)",
        _ => ",10(wheel)",
    };
    let extra = if uid == 1000 { extra } else { "" };
    format!("{uid}({name}){extra}")
}

/// `id` with `-u -g -G -n`.
pub fn id(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let uid = sh.uid();
    let gid = sh.machine.account(&sh.user).map_or(uid, |a| a.gid);
    let name = sh.user.clone();
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .flat_map(|a| a.chars().skip(1))
        .collect();
    if let Some(other) = args.iter().find(|a| !a.starts_with('-'))
        && sh.machine.account(other).is_none()
    {
        io.err(&format!("id: '{other}': no such user\n"));
        return 1;
    }
    let text = match (
        flags.contains('u'),
        flags.contains('g'),
        flags.contains('n'),
    ) {
        (true, _, true) => name,
        (true, _, false) => uid.to_string(),
        (_, true, true) => name,
        (_, true, false) => gid.to_string(),
        _ if flags.contains('G') => gid.to_string(),
        _ => format!(
            "uid={uid}({name}) gid={gid}({name}) groups={}",
            groups(sh, uid)
        ),
    };
    io.out(&format!("{text}\n"));
    0
}

/// `uname` with `-a -s -n -r -v -m -p -i -o`.
pub fn uname(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let k = &sh.machine.kernel;
    let host = sh.ctx.persona.hostname.clone();
    let slug = sh.ctx.persona.distro.slug;
    let redhat = matches!(slug, "rocky9" | "centos7" | "fedora");
    let processor = if redhat { "x86_64" } else { "unknown" };
    let os = if slug == "alpine" {
        "Linux"
    } else {
        "GNU/Linux"
    };
    let mut flags: Vec<char> = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .flat_map(|a| a.chars().skip(1))
        .collect();
    for a in args {
        match a.as_str() {
            "--all" => flags.push('a'),
            "--kernel-release" => flags.push('r'),
            "--machine" => flags.push('m'),
            "--nodename" => flags.push('n'),
            _ => {}
        }
    }
    if let Some(bad) = flags.iter().find(|c| !"asnrvmpio".contains(**c)) {
        io.err(&format!(
            "uname: invalid option -- '{bad}'\nTry 'uname --help' for more information.\n"
        ));
        return 1;
    }
    let all = flags.contains(&'a');
    let mut parts: Vec<String> = Vec::new();
    let want = |c: char| all || flags.contains(&c);
    if want('s') || flags.is_empty() {
        parts.push("Linux".to_owned());
    }
    if want('n') {
        parts.push(host);
    }
    if want('r') {
        parts.push(k.release.clone());
    }
    if want('v') {
        parts.push(k.version.clone());
    }
    if want('m') {
        parts.push("x86_64".to_owned());
    }
    if (all && processor != "unknown") || flags.contains(&'p') {
        parts.push(processor.to_owned());
    }
    if (all && processor != "unknown") || flags.contains(&'i') {
        parts.push(processor.to_owned());
    }
    if want('o') {
        parts.push(os.to_owned());
    }
    io.out(&format!("{}\n", parts.join(" ")));
    0
}

/// The processes of the machine: (user, pid, ppid, tty, command).
fn processes(sh: &Shell) -> Vec<(String, u64, u64, &'static str, String)> {
    let p = &sh.ctx.persona;
    let slug = p.distro.slug;
    let init = match slug {
        "rocky9" | "fedora" => "/usr/lib/systemd/systemd --switched-root --system --deserialize 31",
        "centos7" => "/usr/lib/systemd/systemd --switched-root --system --deserialize 22",
        _ => "/sbin/init",
    };
    let mut list = vec![
        ("root".to_owned(), 1, 0, "?", init.to_owned()),
        ("root".to_owned(), 2, 0, "?", "[kthreadd]".to_owned()),
    ];
    for (i, k) in [
        "[rcu_gp]",
        "[rcu_par_gp]",
        "[kworker/0:0H-events_highpri]",
        "[mm_percpu_wq]",
        "[ksoftirqd/0]",
        "[rcu_sched]",
        "[migration/0]",
        "[kdevtmpfs]",
        "[khungtaskd]",
        "[kswapd0]",
    ]
    .iter()
    .enumerate()
    {
        list.push(("root".to_owned(), 3 + i as u64, 2, "?", (*k).to_owned()));
    }
    let mut pid = 300 + p.number("ps-base", 200);
    let mut next = |step: u64| {
        pid += 1 + step;
        pid
    };
    let daemons: Vec<(&str, String)> = match slug {
        "alpine" => vec![("root", "/sbin/syslogd -t -n".into()), ("root", "/usr/sbin/crond -c /etc/crontabs -f".into()), ("root", "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups".into())],
        "rocky9" | "centos7" | "fedora" => vec![("root", "/usr/lib/systemd/systemd-journald".into()), ("root", "/usr/lib/systemd/systemd-udevd".into()), ("root", "/usr/sbin/auditd".into()), ("dbus", "/usr/bin/dbus-broker-launch --scope system --audit".into()), ("root", "/usr/lib/systemd/systemd-logind".into()), ("chrony", "/usr/sbin/chronyd -F 2".into()), ("root", "/usr/sbin/NetworkManager --no-daemon".into()), ("root", "/usr/sbin/crond -n".into()), ("root", "/usr/sbin/rsyslogd -n".into()), ("root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups".into())],
        _ => vec![("root", "/lib/systemd/systemd-journald".into()), ("root", "/lib/systemd/systemd-udevd".into()), ("systemd-timesync", "/lib/systemd/systemd-timesyncd".into()), ("root", "/usr/sbin/cron -f".into()), ("messagebus", "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only".into()), ("root", "/lib/systemd/systemd-logind".into()), ("root", "/usr/sbin/rsyslogd -n -iNONE".into()), ("root", "/sbin/agetty -o -p -- \\u --noclear - linux".into()), ("root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups".into())],
    };
    for (user, cmd) in daemons {
        let step = p.number(&format!("ps-step-{cmd}"), 40);
        list.push((user.to_owned(), next(step), 1, "?", cmd));
    }
    let session = 30_000 + p.number("ps-session", 20_000);
    let login = sh.ctx.user.clone();
    let sshd_parent = list.last().map_or(1, |e| e.1);
    if sh.ctx.service == "telnet" {
        list.push((
            "root".to_owned(),
            session,
            1,
            "?",
            format!("in.telnetd: {}", peer_ip(sh)),
        ));
        list.push((
            "root".to_owned(),
            session + 7,
            session,
            "pts/0",
            format!("/bin/login -h {} -p", peer_ip(sh)),
        ));
    } else {
        list.push((
            "root".to_owned(),
            session,
            sshd_parent,
            "?",
            format!("sshd: {login} [priv]"),
        ));
        list.push((
            login.clone(),
            session + 7,
            session,
            "?",
            format!("sshd: {login}@pts/0"),
        ));
    }
    let bash = if slug == "alpine" { "-ash" } else { "-bash" };
    list.push((login, session + 8, session + 7, "pts/0", bash.to_owned()));
    list.push((
        sh.user.clone(),
        session + 40 + p.number("ps-self", 400),
        session + 8,
        "pts/0",
        String::new(),
    ));
    list
}

/// `ps`, `ps aux` and `ps -ef`.
pub fn ps(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let joined = args.join(" ");
    let bsd = joined.contains("aux") || joined.contains("ax");
    let full = joined.contains("-ef") || joined.contains("-e") || joined.contains("-A");
    let procs = processes(sh);
    let boot = at(sh.machine.boot);
    let start = format!("{}{:02}", month(boot), boot.day());
    let mem = sh.machine.mem_kib;
    let label = |cmd: &str| {
        if cmd.is_empty() {
            format!("ps {joined}")
        } else {
            cmd.to_owned()
        }
    };
    if bsd {
        io.out("USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n");
        for (user, pid, _, tty, cmd) in &procs {
            let kernel = cmd.starts_with('[');
            let rss = if kernel {
                0
            } else {
                2_000 + sh.ctx.persona.number(&format!("rss-{pid}"), 20_000)
            };
            let vsz = if kernel { 0 } else { rss * 3 + 10_000 };
            let stat = if kernel { "I<" } else { "Ss" };
            let user: String = user.chars().take(8).collect();
            let pmem = rss as f64 * 100.0 / mem.max(1) as f64;
            io.out(&format!("{user:<8} {pid:>7}  0.0 {pmem:>4.1} {vsz:>6} {rss:>5} {tty:<8} {stat:<4} {start}   0:00 {}\n", label(cmd)));
        }
    } else if full {
        io.out("UID          PID    PPID  C STIME TTY          TIME CMD\n");
        for (user, pid, ppid, tty, cmd) in &procs {
            let user: String = user.chars().take(8).collect();
            io.out(&format!(
                "{user:<8} {pid:>7} {ppid:>7}  0 {start} {tty:<8} 00:00:00 {}\n",
                label(cmd)
            ));
        }
    } else {
        io.out("    PID TTY          TIME CMD\n");
        for (_, pid, _, tty, cmd) in procs.iter().filter(|p| p.3 == "pts/0") {
            let name = if cmd.is_empty() {
                "ps".to_owned()
            } else {
                cmd.trim_start_matches('-').to_owned()
            };
            io.out(&format!("{pid:>7} {tty:<8} 00:00:00 {name}\n"));
        }
    }
    0
}

fn uptime_text(m: &Machine, now: i64) -> String {
    let up = (now - m.boot).max(0);
    let days = up / 86_400;
    let hours = up % 86_400 / 3_600;
    let mins = up % 3_600 / 60;
    let day = match days {
        0 => String::new(),
        1 => "1 day, ".to_owned(),
        d => format!("{d} days, "),
    };
    let clock = if hours == 0 {
        format!("{mins} min")
    } else {
        format!("{hours:>2}:{mins:02}")
    };
    format!("up {day}{clock}")
}

fn load(sh: &Shell) -> String {
    let p = &sh.ctx.persona;
    let minute = sh.now().unix_timestamp() / 60;
    let a = p.number(&format!("load-{minute}"), 30);
    format!(
        "load average: 0.{a:02}, 0.{:02}, 0.{:02}",
        a / 2 + 3,
        a / 3 + 1
    )
}

/// `uptime` with `-p` and `-s`.
pub fn uptime(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let now = sh.now();
    let m = &sh.machine;
    match args.first().map(String::as_str) {
        Some("-p" | "--pretty") => {
            let up = (now.unix_timestamp() - m.boot).max(0);
            let (w, d, h, mi) = (
                up / 604_800,
                up % 604_800 / 86_400,
                up % 86_400 / 3_600,
                up % 3_600 / 60,
            );
            let mut parts = Vec::new();
            let plural = |n: i64, u: &str| format!("{n} {u}{}", if n == 1 { "" } else { "s" });
            if w > 0 {
                parts.push(plural(w, "week"));
            }
            if d > 0 {
                parts.push(plural(d, "day"));
            }
            if h > 0 {
                parts.push(plural(h, "hour"));
            }
            parts.push(plural(mi, "minute"));
            io.out(&format!("up {}\n", parts.join(", ")));
        }
        Some("-s" | "--since") => {
            let b = at(m.boot);
            io.out(&format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02}\n",
                b.year(),
                u8::from(b.month()),
                b.day(),
                b.hour(),
                b.minute(),
                b.second()
            ));
        }
        _ => io.out(&format!(
            " {}:{:02} {},  1 user,  {}\n",
            hm(now),
            now.second(),
            uptime_text(m, now.unix_timestamp()),
            load(sh)
        )),
    }
    0
}

pub(super) fn peer_ip(sh: &Shell) -> String {
    sh.ctx.peer.ip().to_canonical().to_string()
}

/// `w`, `who` and `users`: the attacker's own session.
pub fn w(sh: &Shell, name: &str, _args: &[String], io: &mut Io) -> i32 {
    let now = sh.now();
    let login = hm(now - time::Duration::seconds(30));
    let user = &sh.ctx.user;
    match name {
        "users" => io.out(&format!("{user}\n")),
        "who" => {
            let t = now - time::Duration::seconds(30);
            io.out(&format!(
                "{user:<8} pts/0        {}-{:02}-{:02} {} ({})\n",
                t.year(),
                u8::from(t.month()),
                t.day(),
                hm(t),
                peer_ip(sh)
            ));
        }
        _ => {
            io.out(&format!(
                " {}:{:02} {},  1 user,  {}\n",
                hm(now),
                now.second(),
                uptime_text(&sh.machine, now.unix_timestamp()),
                load(sh)
            ));
            io.out("USER     TTY      FROM             LOGIN@   IDLE   JCPU   PCPU WHAT\n");
            io.out(&format!(
                "{user:<8} pts/0    {:<16} {login}    0.00s  0.02s  0.00s w\n",
                peer_ip(sh)
            ));
        }
    }
    0
}

/// `last`: this session, the seeded earlier logins, the boot.
pub fn last(sh: &Shell, io: &mut Io) -> i32 {
    let now = sh.now();
    let fmt = |t: OffsetDateTime| format!("{} {} {:>2} {}", weekday(t), month(t), t.day(), hm(t));
    let user = &sh.ctx.user;
    io.out(&format!(
        "{user:<8} pts/0        {:<16} {}   still logged in\n",
        peer_ip(sh),
        fmt(now - time::Duration::seconds(30))
    ));
    for (i, (who, from, when)) in sh.machine.past_logins.iter().enumerate() {
        let start = at(*when);
        let len = 60
            + i64::try_from(sh.ctx.persona.number(&format!("login-len-{i}"), 5_000)).unwrap_or(0);
        let end = at(when + len);
        io.out(&format!(
            "{who:<8} pts/{:<8} {:<16} {} - {}  ({:02}:{:02})\n",
            i % 3,
            from,
            fmt(start),
            hm(end),
            len / 3_600,
            len % 3_600 / 60
        ));
    }
    let release: String = sh.machine.kernel.release.chars().take(16).collect();
    let boot = at(sh.machine.boot);
    io.out(&format!(
        "reboot   system boot  {release:<16} {}   still running\n\n",
        fmt(boot)
    ));
    io.out(&format!("wtmp begins {}\n", ctime(boot)));
    0
}

fn size(kib: u64, unit: &str) -> String {
    match unit {
        "h" => {
            let mut v = kib as f64;
            for u in ["Ki", "Mi", "Gi", "Ti"] {
                if v < 1024.0 {
                    return if v < 10.0 && u != "Ki" {
                        format!("{v:.1}{u}")
                    } else {
                        format!("{v:.0}{u}")
                    };
                }
                v /= 1024.0;
            }
            format!("{v:.0}Pi")
        }
        "m" => (kib / 1024).to_string(),
        "g" => (kib / 1024 / 1024).to_string(),
        _ => kib.to_string(),
    }
}

/// `free` in KiB or with `-h -m -g`.
pub fn free(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let unit = args
        .iter()
        .find_map(|a| a.strip_prefix('-'))
        .map(|f| {
            if f.contains('h') {
                "h"
            } else if f.contains('m') {
                "m"
            } else if f.contains('g') {
                "g"
            } else {
                "k"
            }
        })
        .unwrap_or("k");
    let total = sh.machine.mem_kib;
    let used = total / 100 * super::tree::mem_used_percent(&sh.ctx.persona);
    let cache = total / 100 * (10 + sh.ctx.persona.number("mem-cache", 30));
    let shared = 1_000 + sh.ctx.persona.number("mem-shared", 4_000);
    let free = total.saturating_sub(used + cache);
    let avail = total.saturating_sub(used);
    io.out("               total        used        free      shared  buff/cache   available\n");
    let c = |v: u64| size(v, unit);
    io.out(&format!(
        "Mem:    {:>12}{:>12}{:>12}{:>12}{:>12}{:>12}\n",
        c(total),
        c(used),
        c(free),
        c(shared),
        c(cache),
        c(avail)
    ));
    io.out(&format!("Swap:   {:>12}{:>12}{:>12}\n", c(0), c(0), c(0)));
    0
}

fn human_df(kib: u64) -> String {
    let mut v = kib as f64;
    for u in ["K", "M", "G", "T"] {
        if v < 1024.0 {
            return if v < 10.0 {
                format!("{:.1}{u}", (v * 10.0).ceil() / 10.0)
            } else {
                format!("{:.0}{u}", v.ceil())
            };
        }
        v /= 1024.0;
    }
    format!("{v:.0}P")
}

/// `df [-h]` of the distro's usual mounts.
pub fn df(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let h = args.iter().any(|a| a.starts_with('-') && a.contains('h'));
    let m = &sh.machine;
    let slug = sh.ctx.persona.distro.slug;
    let root_dev = match slug {
        "ubuntu22" | "ubuntu20" => "/dev/mapper/ubuntu--vg-ubuntu--lv",
        "rocky9" => "/dev/mapper/rl-root",
        "centos7" => "/dev/mapper/centos-root",
        "fedora" => "/dev/mapper/fedora-root",
        _ => *sh.ctx.persona.pick(
            "root-dev",
            &["/dev/sda1", "/dev/vda1", "/dev/sda2", "/dev/nvme0n1p2"],
        ),
    };
    let half = m.mem_kib / 2;
    let rows: Vec<(&str, u64, u64, &str)> = vec![
        ("udev", half, 0, "/dev"),
        ("tmpfs", m.mem_kib / 10, 1_100, "/run"),
        (root_dev, m.disk_kib, m.disk_used_kib, "/"),
        ("tmpfs", half, 0, "/dev/shm"),
        ("tmpfs", 5_120, 0, "/run/lock"),
        ("tmpfs", m.mem_kib / 10, 4, "/run/user/0"),
    ];
    if h {
        io.out("Filesystem                         Size  Used Avail Use% Mounted on\n");
    } else {
        io.out("Filesystem                        1K-blocks    Used Available Use% Mounted on\n");
    }
    for (dev, total, used, mount) in rows {
        let avail = total.saturating_sub(used);
        let pct = if total == 0 {
            0
        } else {
            (used * 100).div_ceil(total)
        };
        if h {
            let used_s = if used == 0 {
                "0".to_owned()
            } else {
                human_df(used)
            };
            io.out(&format!(
                "{dev:<34} {:>4} {:>5} {:>5} {:>3}% {mount}\n",
                human_df(total),
                used_s,
                human_df(avail),
                pct
            ));
        } else {
            io.out(&format!(
                "{dev:<33} {total:>9} {used:>7} {avail:>9} {pct:>3}% {mount}\n"
            ));
        }
    }
    0
}
