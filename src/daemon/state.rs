//! The daemon's state and the operations behind the Manager interface: which unit is
//! assigned which profile, verification of every assigned unit, confine/release/reload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::confine::landlock::kernel_abi;
use crate::confine::record::DEFAULT_RUNTIME_DIR;
use crate::confine::{LandlockStatus, check_profile};
use crate::daemon::config::Config;
use crate::daemon::verify::{self, ServiceState};
use crate::dbus::types::{ProfileInfo, ServiceInfo, StatusInfo};
use crate::fsutil;
use crate::profile::{DEFAULT_SEARCH_PATH, ProfileLoader};
use crate::systemd::client::{Systemd, SystemdError};
use crate::systemd::dropin::{self, DROPIN_NAME, valid_unit_name};

/// Errors of state-changing operations, mapped onto D-Bus errors by the interface.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    Failed(String),
}

impl From<DaemonError> for zbus::fdo::Error {
    fn from(e: DaemonError) -> Self {
        match e {
            DaemonError::InvalidArgs(m) => zbus::fdo::Error::InvalidArgs(m),
            DaemonError::NotSupported(m) => zbus::fdo::Error::NotSupported(m),
            DaemonError::Failed(m) => zbus::fdo::Error::Failed(m),
        }
    }
}

/// Where an assignment comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub unit: String,
    pub profile: String,
    pub source: &'static str,
}

/// A change of a unit's state, for the signal and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub old: String,
    pub info: ServiceInfo,
}

