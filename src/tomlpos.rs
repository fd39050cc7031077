//! Line and column numbers for TOML errors and spanned values.

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
    let end = offset.min(text.len());
    let start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    text[start..end].chars().count() + 1
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
    }
}
