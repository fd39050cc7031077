//! Errors that point into a TOML source file (profiles, the daemon's configuration), and the
//! byte-offset → line/column mapping they need.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A file that cannot be read, does not parse, or holds an invalid value. The message
/// always starts with the file (and the line and key when there is one).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl SourceError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SourceError::Read { path, .. }
            | SourceError::Syntax { path, .. }
            | SourceError::Invalid { path, .. } => path,
        }
    }

    /// The 1-based line the error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SourceError::Syntax { line, .. } | SourceError::Invalid { line, .. } => Some(*line),
            SourceError::Read { .. } => None,
        }
    }

    /// An invalid value at `line` of `path`.
    pub fn invalid(
        path: &Path,
        line: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SourceError::Invalid {
            path: path.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One TOML document: its path and text, for turning spans into errors.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Source { path, text }
    }

    /// 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        line(self.text, offset)
    }

    /// An invalid value at `span`.
    pub fn invalid(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> SourceError {
        SourceError::invalid(self.path, self.line(span.start), key, message)
    }

    /// A TOML syntax or type error, at its position.
    pub fn syntax(&self, e: &toml::de::Error) -> SourceError {
        let offset = e.span().map_or(0, |s| s.start);
        SourceError::Syntax {
            path: self.path.to_path_buf(),
            line: line(self.text, offset),
            column: column(self.text, offset),
            message: e.message().trim().to_string(),
        }
    }
}

/// 1-based line of byte `offset` in `text`.
pub fn line(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// 1-based column (in characters) of byte `offset` in `text`.
pub fn column(text: &str, offset: usize) -> usize {
    let end = floor_char_boundary(text, offset.min(text.len()));
    let start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    text[start..end].chars().count() + 1
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(super::line(t, 0), 1);
        assert_eq!(super::line(t, 6), 2);
        assert_eq!(super::column(t, 12), 6, "characters, not bytes");
        assert_eq!(super::line(t, 999), 3);
        // an offset inside a multi-byte character does not panic
        assert_eq!(super::column(t, 8), 2);
    }
}
