//! Rendering for `hardenctl`: one module per command group. Each command returns whether the
//! state it reports is good ([`Exit`]) or an error; `--json` prints exactly one document.

pub mod audit;
pub mod client;
mod dispatch;
pub mod doctor;
pub mod exec;
pub mod identity;
pub mod integrity;
pub mod json;
pub mod keylime;
pub mod manager;
pub mod profile;
pub mod report;
pub mod sbom;
pub mod verity;
pub mod vulns;

pub use dispatch::{run, run_matched};

use std::io::IsTerminal;

use serde::Serialize;

/// The answer of a command: good (exit 0), "answered, but the state is bad" (exit 3), or
/// answered for some inputs while another could not be read at all (exit 1, like an error;
/// the answer was printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Bad,
    InputError,
}

/// A command failure (exit 1 unless the error says otherwise).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    Exec(#[from] crate::confine::exec::ExecError),
    #[error("{0}")]
    Usage(String),
    /// An input file is missing, unreadable or not what it should be (exit 1).
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    NotRunning(String),
    #[error("permission denied: {0}")]
    AccessDenied(String),
    #[error("{0}")]
    Daemon(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Exec(e) => u8::try_from(e.exit_code()).unwrap_or(1),
            CliError::Usage(_) => 2,
            CliError::Profile(_)
            | CliError::Input(_)
            | CliError::NotRunning(_)
            | CliError::AccessDenied(_)
            | CliError::Daemon(_) => 1,
        }
    }
}

/// Where and how to print.
pub struct Output {
    pub json: bool,
    pub color: bool,
    /// `--quiet`: nothing on stdout unless --json; errors still on stderr.
    pub quiet: bool,
    /// Documents go to stderr (`exec`: stdout belongs to the program).
    pub json_to_stderr: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        let color =
            !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output {
            json,
            color,
            quiet: false,
            json_to_stderr: false,
        }
    }

    fn emit(&self, doc: &serde_json::Value, pretty: bool) {
        let text = if pretty {
            serde_json::to_string_pretty(doc)
        } else {
            serde_json::to_string(doc)
        };
        match text {
            Ok(s) if self.json_to_stderr => eprintln!("{s}"),
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("hardenctl: cannot encode output: {e}"),
        }
    }

    /// Prints the command's one JSON document (docs/json.md: `version`, null for absent,
    /// RFC 3339 times).
    pub fn json<T: Serialize>(&self, value: &T) {
        match json::document(value) {
            Ok(d) => self.emit(&d, true),
            Err(e) => eprintln!("hardenctl: {e}"),
        }
    }

    /// One document on one line (`events --follow`: a stream of documents).
    pub fn json_line<T: Serialize>(&self, value: &T) {
        match json::document(value) {
            Ok(d) => self.emit(&d, false),
            Err(e) => eprintln!("hardenctl: {e}"),
        }
    }

    /// Reports an error: the error document in --json mode (where documents go), text on
    /// stderr otherwise (control characters escaped: errors quote names from outside).
    pub fn error(&self, e: &CliError) {
        let text = tidy(&e.to_string());
        if self.json {
            self.emit(&json::error_document(&text, e.exit_code()), true);
        } else {
            eprintln!("hardenctl: {}", safe(&text));
        }
    }

    /// `text` in green/red/yellow when printing to a terminal.
    pub fn paint(&self, text: &str, good: Option<bool>) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match good {
            Some(true) => "32",
            Some(false) => "31",
            None => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// The colour sequences [`Output::paint`] writes: the only control sequences hardenctl's
/// human output ever carries.
const PAINT: [&str; 4] = ["\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[0m"];

/// `s` safe for a terminal: every control character (C0, DEL, C1) and bidirectional
/// override written as `\xNN` (beyond ASCII as its UTF-8 bytes), so a file or unit name
/// cannot move the cursor, erase lines, retitle the terminal or reorder what it shows. With `keep_paint`, hardenctl's own colour sequences stay.
fn escape_controls(s: &str, keep_paint: bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write;
    // C0, DEL, C1, and the bidirectional overrides and isolates, which reorder what a
    // terminal shows (a name could make `evil` read as `live`)
    let is_control =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if keep_paint {
            if let Some(p) = PAINT.iter().find(|p| rest.starts_with(**p)) {
                out.push_str(p);
                rest = &rest[p.len()..];
                continue;
            }
        }
        if is_control(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.into()
}

/// A message as a user should read it: without the library noise Rust and zbus add
/// (`" (os error 2)"`, `"I/O error: "`).
pub fn tidy(s: &str) -> String {
    let mut out = s.replace("I/O error: ", "");
    while let Some(i) = out.find(" (os error ") {
        match out[i..].find(')') {
            Some(j) => out.replace_range(i..i + j + 1, ""),
            None => break,
        }
    }
    out
}

/// `s` (a name, path or message from outside hardenctl) safe to print on a terminal.
pub fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, false)
}

/// Left-aligns rows into columns (two spaces apart). Control characters in cells are
/// escaped (see [`safe`]); colour from [`Output::paint`] is kept.
pub fn columns(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| escape_controls(c, true).into_owned())
                .collect()
        })
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; width];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(visible_len(c));
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - visible_len(c) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Length without ANSI colour sequences.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_esc = false;
    for ch in s.chars() {
        match (in_esc, ch) {
            (false, '\x1b') => in_esc = true,
            (true, 'm') => in_esc = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_ignoring_colour() {
        let rows = vec![
            vec![
                "a".to_string(),
                "\x1b[32mok\x1b[0m".to_string(),
                "x".to_string(),
            ],
            vec!["long".to_string(), "bad".to_string(), "y".to_string()],
        ];
        let s = super::columns(&rows);
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[1], "long  bad  y");
        assert!(lines[0].starts_with("a     \x1b[32mok\x1b[0m   x"));
    }

    #[test]
    fn control_characters_in_names_are_escaped_and_paint_is_kept() {
        // a crafted name: cursor up, erase line, a title change, a C1 CSI
        let evil = "a\x1b[1A\x1b[2Kb\x1b]0;pwn\x07c\u{9b}2Jd";
        assert_eq!(
            super::safe(evil),
            "a\\x1b[1A\\x1b[2Kb\\x1b]0;pwn\\x07c\\xc2\\x9b2Jd"
        );
        let rows = vec![vec![evil.to_string(), "\x1b[31mbad\x1b[0m".to_string()]];
        let s = super::columns(&rows);
        assert!(!s.contains("\x1b[1A") && !s.contains('\x07') && !s.contains('\u{9b}'));
        assert!(s.contains("\x1b[31mbad\x1b[0m"), "{s:?}");
        assert_eq!(super::safe("plain/päth"), "plain/päth");
        // a right-to-left override: its UTF-8 bytes, shown
        assert_eq!(super::safe("a\u{202e}b"), "a\\xe2\\x80\\xaeb");
    }

    #[test]
    fn os_error_numbers_are_not_shown() {
        assert_eq!(
            super::tidy(
                "cannot connect: I/O error: No such file or directory (os error 2); x (os error 13)"
            ),
            "cannot connect: No such file or directory; x"
        );
    }
}
