//! The integrity pillar: the baseline and its key, the watcher thread, full scans (at
//! startup, on a timer, on demand), acceptance, and publishing every change (journal, event
//! log, D-Bus signal).
//!
//! State lives behind one lock ([`State`]) that is never held across file I/O: files are
//! read before it is taken and judged under it. Two other primitives have their own jobs —
//! `busy` serializes the long operations (scan, init, accept) and the event log has its own
//! lock because appending to it is disk I/O that readers of the state must not wait for.
//!
//! * `publish.rs` — journal, event log and signal for every change; dpkg holds;
//! * `scans.rs` — init, full scans, rescans of one set;
//! * `watcher.rs` — the inotify thread;
//! * `accept.rs` — acceptance by the admin and from dpkg;
//! * `protect.rs` — the baseline's key and its generation (the TPM's monotonic counter).

mod accept;
mod protect;
mod publish;
mod scans;
mod watcher;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::api::{IntegrityInfo, IntegrityState};
use crate::config::IntegrityConfig;
use crate::daemon::lock;
use crate::integrity::db;
use crate::integrity::key::MacKey;
use crate::integrity::log::{Event, EventLog};
use crate::integrity::monitor::Monitor;
use crate::integrity::scan::Progress;
use crate::integrity::{IntegrityError, Violation};
use crate::tpm::worker::TpmWorker;

/// Everything the pillar knows, behind one lock.
struct State {
    cfg: IntegrityConfig,
    monitor: Monitor,
    key: Option<Arc<MacKey>>,
    tpm: Option<TpmWorker>,
    info: IntegrityInfo,
    /// Violations go to the bus through this channel, in order.
    tx: Option<tokio::sync::mpsc::Sender<Violation>>,
    /// Tells the current watcher thread to end.
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    /// Callers waiting until the watcher has drained the kernel's queue.
    flush: Vec<std::sync::mpsc::Sender<()>>,
    /// While dpkg runs (pre-invoke hook until accept --from-dpkg): violations are recorded
    /// but their alerts wait, so that what dpkg vouches for never raises one. Expires.
    hold_until: Option<Instant>,
    held: Vec<Violation>,
    /// dpkg's database as the hold began (removals and dpkg's own files are judged by it).
    hold_snapshot: Option<crate::integrity::dpkg::HoldSnapshot>,
}

struct Inner {
    state: Mutex<State>,
    /// The persistent event log (own lock: appending is disk I/O).
    log: Mutex<Option<EventLog>>,
    /// One scan, init or acceptance at a time.
    busy: tokio::sync::Mutex<()>,
}

/// The daemon's integrity monitor.
pub struct IntegrityService {
    inner: Arc<Inner>,
}

fn baseline_path(dir: &Path) -> PathBuf {
    dir.join("baseline.db")
}

/// The result of work handed to a blocking thread.
fn joined<T>(
    r: Result<Result<T, IntegrityError>, tokio::task::JoinError>,
) -> Result<T, IntegrityError> {
    r.map_err(|e| IntegrityError::Invalid(e.to_string()))?
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Refuses `what` when monitoring is off: with `enabled = false` no method changes state.
    fn enabled_or(&self, what: &'static str) -> Result<(), IntegrityError> {
        if self.state().cfg.enabled {
            Ok(())
        } else {
            Err(IntegrityError::Disabled { what })
        }
    }

    fn cfg(&self) -> IntegrityConfig {
        self.state().cfg.clone()
    }

    fn set_state(&self, state: IntegrityState, detail: String) {
        let mut s = self.state();
        s.info.state = state;
        s.info.detail = detail;
    }

    fn log_event(&self, e: Event) {
        if let Some(l) = lock(&self.log).as_mut()
            && let Err(err) = l.append(&e)
        {
            tracing::warn!("integrity event log: {err}");
        }
    }

    fn store(&self, b: &db::Baseline, key: &MacKey) -> Result<(), IntegrityError> {
        db::store(&baseline_path(&self.cfg().dir), b, key)
    }
}

