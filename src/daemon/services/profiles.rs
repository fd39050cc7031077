//! The profiles on the daemon's profile path, as `ListProfiles` and `CheckProfile` report
//! them. For a caller who is not root the loader is restricted: names on the profile path
//! only (never a path), files every user may read, includes the same — so an answer holds
//! nothing the caller could not read, and says nothing about other paths. Every read runs
//! on a worker; the files are opened without blocking (a FIFO is refused, not waited on).

use std::path::Path;

use super::ServiceManager;
use crate::api::ProfileInfo;
use crate::api::types::ProfileCheck;
use crate::confine::check_profile;
use crate::profile::{Profile, ProfileError, ProfileLoader};

/// Who asks: root may name any path; anyone else gets the restricted loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Root,
    Unprivileged,
}

fn answer(r: Result<(Profile, Vec<String>), ProfileError>) -> ProfileCheck {
    match r {
        Ok((_, notes)) => (true, String::new(), notes),
        Err(e) => (false, e.to_string(), Vec::new()),
    }
}

impl ServiceManager {
    fn loader_for(&self, caller: Caller) -> ProfileLoader {
        let l = Self::loader(&self.config());
        match caller {
            Caller::Root => l,
            Caller::Unprivileged => l.restricted(),
        }
    }

    /// Runs `f` on the pool for `caller`.
    async fn for_caller<T: Send + 'static>(
        &self,
        caller: Caller,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, crate::daemon::workers::WorkerError> {
        match caller {
            Caller::Root => self.blocking(what, f).await,
            Caller::Unprivileged => self.public_blocking(what, f).await,
        }
    }

    pub async fn profiles(&self, caller: Caller) -> Vec<ProfileInfo> {
        let loader = self.loader_for(caller);
        let listed = self
            .for_caller(caller, "listing profiles", move || {
                loader
                    .list()
                    .into_iter()
                    .map(|(name, path)| {
                        let (description, error) =
                            match loader.load_file(&path).and_then(check_profile) {
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
            })
            .await;
        listed.unwrap_or_else(|e| {
            vec![ProfileInfo {
                name: String::new(),
                path: String::new(),
                description: String::new(),
                error: e.to_string(),
            }]
        })
    }

    /// Checks a profile by name (or, for root, by path): (ok, error, notes).
    pub async fn check_profile(&self, name_or_path: &str, caller: Caller) -> ProfileCheck {
        let loader = self.loader_for(caller);
        let name = name_or_path.to_string();
        self.for_caller(caller, "checking a profile", move || {
            answer(loader.load(&name).and_then(check_profile))
        })
        .await
        .unwrap_or_else(|e| (false, e.to_string(), Vec::new()))
    }

    /// Checks a profile given as text (`label` names it in errors); includes are looked up
    /// on the profile path (and, for root, may be paths).
    pub async fn check_document(&self, text: &str, label: &str, caller: Caller) -> ProfileCheck {
        let loader = self.loader_for(caller);
        let (text, label) = (text.to_string(), label.to_string());
        self.for_caller(caller, "checking a profile", move || {
            answer(
                loader
                    .load_document(&text, Path::new(&label))
                    .and_then(check_profile),
            )
        })
        .await
        .unwrap_or_else(|e| (false, e.to_string(), Vec::new()))
    }
}
