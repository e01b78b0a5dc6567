//! Text commands: `cat`, `head`/`tail`, `grep`, `wc`, `sort`/`uniq`, reading their
//! operands from the fake file system or standard input, with coreutils' and grep's
//! output formats and messages.
use super::Shell;
use super::commands::Io;
use super::files::flags;

/// The operands' contents, or standard input without any; errors written as `tool: …`.
fn inputs(
    sh: &Shell,
    tool: &str,
    ops: &[&String],
    stdin: &[u8],
    io: &mut Io,
) -> (Vec<(String, Vec<u8>)>, i32) {
    if ops.is_empty() {
        return (vec![("-".to_owned(), stdin.to_vec())], 0);
    }
    let mut out = Vec::new();
    let mut status = 0;
    for op in ops {
        if op.as_str() == "-" {
            out.push(("-".to_owned(), stdin.to_vec()));
            continue;
        }
        match sh.read_file(op) {
            Ok(data) => out.push(((*op).clone(), data)),
            Err(e) => {
                io.err(&format!("{tool}: {op}: {}\n", e.text()));
                status = if tool == "grep" { 2 } else { 1 };
            }
        }
    }
    (out, status)
}

/// `cat [-n]` of files or standard input.
pub fn cat(sh: &Shell, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let (f, ops) = flags(args);
    let (data, status) = inputs(sh, "cat", &ops, stdin, io);
    let mut n = 0;
    for (_, d) in data {
        if f.contains(&'n') {
            for line in String::from_utf8_lossy(&d).lines() {
                n += 1;
                io.out(&format!("{n:>6}\t{line}\n"));
            }
        } else {
            io.out.extend_from_slice(&d);
        }
    }
    status
}

/// `head`/`tail` with `-n N` or `-N`, headers for several files.
pub fn head_tail(sh: &Shell, name: &str, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let mut count = 10usize;
    let mut ops: Vec<&String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-n" {
            count = args
                .get(i + 1)
                .and_then(|n| n.trim_start_matches('+').parse().ok())
                .unwrap_or(10);
            i += 1;
        } else if let Some(n) = a
            .strip_prefix("-n")
            .or_else(|| a.strip_prefix('-'))
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            count = n.parse().unwrap_or(10);
        } else if a == "-f" || a == "-F" {
        } else {
            ops.push(a);
        }
        i += 1;
    }
    let (data, status) = inputs(sh, name, &ops, stdin, io);
    let many = data.len() > 1;
    for (i, (file, d)) in data.iter().enumerate() {
        if many {
            io.out(&format!(
                "{}==> {file} <==\n",
                if i > 0 { "\n" } else { "" }
            ));
        }
        let lines: Vec<&[u8]> = d.split_inclusive(|&b| b == b'\n').collect();
        let pick: &[&[u8]] = if name == "head" {
            &lines[..count.min(lines.len())]
        } else {
            &lines[lines.len().saturating_sub(count)..]
        };
        for l in pick {
            io.out.extend_from_slice(l);
        }
    }
    status
}

/// A small regular expression: alternatives (`|` with -E, `\|` without) of literals,
/// `.`, `x*`, `^` and `$`; enough for the patterns people type at a prompt.
struct Pattern {
    alts: Vec<Alternative>,
}

/// One alternative: anchored at the start, its atoms (a char or any, repeated or not),
/// anchored at the end.
type Alternative = (bool, Vec<(Option<char>, bool)>, bool);

impl Pattern {
    fn new(pat: &str, extended: bool, fixed: bool, fold: bool) -> Pattern {
        let pat = if fold {
            pat.to_lowercase()
        } else {
            pat.to_owned()
        };
        let parts: Vec<String> = if fixed {
            vec![pat]
        } else if extended {
            pat.split('|').map(str::to_owned).collect()
        } else {
            pat.split("\\|").map(str::to_owned).collect()
        };
        let alts = parts
            .into_iter()
            .map(|alt| {
                if fixed {
                    return (
                        false,
                        alt.chars().map(|c| (Some(c), false)).collect(),
                        false,
                    );
                }
                let mut s = alt.as_str();
                let start = s.starts_with('^');
                if start {
                    s = &s[1..];
                }
                let end = s.ends_with('$') && !s.ends_with("\\$");
                if end {
                    s = &s[..s.len() - 1];
                }
                let mut atoms: Vec<(Option<char>, bool)> = Vec::new();
                let mut chars = s.chars().peekable();
                while let Some(c) = chars.next() {
                    let atom = match c {
                        '\\' => Some(chars.next().unwrap_or('\\')),
                        '.' => None,
                        '*' if atoms.is_empty() => Some('*'),
                        '*' => {
                            if let Some(last) = atoms.last_mut() {
                                last.1 = true;
                            }
                            continue;
                        }
                        c => Some(c),
                    };
                    atoms.push((atom, false));
                }
                (start, atoms, end)
            })
            .collect();
        Pattern { alts }
    }

    fn matches(&self, line: &str) -> bool {
        let chars: Vec<char> = line.chars().collect();
        self.alts.iter().any(|(start, atoms, end)| {
            let starts: Vec<usize> = if *start {
                vec![0]
            } else {
                (0..=chars.len()).collect()
            };
            starts.into_iter().any(|s| here(atoms, &chars[s..], *end))
        })
    }
}

fn here(atoms: &[(Option<char>, bool)], text: &[char], end: bool) -> bool {
    let Some(((atom, star), rest)) = atoms.split_first() else {
        return !end || text.is_empty();
    };
    let fits = |c: &char| atom.is_none_or(|a| a == *c);
    if *star {
        let mut i = 0;
        loop {
            if here(rest, &text[i..], end) {
                return true;
            }
            if i < text.len() && fits(&text[i]) {
                i += 1;
            } else {
                return false;
            }
        }
    }
    !text.is_empty() && fits(&text[0]) && here(rest, &text[1..], end)
}