impl IntegrityService {
    pub fn new(cfg: &IntegrityConfig) -> Result<IntegrityService, IntegrityError> {
        Ok(IntegrityService {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    monitor: Monitor::new(&cfg.sets)?,
                    cfg: cfg.clone(),
                    key: None,
                    tpm: None,
                    info: IntegrityInfo::new(IntegrityState::Starting),
                    tx: None,
                    stop: Arc::new(AtomicBool::new(false)),
                    progress: Arc::new(Progress::default()),
                    flush: Vec::new(),
                    hold_until: None,
                    held: Vec::new(),
                    hold_snapshot: None,
                }),
                log: Mutex::new(None),
                busy: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn info(&self) -> IntegrityInfo {
        let s = self.inner.state();
        let mut i = s.info.clone();
        if i.scanning {
            i.scan_files = s.progress.files.load(Ordering::Relaxed);
            i.scan_total = s.progress.total_files.load(Ordering::Relaxed);
            i.scan_bytes = s.progress.bytes.load(Ordering::Relaxed);
        }
        i
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.inner.state().monitor.violations().cloned().collect()
    }

    /// How many violations there are of each severity, counted under the lock without
    /// copying them (the metrics ask every two seconds).
    pub fn violation_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let mut n = std::collections::BTreeMap::new();
        for v in self.inner.state().monitor.violations() {
            *n.entry(v.severity.as_str()).or_default() += 1;
        }
        n
    }

    /// The last `n` logged events (reads the log file: call it off the event loop).
    pub fn events(&self, n: usize) -> Vec<Event> {
        lock(&self.inner.log)
            .as_ref()
            .map(|l| l.tail(n))
            .unwrap_or_default()
    }

    fn current_key(&self) -> Result<Arc<MacKey>, IntegrityError> {
        let s = self.inner.state();
        s.key
            .clone()
            .ok_or_else(|| IntegrityError::NoBaseline(baseline_path(&s.cfg.dir)))
    }

    /// Loads the baseline, starts watching and runs a first full scan in the background.
    pub async fn start(&self, tpm: Option<TpmWorker>, tx: tokio::sync::mpsc::Sender<Violation>) {
        let cfg = {
            let mut s = self.inner.state();
            s.tx = Some(tx);
            s.tpm = tpm;
            s.cfg.clone()
        };
        if !cfg.enabled {
            self.inner.set_state(
                IntegrityState::Disabled,
                "[integrity] enabled = false".into(),
            );
            return;
        }
        if let Err(e) = crate::fsutil::create_dir_all_mode(&cfg.dir, 0o700) {
            self.inner
                .set_state(IntegrityState::Error, format!("{}: {e}", cfg.dir.display()));
            return;
        }
        *lock(&self.inner.log) = Some(EventLog::open(&cfg.dir, cfg.max_events));
        let path = baseline_path(&cfg.dir);
        let loaded = if path.exists() {
            match self.key(false).await {
                Ok(k) => {
                    let (inner, p) = (self.inner.clone(), path.clone());
                    joined(
                        tokio::task::spawn_blocking(move || {
                            let b = db::load(&p, &k)?;
                            inner.check_generation(&p, &k, &b)?;
                            Ok(b)
                        })
                        .await,
                    )
                }
                Err(e) => Err(e),
            }
        } else {
            match self.baseline_was_made().await {
                Some(why) => Err(IntegrityError::Missing {
                    path: path.clone(),
                    why,
                }),
                None => Err(IntegrityError::NoBaseline(path.clone())),
            }
        };
        match loaded {
            Ok(b) => {
                let _ = self.inner.state().monitor.set_baseline(Some(b));
                self.inner.set_state(IntegrityState::Ok, String::new());
                self.inner.refresh_counts();
            }
            Err(IntegrityError::NoBaseline(_)) => self.inner.set_state(
                IntegrityState::NoBaseline,
                "no baseline yet: `hardenctl integrity init`".into(),
            ),
            Err(e) => self.inner.tampered(&path, &e).await,
        }
        let stop = Arc::new(AtomicBool::new(false));
        self.inner.state().stop = stop.clone();
        let inner = self.inner.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("hardend-integrity".into())
            .spawn(move || inner.watch_loop(stop))
        {
            self.inner.set_state(
                IntegrityState::Error,
                format!("cannot start the watcher: {e}"),
            );
            return;
        }
        if self.inner.state().monitor.baseline.is_some() {
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

    /// Stops the watcher thread (reload with other settings, shutdown).
    pub fn stop(&self) {
        self.inner.state().stop.store(true, Ordering::Relaxed);
    }

    /// Applies a new `[integrity]` section; restarts watching when it changed.
    pub async fn configure(&self, cfg: &IntegrityConfig, tpm: Option<TpmWorker>) {
        if self.inner.state().cfg == *cfg {
            return;
        }
        self.stop();
        let _g = self.inner.busy.lock().await;
        let tx = {
            let mut s = self.inner.state();
            match Monitor::new(&cfg.sets) {
                Ok(m) => s.monitor = m,
                Err(e) => {
                    s.info.state = IntegrityState::Error;
                    s.info.detail = e.to_string();
                    return;
                }
            }
            s.cfg = cfg.clone();
            s.tx.clone()
        };
        drop(_g);
        if let Some(tx) = tx {
            self.start(tpm, tx).await;
        }
    }
}
