//! Acceptance: taking the current state of paths into the baseline — by the admin, or for
//! what dpkg vouches for — always all or nothing (the baseline in memory is the one on disk).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::publish::MAX_HOLD;
use super::{Inner, IntegrityService, joined};
use crate::integrity::dpkg::{DPKG_ADMIN, DpkgDb, md5_file};
use crate::integrity::entry::{Kind, compare};
use crate::integrity::key::MacKey;
use crate::integrity::log::Event;
use crate::integrity::monitor::{Update, read_entry, read_staged};
use crate::integrity::{Attrs, ChangeKind, IntegrityError, Violation};

impl Inner {
    /// Reads `paths`, takes them into the baseline and stores it; when storing fails the
    /// baseline in memory goes back to what it was. Runs on a blocking thread.
    fn commit_accept(
        &self,
        paths: &[PathBuf],
        key: &MacKey,
    ) -> Result<Vec<Update>, IntegrityError> {
        let staged = self.state().monitor.stage(paths)?;
        let read = read_staged(staged)?;
        let (saved, updates, b) = {
            let mut s = self.state();
            let saved = s.monitor.baseline.clone();
            let updates = s.monitor.commit(read);
            (saved, updates, s.monitor.baseline.clone())
        };
        if let Some(b) = b
            && let Err(e) = self.store(&b, key)
        {
            // not on disk, so not in memory either
            self.state().monitor.revert(saved, paths);
            return Err(e);
        }
        Ok(updates)
    }
}

impl IntegrityService {
    /// Takes the current state of `paths` into the baseline.
    pub async fn accept(&self, paths: Vec<PathBuf>) -> Result<u32, IntegrityError> {
        self.inner.enabled_or("Accept")?;
        let _g = self.inner.busy.lock().await;
        let key = self.current_key()?;
        let inner = self.inner.clone();
        joined(
            tokio::task::spawn_blocking(move || {
                let updates = inner.commit_accept(&paths, &key)?;
                for p in &paths {
                    inner.log_event(Event {
                        kind: "admin".into(),
                        ..Event::about("accepted", crate::integrity::pathname::to_wire(p))
                    });
                }
                inner.publish(updates);
                Ok(paths.len() as u32)
            })
            .await,
        )
    }

    /// dpkg is about to run (its pre-invoke hook): hold alerts until `accept_from_dpkg`, at
    /// most [`MAX_HOLD`] after the hold began — calling it again does not extend it.
    pub fn dpkg_hold(&self) {
        let mut s = self.inner.state();
        if s.monitor.baseline.is_none() {
            return; // nothing is compared yet, so nothing to hold
        }
        let now = Instant::now();
        let active = s.hold_until.is_some_and(|t| now < t);
        s.hold_until = Some(hold_deadline(s.hold_until, now));
        if active {
            tracing::info!("integrity: dpkg is running; the hold in place keeps its deadline");
        } else {
            tracing::info!("integrity: dpkg is running; alerts wait for `accept --from-dpkg`");
        }
    }

    /// Ends a dpkg hold, alerting whatever is still a violation (also when the acceptance
    /// itself failed: a hold never outlives the dpkg run that asked for it), and journaling
    /// every change that was made and reverted while it lasted (`accepted` were accepted).
    fn release_hold(&self, accepted: &[String]) {
        let accepted: HashSet<String> = accepted.iter().cloned().collect();
        let held = {
            let mut s = self.inner.state();
            if s.hold_until.take().is_none() {
                return;
            }
            std::mem::take(&mut s.held)
        };
        let inner = self.inner.clone();
        // publish blocks on the signal channel: not on the async runtime's threads
        std::thread::spawn(move || {
            let (still, reverted): (Vec<Violation>, Vec<Violation>) = {
                let s = inner.state();
                let current: HashSet<&str> =
                    s.monitor.violations().map(|v| v.path.as_str()).collect();
                held.into_iter()
                    .filter(|v| !accepted.contains(&v.path))
                    .partition(|v| current.contains(v.path.as_str()))
            };
            for v in &reverted {
                // a change undone before dpkg finished still happened: never silent
                tracing::warn!(
                    message_id = crate::api::message_ids::INTEGRITY_VIOLATION,
                    path = %v.path,
                    kind = v.kind.as_str(),
                    "integrity: {} was changed ({}) during a dpkg run and changed back before it ended",
                    v.path,
                    v.kind.as_str()
                );
                inner.log_event(Event::of_violation("violation", v));
                inner.log_event(Event::about("cleared", v.path.clone()));
            }
            inner.publish(still.into_iter().map(Update::Raised).collect());
        });
    }

