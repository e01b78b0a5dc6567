//! File commands over the fake file system: `cd`, `ls`, and `mkdir`/`touch`/`rm`/`cp`/
//! `mv`/`chmod` in the session's overlay, with coreutils' messages. The text filters are
//! in [`super::text`].
use time::OffsetDateTime;

use super::Shell;
use super::commands::Io;
use super::fs::{FsError, Kind, Node};

/// Splits `args` into single-letter flags (`-la` → `l`, `a`) and operands; `--` ends flags.
pub(super) fn flags(args: &[String]) -> (Vec<char>, Vec<&String>) {
    let mut f = Vec::new();
    let mut ops = Vec::new();
    let mut done = false;
    for a in args {
        if done || !a.starts_with('-') || a == "-" {
            ops.push(a);
        } else if a == "--" {
            done = true;
        } else if let Some(long) = a.strip_prefix("--") {
            f.push(match long {
                "all" => 'a',
                "recursive" => 'r',
                "force" => 'f',
                "parents" => 'p',
                "human-readable" => 'h',
                "ignore-case" => 'i',
                "count" => 'c',
                "lines" => 'l',
                _ => '?',
            });
        } else {
            f.extend(a.chars().skip(1));
        }
    }
    (f, ops)
}

/// `cd [dir|-|~]`, keeping `PWD` and `OLDPWD`.
pub fn cd(sh: &mut Shell, args: &[String], io: &mut Io) -> i32 {
    let home = sh
        .env
        .get("HOME")
        .cloned()
        .unwrap_or_else(|| "/".to_owned());
    let target = match args.first().map(String::as_str) {
        None | Some("~") => home,
        Some("-") => match sh.env.get("OLDPWD").cloned() {
            Some(old) => {
                io.out(&format!("{old}\n"));
                old
            }
            None => {
                io.err(&format!("{}: cd: OLDPWD not set\n", sh.err_prefix()));
                return 1;
            }
        },
        Some(p) => sh.abs(p),
    };
    let shown = args.first().cloned().unwrap_or_default();
    match sh.fs.get(&target) {
        Ok((real, node)) if node.is_dir() => {
            if !sh.may_read(&real, node) {
                io.err(&format!(
                    "{}: cd: {shown}: Permission denied\n",
                    sh.err_prefix()
                ));
                return 1;
            }
            let old = std::mem::replace(&mut sh.cwd, target);
            sh.env.insert("OLDPWD".to_owned(), old);
            sh.env.insert("PWD".to_owned(), sh.cwd.clone());
            0
        }
        Ok(_) => {
            io.err(&format!(
                "{}: cd: {shown}: Not a directory\n",
                sh.err_prefix()
            ));
            1
        }
        Err(e) => {
            io.err(&format!("{}: cd: {shown}: {}\n", sh.err_prefix(), e.text()));
            1
        }
    }
}

/// Sort key of GNU ls under an en_US.UTF-8 locale: case and leading dots ignored.
fn collate(name: &str) -> String {
    let key: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    format!("{key}\u{0}{name}")
}

