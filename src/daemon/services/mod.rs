//! The confinement pillar: which unit is assigned which profile, the verified state of each
//! (from the kernel and the unit's enforcement record), and confine/release/reload.
//!
//! * `registry.rs` — where assignments come from;
//! * `verification.rs` — is one process confined by the current version of its profile;
//! * `records.rs` — the enforcement records on disk;
//! * `dropins.rs` — hardend's drop-ins on disk;
//! * `confine.rs` — confine, release (with rollback) and the `[services]` assignments;
//! * `profiles.rs` — the profile path as the daemon sees it.

mod confine;
pub mod dropins;
mod profiles;
pub mod records;
pub mod registry;
pub mod verification;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::api::types::{KernelView, RulesView};
use crate::api::{ServiceInfo, ServiceState};
use crate::confine::LandlockStatus;
use crate::daemon::config::DaemonConfig;
use crate::daemon::lock;
use crate::profile::ProfileLoader;
use crate::proof::ProcStatus;
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

/// The confinement pillar of the daemon.
pub struct ServiceManager {
    state: Mutex<State>,
    systemd: Option<Systemd>,
    /// Serializes confine/release/reload so that drop-ins and reloads never interleave.
    ops: tokio::sync::Mutex<()>,
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
        }
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

    /// Every assignment now.
    pub fn assignments(&self) -> BTreeMap<String, Assignment> {
        registry::assignments(&self.config(), &self.configured())
    }

    /// Whether `unit` has a profile assigned.
    pub fn is_assigned(&self, unit: &str) -> bool {
        self.assignments().contains_key(unit)
    }

    async fn verify_one(&self, cfg: &DaemonConfig, a: &Assignment) -> ServiceInfo {
        let loader = Self::loader(cfg);
        let current = loader.load(&a.profile).map_err(|e| e.to_string());
        let rules = current.as_ref().map(RulesView::from).unwrap_or_default();
        let info = |state, detail: String| ServiceInfo {
            rules: rules.clone(),
            ..ServiceInfo::new(&a.unit, &a.profile, a.source.as_str(), state, detail)
        };
        let records = cfg.records_dir();
        let pid = match &self.systemd {
            Some(sd) => match sd.status(&a.unit).await {
                Ok(st) if st.active_state == "failed" => {
                    return info(
                        ServiceState::Failed,
                        "systemd reports the unit failed".into(),
                    );
                }
                Ok(st) => st.main_pid,
                Err(e) => return info(ServiceState::Inactive, e.to_string()),
            },
            None => records::live_record_for_unit(&records, &a.unit).map_or(0, |(pid, _)| pid),
        };
        if pid == 0 {
            return info(ServiceState::Inactive, "not running".into());
        }
        let v = verification::verify_process(
            pid,
            &a.profile,
            current.as_ref().map_err(String::as_str),
            &records,
        );
        let mut out = info(v.state, v.detail);
        out.pid = pid;
        if let Some(st) = ProcStatus::read(pid) {
            out.kernel = KernelView::from(&st);
            if let Some(v) = crate::proof::mounts::view(pid) {
                out.kernel = out.kernel.with_mounts(&v);
            }
        }
        if let Some(r) = v.record {
            let ll = &r.confinement.landlock;
            out.landlock_abi = u32::from(ll.effective_abi);
            out.landlock = match ll.status {
                LandlockStatus::Full => "full",
                LandlockStatus::Partial => "partial",
                LandlockStatus::None => "none",
            }
            .into();
            out.seccomp = if r.confinement.seccomp.configured {
                format!("{:?}", r.confinement.seccomp.mode).to_lowercase()
            } else {
                "none".into()
            };
            out.profile_hash = r.profile_hash;
            out.since = r.time;
        }
        out
    }

    /// Verifies every assigned unit; returns the units whose state changed.
    pub async fn verify_all(&self) -> Vec<Change> {
        let cfg = self.config();
        let assignments = registry::assignments(&cfg, &self.configured());
        let mut fresh = BTreeMap::new();
        for a in assignments.values() {
            fresh.insert(a.unit.clone(), self.verify_one(&cfg, a).await);
        }
        records::prune_records(&cfg.records_dir());
        self.replace(fresh)
    }

    /// Verifies one unit (after confine/release or a systemd job); returns a change, if any.
    pub async fn verify_unit(&self, unit: &str) -> Option<Change> {
        let cfg = self.config();
        let a = registry::assignments(&cfg, &self.configured()).remove(unit);
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
    /// one of its ancestors (a confined service's children are confined too).
    pub fn confinement_of(&self, pid: u32) -> Option<String> {
        let cfg = self.config();
        let assigned = self.assignments();
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
        let records = cfg.records_dir();
        let mut p = pid;
        for _ in 0..64 {
            if p <= 1 {
                break;
            }
            if let Ok(start) = crate::confine::record::process_start_time(p)
                && let Some(uid) = ProcStatus::read(p).map(|s| s.uid)
                && let Ok(Some(r)) =
                    crate::confine::record::EnforcementRecord::find_trusted(&records, p, start, uid)
            {
                return Some(r.unit.unwrap_or_else(|| format!("process {p}")));
            }
            p = parent_of(p)?;
        }
        None
    }
}

/// The parent PID of `pid` (`PPid:` in `/proc/PID/status`).
fn parent_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}
