//! Rendering for `hardenctl`: one module per command group. Each command returns whether the
//! state it reports is good ([`Exit`]) or an error; `--json` prints exactly one document.

pub mod client;
mod dispatch;
pub mod exec;
pub mod identity;
pub mod integrity;
pub mod manager;
pub mod profile;
pub mod verity;

pub use dispatch::run;

use std::io::IsTerminal;

use serde::Serialize;

/// The answer of a command: good (exit 0) or "answered, but the state is bad" (exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Bad,
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
}

impl Output {
    pub fn new(json: bool) -> Self {
        let color =
            !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output { json, color }
    }

    /// Prints a JSON document on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("hardenctl: cannot encode output: {e}"),
        }
    }

    /// Reports an error: JSON on stdout in --json mode, text on stderr otherwise.
    pub fn error(&self, e: &CliError) {
        if self.json {
            self.json(&serde_json::json!({ "error": e.to_string() }));
        } else {
            eprintln!("hardenctl: {e}");
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

/// Left-aligns rows into columns (two spaces apart).
pub fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; width];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(visible_len(c));
        }
    }
    let mut out = String::new();
    for r in rows {
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
}