fn mode_string(node: &Node) -> String {
    let kind = match node.kind {
        Kind::Dir => 'd',
        Kind::Link(_) => 'l',
        Kind::Device => 'c',
        Kind::File { .. } => '-',
    };
    let mut s = String::from(kind);
    for shift in [6u16, 3, 0] {
        let bits = (node.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        s.push(match (shift, exec, node.mode & 0o1000 != 0) {
            (0, true, true) => 't',
            (0, false, true) => 'T',
            (_, true, _) => 'x',
            _ => '-',
        });
    }
    s
}

/// `ls -l`'s time column.
pub fn ls_time(mtime: i64, now: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(mtime).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let month = super::sysinfo::month(t);
    if now - mtime < 182 * 86_400 && mtime <= now + 3_600 {
        format!("{month} {:>2} {:02}:{:02}", t.day(), t.hour(), t.minute())
    } else {
        format!("{month} {:>2}  {}", t.day(), t.year())
    }
}

fn human(size: u64) -> String {
    if size < 1024 {
        return size.to_string();
    }
    let mut v = size as f64 / 1024.0;
    for unit in ["K", "M", "G", "T"] {
        if v < 1024.0 {
            return if v < 10.0 {
                format!("{:.1}{unit}", (v * 10.0).ceil() / 10.0)
            } else {
                format!("{:.0}{unit}", v.ceil())
            };
        }
        v /= 1024.0;
    }
    format!("{v:.0}P")
}

/// `ls` (and `ll`): `-l`, `-a`, `-A`, `-h`, `-d`, `-t`, `-r`, `-1`, `-F`; columns on a terminal.
pub fn ls(sh: &Shell, name: &str, args: &[String], io: &mut Io) -> i32 {
    let (mut f, ops) = flags(args);
    if name == "ll" {
        f.extend(['a', 'l', 'F']);
    }
    let long = f.contains(&'l');
    let all = f.contains(&'a');
    let almost = f.contains(&'A');
    let one = f.contains(&'1') || !io.tty;
    let classify = f.contains(&'F');
    let dir_only = f.contains(&'d');
    let now = sh.now().unix_timestamp();
    let mut status = 0;
    let targets: Vec<String> = if ops.is_empty() {
        vec![".".to_owned()]
    } else {
        ops.iter().map(|s| (*s).clone()).collect()
    };
    let mut plain_files: Vec<(String, Node)> = Vec::new();
    let mut dirs: Vec<(String, String)> = Vec::new();
    for t in &targets {
        let abs = sh.abs(t);
        match sh.fs.get(&abs) {
            Err(e) => {
                io.err(&format!("ls: cannot access '{t}': {}\n", e.text()));
                status = 2;
            }
            Ok((real, node)) if node.is_dir() && !dir_only => {
                if sh.may_read(&real, node) {
                    dirs.push((t.clone(), real));
                } else {
                    io.err(&format!(
                        "ls: cannot open directory '{t}': Permission denied\n"
                    ));
                    status = 2;
                }
            }
            Ok(_) => {
                let node = sh
                    .fs
                    .get_link(&abs)
                    .cloned()
                    .or_else(|| sh.fs.get(&abs).ok().map(|(_, n)| n.clone()));
                if let Some(node) = node {
                    plain_files.push((t.clone(), node));
                }
            }
        }
    }
    let show = |io: &mut Io, entries: Vec<(String, Node)>| {
        let mut entries = entries;
        if f.contains(&'t') {
            entries.sort_by_key(|e| std::cmp::Reverse(e.1.mtime));
        } else {
            entries.sort_by_key(|(n, _)| collate(n));
        }
        if f.contains(&'r') {
            entries.reverse();
        }
        let label = |n: &str, node: &Node| {
            let mut s = n.to_owned();
            if classify {
                s.push_str(match node.kind {
                    Kind::Dir => "/",
                    Kind::Link(_) => "@",
                    Kind::File { .. } if node.mode & 0o111 != 0 => "*",
                    _ => "",
                });
            }
            s
        };
        if long {
            let size_of = |n: &Node| {
                if f.contains(&'h') {
                    human(n.size())
                } else {
                    n.size().to_string()
                }
            };
            let links = |n: &Node| if n.is_dir() { 2 } else { 1 };
            let w_size = entries
                .iter()
                .map(|(_, n)| size_of(n).len())
                .max()
                .unwrap_or(1);
            let w_owner = entries
                .iter()
                .map(|(_, n)| n.owner.len())
                .max()
                .unwrap_or(1);
            let w_group = entries
                .iter()
                .map(|(_, n)| n.group.len())
                .max()
                .unwrap_or(1);
            for (n, node) in &entries {
                let mut line = format!(
                    "{} {} {:<w_owner$} {:<w_group$} {:>w_size$} {} {}",
                    mode_string(node),
                    links(node),
                    node.owner,
                    node.group,
                    size_of(node),
                    ls_time(node.mtime, now),
                    label(n, node)
                );
                if let Kind::Link(t) = &node.kind {
                    line.push_str(&format!(" -> {t}"));
                }
                line.push('\n');
                io.out(&line);
            }
        } else if one {
            for (n, node) in &entries {
                io.out(&format!("{}\n", label(n, node)));
            }
        } else {
            let names: Vec<String> = entries.iter().map(|(n, node)| label(n, node)).collect();
            io.out(&columns(&names, 80));
        }
    };
    if !plain_files.is_empty() {
        show(io, std::mem::take(&mut plain_files));
        if !dirs.is_empty() {
            io.out("\n");
        }
    }
    let many = dirs.len() + usize::from(status != 0) > 1 || targets.len() > 1;
    for (i, (shown, real)) in dirs.iter().enumerate() {
        if many {
            if i > 0 {
                io.out("\n");
            }
            io.out(&format!("{shown}:\n"));
        }
        let mut entries: Vec<(String, Node)> = sh
            .fs
            .list(real)
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| all || almost || !n.starts_with('.'))
            .map(|(n, node)| (n, node.clone()))
            .collect();
        if all {
            if let Ok((_, me)) = sh.fs.get(real) {
                entries.push((".".to_owned(), me.clone()));
            }
            if let Ok((_, up)) = sh.fs.get(super::fs::parent(real)) {
                entries.push(("..".to_owned(), up.clone()));
            }
        }
        if long {
            let blocks: u64 = entries
                .iter()
                .map(|(_, n)| n.size().div_ceil(4096) * 4)
                .sum();
            io.out(&format!("total {blocks}\n"));
        }
        show(io, entries);
    }
    status
}