    /// Accepts the violations dpkg vouches for; returns (accepted paths, refused with why).
    pub async fn accept_from_dpkg(
        &self,
        admin: Option<PathBuf>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), IntegrityError> {
        self.inner.enabled_or("AcceptFromDpkg")?;
        let r = self.accept_from_dpkg_inner(admin).await;
        let accepted = r.as_ref().map(|(a, _)| a.clone()).unwrap_or_default();
        self.release_hold(&accepted);
        r
    }

    async fn accept_from_dpkg_inner(
        &self,
        admin: Option<PathBuf>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), IntegrityError> {
        let _g = self.inner.busy.lock().await;
        let key = self.current_key()?;
        let inner: Arc<Inner> = self.inner.clone();
        joined(
            tokio::task::spawn_blocking(move || {
                // dpkg has finished writing: let the watcher judge every event it caused first
                inner.drain_events();
                let admin = admin.unwrap_or_else(|| PathBuf::from(DPKG_ADMIN));
                let dpkg = DpkgDb::load(&admin).map_err(|source| IntegrityError::Io {
                    path: admin.clone(),
                    source,
                })?;
                let violations: Vec<Violation> =
                    inner.state().monitor.violations().cloned().collect();
                let (mut accepted, mut refused) = (Vec::new(), Vec::new());
                for v in violations {
                    let p = PathBuf::from(&v.path);
                    match dpkg_verdict(&dpkg, &inner, &p, &v) {
                        Ok(()) => accepted.push(v),
                        Err(why) => refused.push((v.path, why)),
                    }
                }
                let paths: Vec<PathBuf> =
                    accepted.iter().map(|v| PathBuf::from(&v.path)).collect();
                let updates = if paths.is_empty() {
                    Vec::new()
                } else {
                    inner.commit_accept(&paths, &key)?
                };
                for v in &accepted {
                    inner.log_event(Event {
                        kind: "dpkg".into(),
                        ..Event::of_violation("accepted", v)
                    });
                }
                for (p, why) in &refused {
                    tracing::warn!(message_id = crate::api::message_ids::INTEGRITY_VIOLATION, path = %p, "integrity: not accepted from dpkg: {p}: {why}");
                }
                inner.publish(updates);
                Ok((accepted.into_iter().map(|v| v.path).collect(), refused))
            })
            .await,
        )
    }
}

/// Whether dpkg vouches for the change at `p`: its content matches the md5sum of the package
/// that owns it, and nothing dpkg does not record (mode, owner, xattrs) changed.
fn dpkg_verdict(dpkg: &DpkgDb, inner: &Inner, p: &Path, v: &Violation) -> Result<(), String> {
    let (base, attrs) = inner.state().monitor.recorded(p);
    let cur = read_entry(p, &attrs).ok().flatten();
    let Some(cur) = cur else {
        // removed: dpkg removed it if no installed package lists it any more
        return if dpkg.lists(p) {
            Err("removed, but an installed package still ships it".into())
        } else {
            Ok(())
        };
    };
    match cur.kind {
        Kind::File => {}
        Kind::Dir if dpkg.lists(p) && v.kind == ChangeKind::Added => return Ok(()),
        _ => {
            return Err(format!(
                "a {:?} (dpkg records checksums of regular files only)",
                cur.kind
            ));
        }
    }
    let Some((pkg, sum)) = dpkg.md5sum(p) else {
        return Err("no installed package has a checksum for it".into());
    };
    let actual = md5_file(p).map_err(|e| e.to_string())?;
    if &actual != sum {
        return Err(format!(
            "content does not match package {pkg} (md5 {} expected {})",
            hex::encode(actual),
            hex::encode(sum)
        ));
    }
    if let Some(b) = base {
        let perms = Attrs::from_names(["mode", "owner", "xattrs", "type"]).unwrap_or(Attrs::ALL);
        if let Some((_, e, a)) = compare(&b, &cur, &perms) {
            return Err(format!(
                "content is {pkg}'s, but {a} (was {e}): dpkg does not vouch for permissions"
            ));
        }
    }
    Ok(())
}

/// The deadline of a hold asked for at `now`: an active hold keeps its own (repeated calls
/// do not extend it), otherwise `now + MAX_HOLD`.
fn hold_deadline(current: Option<Instant>, now: Instant) -> Instant {
    match current {
        Some(t) if now < t => t,
        _ => now + MAX_HOLD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_never_extended_by_asking_again() {
        let start = Instant::now();
        let first = hold_deadline(None, start);
        assert_eq!(first, start + MAX_HOLD);
        let later = start + std::time::Duration::from_secs(3000);
        assert_eq!(
            hold_deadline(Some(first), later),
            first,
            "asked again: same deadline"
        );
        let after = first + std::time::Duration::from_secs(1);
        assert_eq!(
            hold_deadline(Some(first), after),
            after + MAX_HOLD,
            "a new hold after it ended"
        );
    }
}