/// `grep`/`egrep`/`fgrep` with `-i -v -c -n -l -q -h -E -F -e`.
pub fn grep(sh: &Shell, name: &str, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let mut f: Vec<char> = Vec::new();
    let mut rest: Vec<&String> = Vec::new();
    let mut pattern: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-e" {
            pattern = args.get(i + 1).cloned();
            i += 1;
        } else if a.starts_with("--color") {
        } else if a.starts_with('-') && a.len() > 1 {
            f.extend(a.chars().skip(1));
        } else {
            rest.push(a);
        }
        i += 1;
    }
    let pattern = match pattern {
        Some(p) => p,
        None if !rest.is_empty() => rest.remove(0).clone(),
        None => {
            io.err("Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information.\n");
            return 2;
        }
    };
    let fold = f.contains(&'i');
    let re = Pattern::new(
        &pattern,
        name == "egrep" || f.contains(&'E'),
        name == "fgrep" || f.contains(&'F'),
        fold,
    );
    let (data, mut status) = inputs(sh, "grep", &rest, stdin, io);
    let many = data.len() > 1 && !f.contains(&'h');
    let mut any = false;
    for (file, d) in data {
        let text = String::from_utf8_lossy(&d);
        let mut count = 0;
        for (n, line) in text.lines().enumerate() {
            let hay = if fold {
                line.to_lowercase()
            } else {
                line.to_owned()
            };
            if re.matches(&hay) == f.contains(&'v') {
                continue;
            }
            count += 1;
            any = true;
            if f.contains(&'q') {
                return 0;
            }
            if f.contains(&'c') || f.contains(&'l') {
                continue;
            }
            let mut out = String::new();
            if many {
                out.push_str(&format!("{file}:"));
            }
            if f.contains(&'n') {
                out.push_str(&format!("{}:", n + 1));
            }
            io.out(&format!("{out}{line}\n"));
        }
        if f.contains(&'c') {
            io.out(&if many {
                format!("{file}:{count}\n")
            } else {
                format!("{count}\n")
            });
        } else if f.contains(&'l') && count > 0 {
            io.out(&format!("{file}\n"));
        }
    }
    if status == 0 && !any {
        status = 1;
    }
    status
}

/// `wc` with `-l -w -c`, column widths as coreutils computes them.
pub fn wc(sh: &Shell, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let (mut f, ops) = flags(args);
    if f.is_empty() {
        f = vec!['l', 'w', 'c'];
    }
    let (data, status) = inputs(sh, "wc", &ops, stdin, io);
    let counts: Vec<(String, [usize; 3])> = data
        .iter()
        .map(|(name, d)| {
            let lines = d.iter().filter(|&&b| b == b'\n').count();
            let words = String::from_utf8_lossy(d).split_whitespace().count();
            (name.clone(), [lines, words, d.len()])
        })
        .collect();
    let mut rows = counts.clone();
    if counts.len() > 1 {
        let mut total = [0usize; 3];
        for (_, c) in &counts {
            for (t, v) in total.iter_mut().zip(c) {
                *t += v;
            }
        }
        rows.push(("total".to_owned(), total));
    }
    let shown: Vec<usize> = [('l', 0), ('w', 1), ('c', 2)]
        .iter()
        .filter(|(c, _)| f.contains(c) || (*c == 'c' && f.contains(&'m')))
        .map(|(_, i)| *i)
        .collect();
    let width = if shown.len() == 1 && ops.is_empty() {
        1
    } else if ops.is_empty() {
        7
    } else {
        rows.iter()
            .map(|(_, c)| c[2])
            .max()
            .unwrap_or(0)
            .to_string()
            .len()
    };
    for (name, c) in rows {
        let cols: Vec<String> = shown.iter().map(|&i| format!("{:>width$}", c[i])).collect();
        let mut line = cols.join(" ");
        if name != "-" {
            line.push(' ');
            line.push_str(&name);
        }
        io.out(&format!("{line}\n"));
    }
    status
}

/// `sort [-nru]` and `uniq [-c]` of standard input.
pub fn sort_uniq(name: &str, args: &[String], stdin: &[u8], io: &mut Io) -> i32 {
    let (f, _) = flags(args);
    let text = String::from_utf8_lossy(stdin);
    let mut lines: Vec<&str> = text.lines().collect();
    if name == "sort" {
        if f.contains(&'n') {
            let num = |l: &str| {
                l.trim()
                    .split(|c: char| !c.is_ascii_digit() && c != '-')
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            lines.sort_by_key(|l| num(l));
        } else {
            lines.sort_unstable();
        }
        if f.contains(&'r') {
            lines.reverse();
        }
        if f.contains(&'u') {
            lines.dedup();
        }
        for l in lines {
            io.out(&format!("{l}\n"));
        }
        return 0;
    }
    let mut groups: Vec<(usize, &str)> = Vec::new();
    for l in lines {
        match groups.last_mut() {
            Some((n, last)) if *last == l => *n += 1,
            _ => groups.push((1, l)),
        }
    }
    for (n, l) in groups {
        if f.contains(&'c') {
            io.out(&format!("{n:>7} {l}\n"));
        } else {
            io.out(&format!("{l}\n"));
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = Pattern::new("^ro.t", false, false, false);
        assert!(p.matches("root:x:0:0"));
        assert!(!p.matches("xroot"));
        let p = Pattern::new("bash$|nologin$", true, false, false);
        assert!(p.matches("u:x:/bin/bash") && p.matches("d:/usr/sbin/nologin"));
        assert!(Pattern::new("a.*z", false, false, false).matches("xxabcz"));
    }
}
