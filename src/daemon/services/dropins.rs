//! hardend's drop-ins on disk: which units carry one, writing and removing them.

use std::path::{Path, PathBuf};

use super::ServiceError;
use crate::fsutil;
use crate::systemd::dropin::{self, DROPIN_NAME, valid_unit_name};

/// The profile named by our drop-in at `path`, if there is one of ours.
pub fn profile_of(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .as_deref()
        .and_then(dropin::parse_marker)
}

/// (unit, profile) for every drop-in of ours under `dir`, sorted.
pub fn scan(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let unit = name.strip_suffix(".d")?;
            if !valid_unit_name(unit) {
                return None;
            }
            Some((unit.to_string(), profile_of(&e.path().join(DROPIN_NAME))?))
        })
        .collect();
    out.sort();
    out
}

/// The drop-in path of `unit` under `dir`.
pub fn path(dir: &Path, unit: &str) -> PathBuf {
    dropin::dropin_path(dir, unit)
}

/// Writes `content` to `path` atomically (creating the `<unit>.d` directory).
pub fn write(path: &Path, content: &str) -> Result<(), ServiceError> {
    let fail =
        |e: std::io::Error| ServiceError::Failed(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all_mode(dir, 0o755).map_err(fail)?;
    }
    fsutil::write_atomic(path, content.as_bytes(), 0o644).map_err(fail)
}

/// Removes the drop-in at `path`, and its directory when nothing else is in it.
pub fn remove(path: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ServiceError::Failed(format!(
                "cannot remove {}: {e}",
                path.display()
            )));
        }
    }
    if let Some(dir) = path.parent() {
        // Only if empty: other drop-ins of the admin stay.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}
