//! Running a line: parsing, variable and glob expansion, lists, pipelines and
//! redirections, child shells (`sh -c`, `| sh`), and the file access checks every
//! command goes through. Commands themselves are in [`super::commands`].
use std::time::Duration;

use time::OffsetDateTime;

use super::{MAX_HISTORY, MAX_LINE, MAX_OUTPUT, Outcome, Shell, commands, crlf, files, fs, parse};

impl Shell {
    pub(super) async fn run(&mut self, line: &[u8]) -> Outcome {
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]).into_owned();
        let text = text.trim();
        if text.is_empty() {
            return Outcome::default();
        }
        self.log_command(text).await;
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(text.to_owned());
        self.current = text.to_owned();
        let mut outcome = self.run_parsed(text).await;
        if self.tty {
            outcome.output = crlf(&outcome.output);
            outcome.output.truncate(MAX_OUTPUT);
        }
        outcome
    }

    /// Parses and runs `text`, emitting the events it caused; output has bare `\n`.
    pub(super) async fn run_parsed(&mut self, text: &str) -> Outcome {
        self.exit = None;
        self.delay = Duration::ZERO;
        let mut output = Vec::new();
        let home = self.env.get("HOME").cloned();
        let vars = move |_: &str| home.clone();
        match parse::parse(text, &vars) {
            Err(parse::SyntaxError(msg)) => {
                output.extend_from_slice(format!("{}: {msg}\n", self.err_prefix()).as_bytes());
                self.status = 2;
            }
            Ok(items) => {
                for (joiner, pipeline) in items {
                    let run = match joiner {
                        parse::Joiner::Always => true,
                        parse::Joiner::And => self.status == 0,
                        parse::Joiner::Or => self.status != 0,
                    };
                    if !run {
                        continue;
                    }
                    let out = self.pipeline(&pipeline);
                    let room = MAX_OUTPUT.saturating_sub(output.len());
                    output.extend_from_slice(&out[..out.len().min(room)]);
                    if self.exit.is_some() || self.pending.is_some() {
                        break;
                    }
                }
            }
        }
        for m in std::mem::take(&mut self.events) {
            self.ctx.emitter.emit(m).await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let exit = match self.exit.take() {
            Some(code) => {
                let left = self.leave(code);
                output.extend_from_slice(&left.output);
                left.exit
            }
            None => None,
        };
        Outcome { output, exit }
    }

    /// Runs `script` (from `sh -c` or a pipe into `sh`) in a child shell: its `exit` ends
    /// only the child; returns its output and status.
    pub(super) fn run_script(&mut self, script: &str) -> (Vec<u8>, i32) {
        if self.depth >= 4 {
            return (Vec::new(), 0);
        }
        self.depth += 1;
        let home = self.env.get("HOME").cloned();
        let vars = move |_: &str| home.clone();
        let saved_exit = self.exit.take();
        let mut output = Vec::new();
        for line in script.lines().take(parse::MAX_COMMANDS) {
            match parse::parse(line, &vars) {
                Err(parse::SyntaxError(msg)) => {
                    output.extend_from_slice(format!("sh: 1: {msg}\n").as_bytes());
                    self.status = 2;
                }
                Ok(items) => {
                    for (joiner, pipeline) in items {
                        let run = match joiner {
                            parse::Joiner::Always => true,
                            parse::Joiner::And => self.status == 0,
                            parse::Joiner::Or => self.status != 0,
                        };
                        if run {
                            let out = self.pipeline(&pipeline);
                            let room = MAX_OUTPUT.saturating_sub(output.len());
                            output.extend_from_slice(&out[..out.len().min(room)]);
                        }
                        if self.exit.is_some() {
                            break;
                        }
                    }
                }
            }
            if let Some(code) = self.exit.take() {
                self.status = code;
                break;
            }
        }
        self.exit = saved_exit;
        self.pending = None;
        self.depth -= 1;
        (output, self.status)
    }

    /// Runs one pipeline; returns what it wrote to the terminal.
    pub(super) fn pipeline(&mut self, pipeline: &[parse::Simple]) -> Vec<u8> {
        let mut terminal = Vec::new();
        let mut stdin = Vec::new();
        let last = pipeline.len().saturating_sub(1);
        for (i, cmd) in pipeline.iter().enumerate() {
            let cmd = self.substitute(cmd);
            let argv = self.expand_globs(&cmd.argv);
            let mut input = std::mem::take(&mut stdin);
            for r in &cmd.redirects {
                if let parse::Redirect::In(path) = r {
                    match self.read_file(path) {
                        Ok(data) => input = data,
                        Err(e) => {
                            terminal.extend_from_slice(
                                format!("{}: {path}: {}\n", self.err_prefix(), e.text()).as_bytes(),
                            );
                            self.status = 1;
                            return terminal;
                        }
                    }
                }
            }
            let redirected = cmd
                .redirects
                .iter()
                .any(|r| matches!(r, parse::Redirect::Out { fd: 1 | 3, .. }));
            let mut io = commands::Io {
                tty: self.tty && i == last && !redirected,
                ..commands::Io::default()
            };
            self.status = commands::dispatch(self, &argv, &input, &mut io);
            let (mut out, mut err) = (io.out, io.err);
            for r in &cmd.redirects {
                match r {
                    parse::Redirect::ErrToOut => {
                        let mut both = std::mem::take(&mut err);
                        both.append(&mut out);
                        out = both;
                    }
                    parse::Redirect::Out { fd, path, append } => {
                        let data = match fd {
                            1 => std::mem::take(&mut out),
                            2 => std::mem::take(&mut err),
                            _ => {
                                let mut both = std::mem::take(&mut err);
                                both.append(&mut out);
                                both
                            }
                        };
                        if let Err(e) = self.write_file(path, &data, *append) {
                            terminal.extend_from_slice(
                                format!("{}: {path}: {}\n", self.err_prefix(), e.text()).as_bytes(),
                            );
                            self.status = 1;
                        }
                    }
                    parse::Redirect::In(_) => {}
                }
            }
            terminal.append(&mut err);
            if i == last {
                terminal.append(&mut out);
            } else {
                stdin = out;
            }
            if self.exit.is_some() || self.pending.is_some() {
                break;
            }
        }
        terminal
    }

    /// `cmd` with its variables substituted from the environment as it is now.
    pub(super) fn substitute(&self, cmd: &parse::Simple) -> parse::Simple {
        let status = self.status;
        let pid = 2_000 + self.ctx.persona.number("shell-pid", 30_000);
        let prefix = self.err_prefix();
        let vars = |name: &str| match name {
            "?" => Some(status.to_string()),
            "$" => Some(pid.to_string()),
            "0" => Some(prefix.split(':').next().unwrap_or("bash").to_owned()),
            "#" => Some("0".to_owned()),
            n => self.env.get(n).cloned(),
        };
        let word = |w: &parse::Word| parse::Word {
            text: parse::substitute(&w.text, &vars),
            glob: w.glob,
        };
        parse::Simple {
            argv: cmd.argv.iter().map(word).collect(),
            redirects: cmd
                .redirects
                .iter()
                .map(|r| match r {
                    parse::Redirect::Out { fd, path, append } => parse::Redirect::Out {
                        fd: *fd,
                        path: parse::substitute(path, &vars),
                        append: *append,
                    },
                    parse::Redirect::In(path) => {
                        parse::Redirect::In(parse::substitute(path, &vars))
                    }
                    parse::Redirect::ErrToOut => parse::Redirect::ErrToOut,
                })
                .collect(),
        }
    }

    /// Words with their globs matched against the file system, one path component at a
    /// time (unmatched globs stay as typed, as bash leaves them).
    pub(super) fn expand_globs(&self, words: &[parse::Word]) -> Vec<String> {
        let mut out = Vec::new();
        for w in words {
            if !w.glob {
                out.push(w.text.clone());
                continue;
            }
            let absolute = w.text.starts_with('/');
            let start = if absolute {
                "/".to_owned()
            } else {
                self.cwd.clone()
            };
            let mut found: Vec<(String, Vec<String>)> = vec![(start, Vec::new())];
            for comp in w.text.split('/').filter(|c| !c.is_empty()) {
                let mut next = Vec::new();
                for (abs, shown) in found {
                    let child = |name: &str| {
                        let a = if abs == "/" {
                            format!("/{name}")
                        } else {
                            format!("{abs}/{name}")
                        };
                        let mut s = shown.clone();
                        s.push(name.to_owned());
                        (a, s)
                    };
                    if comp.contains(['*', '?']) {
                        for (name, _) in self.fs.list(&abs).unwrap_or_default() {
                            if (comp.starts_with('.') || !name.starts_with('.'))
                                && files::wildcard(comp, &name)
                            {
                                next.push(child(&name));
                            }
                        }
                    } else {
                        next.push(child(comp));
                    }
                    if next.len() > 4096 {
                        break;
                    }
                }
                found = next;
            }
            let mut matched: Vec<String> = found
                .into_iter()
                .filter(|(abs, _)| self.fs.get(abs).is_ok())
                .map(|(_, shown)| {
                    let joined = shown.join("/");
                    if absolute {
                        format!("/{joined}")
                    } else {
                        joined
                    }
                })
                .collect();
            if matched.is_empty() {
                out.push(w.text.clone());
            } else {
                matched.sort();
                out.append(&mut matched);
            }
        }
        out
    }

    /// `path` made absolute against the working directory.
    pub(super) fn abs(&self, path: &str) -> String {
        let home = self.env.get("HOME").map_or("/", String::as_str);
        fs::absolute(&self.cwd, home, path)
    }

    /// Whether the effective user may read `path`.
    pub(super) fn may_read(&self, real: &str, node: &fs::Node) -> bool {
        if self.user == "root" {
            return true;
        }
        if node.owner == self.user {
            return true;
        }
        let bits = if node.is_dir() { 0o005 } else { 0o004 };
        let others = node.mode & bits == bits;
        let in_private = real.starts_with("/root") && real != "/root";
        others && !in_private
    }

    pub(super) fn read_file(&self, path: &str) -> Result<Vec<u8>, fs::FsError> {
        let (real, node) = self.fs.get(&self.abs(path))?;
        if !self.may_read(&real, node) {
            return Err(fs::FsError::Denied);
        }
        match &node.kind {
            fs::Kind::Dir => Err(fs::FsError::IsDir),
            fs::Kind::File { data, .. } => Ok(data.clone()),
            _ => Ok(Vec::new()),
        }
    }

    pub(super) fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        append: bool,
    ) -> Result<(), fs::FsError> {
        let abs = self.abs(path);
        if !self.may_write(&abs) {
            return Err(fs::FsError::Denied);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let user = self.user.clone();
        self.fs.write(&abs, data, append, &user, now)
    }

    /// Whether the effective user may create or change `abs`.
    pub(super) fn may_write(&self, abs: &str) -> bool {
        if self.user == "root" {
            return true;
        }
        let home = self
            .machine
            .account(&self.user)
            .map_or_else(String::new, |a| a.home.clone());
        let writable = ["/tmp", "/var/tmp", "/dev/shm", "/dev/null"];
        (!home.is_empty() && (abs == home || abs.starts_with(&format!("{home}/"))))
            || writable
                .iter()
                .any(|w| abs == *w || abs.starts_with(&format!("{w}/")))
    }
}
