//! The confinement pillar: which unit is assigned which profile, the verified state of each
//! (from the kernel and the unit's enforcement record), and confine/release/reload.
//!
//! * `registry.rs` — where assignments come from;
//! * `verification.rs` — is one process confined by the current version of its profile;
//! * `unit_process.rs` — one unit's process verified, with the kernel's view and proofs
//!   (runs on a worker);
//! * `records.rs` — the enforcement records on disk;
//! * `dropins.rs` — hardend's drop-ins on disk;
//! * `confine.rs` — confine, release (with rollback) and the `[services]` assignments;
//! * `profiles.rs` — the profile path as the daemon sees it.

mod confine;
pub mod dropins;
pub mod exposure;
pub mod profiles;
pub mod records;
pub mod registry;
mod unit_process;
pub mod verification;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{ServiceInfo, ServiceState};
use crate::config::DaemonConfig;
use crate::daemon::lock;
use crate::daemon::workers::{WorkerError, Workers};
use crate::profile::ProfileLoader;
use crate::proof::ProcStatus;
use crate::proof::seccomp::FilterProof;
use crate::systemd::client::Systemd;

use self::registry::Assignment;

/// Errors of state-changing operations; the bus maps each kind onto a D-Bus error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    Failed(String),
}

/// A change of a unit's state, for the signal and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The state before ("" when the unit was not known).
    pub old: String,
    pub info: ServiceInfo,
}

/// What the pillar keeps: its configuration and the last verified state of every unit.
struct State {
    cfg: DaemonConfig,
    /// `[services]` of the configuration.
    configured: BTreeMap<String, String>,
    services: BTreeMap<String, ServiceInfo>,
}

/// Seccomp read-backs already made: one per (pid, start time, profile hash).
pub(crate) type FilterProofs = Arc<Mutex<HashMap<(u32, u64, String), FilterProof>>>;

/// The confinement pillar of the daemon.
pub struct ServiceManager {
    state: Mutex<State>,
    systemd: Option<Systemd>,
    /// Serializes confine/release/reload so that drop-ins and reloads never interleave.
    ops: tokio::sync::Mutex<()>,
    /// Verification, confine/release and caller checks: every file and /proc read.
    workers: Workers,
    /// What callers who are not root ask for (CheckProfile, ListProfiles): a pool of its
    /// own, so a flood of them never delays verification.
    public: Workers,
    filter_proofs: FilterProofs,
}

impl From<WorkerError> for ServiceError {
    fn from(e: WorkerError) -> Self {
        ServiceError::Failed(e.to_string())
    }
}

impl ServiceManager {
    pub fn new(
        cfg: DaemonConfig,
        configured: BTreeMap<String, String>,
        systemd: Option<Systemd>,
    ) -> Self {
        ServiceManager {
            state: Mutex::new(State {
                cfg,
                configured,
                services: BTreeMap::new(),
            }),
            systemd,
            ops: tokio::sync::Mutex::new(()),
            workers: Workers::new(
                "verification",
                4,
                Duration::from_secs(10),
                Duration::from_secs(10),
            ),
            public: Workers::new(
                "unprivileged requests",
                2,
                Duration::from_secs(2),
                Duration::from_secs(5),
            ),
            filter_proofs: Arc::default(),
        }
    }

