//! The part of bash's grammar an attacker's one-liners use: lists joined by `;`, `&&`,
//! `||` and `&`, pipelines, redirections (`>`, `>>`, `<`, `2>`, `2>&1`, `&>`), single and
//! double quotes, backslashes, `$VAR`/`${VAR}`/`$?` (marked here, substituted when the
//! command runs: [`substitute`]), `~`, and comments.
//! Errors carry bash's own wording.

/// Most simple commands one line may hold.
pub const MAX_COMMANDS: usize = 64;

/// One word after quote removal and expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text.
    pub text: String,
    /// Whether it holds an unquoted `*` or `?` (a glob to expand).
    pub glob: bool,
}

/// A redirection of a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `>`/`>>` (fd 1), `2>`/`2>>` (fd 2), `&>` (both).
    Out {
        /// 1, 2, or 3 for both.
        fd: u8,
        /// Target path.
        path: String,
        /// `>>`.
        append: bool,
    },
    /// `< path`.
    In(String),
    /// `2>&1`.
    ErrToOut,
}

/// A command with its arguments and redirections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simple {
    /// The words, command name first.
    pub argv: Vec<Word>,
    /// Redirections in order.
    pub redirects: Vec<Redirect>,
}

/// How a pipeline joins the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joiner {
    /// `;`, `&` or the start of the line.
    Always,
    /// `&&`.
    And,
    /// `||`.
    Or,
}

/// A pipeline and how it joins the list.
pub type Item = (Joiner, Vec<Simple>);

/// A syntax error, as bash prints it after `bash: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Op(&'static str),
}

/// Parses `line`; `var` gives `HOME` for `~`.
pub fn parse(line: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Item>, SyntaxError> {
    let toks = lex(line, var)?;
    let mut items: Vec<Item> = Vec::new();
    let mut joiner = Joiner::Always;
    let mut pipeline: Vec<Simple> = Vec::new();
    let mut cmd = Simple::default();
    let mut count = 0usize;
    let near = |t: &str| SyntaxError(format!("syntax error near unexpected token `{t}'"));
    let mut iter = toks.into_iter().peekable();
    while let Some(tok) = iter.next() {
        match tok {
            Tok::Word(w) => cmd.argv.push(w),
            Tok::Op(op @ (">" | ">>" | "<" | "2>" | "2>>" | "&>")) => {
                let Some(Tok::Word(target)) = iter.next() else {
                    return Err(near("newline"));
                };
                cmd.redirects.push(match op {
                    "<" => Redirect::In(target.text),
                    _ => Redirect::Out {
                        fd: match op {
                            "2>" | "2>>" => 2,
                            "&>" => 3,
                            _ => 1,
                        },
                        path: target.text,
                        append: op.ends_with(">>"),
                    },
                });
            }
            Tok::Op("2>&1") => cmd.redirects.push(Redirect::ErrToOut),
            Tok::Op(op) => {
                if cmd.argv.is_empty() && cmd.redirects.is_empty() {
                    return Err(near(op));
                }
                count += 1;
                if count > MAX_COMMANDS {
                    return Err(SyntaxError("too many commands".to_owned()));
                }
                pipeline.push(std::mem::take(&mut cmd));
                if op != "|" {
                    items.push((joiner, std::mem::take(&mut pipeline)));
                    joiner = match op {
                        "&&" => Joiner::And,
                        "||" => Joiner::Or,
                        _ => Joiner::Always,
                    };
                    if matches!(op, ";" | "&") && iter.peek().is_none() {
                        return Ok(items);
                    }
                }
            }
        }
    }
    if cmd.argv.is_empty() && cmd.redirects.is_empty() {
        if !pipeline.is_empty() || joiner != Joiner::Always {
            return Err(SyntaxError(
                "syntax error: unexpected end of file".to_owned(),
            ));
        }
    } else {
        pipeline.push(cmd);
    }
    if !pipeline.is_empty() {
        items.push((joiner, pipeline));
    }
    Ok(items)
}

fn lex(line: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Tok>, SyntaxError> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut word = String::new();
    let mut in_word = false;
    let mut glob = false;
    let flush = |toks: &mut Vec<Tok>, word: &mut String, in_word: &mut bool, glob: &mut bool| {
        if *in_word {
            toks.push(Tok::Word(Word {
                text: std::mem::take(word),
                glob: *glob,
            }));
            *in_word = false;
            *glob = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' => flush(&mut toks, &mut word, &mut in_word, &mut glob),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or_else(|| eof('\''))?;
                word.extend(&chars[i + 1..i + 1 + end]);
                i += end + 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(eof('"'));
                    };
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 1;
                        }
                        '$' => i = expand(&chars, i, &mut word),
                        c => word.push(c),
                    }
                    i += 1;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = next {
                    word.push(n);
                    i += 1;
                }
            }
            '$' => {
                in_word = true;
                i = expand(&chars, i, &mut word);
            }
            '~' if !in_word && matches!(next, None | Some('/' | ' ')) => {
                in_word = true;
                word.push_str(&var("HOME").unwrap_or_default());
            }
            '*' | '?' => {
                in_word = true;
                glob = true;
                word.push(c);
            }
            ';' | '|' | '&' | '<' | '>' => {
                let digit_fd = in_word && word == "2" && c == '>';
                if digit_fd {
                    word.clear();
                    in_word = false;
                }
                flush(&mut toks, &mut word, &mut in_word, &mut glob);
                let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
                let op: &'static str = if digit_fd {
                    if rest.starts_with(">&1") {
                        i += 2;
                        "2>&1"
                    } else if rest.starts_with(">>") {
                        i += 1;
                        "2>>"
                    } else {
                        "2>"
                    }
                } else if rest.starts_with("&&") {
                    i += 1;
                    "&&"
                } else if rest.starts_with("||") {
                    i += 1;
                    "||"
                } else if rest.starts_with(">>") {
                    i += 1;
                    ">>"
                } else if rest.starts_with("&>") {
                    i += 1;
                    "&>"
                } else if rest.starts_with(";;") {
                    return Err(SyntaxError(
                        "syntax error near unexpected token `;;'".to_owned(),
                    ));
                } else {
                    match c {
                        ';' => ";",
                        '|' => "|",
                        '&' => "&",
                        '<' => "<",
                        _ => ">",
                    }
                };
                toks.push(Tok::Op(op));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    flush(&mut toks, &mut word, &mut in_word, &mut glob);
    Ok(toks)
}

