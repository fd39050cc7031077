//! Acceptance: taking the current state of paths into the baseline — by the admin, or for
//! what dpkg vouches for — always all or nothing (the baseline in memory is the one on disk).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::publish::MAX_HOLD;
use super::{Inner, IntegrityService, baseline_path, joined};
use crate::integrity::db;
use crate::integrity::dpkg::{DPKG_ADMIN, DpkgDb, HoldSnapshot, vouch};
use crate::integrity::entry::Entry;
use crate::integrity::key::MacKey;
use crate::integrity::log::Event;
use crate::integrity::monitor::{Staged, Update, read_staged};
use crate::integrity::{IntegrityError, Violation};

impl Inner {
    /// Reads `paths`, takes them into the baseline and stores it (see [`Inner::commit_read`]).
    fn commit_accept(
        &self,
        paths: &[PathBuf],
        key: &MacKey,
    ) -> Result<Vec<Update>, IntegrityError> {
        let staged = self.state().monitor.stage(paths)?;
        self.commit_read(read_staged(staged)?, key)
    }

    /// Takes exactly the entries in `read` into the baseline and stores it; when storing
    /// fails the baseline in memory goes back to what it was. No copy of the baseline is
    /// made: the entries replaced are kept to undo, and the encoding (CPU only) happens
    /// under the lock, the write outside it. Whatever changed on disk since the entries
    /// were read is then judged against the new baseline (raised, never absorbed).
    fn commit_read(
        &self,
        read: Vec<(Staged, Option<Entry>)>,
        key: &MacKey,
    ) -> Result<Vec<Update>, IntegrityError> {
        let paths: Vec<PathBuf> = read.iter().map(|(st, _)| st.path.clone()).collect();
        let generation = self.next_generation(key, false)?;
        let (undo, mut updates, bytes, before) = {
            let mut s = self.state();
            let (undo, updates) = s.monitor.commit(read);
            let before = s.monitor.baseline.as_ref().map_or(0, |b| b.generation);
            let bytes = s.monitor.baseline.as_mut().map(|b| {
                b.generation = generation;
                db::encode(b, key)
            });
            (undo, updates, bytes, before)
        };
        let stored = match bytes {
            None => Ok(()),
            Some(Ok(bytes)) => db::write_encoded(&baseline_path(&self.cfg().dir), &bytes),
            Some(Err(e)) => Err(e),
        };
        if let Err(e) = stored {
            // not on disk, so not in memory either
            {
                let mut s = self.state();
                s.monitor.undo(undo);
                if let Some(b) = s.monitor.baseline.as_mut() {
                    b.generation = before;
                }
            }
            for p in &paths {
                let _ = self.judge(p);
            }
            return Err(e);
        }
        self.generation_written(key, generation);
        self.refresh_counts();
        for p in &paths {
            updates.extend(self.judge(p));
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
    /// most [`MAX_HOLD`] after the hold began — calling it again does not extend it, nor
    /// does it retake the snapshot of dpkg's database (`admin`, default /var/lib/dpkg) that
    /// removals and dpkg's own info files are judged by.
    pub async fn dpkg_hold(&self, admin: Option<PathBuf>) -> Result<(), IntegrityError> {
        let admin = admin.unwrap_or_else(|| PathBuf::from(DPKG_ADMIN));
        let now = Instant::now();
        let (deadline, stale) = {
            let mut s = self.inner.state();
            if s.monitor.baseline.is_none() {
                return Ok(()); // nothing is compared yet, so nothing to hold
            }
            if s.hold_until.is_some_and(|t| now < t) {
                tracing::info!("integrity: dpkg is running; the hold in place keeps its deadline");
                return Ok(());
            }
            let deadline = hold_deadline(s.hold_until, now);
            s.hold_until = Some(deadline);
            s.hold_snapshot = None;
            // an expired hold not released yet: its alerts go out now, not an hour later
            (deadline, std::mem::take(&mut s.held))
        };
        tracing::info!("integrity: dpkg is running; alerts wait for `accept --from-dpkg`");
        let inner = self.inner.clone();
        let snap = joined(
            tokio::task::spawn_blocking(move || {
                if !stale.is_empty() {
                    tracing::warn!(
                        "integrity: the previous dpkg hold expired; releasing its alerts"
                    );
                    inner.publish_now(stale);
                }
                // what happened before dpkg started is judged first: an md5sums edit made
                // just before the hook must taint its package
                inner.drain_events();
                let (violations, overflowed) = {
                    let s = inner.state();
                    let v: Vec<PathBuf> = s
                        .monitor
                        .violations()
                        .map(|v| crate::integrity::pathname::from_wire(&v.path))
                        .collect();
                    (v, s.monitor.dropped > 0)
                };
                let in_baseline = |p: &[u8]| {
                    inner
                        .state()
                        .monitor
                        .baseline
                        .as_ref()
                        .is_some_and(|b| b.entries.contains_key(p))
                };
                let mut snap = HoldSnapshot::take(
                    &admin,
                    in_baseline,
                    violations.iter().map(PathBuf::as_path),
                )
                .map_err(|source| IntegrityError::Io {
                    path: admin.join("info"),
                    source,
                })?;
                snap.overflowed = overflowed;
                Ok(snap)
            })
            .await,
        );
        match snap {
            Ok(snap) => {
                for pkg in snap.tainted() {
                    tracing::warn!(
                        message_id = crate::api::message_ids::INTEGRITY_VIOLATION,
                        "integrity: dpkg's files of package {pkg} differ from the baseline as this dpkg run begins: nothing it installs is accepted"
                    );
                }
                let mut s = self.inner.state();
                // only for the hold it was taken for (an acceptance may have ended it)
                if s.hold_until == Some(deadline) {
                    s.hold_snapshot = Some(snap);
                }
                Ok(())
            }
            Err(e) => {
                // the hold stays (alerts wait, removals are refused): fail closed
                tracing::warn!("integrity: dpkg hold without a snapshot of dpkg's database: {e}");
                Err(e)
            }
        }
    }

    /// Ends a dpkg hold, alerting whatever is a violation now (also when the acceptance
    /// itself failed: a hold never outlives the dpkg run that asked for it; an accepted path
    /// written again after it was read is one), and journaling every change that was made
    /// and reverted while it lasted (`accepted` were accepted).
    fn release_hold(&self, accepted: &[String]) {
        let accepted: HashSet<String> = accepted.iter().cloned().collect();
        let held = {
            let mut s = self.inner.state();
            s.hold_snapshot = None;
            if s.hold_until.take().is_none() {
                return;
            }
            std::mem::take(&mut s.held)
        };
        let inner = self.inner.clone();
        // publish blocks on the signal channel: not on the async runtime's threads
        std::thread::spawn(move || inner.release(held, &accepted));
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
                let hold = inner.state().hold_snapshot.clone();
                let admin = match (admin, &hold) {
                    (Some(a), Some(h)) if a != h.admin => {
                        return Err(IntegrityError::Invalid(format!(
                            "the dpkg hold began for the admin directory {}, not {}",
                            h.admin.display(),
                            a.display()
                        )));
                    }
                    (Some(a), _) => a,
                    (None, Some(h)) => h.admin.clone(),
                    (None, None) => PathBuf::from(DPKG_ADMIN),
                };
                let dpkg = DpkgDb::load(&admin).map_err(|source| IntegrityError::Io {
                    path: admin.clone(),
                    source,
                })?;
                let violations: Vec<Violation> =
                    inner.state().monitor.violations().cloned().collect();
                let (mut accepted, mut refused, mut read) = (Vec::new(), Vec::new(), Vec::new());
                for v in violations {
                    let p = crate::integrity::pathname::from_wire(&v.path);
                    let (staged, base) = {
                        let s = inner.state();
                        let staged = s.monitor.stage(std::slice::from_ref(&p));
                        (staged, s.monitor.recorded(&p).0)
                    };
                    let Some(st) = staged.ok().and_then(|mut st| st.pop()) else {
                        refused.push((v.path, "no longer in any watch set".into()));
                        continue;
                    };
                    match vouch(&dpkg, hold.as_ref(), &p, base.as_ref(), &st.attrs, v.kind) {
                        Ok(entry) => {
                            read.push((st, entry));
                            accepted.push(v);
                        }
                        Err(why) => refused.push((v.path, why)),
                    }
                }
                #[cfg(test)]
                tests::pause_point(&read);
                let updates = if read.is_empty() {
                    Vec::new()
                } else {
                    inner.commit_read(read, &key)?
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
    use crate::config::IntegrityConfig;
    use crate::integrity::{Attrs, Severity, WatchSet};
    use sha2::Digest;
    use std::sync::Mutex;

    type Hook = Box<dyn FnOnce() + Send>;
    /// Runs once, between dpkg's verdict and the commit: where the attacker writes.
    static PAUSE: Mutex<Option<Hook>> = Mutex::new(None);

    pub(super) fn pause_point(_read: &[(Staged, Option<Entry>)]) {
        let hook = PAUSE.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = hook {
            h();
        }
    }

    fn md5_hex(b: &[u8]) -> String {
        hex::encode(md5::Md5::digest(b))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_after_dpkgs_content_was_checked_is_never_taken_into_the_baseline() {
        let d = tempfile::tempdir().unwrap();
        let files = d.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        let p = files.join("pkgfile");
        std::fs::write(&p, "version 1\n").unwrap();
        let cfg = IntegrityConfig {
            dir: d.path().join("state"),
            sets: vec![WatchSet {
                name: "t".into(),
                paths: vec![files.clone()],
                recursive: true,
                exclude: vec![],
                exclude_files: vec![],
                attrs: Attrs::ALL,
                severity: Severity::High,
            }],
            ..IntegrityConfig::default()
        };
        let admin = d.path().join("dpkg");
        std::fs::create_dir_all(admin.join("info")).unwrap();
        let rel = p.strip_prefix("/").unwrap().display().to_string();
        std::fs::write(
            admin.join("info/demo.md5sums"),
            format!("{}  {rel}\n", md5_hex(b"version 2\n")),
        )
        .unwrap();
        std::fs::write(admin.join("info/demo.list"), format!("{}\n", p.display())).unwrap();
        let svc = IntegrityService::new(&cfg).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        svc.start(None, tx).await;
        svc.init().await.unwrap();
        svc.dpkg_hold(Some(admin.clone())).await.unwrap();
        std::fs::write(&p, "version 2\n").unwrap();
        svc.scan().await.unwrap();
        assert_eq!(svc.violations().len(), 1);
        // the attacker writes once dpkg's md5 has been compared, before the baseline is stored
        let q = p.clone();
        *PAUSE.lock().unwrap() = Some(Box::new(move || {
            std::fs::write(&q, "version 3: not the package's\n").unwrap()
        }));
        let (accepted, refused) = svc.accept_from_dpkg(Some(admin)).await.unwrap();
        assert!(PAUSE.lock().unwrap().is_none(), "the pause point ran");
        assert_eq!(accepted, vec![p.display().to_string()]);
        assert!(refused.is_empty(), "{refused:?}");
        // stored: exactly what dpkg vouched for, not what is on disk now
        let (stored, _) = svc.inner.state().monitor.recorded(&p);
        let want: [u8; 32] = sha2::Sha256::digest(b"version 2\n").into();
        assert_eq!(stored.unwrap().sha256, Some(want));
        // and the attacker's write is a violation, alerted when the hold ends
        let v = svc.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        let bad = hex::encode(sha2::Sha256::digest(b"version 3: not the package's\n"));
        assert!(v[0].actual.contains(&bad), "{v:?}");
        let sig = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("an alert for the write")
            .unwrap();
        assert_eq!(sig.path, p.display().to_string());
        assert!(sig.actual.contains(&bad));
        svc.stop();
    }

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
