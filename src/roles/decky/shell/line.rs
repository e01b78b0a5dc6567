//! The tty line discipline an interactive session runs its input through: echo, erase
//! (backspace and DEL, a whole UTF-8 character at a time), kill (`^U`), interrupt (`^C`),
//! end of file (`^D` on an empty line) and line ends (CR, CRLF, LF, and telnet's CR NUL).
//! Escape sequences (arrow keys, function keys) are swallowed, as a shell without history
//! editing would; a line never holds more than [`MAX_LINE`] bytes.

/// Longest line kept; further bytes are dropped (and not echoed) until the line ends.
pub const MAX_LINE: usize = 4096;

/// What the line discipline made of some input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes to write back to the terminal.
    Echo(Vec<u8>),
    /// A complete line, without its line end.
    Line(Vec<u8>),
    /// `^C`: the current line is discarded.
    Interrupt,
    /// `^D` on an empty line.
    Eof,
}

/// Where the editor is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// Inside a CSI (`ESC [`) or SS3 (`ESC O`) sequence, until its final byte.
    Sequence,
}

/// Turns raw terminal input into echo, lines and signals.
#[derive(Debug, Clone)]
pub struct LineEditor {
    buf: Vec<u8>,
    after_cr: bool,
    escape: Escape,
    echo: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An empty line with echo on.
    pub fn new() -> Self {
        LineEditor {
            buf: Vec::new(),
            after_cr: false,
            escape: Escape::None,
            echo: true,
        }
    }

    /// Turns echo of typed characters on or off (off while a password is read); line ends
    /// are still echoed, as a tty with `-echo` but `icanon` does.
    pub fn set_echo(&mut self, on: bool) {
        self.echo = on;
    }

    /// Runs `bytes` through the discipline.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        let mut echo = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' || b == 0 {
                    continue;
                }
            }
            match self.escape {
                Escape::Start => {
                    self.escape = if b == b'[' || b == b'O' {
                        Escape::Sequence
                    } else {
                        Escape::None
                    };
                    continue;
                }
                Escape::Sequence => {
                    if (0x40..=0x7e).contains(&b) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::None => {}
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    echo.extend_from_slice(b"\r\n");
                    flush(&mut out, &mut echo);
                    out.push(Input::Line(std::mem::take(&mut self.buf)));
                }
                0x03 => {
                    echo.extend_from_slice(b"^C\r\n");
                    flush(&mut out, &mut echo);
                    self.buf.clear();
                    out.push(Input::Interrupt);
                }
                0x04 => {
                    if self.buf.is_empty() {
                        flush(&mut out, &mut echo);
                        out.push(Input::Eof);
                    }
                }
                0x08 | 0x7f => {
                    if self.erase_char() && self.echo {
                        echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                0x15 => {
                    while self.erase_char() {
                        if self.echo {
                            echo.extend_from_slice(b"\x08 \x08");
                        }
                    }
                }
                0x1b => self.escape = Escape::Start,
                b if b < 0x20 && b != b'\t' => {}
                b => {
                    if self.buf.len() < MAX_LINE {
                        self.buf.push(b);
                        if self.echo {
                            echo.push(b);
                        }
                    }
                }
            }
        }
        flush(&mut out, &mut echo);
        out
    }

    /// Removes the last character (all bytes of a UTF-8 one); false when the line is empty.
    fn erase_char(&mut self) -> bool {
        if self.buf.is_empty() {
            return false;
        }
        while let Some(b) = self.buf.pop() {
            if !(0x80..0xc0).contains(&b) {
                break;
            }
        }
        true
    }
}

fn flush(out: &mut Vec<Input>, echo: &mut Vec<u8>) {
    if !echo.is_empty() {
        out.push(Input::Echo(std::mem::take(echo)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(inputs: &[Input]) -> Vec<Vec<u8>> {
        inputs
            .iter()
            .filter_map(|i| match i {
                Input::Line(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn line_ends_of_every_kind_end_one_line() {
        let mut e = LineEditor::new();
        let got = e.feed(b"ls\r\npwd\rid\nw\r\0x\r");
        assert_eq!(lines(&got), [&b"ls"[..], b"pwd", b"id", b"w", b"x"]);
        assert!(e.feed(b"\n").is_empty(), "LF after a CR in the last chunk");
    }

    #[test]
    fn erase_kill_interrupt_and_eof() {
        let mut e = LineEditor::new();
        let got = e.feed(b"lsx\x7f -l\x08a\r");
        assert_eq!(lines(&got), [b"ls -a"]);
        assert_eq!(
            got[0],
            Input::Echo(b"lsx\x08 \x08 -l\x08 \x08a\r\n".to_vec())
        );
        let got = e.feed("héé\x7f\r".as_bytes());
        assert_eq!(lines(&got), ["hé".as_bytes()]);
        let got = e.feed(b"rm -rf\x15id\r");
        assert_eq!(lines(&got), [b"id"]);
        assert_eq!(
            e.feed(b"abc\x03"),
            [Input::Echo(b"abc^C\r\n".to_vec()), Input::Interrupt]
        );
        assert_eq!(e.feed(b"\x04"), [Input::Eof]);
        assert_eq!(
            e.feed(b"a\x04"),
            [Input::Echo(b"a".to_vec())],
            "^D mid-line"
        );
    }

    #[test]
    fn escapes_are_swallowed_and_lines_capped() {
        let mut e = LineEditor::new();
        assert_eq!(lines(&e.feed(b"\x1b[A\x1bOBi\x1b[1;5Cd\r")), [b"id"]);
        let long = vec![b'a'; MAX_LINE + 100];
        let got = e.feed(&long);
        assert_eq!(got, [Input::Echo(vec![b'a'; MAX_LINE])]);
        assert_eq!(lines(&e.feed(b"\r"))[0].len(), MAX_LINE);
    }

    #[test]
    fn no_echo_still_ends_lines() {
        let mut e = LineEditor::new();
        e.set_echo(false);
        assert_eq!(
            e.feed(b"s3cret\r"),
            [
                Input::Echo(b"\r\n".to_vec()),
                Input::Line(b"s3cret".to_vec())
            ]
        );
    }
}