/// Shared daemon state.
pub struct Daemon {
    config: RwLock<Config>,
    systemd: Option<Systemd>,
    services: Mutex<BTreeMap<String, ServiceInfo>>,
    verity: Mutex<crate::verity::runtime::VerityCheck>,
    /// Serializes confine/release/reload so that drop-ins and reloads never interleave.
    ops: tokio::sync::Mutex<()>,
    kernel_abi: u8,
    identity: crate::daemon::identity::IdentityService,
    integrity: crate::daemon::integrity::IntegrityService,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Daemon {
    pub fn new(
        config: Config,
        systemd: Option<Systemd>,
    ) -> Result<Self, crate::integrity::IntegrityError> {
        Ok(Daemon {
            integrity: crate::daemon::integrity::IntegrityService::new(&config.integrity)?,
            systemd,
            services: Mutex::new(BTreeMap::new()),
            verity: Mutex::new(Default::default()),
            ops: tokio::sync::Mutex::new(()),
            kernel_abi: kernel_abi(),
            identity: crate::daemon::identity::IdentityService::new(&config),
            config: RwLock::new(config),
        })
    }

    /// The integrity monitor (org.hardend1.Integrity).
    pub fn integrity(&self) -> &crate::daemon::integrity::IntegrityService {
        &self.integrity
    }

    /// The device identity (org.hardend1.Identity).
    pub fn identity(&self) -> &crate::daemon::identity::IdentityService {
        &self.identity
    }

    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn has_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    fn loader(cfg: &Config) -> ProfileLoader {
        ProfileLoader::new(cfg.profile_path.clone())
    }

    /// Every assignment: our drop-ins (persistent ones win, as in systemd), then config
    /// `[services]`, then live enforcement records naming a unit.
    pub fn assignments(&self, cfg: &Config) -> BTreeMap<String, Assignment> {
        let mut out = BTreeMap::new();
        for (dir, source) in [
            (&cfg.dropin_dir, "dropin"),
            (&cfg.runtime_dropin_dir, "runtime-dropin"),
        ] {
            for (unit, profile) in scan_dropins(dir) {
                out.entry(unit.clone()).or_insert(Assignment {
                    unit,
                    profile,
                    source,
                });
            }
        }
        for (unit, profile) in &cfg.services {
            out.entry(unit.clone()).or_insert(Assignment {
                unit: unit.clone(),
                profile: profile.clone(),
                source: "config",
            });
        }
        for r in verify::live_records(&cfg.records_dir()) {
            if let Some(unit) = r.unit {
                out.entry(unit.clone()).or_insert(Assignment {
                    unit,
                    profile: r.profile,
                    source: "record",
                });
            }
        }
        out
    }

    async fn verify_one(&self, cfg: &Config, a: &Assignment) -> ServiceInfo {
        let loader = Self::loader(cfg);
        let hash = loader
            .load(&a.profile)
            .map(|p| p.policy_hash())
            .map_err(|e| e.to_string());
        let mut info = ServiceInfo {
            unit: a.unit.clone(),
            profile: a.profile.clone(),
            source: a.source.to_string(),
            ..Default::default()
        };
        let records = cfg.records_dir();
        let pid = match &self.systemd {
            Some(sd) => match sd.status(&a.unit).await {
                Ok(st) if st.active_state == "failed" => {
                    info.state = ServiceState::Failed.as_str().into();
                    info.detail = "systemd reports the unit failed".into();
                    return info;
                }
                Ok(st) => st.main_pid,
                Err(e) => {
                    info.state = ServiceState::Inactive.as_str().into();
                    info.detail = e.to_string();
                    return info;
                }
            },
            None => verify::live_record_for_unit(&records, &a.unit).map_or(0, |(pid, _)| pid),
        };
        if pid == 0 {
            info.state = ServiceState::Inactive.as_str().into();
            info.detail = "not running".into();
            return info;
        }
        let v = verify::verify_process(
            pid,
            &a.profile,
            hash.as_deref().map_err(String::as_str),
            &records,
        );
        info.pid = pid;
        info.state = v.state.as_str().into();
        info.detail = v.detail;
        if let Some(r) = v.record {
            let ll = &r.confinement.landlock;
            info.landlock_abi = u32::from(ll.effective_abi);
            info.landlock = match ll.status {
                LandlockStatus::Full => "full",
                LandlockStatus::Partial => "partial",
                LandlockStatus::None => "none",
            }
            .into();
            info.seccomp = if r.confinement.seccomp.configured {
                format!("{:?}", r.confinement.seccomp.mode).to_lowercase()
            } else {
                "none".into()
            };
            info.profile_hash = r.profile_hash;
            info.since = r.time;
        }
        info
    }

    /// Verifies every assigned unit; returns the units whose state changed.
    pub async fn verify_all(&self) -> Vec<Change> {
        let cfg = self.config();
        let assignments = self.assignments(&cfg);
        let mut fresh = BTreeMap::new();
        for a in assignments.values() {
            fresh.insert(a.unit.clone(), self.verify_one(&cfg, a).await);
        }
        verify::prune_records(&cfg.records_dir());
        self.replace_services(fresh)
    }

    /// Verifies one unit (after confine/release or a systemd job); returns a change, if any.
    pub async fn verify_unit(&self, unit: &str) -> Option<Change> {
        let cfg = self.config();
        let a = self.assignments(&cfg).remove(unit);
        let mut services = lock(&self.services).clone();
        match a {
            Some(a) => {
                let info = self.verify_one(&cfg, &a).await;
                services.insert(unit.to_string(), info);
            }
            None => {
                services.remove(unit);
            }
        }
        self.replace_services(services)
            .into_iter()
            .find(|c| c.info.unit == unit)
    }

    fn replace_services(&self, fresh: BTreeMap<String, ServiceInfo>) -> Vec<Change> {
        let mut cur = lock(&self.services);
        let mut changes = Vec::new();
        for (unit, info) in &fresh {
            let old = cur.get(unit).map(|i| i.state.clone()).unwrap_or_default();
            if old != info.state {
                changes.push(Change {
                    old,
                    info: info.clone(),
                });
            }
        }
        for (unit, info) in cur.iter() {
            if !fresh.contains_key(unit) {
                changes.push(Change {
                    old: info.state.clone(),
                    info: ServiceInfo {
                        unit: unit.clone(),
                        profile: info.profile.clone(),
                        state: "released".into(),
                        detail: "no longer assigned a profile".into(),
                        ..Default::default()
                    },
                });
            }
        }
        *cur = fresh;
        changes
    }

    /// The last runtime dm-verity check.
    pub fn verity(&self) -> crate::verity::runtime::VerityCheck {
        lock(&self.verity).clone()
    }

    /// Checks the root file system's dm-verity state again; returns the check when it just
    /// became `corrupted` (for the signal).
    pub fn refresh_verity(&self) -> Option<crate::verity::runtime::VerityCheck> {
        let cfg = self.config();
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let c = crate::verity::runtime::check(
            &cfg.verity_mountpoint,
            &cmdline,
            cfg.verity_root_hash.as_deref(),
        );
        let mut cur = lock(&self.verity);
        let newly_corrupted = c.state == "corrupted" && cur.state != "corrupted";
        *cur = c.clone();
        newly_corrupted.then_some(c)
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        lock(&self.services).values().cloned().collect()
    }

    pub fn service(&self, unit: &str) -> Option<ServiceInfo> {
        lock(&self.services).get(unit).cloned()
    }

    pub fn status(&self) -> StatusInfo {
        let cfg = self.config();
        let services = self.services();
        let bad: Vec<&ServiceInfo> = services
            .iter()
            .filter(|s| matches!(s.state.as_str(), "not-enforced" | "stale" | "failed"))
            .collect();
        let mut detail = Vec::new();
        if !bad.is_empty() {
            detail.push(format!(
                "not enforced: {}",
                bad.iter()
                    .map(|s| format!("{} ({})", s.unit, s.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let v = self.verity();
        if matches!(v.state.as_str(), "corrupted" | "hash-mismatch") {
            detail.push(format!("dm-verity {}: {}", v.state, v.detail));
        }
        let ig = self.integrity.info();
        if matches!(ig.state.as_str(), "violations" | "tampered" | "error") {
            detail.push(format!("integrity {}: {}", ig.state, ig.detail));
        }
        let id = self.identity.info();
        if matches!(id.state.as_str(), "no-tpm" | "lost" | "error") {
            detail.push(format!("identity {}: {}", id.state, id.detail));
        }
        if self.kernel_abi == 0 {
            detail.push(
                "the kernel has no Landlock: profiles with [landlock] refuse to start".into(),
            );
        }
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            state: if detail.is_empty() { "ok" } else { "degraded" }.into(),
            detail: detail.join("; "),
            kernel_landlock_abi: u32::from(self.kernel_abi),
            services: services.len() as u32,
            enforced: services
                .iter()
                .filter(|s| matches!(s.state.as_str(), "enforced" | "partial"))
                .count() as u32,
            problems: bad.len() as u32,
            verify_interval: cfg.verify_interval as u32,
            systemd: self.systemd.is_some(),
            profile_path: cfg
                .profile_path
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }

    pub fn profiles(&self) -> Vec<ProfileInfo> {
        let cfg = self.config();
        let loader = Self::loader(&cfg);
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

    /// Checks a profile file (path) or name; returns (ok, error, notes).
    pub fn check_profile(&self, name_or_path: &str) -> (bool, String, Vec<String>) {
        let loader = Self::loader(&self.config());
        match loader.load(name_or_path).and_then(check_profile) {
            Ok((_, notes)) => (true, String::new(), notes),
            Err(e) => (false, e.to_string(), Vec::new()),
        }
    }

    /// Re-reads the configuration file. A bad file keeps the old configuration.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let _guard = self.ops.lock().await;
        let cur = self.config();
        let Some(path) = cur.source.clone() else {
            return Ok(());
        };
        let mut new = Config::load(&path).map_err(|e| DaemonError::InvalidArgs(e.to_string()))?;
        // The bus cannot change under a running daemon.
        new.bus = cur.bus;
        self.identity.configure(&new);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Writes drop-ins for `[services]` entries that have none (startup and reload).
    /// Returns the errors, one line per unit; they do not stop the daemon.
    pub async fn apply_config_services(&self) -> Vec<String> {
        let cfg = self.config();
        if cfg.services.is_empty() {
            return Vec::new();
        }
        if self.systemd.is_none() {
            return vec![
                "systemd is not on the bus: [services] assignments are verified from records only"
                    .into(),
            ];
        }
        let existing: BTreeMap<String, String> =
            scan_dropins(&cfg.dropin_dir).into_iter().collect();
        let mut errors = Vec::new();
        for (unit, profile) in &cfg.services {
            if existing.get(unit) == Some(profile) {
                continue;
            }
            if let Err(e) = self.confine(unit, profile, false, true).await {
                errors.push(format!("{unit}: {e}"));
            }
        }
        errors
    }

    /// Puts `unit` under `profile`: validate, render, write the drop-in, reload, restart,
    /// verify. On a failed restart the previous drop-in (or none) is restored.
    pub async fn confine(
        &self,
        unit: &str,
        profile: &str,
        runtime: bool,
        restart: bool,
    ) -> Result<ServiceInfo, DaemonError> {
        let _guard = self.ops.lock().await;
        let cfg = self.config();
        if !valid_unit_name(unit) {
            return Err(DaemonError::InvalidArgs(format!(
                "{unit:?} is not a service unit name (NAME.service)"
            )));
        }
        if profile.contains('/') {
            return Err(DaemonError::InvalidArgs(format!(
                "{profile:?}: give the name of a profile on the profile path ({}), not a path",
                cfg.profile_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )));
        }
        let loaded = Self::loader(&cfg)
            .load(profile)
            .and_then(check_profile)
            .map_err(|e| DaemonError::InvalidArgs(format!("profile {profile}: {e}")))?;
        let sd = self.systemd.as_ref().ok_or_else(|| {
            DaemonError::NotSupported(
                "systemd is not on the daemon's bus: units cannot be confined".into(),
            )
        })?;
        let (facts, ignores_sigpipe) = sd.unit_facts(unit).await.map_err(|e| match e {
            SystemdError::NotLoaded { .. } => {
                DaemonError::InvalidArgs(format!("unknown unit: {e}"))
            }
            e => DaemonError::Failed(e.to_string()),
        })?;
        let mut extra: Vec<String> = Vec::new();
        if !ignores_sigpipe {
            extra.push("--reset-sigpipe".into());
        }
        let default_path: Vec<PathBuf> = DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect();
        if cfg.profile_path != default_path {
            extra.push("--profile-path".into());
            extra.push(
                cfg.profile_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
        if cfg.records_dir() != Path::new(DEFAULT_RUNTIME_DIR) {
            extra.push("--runtime-dir".into());
            extra.push(cfg.records_dir().display().to_string());
        }
        let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let content = dropin::render(&facts, &loaded.0.name, &cfg.exec_path, &extra_refs)
            .map_err(|e| DaemonError::InvalidArgs(e.to_string()))?;

        let persistent = dropin::dropin_path(&cfg.dropin_dir, unit);
        let target = if runtime {
            if dropin_profile(&persistent).is_some() {
                return Err(DaemonError::InvalidArgs(format!(
                    "{unit} is confined persistently ({}); release it before a --runtime confinement",
                    persistent.display()
                )));
            }
            dropin::dropin_path(&cfg.runtime_dropin_dir, unit)
        } else {
            persistent
        };
        let previous = std::fs::read_to_string(&target).ok();
        if previous.is_some() && previous.as_deref().and_then(dropin::parse_marker).is_none() {
            return Err(DaemonError::Failed(format!(
                "{} exists and was not written by hardend; not overwriting it",
                target.display()
            )));
        }
        write_dropin(&target, &content)?;
        let applied = async {
            sd.reload().await?;
            if restart {
                sd.restart(unit, Duration::from_secs(cfg.restart_timeout))
                    .await?;
            }
            Ok::<(), SystemdError>(())
        }
        .await;
        if let Err(e) = applied {
            // Back to the state before the call.
            match &previous {
                Some(p) => {
                    let _ = write_dropin(&target, p);
                }
                None => remove_dropin(&target),
            }
            let _ = sd.reload().await;
            if restart {
                let _ = sd
                    .restart(unit, Duration::from_secs(cfg.restart_timeout))
                    .await;
            }
            return Err(DaemonError::Failed(format!(
                "{unit} did not start under profile {profile}: {e}; the previous configuration was restored"
            )));
        }
        drop(_guard);
        // Type=simple units finish their start job at fork, before hardend-exec has confined
        // the process and written its record: give the new process a moment (bounded)
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let _ = self.verify_unit(unit).await;
            match self.service(unit) {
                Some(s)
                    if restart
                        && matches!(s.state.as_str(), "not-enforced" | "inactive")
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => break,
            }
        }
        self.service(unit)
            .ok_or_else(|| DaemonError::Failed(format!("{unit}: not found after confining")))
    }

    /// Removes our drop-in for `unit`, reloads and (optionally) restarts it.
    pub async fn release(&self, unit: &str, restart: bool) -> Result<(), DaemonError> {
        let _guard = self.ops.lock().await;
        let cfg = self.config();
        if !valid_unit_name(unit) {
            return Err(DaemonError::InvalidArgs(format!(
                "{unit:?} is not a service unit name (NAME.service)"
            )));
        }
        let paths: Vec<PathBuf> = [&cfg.dropin_dir, &cfg.runtime_dropin_dir]
            .iter()
            .map(|d| dropin::dropin_path(d, unit))
            .filter(|p| dropin_profile(p).is_some())
            .collect();
        if paths.is_empty() {
            return Err(DaemonError::InvalidArgs(format!(
                "{unit} is not confined by a hardend drop-in"
            )));
        }
        let sd = self.systemd.as_ref().ok_or_else(|| {
            DaemonError::NotSupported(
                "systemd is not on the daemon's bus: units cannot be released".into(),
            )
        })?;
        for p in &paths {
            remove_dropin(p);
        }
        sd.reload()
            .await
            .map_err(|e| DaemonError::Failed(e.to_string()))?;
        if restart {
            sd.restart(unit, Duration::from_secs(cfg.restart_timeout))
                .await
                .map_err(|e| DaemonError::Failed(e.to_string()))?;
        }
        drop(_guard);
        let _ = self.verify_unit(unit).await;
        Ok(())
    }
}

/// The profile named by our drop-in at `path`, if there is one of ours.
fn dropin_profile(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .as_deref()
        .and_then(dropin::parse_marker)
}

/// (unit, profile) for every drop-in of ours under `dir`.
pub fn scan_dropins(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let unit = name.strip_suffix(".d")?;
            if !valid_unit_name(unit) {
                return None;
            }
            Some((
                unit.to_string(),
                dropin_profile(&e.path().join(DROPIN_NAME))?,
            ))
        })
        .collect();
    out.sort();
    out
}

fn write_dropin(path: &Path, content: &str) -> Result<(), DaemonError> {
    let fail =
        |e: std::io::Error| DaemonError::Failed(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all_mode(dir, 0o755).map_err(fail)?;
    }
    fsutil::write_atomic(path, content.as_bytes(), 0o644).map_err(fail)
}

fn remove_dropin(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        // Only if empty: other drop-ins of the admin stay.
        let _ = std::fs::remove_dir(dir);
    }
}
