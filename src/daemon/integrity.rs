//! The daemon's side of integrity monitoring: the baseline and its key, the watcher thread,
//! full scans (at startup, on a timer, on demand), acceptance, and publishing every change
//! (journal, event log, D-Bus signal). Work that touches the file system runs on blocking
//! threads; the bus side only reads the shared state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

use super::config::IntegrityConfig;
use super::events::{MSG_INTEGRITY_RESCAN, MSG_INTEGRITY_TAMPERED, MSG_INTEGRITY_VIOLATION};
use crate::integrity::db::{self, Baseline};
use crate::integrity::dpkg::{DPKG_ADMIN, DpkgDb, md5_file};
use crate::integrity::entry::{Kind, compare};
use crate::integrity::key::{KeySource, MacKey};
use crate::integrity::log::{Event, EventLog};
use crate::integrity::monitor::{Monitor, Update};
use crate::integrity::scan::{self, Entries, Progress, ScanOptions};
use crate::integrity::watch::{Watcher, max_user_watches};
use crate::integrity::{Attrs, ChangeKind, IntegrityError, Severity, Violation, now};
use crate::tpm::worker::TpmWorker;

/// The monitor's state on the bus: `(ssuuttsuttbttt)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct IntegrityInfo {
    /// ok | violations | no-baseline | tampered | error | disabled | starting
    pub state: String,
    pub detail: String,
    pub violations: u32,
    /// Paths in the baseline.
    pub entries: u32,
    /// When the baseline was made (seconds since the epoch; 0: none).
    pub baseline_created: u64,
    /// When the last full scan finished (0: none yet).
    pub last_scan: u64,
    /// tpm | file | "" (which key protects the baseline)
    pub key: String,
    /// inotify watches in use.
    pub watches: u32,
    /// Directories and files that could not be watched (budget, kernel limit).
    pub unwatched: u64,
    /// Rescans forced by queue overflows or missing watches.
    pub rescans: u64,
    pub scanning: bool,
    pub scan_files: u64,
    pub scan_total: u64,
    pub scan_bytes: u64,
}

/// The daemon's integrity monitor.
pub struct IntegrityService {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Mutex<IntegrityConfig>,
    monitor: Mutex<Monitor>,
    key: Mutex<Option<Arc<MacKey>>>,
    tpm: Mutex<Option<TpmWorker>>,
    info: Mutex<IntegrityInfo>,
    log: Mutex<Option<EventLog>>,
    tx: Mutex<Option<tokio::sync::mpsc::Sender<Violation>>>,
    stop: Mutex<Arc<AtomicBool>>,
    progress: Mutex<Arc<Progress>>,
    /// One scan, init or acceptance at a time.
    busy: tokio::sync::Mutex<()>,
    /// Callers waiting until the watcher has drained the kernel's queue.
    flush: Mutex<Vec<std::sync::mpsc::Sender<()>>>,
    /// While dpkg runs (pre-invoke hook until accept --from-dpkg): violations are recorded
    /// but their alerts wait, so that what dpkg vouches for never raises one. Expires.
    hold_until: Mutex<Option<std::time::Instant>>,
    held: Mutex<Vec<Violation>>,
}

/// A dpkg hold ends at the latest after this long (alerts are delayed, never dropped).
const MAX_HOLD: Duration = Duration::from_secs(3600);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn baseline_path(dir: &Path) -> PathBuf {
    dir.join("baseline.db")
}

impl Inner {
    fn cfg(&self) -> IntegrityConfig {
        lock(&self.cfg).clone()
    }

    fn set_state(&self, state: &str, detail: String) {
        let mut i = lock(&self.info);
        i.state = state.into();
        i.detail = detail;
    }

    fn log_event(&self, e: Event) {
        if let Some(l) = lock(&self.log).as_mut()
            && let Err(err) = l.append(&e)
        {
            tracing::warn!("integrity event log: {err}");
        }
    }

    /// Journal, event log and signal for every update. Called on blocking threads only.
    fn holding(&self) -> bool {
        let mut h = lock(&self.hold_until);
        match *h {
            Some(t) if std::time::Instant::now() < t => true,
            Some(_) => {
                *h = None;
                drop(h);
                tracing::warn!(
                    "integrity: the dpkg hold expired without `accept --from-dpkg`; releasing its alerts"
                );
                let held = std::mem::take(&mut *lock(&self.held));
                self.publish(held.into_iter().map(Update::Raised).collect());
                false
            }
            None => false,
        }
    }