fn eof(quote: char) -> SyntaxError {
    SyntaxError(format!(
        "unexpected EOF while looking for matching `{quote}'"
    ))
}

/// Marks the `$…` at `chars[i]` in `word` for expansion when the command runs (so
/// `X=1; echo $X` sees the new value); returns the index of its last character.
fn expand(chars: &[char], i: usize, word: &mut String) -> usize {
    match chars.get(i + 1) {
        Some('{') => {
            if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                let name: String = chars[i + 2..i + 2 + end].iter().collect();
                mark(word, &name);
                return i + 2 + end;
            }
            word.push('$');
            i
        }
        Some(c) if matches!(c, '?' | '$' | '#' | '0'..='9') => {
            mark(word, &c.to_string());
            i + 1
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            mark(word, &name);
            i + len
        }
        _ => {
            word.push('$');
            i
        }
    }
}

fn mark(word: &mut String, name: &str) {
    word.push(VAR_START);
    word.push_str(name);
    word.push(VAR_END);
}

/// `text` with its variable marks replaced by their values from `var`.
pub fn substitute(text: &str, var: &dyn Fn(&str) -> Option<String>) -> String {
    if !text.contains(VAR_START) {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(VAR_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + VAR_START.len_utf8()..];
        match after.find(VAR_END) {
            Some(end) => {
                out.push_str(&var(&after[..end]).unwrap_or_default());
                rest = &after[end + VAR_END.len_utf8()..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Brackets a variable name in a word until the command runs.
const VAR_START: char = '\u{1}';
/// Ends a variable mark.
const VAR_END: char = '\u{2}';

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        let var = |n: &str| match n {
            "HOME" => Some("/root".to_owned()),
            "USER" => Some("root".to_owned()),
            "?" => Some("0".to_owned()),
            _ => None,
        };
        parse(line, &var)
            .expect("parses")
            .into_iter()
            .flat_map(|(_, p)| p)
            .map(|s| {
                s.argv
                    .into_iter()
                    .map(|w| substitute(&w.text, &var))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn quoting_and_expansion() {
        assert_eq!(
            words(r#"echo 'a  b' "c $USER" d\ e ${USER}x $? ~ ~/f "$NOPE" # comment"#),
            [[
                "echo", "a  b", "c root", "d e", "rootx", "0", "/root", "/root/f", ""
            ]]
        );
        assert_eq!(
            words("echo \"it's\" 'say \"hi\"'"),
            [["echo", "it's", "say \"hi\""]]
        );
    }

    #[test]
    fn lists_pipelines_and_redirections() {
        let var = |_: &str| -> Option<String> { None };
        let items = parse("cd /tmp && wget x|sh; id || true &", &var).expect("parses");
        let shape: Vec<(Joiner, usize)> = items.iter().map(|(j, p)| (*j, p.len())).collect();
        assert_eq!(
            shape,
            [
                (Joiner::Always, 1),
                (Joiner::And, 2),
                (Joiner::Always, 1),
                (Joiner::Or, 1)
            ]
        );
        let items = parse(
            "echo x >/tmp/a 2>/dev/null; cat</etc/passwd 2>&1 >> b",
            &var,
        )
        .expect("ok");
        assert_eq!(
            items[0].1[0].redirects,
            [
                Redirect::Out {
                    fd: 1,
                    path: "/tmp/a".into(),
                    append: false
                },
                Redirect::Out {
                    fd: 2,
                    path: "/dev/null".into(),
                    append: false
                }
            ]
        );
        assert_eq!(items[1].1[0].redirects.len(), 3);
        assert!(parse("ls *.txt", &var).expect("ok")[0].1[0].argv[1].glob);
    }

    #[test]
    fn errors_are_bash_errors() {
        let var = |_: &str| -> Option<String> { None };
        assert_eq!(
            parse("echo 'oops", &var),
            Err(SyntaxError(
                "unexpected EOF while looking for matching `''".into()
            ))
        );
        assert_eq!(
            parse("| ls", &var),
            Err(SyntaxError("syntax error near unexpected token `|'".into()))
        );
        assert!(parse("ls &&", &var).is_err());
        assert!(parse(&"a;".repeat(MAX_COMMANDS + 2), &var).is_err());
    }
}
