//! Which release a system is: the key of `<root>/etc/os-release` the feed's format matches
//! on (`VERSION_CODENAME` for the tracker, `VERSION_ID` for OSV's `Debian:<n>`).

use std::path::Path;

use super::feed::Format;

/// The value of `key` (`VERSION_CODENAME`) in `<root>/etc/os-release`, quotes removed.
fn os_release(root: &Path, key: &str) -> Result<Option<String>, std::io::Error> {
    // resolved inside `root` (a mounted image's absolute links are the image's), bounded,
    // never blocking
    let text = crate::sbom::rootfs::read_to_string(root, Path::new("etc/os-release"), 64 << 10)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty()))
}

/// The release of the system at `root` as `format` names releases, or an error naming the
/// file and what is wrong with it.
pub fn of_root(root: &Path, format: Format) -> Result<String, String> {
    let key = match format {
        Format::Tracker => "VERSION_CODENAME",
        Format::Osv => "VERSION_ID",
    };
    let file = root.join("etc/os-release");
    match os_release(root, key) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(format!("{}: no {key}; name the release", file.display())),
        Err(e) => Err(format!("{}: {e}; name the release", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codename_or_version_by_format_and_a_missing_key_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap();
        assert_eq!(of_root(d.path(), Format::Tracker).unwrap(), "bookworm");
        assert_eq!(of_root(d.path(), Format::Osv).unwrap(), "12");
        std::fs::write(d.path().join("etc/os-release"), "VERSION_CODENAME_X=1\n").unwrap();
        let e = of_root(d.path(), Format::Tracker).unwrap_err();
        assert!(
            e.ends_with("etc/os-release: no VERSION_CODENAME; name the release"),
            "{e}"
        );
    }
}
