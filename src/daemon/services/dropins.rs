//! hardend's drop-ins on disk: which units carry one, writing and removing them.

use std::path::{Path, PathBuf};

use super::ServiceError;
use crate::fsutil;
use crate::systemd::dropin;

pub use crate::systemd::dropin::{profile_of, scan};

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
