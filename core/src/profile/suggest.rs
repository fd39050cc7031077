//! "Did you mean": the known name closest to a misspelt one (strsim's Levenshtein distance,
//! the crate clap uses for the same purpose).

/// The candidate closest to `name` within an edit distance of about a third of its length
/// (at least 1, at most 3), if there is one.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        // on a tie the candidate of the same length (a wrong letter, not a missing one)
        .min_by_key(|(d, c)| (*d, c.len().abs_diff(name.len()), *c))
        .map(|(_, c)| c)
}

/// `; did you mean "X"?` for `name`, or "".
pub fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_far_ones_not() {
        let errnos = ["EPERM", "EACCES", "ENOSYS", "EROFS"];
        assert_eq!(closest("EACESS", errnos), Some("EACCES"));
        assert_eq!(closest("eperm", errnos), Some("EPERM"));
        assert_eq!(closest("EWHATEVER", errnos), None);
        assert_eq!(
            hint("mosquito", ["mosquitto", "base"]),
            "; did you mean \"mosquitto\"?"
        );
        assert_eq!(hint("zzz", ["mosquitto"]), "");
        assert_eq!(closest("inet7", ["inet", "inet6"]), Some("inet6"));
    }
}