    fn publish(&self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        let tx = lock(&self.tx).clone();
        let hold = self.holding();
        for u in updates {
            match u {
                Update::Raised(v) if hold => lock(&self.held).push(v),
                Update::Raised(v) => {
                    let msg = format!(
                        "integrity violation in {} ({}): {} {}: expected {} actual {}",
                        v.set,
                        v.severity.as_str(),
                        v.path,
                        v.kind.as_str(),
                        if v.expected.is_empty() {
                            "-"
                        } else {
                            &v.expected
                        },
                        if v.actual.is_empty() { "-" } else { &v.actual },
                    );
                    if v.severity >= Severity::High {
                        tracing::error!(message_id = MSG_INTEGRITY_VIOLATION, path = %v.path, kind = v.kind.as_str(), set = %v.set, severity = v.severity.as_str(), "{msg}");
                    } else {
                        tracing::warn!(message_id = MSG_INTEGRITY_VIOLATION, path = %v.path, kind = v.kind.as_str(), set = %v.set, severity = v.severity.as_str(), "{msg}");
                    }
                    self.log_event(Event {
                        time: v.time,
                        event: "violation".into(),
                        path: v.path.clone(),
                        kind: v.kind.as_str().into(),
                        expected: v.expected.clone(),
                        actual: v.actual.clone(),
                        set: v.set.clone(),
                        severity: v.severity.as_str().into(),
                    });
                    if let Some(tx) = &tx {
                        // backpressure, never loss: the watcher waits for the bus
                        let _ = tx.blocking_send(v);
                    }
                }
                Update::Cleared(path) => self.log_event(Event {
                    time: now(),
                    event: "cleared".into(),
                    path,
                    kind: String::new(),
                    expected: String::new(),
                    actual: String::new(),
                    set: String::new(),
                    severity: String::new(),
                }),
            }
        }
        self.refresh_counts();
    }

    fn refresh_counts(&self) {
        let (n, entries, created) = {
            let m = lock(&self.monitor);
            let b = m.baseline.as_ref();
            (
                m.violation_count() as u32,
                b.map_or(0, |b| b.entries.len() as u32),
                b.map_or(0, |b| b.created),
            )
        };
        let mut i = lock(&self.info);
        i.violations = n;
        i.entries = entries;
        i.baseline_created = created;
        if matches!(i.state.as_str(), "ok" | "violations") {
            i.state = if n > 0 { "violations" } else { "ok" }.into();
            i.detail = if n > 0 {
                format!("{n} paths differ from the baseline")
            } else {
                String::new()
            };
        }
    }

    /// Scans every set (index = set).
    fn scan_all(&self, background: bool) -> Result<Vec<Entries>, IntegrityError> {
        let cfg = self.cfg();
        let progress = Arc::new(Progress::default());
        *lock(&self.progress) = progress.clone();
        lock(&self.info).scanning = true;
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
        lock(&self.info).scanning = false;
        result.map(|()| out)
    }

    /// Full comparison of every set against the baseline.
    fn rescan(&self, background: bool) -> Result<(), IntegrityError> {
        let scans = self.scan_all(background)?;
        let mut updates = Vec::new();
        {
            let mut m = lock(&self.monitor);
            for (i, entries) in scans.iter().enumerate() {
                updates.extend(m.apply_scan(i, entries));
            }
        }
        lock(&self.info).last_scan = now();
        self.publish(updates);
        Ok(())
    }

    fn rescan_set(&self, set: usize, reason: &str) {
        let cfg = self.cfg();
        let Some(s) = cfg.sets.get(set) else { return };
        tracing::warn!(message_id = MSG_INTEGRITY_RESCAN, set = %s.name, "integrity: rescanning set {}: {reason}", s.name);
        lock(&self.info).rescans += 1;
        self.log_event(Event {
            time: now(),
            event: "rescan".into(),
            path: String::new(),
            kind: String::new(),
            expected: String::new(),
            actual: reason.into(),
            set: s.name.clone(),
            severity: String::new(),
        });
        let progress = Progress::default();
        match scan::scan_set(s, &ScanOptions::default(), &progress) {
            Ok((entries, _)) => {
                let u = lock(&self.monitor).apply_scan(set, &entries);
                self.publish(u);
            }
            Err(e) => tracing::error!("integrity: rescan of {} failed: {e}", s.name),
        }
    }

