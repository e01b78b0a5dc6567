//! Command dispatch and the shell builtins (`cd`, `echo`, `export`, `history`, `sudo`,
//! `su`, `exit`, `which`, …); file, system and network commands live in [`super::files`],
//! [`super::sysinfo`] and [`super::net`]. Every command reads its standard input as bytes
//! and writes into an [`Io`]; none runs anything.
use super::super::Persona;
use super::{Pending, Shell, files, net, netinfo, sysinfo, text};

/// What a command wrote.
#[derive(Debug, Default)]
pub struct Io {
    /// Standard output.
    pub out: Vec<u8>,
    /// Standard error.
    pub err: Vec<u8>,
    /// Whether standard output is the terminal (not a pipe or a file).
    pub tty: bool,
}

impl Io {
    /// Writes `text` to standard output.
    pub fn out(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Writes `text` to standard error.
    pub fn err(&mut self, text: &str) {
        self.err.extend_from_slice(text.as_bytes());
    }
}

/// Programs the fake `/usr/bin` holds (what `which` and `ls /usr/bin` find).
pub const BINARIES: &[&str] = &[
    "awk", "base64", "bash", "cat", "chmod", "chown", "cp", "crontab", "curl", "cut", "date", "df",
    "du", "echo", "env", "false", "find", "free", "ftp", "grep", "gzip", "head", "hostname", "id",
    "ip", "kill", "last", "less", "ln", "ls", "mkdir", "more", "mv", "nano", "netstat", "nproc",
    "passwd", "perl", "ping", "ps", "pwd", "python3", "rm", "scp", "sed", "sh", "sleep", "sort",
    "ss", "ssh", "su", "sudo", "tail", "tar", "tftp", "top", "touch", "true", "uname", "uniq",
    "uptime", "vi", "w", "wc", "wget", "which", "who", "whoami",
];

/// Names bash runs itself rather than from `PATH`.
const BUILTINS: &[&str] = &[
    "cd", "echo", "exit", "export", "history", "logout", "printf", "pwd", "set", "type", "unset",
    "alias", "true", "false", ":", "kill",
];

/// `PATH` of a login shell on the distro.
pub fn path(p: &Persona, root: bool) -> String {
    match (p.distro.slug, root) {
        ("debian" | "kali", false) => "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
        ("ubuntu22" | "ubuntu20", _) => {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:/snap/bin"
        }
        ("rocky9" | "centos7" | "fedora", false) => {
            "/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin"
        }
        ("rocky9" | "centos7" | "fedora", true) => {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/root/bin"
        }
        ("alpine", _) => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ("arch", _) => "/usr/local/sbin:/usr/local/bin:/usr/bin",
        _ => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    .to_owned()
}

/// Runs one simple command; returns its exit status.
pub fn dispatch(sh: &mut Shell, argv: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let Some(first) = argv.first() else {
        return 0;
    };
    if let Some((name, value)) = first.split_once('=')
        && is_name(name)
    {
        if argv.len() == 1 {
            sh.env.insert(name.to_owned(), value.to_owned());
            return 0;
        }
        return dispatch(sh, &argv[1..], stdin, io);
    }
    let name = match first.rsplit_once('/') {
        Some((dir, base)) if is_bin_dir(dir) && BINARIES.contains(&base) => base,
        Some(_) => return run_path(sh, first, io),
        None => first.as_str(),
    };
    let args = &argv[1..];
    match name {
        "cd" => files::cd(sh, args, io),
        "pwd" => {
            io.out(&format!("{}\n", sh.cwd));
            0
        }
        "ls" | "ll" | "dir" => files::ls(sh, name, args, io),
        "cat" => text::cat(sh, args, stdin, io),
        "head" | "tail" => text::head_tail(sh, name, args, stdin, io),
        "grep" | "egrep" | "fgrep" => text::grep(sh, name, args, stdin, io),
        "wc" => text::wc(sh, args, stdin, io),
        "sort" | "uniq" => text::sort_uniq(name, args, stdin, io),
        "mkdir" => files::mkdir(sh, args, io),
        "touch" => files::touch(sh, args, io),
        "rm" | "rmdir" => files::rm(sh, name, args, io),
        "cp" | "mv" => files::cp_mv(sh, name, args, io),
        "chmod" | "chown" | "chgrp" => files::chmod(sh, name, args, io),
        "echo" => echo(args, io),
        "printf" => printf(args, io),
        "id" => sysinfo::id(sh, args, io),
        "whoami" => {
            io.out(&format!("{}\n", sh.user));
            0
        }
        "uname" => sysinfo::uname(sh, args, io),
        "hostname" => {
            io.out(&format!("{}\n", sh.ctx.persona.hostname));
            0
        }
        "ps" => sysinfo::ps(sh, args, io),
        "w" | "who" | "users" => sysinfo::w(sh, name, args, io),
        "last" => sysinfo::last(sh, io),
        "uptime" => sysinfo::uptime(sh, args, io),
        "free" => sysinfo::free(sh, args, io),
        "df" => sysinfo::df(sh, args, io),
        "date" => {
            io.out(&format!("{}\n", sysinfo::date_utc(sh.now())));
            0
        }
        "nproc" => {
            io.out(&format!("{}\n", sh.machine.cpus));
            0
        }
        "arch" => {
            io.out("x86_64\n");
            0
        }
        "ifconfig" => netinfo::ifconfig(sh, io),
        "ip" => netinfo::ip(sh, args, io),
        "netstat" | "ss" => netinfo::netstat(sh, name, args, io),
        "wget" | "curl" | "tftp" | "ftp" => net::download(sh, name, args, io),
        "history" => history(sh, args, io),
        "export" | "set" => export(sh, name, args, io),
        "env" | "printenv" => env(sh, args, stdin, io),
        "unset" => {
            for a in args {
                sh.env.remove(a);
            }
            0
        }
        "which" => which(sh, args, io),
        "type" => type_of(sh, args, io),
        "sudo" => sudo(sh, args, stdin, io),
        "su" => su(sh, args, io),
        "exit" | "logout" => {
            let code = args
                .first()
                .and_then(|c| c.parse::<i32>().ok())
                .unwrap_or(sh.status);
            sh.exit = Some(code & 0xff);
            code & 0xff
        }
        "true" | ":" | "clear" | "sleep" | "alias" | "unalias" | "kill" | "sync" => {
            if name == "clear" {
                io.out("\x1b[H\x1b[2J\x1b[3J");
            }
            0
        }
        "false" => 1,
        "crontab" => {
            io.err(&format!("no crontab for {}\n", sh.user));
            1
        }
        "passwd" => {
            io.err("passwd: Authentication token manipulation error\npasswd: password unchanged\n");
            10
        }
        "sh" | "bash" | "ash" | "dash" => shell(sh, args, stdin, io),
        "base64" => base64_cmd(args, stdin, io),
        "ping" => {
            io.err("ping: connect: Network is unreachable\n");
            2
        }
        "ssh" | "scp" => {
            match args.iter().rev().find(|a| !a.starts_with('-')) {
                Some(target) => {
                    let host = target.rsplit('@').next().unwrap_or(target);
                    let host = host.split(':').next().unwrap_or(host);
                    io.err(&format!("ssh: connect to host {host} port 22: Connection refused\n"));
                    if name == "scp" {
                        io.err("lost connection\n");
                    }
                }
                None => io.err(&format!("usage: {name} [-46AaCfGgKkMNnqsTtVvXxYy] destination [command [argument ...]]\n")),
            }
            255
        }
        "nano" | "vi" | "vim" | "top" | "htop" => {
            let term = sh
                .env
                .get("TERM")
                .cloned()
                .unwrap_or_else(|| "dumb".to_owned());
            io.err(&format!("Error opening terminal: {term}.\n"));
            1
        }
        "less" | "more" => text::cat(sh, args, stdin, io),
        "python3" | "python" | "perl" => {
            if args.is_empty() && stdin.is_empty() {
                io.err("Segmentation fault (core dumped)\n");
                139
            } else {
                0
            }
        }
        other if BINARIES.contains(&other) => 0,
        other => {
            not_found(sh, other, io);
            127
        }
    }
}

/// bash's (or ash's) answer to an unknown command.
pub fn not_found(sh: &Shell, name: &str, io: &mut Io) {
    let shown: String = name.chars().take(256).collect();
    let slug = sh.ctx.persona.distro.slug;
    if sh.tty && slug.starts_with("ubuntu") {
        // Ubuntu's command-not-found handler answers for an interactive bash.
        io.err(&format!("{shown}: command not found\n"));
    } else if sh.tty && slug == "fedora" {
        // PackageKit's handler on Fedora.
        io.err(&format!("bash: {shown}: command not found...\n"));
    } else if slug == "alpine" {
        io.err(&format!("{}: {shown}: not found\n", sh.err_prefix()));
    } else {
        io.err(&format!(
            "{}: {shown}: command not found\n",
            sh.err_prefix()
        ));
    }
}

/// `sh -c '…'`, `sh script`, or a script piped into `sh`: run in a child shell.
fn shell(sh: &mut Shell, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let script = match args.iter().position(|a| a == "-c") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => match args.iter().find(|a| !a.starts_with('-')) {
            Some(file) => match sh.read_file(file) {
                Ok(data) => String::from_utf8_lossy(&data).into_owned(),
                Err(e) => {
                    io.err(&format!("{}: {file}: {}\n", sh.err_prefix(), e.text()));
                    return 127;
                }
            },
            None => String::from_utf8_lossy(stdin).into_owned(),
        },
    };
    let (out, status) = sh.run_script(&script);
    io.out.extend_from_slice(&out);
    status
}

fn base64_cmd(args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    if args.iter().any(|a| a == "-d" || a == "--decode") {
        let clean: Vec<u8> = stdin
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        match engine.decode(&clean) {
            Ok(data) => {
                io.out.extend_from_slice(&data);
                0
            }
            Err(_) => {
                io.err("base64: invalid input\n");
                1
            }
        }
    } else {
        let text = engine.encode(stdin);
        let mut wrapped = String::new();
        for chunk in text.as_bytes().chunks(76) {
            wrapped.push_str(&String::from_utf8_lossy(chunk));
            wrapped.push('\n');
        }
        io.out(&wrapped);
        0
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_bin_dir(dir: &str) -> bool {
    matches!(
        dir,
        "/bin" | "/usr/bin" | "/sbin" | "/usr/sbin" | "/usr/local/bin"
    )
}

/// `./script` or `/path/prog`: there, but nothing can run.
fn run_path(sh: &Shell, path: &str, io: &mut Io) -> i32 {
    let prefix = sh.err_prefix();
    match sh.fs.get(&sh.abs(path)) {
        Ok((_, node)) if node.is_dir() => {
            io.err(&format!("{prefix}: {path}: Is a directory\n"));
            126
        }
        Ok((_, node)) if node.mode & 0o111 == 0 => {
            io.err(&format!("{prefix}: {path}: Permission denied\n"));
            126
        }
        Ok(_) => {
            io.err(&format!(
                "{prefix}: {path}: cannot execute binary file: Exec format error\n"
            ));
            126
        }
        Err(e) => {
            io.err(&format!("{prefix}: {path}: {}\n", e.text()));
            127
        }
    }
}

fn echo(args: &[String], io: &mut Io) -> i32 {
    let mut newline = true;
    let mut escapes = false;
    let mut rest = args;
    while let Some(flag) = rest.first() {
        match flag.as_str() {
            "-n" => newline = false,
            "-e" => escapes = true,
            "-E" => escapes = false,
            "-ne" | "-en" => {
                newline = false;
                escapes = true;
            }
            _ => break,
        }
        rest = &rest[1..];
    }
    let mut text = rest.join(" ");
    if escapes {
        text = text
            .replace("\\n", "\n")
            .replace("\\t", "\t")
            .replace("\\\\", "\\");
    }
    if newline {
        text.push('\n');
    }
    io.out(&text);
    0
}

/// `printf FORMAT ARGS…` with `%s`, `%d`, `%%` and backslash escapes.
fn printf(args: &[String], io: &mut Io) -> i32 {
    let Some((format, rest)) = args.split_first() else {
        io.err("printf: usage: printf [-v var] format [arguments]\n");
        return 2;
    };
    let mut rest = rest.iter();
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some('%')) => {
                chars.next();
                out.push('%');
            }
            ('%', Some('s' | 'd' | 'i' | 'c' | 'b')) => {
                chars.next();
                out.push_str(rest.next().map_or("", String::as_str));
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            (c, _) => out.push(c),
        }
    }
    io.out(&out);
    0
}

fn history(sh: &mut Shell, args: &[String], io: &mut Io) -> i32 {
    if args.first().map(String::as_str) == Some("-c") {
        sh.history.clear();
        return 0;
    }
    let home = sh
        .machine
        .account(&sh.ctx.user)
        .map_or_else(String::new, |a| a.home.clone());
    let old = sh
        .read_file(&format!("{home}/.bash_history"))
        .unwrap_or_default();
    let old = String::from_utf8_lossy(&old).into_owned();
    let all: Vec<&str> = old
        .lines()
        .chain(sh.history.iter().map(String::as_str))
        .collect();
    let skip = match args.first().and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => all.len().saturating_sub(n),
        None => 0,
    };
    for (i, line) in all.iter().enumerate().skip(skip) {
        io.out(&format!("{:>5}  {line}\n", i + 1));
    }
    0
}

