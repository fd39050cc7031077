//! Full scans: the baseline (`init`), the comparison of every set (`scan`, periodic, at
//! startup), and the rescan of one set after lost events.

use std::sync::Arc;

use super::{Inner, IntegrityService, baseline_path, joined};
use crate::api::IntegrityState;
use crate::api::message_ids::INTEGRITY_RESCAN;
use crate::integrity::log::Event;
use crate::integrity::scan::{self, Entries, Progress, ScanOptions};
use crate::integrity::{IntegrityError, now};

impl Inner {
    /// Scans every set (index = set). Runs on a blocking thread.
    pub(super) fn scan_all(&self, background: bool) -> Result<Vec<Entries>, IntegrityError> {
        let progress = Arc::new(Progress::default());
        let cfg = {
            let mut s = self.state();
            s.progress = progress.clone();
            s.info.scanning = true;
            s.cfg.clone()
        };
        let opts = ScanOptions {
            threads: 0,
            rate: if background { cfg.scan_rate } else { None },
            background,
        };
        let mut out = Vec::new();
        let mut result = Ok(());
        for set in &cfg.sets {
            match scan::scan_set(set, &opts, &progress) {
                Ok((entries, errors)) => {
                    for e in errors.iter().take(20) {
                        tracing::warn!("integrity scan of {}: {e}", set.name);
                    }
                    out.push(entries);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.state().info.scanning = false;
        result.map(|()| out)
    }

    /// Full comparison of every set against the baseline.
    pub(super) fn rescan(&self, background: bool) -> Result<(), IntegrityError> {
        let scans = self.scan_all(background)?;
        let updates = {
            let mut s = self.state();
            let mut updates = Vec::new();
            for (i, entries) in scans.iter().enumerate() {
                updates.extend(s.monitor.apply_scan(i, entries));
            }
            s.info.last_scan = now();
            updates
        };
        self.publish(updates);
        Ok(())
    }

    /// Rescans one set because real-time events were lost.
    pub(super) fn rescan_set(&self, set: usize, reason: &str) {
        let Some(s) = self.cfg().sets.get(set).cloned() else {
            return;
        };
        tracing::warn!(message_id = INTEGRITY_RESCAN, set = %s.name, "integrity: rescanning set {}: {reason}", s.name);
        self.state().info.rescans += 1;
        self.log_event(Event {
            actual: reason.into(),
            set: s.name.clone(),
            ..Event::about("rescan", "")
        });
        match scan::scan_set(&s, &ScanOptions::default(), &Progress::default()) {
            Ok((entries, _)) => {
                let u = self.state().monitor.apply_scan(set, &entries);
                self.publish(u);
            }
            Err(e) => tracing::error!("integrity: rescan of {} failed: {e}", s.name),
        }
    }
}

impl IntegrityService {
    /// A full scan now (not throttled); waits for it.
    pub async fn scan(&self) -> Result<(), IntegrityError> {
        self.inner.enabled_or("Scan")?;
        let _g = self.inner.busy.lock().await;
        {
            let s = self.inner.state();
            if s.monitor.baseline.is_none() {
                return Err(IntegrityError::NoBaseline(baseline_path(&s.cfg.dir)));
            }
        }
        let inner = self.inner.clone();
        joined(tokio::task::spawn_blocking(move || inner.rescan(false)).await)
    }

    /// The periodic scan: throttled, low priority; skipped while another scan runs.
    pub async fn periodic_scan(&self) {
        let Ok(_g) = self.inner.busy.try_lock() else {
            return;
        };
        if self.inner.state().monitor.baseline.is_none() {
            return;
        }
        let inner = self.inner.clone();
        if let Err(e) = joined(tokio::task::spawn_blocking(move || inner.rescan(true)).await) {
            tracing::error!("integrity: periodic scan: {e}");
        }
    }

    /// A new baseline from a full scan of every set; replaces the old one (kept as .prev).
    pub async fn init(&self) -> Result<(), IntegrityError> {
        self.inner.enabled_or("Init")?;
        let _g = self.inner.busy.lock().await;
        let key = self.key(true).await?;
        let inner = self.inner.clone();
        let k2 = key.clone();
        let b = joined(
            tokio::task::spawn_blocking(move || {
                let scans = inner.scan_all(false)?;
                let mut b = inner.state().monitor.new_baseline(scans);
                b.generation = inner.next_generation(&k2, true)?;
                Ok(b)
            })
            .await,
        )?;
        let inner = self.inner.clone();
        let n = b.entries.len();
        joined(
            tokio::task::spawn_blocking(move || {
                inner.store(&b, &key)?;
                inner.generation_written(&key, b.generation);
                let cleared = {
                    let mut s = inner.state();
                    let cleared = s.monitor.set_baseline(Some(b));
                    s.info.state = IntegrityState::Ok;
                    s.info.detail.clear();
                    s.info.last_scan = now();
                    cleared
                };
                inner.publish(cleared);
                inner.refresh_counts();
                inner.log_event(Event {
                    actual: format!("{n} paths"),
                    ..Event::about("baseline", "")
                });
                Ok(())
            })
            .await,
        )?;
        tracing::info!("integrity: new baseline of {n} paths");
        Ok(())
    }
}
