//! The profiles on the daemon's profile path, as `ListProfiles` and `CheckProfile` report them.

use super::ServiceManager;
use crate::api::ProfileInfo;
use crate::api::types::ProfileCheck;
use crate::confine::check_profile;

impl ServiceManager {
    pub fn profiles(&self) -> Vec<ProfileInfo> {
        let loader = Self::loader(&self.config());
        loader
            .list()
            .into_iter()
            .map(|(name, path)| {
                let (description, error) = match loader.load_file(&path).and_then(check_profile) {
                    Ok((p, _)) => (p.description.unwrap_or_default(), String::new()),
                    Err(e) => (String::new(), e.to_string()),
                };
                ProfileInfo {
                    name,
                    path: path.display().to_string(),
                    description,
                    error,
                }
            })
            .collect()
    }

    /// Checks a profile file (path) or name: (ok, error, notes).
    pub fn check_profile(&self, name_or_path: &str) -> ProfileCheck {
        let loader = Self::loader(&self.config());
        match loader.load(name_or_path).and_then(check_profile) {
            Ok((_, notes)) => (true, String::new(), notes),
            Err(e) => (false, e.to_string(), Vec::new()),
        }
    }
}
