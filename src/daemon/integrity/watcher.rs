//! The watcher thread: inotify batches become judged paths; lost events become rescans.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Inner;
use crate::api::IntegrityState;
use crate::integrity::monitor::{Update, read_entry};
use crate::integrity::scan;
use crate::integrity::watch::{Watcher, max_user_watches};

impl Inner {
    /// Reads `path` (outside the lock) and judges it (under it).
    pub(super) fn judge(&self, path: &std::path::Path) -> Vec<Update> {
        let Some((_, attrs)) = self.state().monitor.target(path) else {
            return Vec::new();
        };
        match read_entry(path, &attrs) {
            Ok(cur) => self.state().monitor.judge_read(path, attrs, cur),
            Err(e) => {
                tracing::warn!("integrity: cannot read {}: {e}", path.display());
                Vec::new()
            }
        }
    }

    pub(super) fn watch_loop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let cfg = self.cfg();
        let budget = if cfg.max_watches == 0 {
            max_user_watches() / 2
        } else {
            cfg.max_watches
        };
        let mut w = match Watcher::new(&cfg.sets, budget) {
            Ok(w) => w,
            Err(e) => {
                self.set_state(IntegrityState::Error, format!("cannot watch: {e}"));
                return;
            }
        };
        for i in w.watch_all() {
            tracing::warn!(
                "integrity: set {}: {} paths could not be watched (watch budget {budget}); changes there are found by the periodic scan",
                cfg.sets[i].name,
                w.unwatched[i]
            );
        }
        self.update_watch_counts(&w);
        while !stop.load(Ordering::Relaxed) {
            // a hold's deadline is checked on every turn: a stream of events that change
            // nothing must not keep the held alerts back past it
            let _ = self.holding();
            let waiting = !self.state().flush.is_empty();
            let timeout = Duration::from_millis(if waiting { 5 } else { 500 });
            match w.wait(timeout) {
                Ok(None) => {
                    // the queue is empty: everything that happened so far is processed
                    let waiters = std::mem::take(&mut self.state().flush);
                    for tx in waiters {
                        let _ = tx.send(());
                    }
                }
                Ok(Some(batch)) => {
                    for (set, reason) in &batch.rescan {
                        self.rescan_set(*set, reason);
                    }
                    let mut updates = Vec::new();
                    for (set, dir) in &batch.new_dirs {
                        if let Some(s) = cfg.sets.get(*set)
                            && let Ok(ex) = scan::Excludes::for_set(s)
                        {
                            let mut sub = s.clone();
                            sub.paths = vec![dir.clone()];
                            for (p, _) in scan::walk(&sub, &ex) {
                                updates.extend(self.judge(&p));
                            }
                        }
                    }
                    for (set, p) in &batch.changed {
                        updates.extend(self.judge(p));
                        // a new hard link: watch the inode itself from now on
                        if std::fs::symlink_metadata(p).is_ok_and(|m| m.nlink() > 1 && m.is_file())
                        {
                            w.watch_tree(*set, p);
                        }
                    }
                    self.publish(updates);
                    self.update_watch_counts(&w);
                }
                Err(e) => {
                    tracing::error!("integrity watcher: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Waits (bounded) until the watcher has processed every queued event.
    pub(super) fn drain_events(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.state().flush.push(tx);
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            tracing::warn!("integrity: the watcher did not settle within 60 s");
        }
    }

    fn update_watch_counts(&self, w: &Watcher) {
        let mut s = self.state();
        s.info.watches = w.watches() as u32;
        s.info.unwatched = w.unwatched.iter().sum();
    }
}