/// Names laid out in columns down then across, as ls does on a terminal `width` wide.
fn columns(names: &[String], width: usize) -> String {
    if names.is_empty() {
        return String::new();
    }
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    let mut cols = names.len();
    while cols > 1 {
        let rows = names.len().div_ceil(cols);
        let total: usize = (0..cols)
            .map(|c| {
                (0..rows)
                    .filter_map(|r| widths.get(c * rows + r))
                    .max()
                    .copied()
                    .unwrap_or(0)
                    + 2
            })
            .sum();
        if total <= width + 2 {
            break;
        }
        cols -= 1;
    }
    let rows = names.len().div_ceil(cols);
    let col_w: Vec<usize> = (0..cols)
        .map(|c| {
            (0..rows)
                .filter_map(|r| widths.get(c * rows + r))
                .max()
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in 0..rows {
        let mut line = String::new();
        for (c, w) in col_w.iter().enumerate() {
            if let Some(n) = names.get(c * rows + r) {
                line.push_str(n);
                if names.get((c + 1) * rows + r).is_some() {
                    line.push_str(&" ".repeat(w + 2 - widths[c * rows + r]));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether shell pattern `pat` (`*`, `?`) matches all of `name`.
pub fn wildcard(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn fs_error(io: &mut Io, tool: &str, what: &str, path: &str, e: FsError) {
    io.err(&format!("{tool}: {what}'{path}': {}\n", e.text()));
}

/// `mkdir [-p]` in the overlay.
pub fn mkdir(sh: &mut Shell, args: &[String], io: &mut Io) -> i32 {
    let (f, ops) = flags(args);
    if ops.is_empty() {
        io.err("mkdir: missing operand\nTry 'mkdir --help' for more information.\n");
        return 1;
    }
    let now = sh.now().unix_timestamp();
    let mut status = 0;
    for op in ops {
        let abs = sh.abs(op);
        let result = if sh.may_write(&abs) {
            let user = sh.user.clone();
            sh.fs.mkdir(&abs, f.contains(&'p'), &user, now)
        } else {
            Err(FsError::Denied)
        };
        if let Err(e) = result {
            fs_error(io, "mkdir", "cannot create directory ", op, e);
            status = 1;
        }
    }
    status
}

/// `touch`: a new empty file or a fresh mtime.
pub fn touch(sh: &mut Shell, args: &[String], io: &mut Io) -> i32 {
    let (_, ops) = flags(args);
    if ops.is_empty() {
        io.err("touch: missing file operand\nTry 'touch --help' for more information.\n");
        return 1;
    }
    let now = sh.now().unix_timestamp();
    let mut status = 0;
    for op in ops {
        let abs = sh.abs(op);
        let user = sh.user.clone();
        let result = if sh.may_write(&abs) {
            sh.fs.touch(&abs, &user, now)
        } else {
            Err(FsError::Denied)
        };
        if let Err(e) = result {
            fs_error(io, "touch", "cannot touch ", op, e);
            status = 1;
        }
    }
    status
}

/// `rm [-rf]` and `rmdir`.
pub fn rm(sh: &mut Shell, name: &str, args: &[String], io: &mut Io) -> i32 {
    let (f, ops) = flags(args);
    let force = f.contains(&'f');
    if ops.is_empty() && !force {
        io.err(&format!(
            "{name}: missing operand\nTry '{name} --help' for more information.\n"
        ));
        return 1;
    }
    let recursive = name == "rmdir" || f.contains(&'r') || f.contains(&'R');
    let mut status = 0;
    for op in ops {
        let abs = sh.abs(op);
        let result = if !sh.may_write(&abs) {
            if sh.fs.get(&abs).is_ok() {
                Err(FsError::Denied)
            } else {
                Err(FsError::NotFound)
            }
        } else if name == "rmdir" && sh.fs.list(&abs).is_ok_and(|l| !l.is_empty()) {
            Err(FsError::NotEmpty)
        } else {
            sh.fs.remove(&abs, recursive)
        };
        match result {
            Ok(()) => {}
            Err(FsError::NotFound) if force => {}
            Err(e) => {
                let what = if name == "rmdir" {
                    "failed to remove "
                } else {
                    "cannot remove "
                };
                fs_error(io, name, what, op, e);
                status = 1;
            }
        }
    }
    status
}

/// `cp`/`mv` of one file, into a directory or onto a name.
pub fn cp_mv(sh: &mut Shell, name: &str, args: &[String], io: &mut Io) -> i32 {
    let (_, ops) = flags(args);
    let [src, dst] = ops.as_slice() else {
        io.err(&format!(
            "{name}: missing file operand\nTry '{name} --help' for more information.\n"
        ));
        return 1;
    };
    let data = match sh.read_file(src) {
        Ok(d) => d,
        Err(e) => {
            io.err(&format!("{name}: cannot stat '{src}': {}\n", e.text()));
            return 1;
        }
    };
    let mut target = sh.abs(dst);
    if sh.fs.get(&target).is_ok_and(|(_, n)| n.is_dir()) {
        let base = src.rsplit('/').next().unwrap_or(src);
        target = format!("{target}/{base}");
    }
    if let Err(e) = sh.write_file(&target, &data, false) {
        io.err(&format!(
            "{name}: cannot create regular file '{dst}': {}\n",
            e.text()
        ));
        return 1;
    }
    if name == "mv" {
        let abs = sh.abs(src);
        if sh.may_write(&abs) {
            let _ = sh.fs.remove(&abs, false);
        }
    }
    0
}

/// `chmod` (octal, `+x`, `-x`); `chown`/`chgrp` only check ownership.
pub fn chmod(sh: &mut Shell, name: &str, args: &[String], io: &mut Io) -> i32 {
    let (_, ops) = flags(args);
    let Some((mode, files)) = ops.split_first() else {
        io.err(&format!(
            "{name}: missing operand\nTry '{name} --help' for more information.\n"
        ));
        return 1;
    };
    if files.is_empty() {
        io.err(&format!(
            "{name}: missing operand after '{mode}'\nTry '{name} --help' for more information.\n"
        ));
        return 1;
    }
    let mut status = 0;
    for file in files {
        let abs = sh.abs(file);
        let Ok((real, node)) = sh.fs.get(&abs) else {
            io.err(&format!(
                "{name}: cannot access '{file}': No such file or directory\n"
            ));
            status = 1;
            continue;
        };
        if sh.user != "root" && node.owner != sh.user {
            let verb = if name == "chmod" {
                "changing permissions of"
            } else {
                "changing ownership of"
            };
            io.err(&format!(
                "{name}: {verb} '{file}': Operation not permitted\n"
            ));
            status = 1;
            continue;
        }
        let old = node.mode;
        let new = if name != "chmod" {
            old
        } else if let Ok(m) = u16::from_str_radix(mode, 8) {
            m & 0o7777
        } else if mode.contains("+x") {
            old | 0o111
        } else if mode.contains("-x") {
            old & !0o111
        } else {
            old
        };
        if let Some(n) = sh.fs.get_mut(&real) {
            n.mode = new;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(wildcard("*.txt", "a.txt"));
        assert!(wildcard("*-release", "os-release"));
        assert!(!wildcard("a?c", "abbc"));
    }

    #[test]
    fn ls_columns_run_down_then_across() {
        let names: Vec<String> = ["bin", "boot", "dev", "etc", "home"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(columns(&names, 80), "bin  boot  dev  etc  home\n");
        assert_eq!(columns(&names, 12), "bin   etc\nboot  home\ndev\n");
        assert_eq!(human(4096), "4.0K");
        assert_eq!(human(1_500_000), "1.5M");
    }
}