fn export(sh: &mut Shell, name: &str, args: &[String], io: &mut Io) -> i32 {
    if args.is_empty() || args == ["-p"] {
        for (k, v) in &sh.env {
            if name == "set" {
                io.out(&format!("{k}={v}\n"));
            } else {
                io.out(&format!("declare -x {k}=\"{v}\"\n"));
            }
        }
        return 0;
    }
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if is_name(k) {
                sh.env.insert(k.to_owned(), v.to_owned());
            } else {
                io.err(&format!(
                    "{}: export: `{a}': not a valid identifier\n",
                    sh.err_prefix()
                ));
                return 1;
            }
        }
    }
    0
}

fn env(sh: &mut Shell, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    if let Some(first) = args.first()
        && !first.contains('=')
        && !first.starts_with('-')
    {
        return dispatch(sh, args, stdin, io);
    }
    for (k, v) in &sh.env {
        io.out(&format!("{k}={v}\n"));
    }
    io.out("_=/usr/bin/env\n");
    0
}

/// Where `name` would be found on `PATH`.
fn lookup(sh: &Shell, name: &str) -> Option<String> {
    if !BINARIES.contains(&name) {
        return None;
    }
    let dir = if sh.ctx.persona.distro.slug == "alpine" {
        "/bin"
    } else {
        "/usr/bin"
    };
    Some(format!("{dir}/{name}"))
}