    /// Runs blocking work on the verification workers.
    pub(crate) async fn blocking<T, F>(&self, what: &str, f: F) -> Result<T, WorkerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.workers.run(what, f).await
    }

    /// Runs blocking work for a caller who is not root.
    pub(crate) async fn public_blocking<T, F>(&self, what: &str, f: F) -> Result<T, WorkerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.public.run(what, f).await
    }

    /// Applies a reloaded configuration (the bus address cannot change under a running daemon).
    pub fn configure(&self, mut cfg: DaemonConfig, configured: BTreeMap<String, String>) {
        let mut s = lock(&self.state);
        cfg.bus = s.cfg.bus.clone();
        s.cfg = cfg;
        s.configured = configured;
    }

    pub fn config(&self) -> DaemonConfig {
        lock(&self.state).cfg.clone()
    }

    fn configured(&self) -> BTreeMap<String, String> {
        lock(&self.state).configured.clone()
    }

    pub fn has_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    pub(crate) fn loader(cfg: &DaemonConfig) -> ProfileLoader {
        ProfileLoader::new(cfg.profile_path.clone())
    }

    /// Every assignment now (drop-ins on disk and `[services]`).
    pub async fn assignments(&self) -> Result<BTreeMap<String, Assignment>, WorkerError> {
        let (cfg, configured) = (self.config(), self.configured());
        self.blocking("reading assignments", move || {
            registry::assignments(&cfg, &configured)
        })
        .await
    }

    /// Whether `unit` has a profile assigned.
    pub async fn is_assigned(&self, unit: &str) -> bool {
        self.assignments().await.is_ok_and(|a| a.contains_key(unit))
    }

    async fn verify_one(&self, cfg: &DaemonConfig, a: &Assignment) -> ServiceInfo {
        let unit_info = |state, detail: String| {
            ServiceInfo::new(&a.unit, &a.profile, a.source.as_str(), state, detail)
        };
        let pid = match &self.systemd {
            Some(sd) => match sd.status(&a.unit).await {
                Ok(st) if st.active_state == "failed" => {
                    return unit_info(
                        ServiceState::Failed,
                        "systemd reports the unit failed".into(),
                    );
                }
                Ok(st) => Some(st.main_pid),
                Err(e) => return unit_info(ServiceState::Inactive, e.to_string()),
            },
            None => None,
        };
        let (cfg, a2, proofs) = (cfg.clone(), a.clone(), self.filter_proofs.clone());
        match self
            .blocking(&format!("verifying {}", a.unit), move || {
                unit_process::check(&cfg, &a2, pid, &proofs)
            })
            .await
        {
            Ok(info) => info,
            Err(e) => unit_info(ServiceState::NotEnforced, e.to_string()),
        }
    }

    /// Verifies every assigned unit; returns the units whose state changed.
    pub async fn verify_all(&self) -> Vec<Change> {
        let assignments = match self.assignments().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("verification skipped: {e}");
                return Vec::new();
            }
        };
        let cfg = self.config();
        let mut fresh = BTreeMap::new();
        for a in assignments.values() {
            fresh.insert(a.unit.clone(), self.verify_one(&cfg, a).await);
        }
        let dir = cfg.records_dir();
        let live: Vec<(u32, u64)> = fresh
            .values()
            .filter(|i| i.pid != 0)
            .filter_map(|i| {
                crate::confine::record::process_start_time(i.pid)
                    .ok()
                    .map(|t| (i.pid, t))
            })
            .collect();
        let proofs = self.filter_proofs.clone();
        let _ = self
            .blocking("pruning records", move || {
                records::prune_records(&dir);
                lock(&proofs).retain(|(pid, start, _), _| live.contains(&(*pid, *start)));
            })
            .await;
        self.replace(fresh)
    }

    /// Verifies one unit (after confine/release or a systemd job); returns a change, if any.
    pub async fn verify_unit(&self, unit: &str) -> Option<Change> {
        let cfg = self.config();
        let a = match self.assignments().await {
            Ok(mut a) => a.remove(unit),
            Err(e) => {
                tracing::warn!("verification of {unit} skipped: {e}");
                return None;
            }
        };
        let mut services = lock(&self.state).services.clone();
        match a {
            Some(a) => {
                let info = self.verify_one(&cfg, &a).await;
                services.insert(unit.to_string(), info);
            }
            None => {
                services.remove(unit);
            }
        }
        self.replace(services)
            .into_iter()
            .find(|c| c.info.unit == unit)
    }

    fn replace(&self, fresh: BTreeMap<String, ServiceInfo>) -> Vec<Change> {
        let mut st = lock(&self.state);
        let cur = &st.services;
        let mut changes = Vec::new();
        for (unit, info) in &fresh {
            let old = cur.get(unit).map(|i| i.state);
            if old != Some(info.state) {
                changes.push(Change {
                    old: old.map(|s| s.as_str().to_string()).unwrap_or_default(),
                    info: info.clone(),
                });
            }
        }
        for (unit, info) in cur {
            if !fresh.contains_key(unit) {
                changes.push(Change {
                    old: info.state.as_str().into(),
                    info: ServiceInfo::new(
                        unit,
                        &info.profile,
                        &info.source,
                        ServiceState::Released,
                        "no longer assigned a profile",
                    ),
                });
            }
        }
        st.services = fresh;
        changes
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        lock(&self.state).services.values().cloned().collect()
    }

    pub fn service(&self, unit: &str) -> Option<ServiceInfo> {
        lock(&self.state).services.get(unit).cloned()
    }
}

impl ServiceManager {
    /// The confined service process `pid` belongs to, if any: the unit of its cgroup when
    /// hardend assigns that unit a profile, or the unit of an enforcement record of it or
    /// one of its ancestors (a confined service's children are confined too). `Err` when it
    /// could not be found out (the caller is then refused).
    pub async fn confinement_of(&self, pid: u32) -> Result<Option<String>, WorkerError> {
        let assigned = self.assignments().await?;
        let records = self.config().records_dir();
        self.blocking("checking the caller", move || {
            confinement_of(pid, &assigned, &records)
        })
        .await
    }
}

fn confinement_of(
    pid: u32,
    assigned: &BTreeMap<String, Assignment>,
    records: &std::path::Path,
) -> Option<String> {
    if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        for line in cg.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap_or("");
            if let Some(u) = path
                .split('/')
                .find(|c| c.ends_with(".service") && assigned.contains_key(*c))
            {
                return Some(u.to_string());
            }
        }
    }
    let mut p = pid;
    for _ in 0..64 {
        if p <= 1 {
            break;
        }
        if let Ok(start) = crate::confine::record::process_start_time(p)
            && let Some(uid) = ProcStatus::read(p).map(|s| s.uid)
            && let Ok(Some(r)) =
                crate::confine::record::EnforcementRecord::find_trusted(records, p, start, uid)
        {
            return Some(r.unit.unwrap_or_else(|| format!("process {p}")));
        }
        p = parent_of(p)?;
    }
    None
}

/// The parent PID of `pid` (`PPid:` in `/proc/PID/status`).
fn parent_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}