    fn watch_loop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let cfg = self.cfg();
        let budget = if cfg.max_watches == 0 {
            max_user_watches() / 2
        } else {
            cfg.max_watches
        };
        let mut w = match Watcher::new(&cfg.sets, budget) {
            Ok(w) => w,
            Err(e) => {
                self.set_state("error", format!("cannot watch: {e}"));
                return;
            }
        };
        let short = w.watch_all();
        for i in short {
            tracing::warn!(
                "integrity: set {}: {} paths could not be watched (watch budget {budget}); changes there are found by the periodic scan",
                cfg.sets[i].name,
                w.unwatched[i]
            );
        }
        self.update_watch_counts(&w);
        while !stop.load(Ordering::Relaxed) {
            let waiting = !lock(&self.flush).is_empty();
            let timeout = Duration::from_millis(if waiting { 5 } else { 500 });
            match w.wait(timeout) {
                Ok(None) => {
                    // the queue is empty: everything that happened so far is processed
                    for tx in lock(&self.flush).drain(..) {
                        let _ = tx.send(());
                    }
                    let _ = self.holding(); // expiry
                }
                Ok(Some(batch)) => {
                    for (set, reason) in &batch.rescan {
                        self.rescan_set(*set, reason);
                    }
                    let mut updates = Vec::new();
                    for (set, dir) in &batch.new_dirs {
                        if let Some(s) = cfg.sets.get(*set)
                            && let Ok(ex) = scan::Excludes::new(&s.exclude)
                        {
                            let mut sub = s.clone();
                            sub.paths = vec![dir.clone()];
                            for (p, _) in scan::walk(&sub, &ex) {
                                updates.extend(lock(&self.monitor).check_path(&p));
                            }
                        }
                    }
                    for (set, p) in &batch.changed {
                        updates.extend(lock(&self.monitor).check_path(p));
                        // a new hard link: watch the inode itself from now on
                        if std::fs::symlink_metadata(p).is_ok_and(|m| {
                            std::os::unix::fs::MetadataExt::nlink(&m) > 1 && m.is_file()
                        }) {
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
    fn drain_events(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.flush).push(tx);
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            tracing::warn!("integrity: the watcher did not settle within 60 s");
        }
    }

    fn update_watch_counts(&self, w: &Watcher) {
        let mut i = lock(&self.info);
        i.watches = w.watches() as u32;
        i.unwatched = w.unwatched.iter().sum();
    }
}

impl IntegrityService {
    pub fn new(cfg: &IntegrityConfig) -> Result<IntegrityService, IntegrityError> {
        Ok(IntegrityService {
            inner: Arc::new(Inner {
                monitor: Mutex::new(Monitor::new(&cfg.sets)?),
                cfg: Mutex::new(cfg.clone()),
                key: Mutex::new(None),
                tpm: Mutex::new(None),
                info: Mutex::new(IntegrityInfo {
                    state: "starting".into(),
                    ..Default::default()
                }),
                log: Mutex::new(None),
                tx: Mutex::new(None),
                stop: Mutex::new(Arc::new(AtomicBool::new(false))),
                progress: Mutex::new(Arc::new(Progress::default())),
                busy: tokio::sync::Mutex::new(()),
                flush: Mutex::new(Vec::new()),
                hold_until: Mutex::new(None),
                held: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn info(&self) -> IntegrityInfo {
        let mut i = lock(&self.inner.info).clone();
        if i.scanning {
            let p = lock(&self.inner.progress).clone();
            i.scan_files = p.files.load(Ordering::Relaxed);
            i.scan_total = p.total_files.load(Ordering::Relaxed);
            i.scan_bytes = p.bytes.load(Ordering::Relaxed);
        }
        i
    }

    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.inner.monitor).violations().cloned().collect()
    }

    pub fn events(&self, n: usize) -> Vec<Event> {
        lock(&self.inner.log)
            .as_ref()
            .map(|l| l.tail(n))
            .unwrap_or_default()
    }

    /// The key protecting the baseline. With `create`, a missing key is made: sealed in
    /// the TPM when one answers, else a root-only file. A sealed key is never bypassed.
    async fn key(&self, create: bool) -> Result<Arc<MacKey>, IntegrityError> {
        let dir = self.inner.cfg().dir;
        let tpm = lock(&self.inner.tpm).clone();
        let sealed = MacKey::sealed_exists(&dir);
        let k = match (&tpm, sealed, create) {
            (Some(w), true, _) | (Some(w), false, true) => {
                let d = dir.clone();
                match w.run(move |tpm| Ok(MacKey::sealed(tpm, &d))).await {
                    Ok(r) => r?,
                    Err(e) if !sealed => {
                        tracing::warn!(
                            "integrity: the TPM cannot seal the baseline key ({e}); using a root-only key file"
                        );
                        MacKey::file(&dir)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            (None, true, _) => {
                return Err(IntegrityError::KeyMismatch {
                    path: dir.join("mac-key.sealed.priv"),
                    wanted: KeySource::Tpm.name(),
                    have: "no TPM is configured".into(),
                });
            }
            _ => MacKey::file(&dir)?,
        };
        let k = Arc::new(k);
        *lock(&self.inner.key) = Some(k.clone());
        lock(&self.inner.info).key = match k.source {
            KeySource::Tpm => "tpm",
            KeySource::File => "file",
        }
        .into();
        Ok(k)
    }

    /// Loads the baseline, starts watching and runs a first full scan in the background.
    pub async fn start(&self, tpm: Option<TpmWorker>, tx: tokio::sync::mpsc::Sender<Violation>) {
        *lock(&self.inner.tx) = Some(tx);
        *lock(&self.inner.tpm) = tpm;
        let cfg = self.inner.cfg();
        if !cfg.enabled {
            self.inner
                .set_state("disabled", "[integrity] enabled = false".into());
            return;
        }
        if let Err(e) = crate::fsutil::create_dir_all_mode(&cfg.dir, 0o700) {
            self.inner
                .set_state("error", format!("{}: {e}", cfg.dir.display()));
            return;
        }
        *lock(&self.inner.log) = Some(EventLog::open(&cfg.dir, cfg.max_events));
        let path = baseline_path(&cfg.dir);
        let loaded = if path.exists() {
            match self.key(false).await {
                Ok(k) => db::load(&path, &k),
                Err(e) => Err(e),
            }
        } else {
            Err(IntegrityError::NoBaseline(path.clone()))
        };
        match loaded {
            Ok(b) => {
                let _ = lock(&self.inner.monitor).set_baseline(Some(b));
                self.inner.set_state("ok", String::new());
                self.inner.refresh_counts();
            }
            Err(IntegrityError::NoBaseline(_)) => self.inner.set_state(
                "no-baseline",
                "no baseline yet: `hardenctl integrity init`".into(),
            ),
            Err(e) => self.tampered(&path, &e).await,
        }
        let stop = Arc::new(AtomicBool::new(false));
        *lock(&self.inner.stop) = stop.clone();
        let inner = self.inner.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("hardend-integrity".into())
            .spawn(move || inner.watch_loop(stop))
        {
            self.inner
                .set_state("error", format!("cannot start the watcher: {e}"));
            return;
        }
        if lock(&self.inner.monitor).baseline.is_some() {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let _g = inner.busy.lock().await;
                let i2 = inner.clone();
                match tokio::task::spawn_blocking(move || i2.rescan(true)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("integrity: startup scan: {e}"),
                    Err(e) => tracing::error!("integrity: startup scan: {e}"),
                }
            });
        }
    }

    /// A baseline that cannot be trusted: an attack on the monitor itself until shown
    /// otherwise. Reported everywhere; nothing is compared against it.
    async fn tampered(&self, path: &Path, e: &IntegrityError) {
        let state = match e {
            IntegrityError::Tampered { .. } | IntegrityError::KeyMismatch { .. } => "tampered",
            _ => "error",
        };
        tracing::error!(message_id = MSG_INTEGRITY_TAMPERED, path = %path.display(), "integrity baseline not trusted: {e}");
        let _ = lock(&self.inner.monitor).set_baseline(None);
        self.inner.set_state(state, e.to_string());
        let v = Violation {
            path: path.display().to_string(),
            kind: ChangeKind::Modified,
            expected: "a baseline written by hardend (valid MAC)".into(),
            actual: e.to_string(),
            set: "hardend-baseline".into(),
            severity: Severity::Critical,
            time: now(),
        };
        self.inner.log_event(Event {
            time: v.time,
            event: "tampered".into(),
            path: v.path.clone(),
            kind: "modified".into(),
            expected: v.expected.clone(),
            actual: v.actual.clone(),
            set: v.set.clone(),
            severity: "critical".into(),
        });
        let tx = lock(&self.inner.tx).clone();
        if let Some(tx) = tx {
            let _ = tx.send(v).await;
        }
    }

    /// Stops the watcher thread (reload with other settings, shutdown).
    pub fn stop(&self) {
        lock(&self.inner.stop).store(true, Ordering::Relaxed);
    }

    /// Applies a new `[integrity]` section; restarts watching when it changed.
    pub async fn configure(&self, cfg: &IntegrityConfig, tpm: Option<TpmWorker>) {
        if *lock(&self.inner.cfg) == *cfg {
            return;
        }
        self.stop();
        let _g = self.inner.busy.lock().await;
        match Monitor::new(&cfg.sets) {
            Ok(m) => *lock(&self.inner.monitor) = m,
            Err(e) => {
                self.inner.set_state("error", e.to_string());
                return;
            }
        }
        *lock(&self.inner.cfg) = cfg.clone();
        let tx = lock(&self.inner.tx).clone();
        drop(_g);
        if let Some(tx) = tx {
            self.start(tpm, tx).await;
        }
    }

    /// A full scan now (not throttled); waits for it.
    pub async fn scan(&self) -> Result<(), IntegrityError> {
        let _g = self.inner.busy.lock().await;
        if lock(&self.inner.monitor).baseline.is_none() {
            return Err(IntegrityError::NoBaseline(baseline_path(
                &self.inner.cfg().dir,
            )));
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.rescan(false))
            .await
            .map_err(|e| IntegrityError::Invalid(e.to_string()))?
    }

    /// The periodic scan: throttled, low priority; skipped while another scan runs.
    pub async fn periodic_scan(&self) {
        let Ok(_g) = self.inner.busy.try_lock() else {
            return;
        };
        if lock(&self.inner.monitor).baseline.is_none() {
            return;
        }
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || inner.rescan(true)).await {
            Ok(Err(e)) => tracing::error!("integrity: periodic scan: {e}"),
            Err(e) => tracing::error!("integrity: periodic scan: {e}"),
            Ok(Ok(())) => {}
        }
    }

    fn store(&self, b: &Baseline, key: &MacKey) -> Result<(), IntegrityError> {
        db::store(&baseline_path(&self.inner.cfg().dir), b, key)
    }

    /// A new baseline from a full scan of every set; replaces the old one (kept as .prev).
    pub async fn init(&self) -> Result<(), IntegrityError> {
        let _g = self.inner.busy.lock().await;
        let key = self.key(true).await?;
        let inner = self.inner.clone();
        let b = tokio::task::spawn_blocking(move || {
            let scans = inner.scan_all(false)?;
            Ok::<_, IntegrityError>(lock(&inner.monitor).new_baseline(scans))
        })
        .await
        .map_err(|e| IntegrityError::Invalid(e.to_string()))??;
        self.store(&b, &key)?;
        let n = b.entries.len();
        let cleared = lock(&self.inner.monitor).set_baseline(Some(b));
        self.inner.set_state("ok", String::new());
        lock(&self.inner.info).last_scan = now();
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            inner.publish(cleared);
            inner.refresh_counts();
            inner.log_event(Event {
                time: now(),
                event: "baseline".into(),
                path: String::new(),
                kind: String::new(),
                expected: String::new(),
                actual: format!("{n} paths"),
                set: String::new(),
                severity: String::new(),
            });
        })
        .await;
        tracing::info!("integrity: new baseline of {n} paths");
        Ok(())
    }

    fn current_key(&self) -> Result<Arc<MacKey>, IntegrityError> {
        lock(&self.inner.key)
            .clone()
            .ok_or_else(|| IntegrityError::NoBaseline(baseline_path(&self.inner.cfg().dir)))
    }

    /// Takes the current state of `paths` into the baseline.
    pub async fn accept(&self, paths: Vec<PathBuf>) -> Result<u32, IntegrityError> {
        let _g = self.inner.busy.lock().await;
        let key = self.current_key()?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut updates = Vec::new();
            let (saved, b) = {
                let mut m = lock(&inner.monitor);
                let saved = m.baseline.clone();
                updates.extend(m.accept_all(&paths)?);
                (saved, m.baseline.clone())
            };
            if let Some(b) = b
                && let Err(e) = db::store(&baseline_path(&inner.cfg().dir), &b, &key)
            {
                // not on disk, so not in memory either
                lock(&inner.monitor).revert(saved, &paths);
                return Err(e);
            }
            for p in &paths {
                inner.log_event(Event {
                    time: now(),
                    event: "accepted".into(),
                    path: p.display().to_string(),
                    kind: "admin".into(),
                    expected: String::new(),
                    actual: String::new(),
                    set: String::new(),
                    severity: String::new(),
                });
            }
            inner.publish(updates);
            Ok(paths.len() as u32)
        })
        .await
        .map_err(|e| IntegrityError::Invalid(e.to_string()))?
    }

    /// dpkg is about to run (its pre-invoke hook): hold alerts until `accept_from_dpkg`.
    pub fn dpkg_hold(&self) {
        if lock(&self.inner.monitor).baseline.is_none() {
            return; // nothing is compared yet, so nothing to hold
        }
        *lock(&self.inner.hold_until) = Some(std::time::Instant::now() + MAX_HOLD);
        tracing::info!("integrity: dpkg is running; alerts wait for `accept --from-dpkg`");
    }

    /// Ends a dpkg hold, alerting whatever is still a violation (also when the acceptance
    /// itself failed: a hold never outlives the dpkg run that asked for it).
    fn release_hold(&self) {
        if lock(&self.inner.hold_until).take().is_none() {
            return;
        }
        let held = std::mem::take(&mut *lock(&self.inner.held));
        let inner = self.inner.clone();
        // publish blocks on the signal channel: not on the async runtime's threads
        std::thread::spawn(move || {
            let still: Vec<Update> = {
                let m = lock(&inner.monitor);
                let current: std::collections::HashSet<&str> =
                    m.violations().map(|v| v.path.as_str()).collect();
                held.into_iter()
                    .filter(|v| current.contains(v.path.as_str()))
                    .map(Update::Raised)
                    .collect()
            };
            inner.publish(still);
        });
    }

    /// Accepts the violations dpkg vouches for; returns (accepted paths, refused with why).
    pub async fn accept_from_dpkg(
        &self,
        admin: Option<PathBuf>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), IntegrityError> {
        let r = self.accept_from_dpkg_inner(admin).await;
        self.release_hold();
        r
    }

    async fn accept_from_dpkg_inner(
        &self,
        admin: Option<PathBuf>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), IntegrityError> {
        let _g = self.inner.busy.lock().await;
        let key = self.current_key()?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // dpkg has finished writing: let the watcher judge every event it caused first
            inner.drain_events();
            let admin = admin.unwrap_or_else(|| PathBuf::from(DPKG_ADMIN));
            let dpkg = DpkgDb::load(&admin).map_err(|source| IntegrityError::Io {
                path: admin.clone(),
                source,
            })?;
            let violations: Vec<Violation> = lock(&inner.monitor).violations().cloned().collect();
            let (mut accepted, mut refused) = (Vec::new(), Vec::new());
            for v in violations {
                let p = PathBuf::from(&v.path);
                match dpkg_verdict(&dpkg, &inner, &p, &v) {
                    Ok(()) => accepted.push(v),
                    Err(why) => refused.push((v.path, why)),
                }
            }
            // all or nothing: the baseline in memory is the one on disk
            let paths: Vec<PathBuf> = accepted.iter().map(|v| PathBuf::from(&v.path)).collect();
            let mut updates = Vec::new();
            if !paths.is_empty() {
                let (saved, b) = {
                    let mut m = lock(&inner.monitor);
                    let saved = m.baseline.clone();
                    updates.extend(m.accept_all(&paths)?);
                    (saved, m.baseline.clone())
                };
                if let Some(b) = b
                    && let Err(e) = db::store(&baseline_path(&inner.cfg().dir), &b, &key)
                {
                    lock(&inner.monitor).revert(saved, &paths);
                    return Err(e);
                }
            }
            for v in &accepted {
                inner.log_event(Event {
                    time: now(),
                    event: "accepted".into(),
                    path: v.path.clone(),
                    kind: "dpkg".into(),
                    expected: v.expected.clone(),
                    actual: v.actual.clone(),
                    set: v.set.clone(),
                    severity: v.severity.as_str().into(),
                });
            }
            let ok: Vec<String> = accepted.into_iter().map(|v| v.path).collect();
            for (p, why) in &refused {
                tracing::warn!(message_id = MSG_INTEGRITY_VIOLATION, path = %p, "integrity: not accepted from dpkg: {p}: {why}");
            }
            inner.publish(updates);
            Ok((ok, refused))
        })
        .await
        .map_err(|e| IntegrityError::Invalid(e.to_string()))?
    }
}

/// Whether dpkg vouches for the change at `p`: its content matches the md5sum of the package
/// that owns it, and nothing dpkg does not record (mode, owner, xattrs) changed.
fn dpkg_verdict(dpkg: &DpkgDb, inner: &Inner, p: &Path, v: &Violation) -> Result<(), String> {
    let (base, cur) = lock(&inner.monitor).entries_for(p);
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