fn which(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let mut status = 0;
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        match lookup(sh, a) {
            Some(p) => io.out(&format!("{p}\n")),
            None => status = 1,
        }
    }
    status
}

fn type_of(sh: &Shell, args: &[String], io: &mut Io) -> i32 {
    let mut status = 0;
    for a in args {
        if BUILTINS.contains(&a.as_str()) {
            io.out(&format!("{a} is a shell builtin\n"));
        } else if let Some(p) = lookup(sh, a) {
            io.out(&format!("{a} is {p}\n"));
        } else {
            io.err(&format!("{}: type: {a}: not found\n", sh.err_prefix()));
            status = 1;
        }
    }
    status
}

/// Quotes `arg` so that re-parsing gives it back as one word.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

fn sudo(sh: &mut Shell, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let mut rest = args;
    while let Some(flag) = rest.first() {
        match flag.as_str() {
            "-l" => {
                io.out(&format!(
                    "Matching Defaults entries for {0} on {1}:\n    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin\\:/sbin\\:/bin\n\nUser {0} may run the following commands on {1}:\n    (ALL : ALL) ALL\n",
                    sh.user,
                    super::distro::short_host(&sh.ctx.persona.hostname)
                ));
                return 0;
            }
            "-i" | "-s" => break,
            f if f.starts_with('-') => rest = &rest[1..],
            _ => break,
        }
    }
    if rest.is_empty() {
        io.err("usage: sudo -h | -K | -k | -V\nusage: sudo -v [-AknS] [-g group] [-h host] [-p prompt] [-u user]\nusage: sudo -l [-AknS] [-g group] [-h host] [-p prompt] [-U user] [-u user] [command]\nusage: sudo [-AbEHknPS] [-r role] [-t type] [-C num] [-D directory] [-g group] [-h host] [-p prompt] [-R directory] [-T timeout] [-u user] [VAR=value] [-i|-s] [<command>]\nusage: sudo -e [-AknS] [-r role] [-t type] [-C num] [-D directory] [-g group] [-h host] [-p prompt] [-R directory] [-T timeout] [-u user] file ...\n");
        return 1;
    }
    let line = match sh.current.strip_prefix("sudo ").map(str::trim_start) {
        Some(tail) if sh.depth == 0 && !tail.starts_with('-') => tail.to_owned(),
        _ => rest.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
    };
    if sh.user == "root" || sh.sudo_cached {
        let words: Vec<&str> = rest.iter().map(String::as_str).collect();
        if matches!(
            words.as_slice(),
            ["-i"] | ["-s"] | ["su"] | ["su", "-"] | ["bash"]
        ) {
            sh.switch_user("root", words[0] != "-s" && words[0] != "bash");
            return 0;
        }
        let before = std::mem::replace(&mut sh.user, "root".to_owned());
        let status = dispatch(sh, rest, stdin, io);
        if sh.user == "root" && sh.stack.is_empty() {
            sh.user = before;
        }
        return status;
    }
    sh.pending = Some(Pending::Sudo { line, tries: 0 });
    0
}

fn su(sh: &mut Shell, args: &[String], io: &mut Io) -> i32 {
    let login = args.iter().any(|a| a == "-" || a == "-l" || a == "--login");
    let target = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_else(|| "root".to_owned());
    if sh.machine.account(&target).is_none() {
        io.err(&format!("su: user {target} does not exist or the user entry does not contain all the required fields\n"));
        return 1;
    }
    if sh.user == "root" {
        sh.switch_user(&target, login);
        return 0;
    }
    sh.pending = Some(Pending::Su { target, login });
    0
}
