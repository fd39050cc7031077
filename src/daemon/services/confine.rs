//! Confine and release: validate, render the drop-in, write it, reload systemd, restart,
//! verify; on a failed start put back what was there before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ServiceError, ServiceManager, dropins};
use crate::api::ServiceInfo;
use crate::config::DaemonConfig;
use crate::confine::check_profile;
use crate::confine::record::DEFAULT_RUNTIME_DIR;
use crate::profile::DEFAULT_SEARCH_PATH;
use crate::systemd::client::{StartOutcome, Systemd, SystemdError};

/// How long a newly confined service must keep running, without a failure or an automatic
/// restart, before Confine calls it a success (a program that the new profile breaks
/// usually dies within its first second).
const SETTLE: Duration = Duration::from_secs(1);
use crate::systemd::dropin::{self, valid_unit_name};

fn check_unit(unit: &str) -> Result<(), ServiceError> {
    if valid_unit_name(unit) {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgs(format!(
            "{unit:?} is not a service unit name (NAME.service)"
        )))
    }
}

/// The wrapper options a drop-in needs beyond `--profile` and `--unit`.
fn wrapper_options(cfg: &DaemonConfig, ignores_sigpipe: bool) -> Vec<String> {
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
    extra
}

/// The wrapper's syscalls that the profile's filter denies to the service after exec.
fn service_denied(p: &crate::profile::Profile) -> Vec<String> {
    let Some(arch) = crate::profile::syscalls::Arch::native() else {
        return Vec::new();
    };
    let allowed = crate::confine::seccomp::allowed_syscalls(p.seccomp.as_ref(), arch)
        .map(|(a, _)| a)
        .unwrap_or_default();
    dropin::WRAPPER_SYSCALLS
        .iter()
        .filter(|s| !allowed.contains_key(**s))
        .map(|s| s.to_string())
        .collect()
}

impl ServiceManager {
    fn systemd_or(&self, what: &str) -> Result<&Systemd, ServiceError> {
        self.systemd.as_ref().ok_or_else(|| {
            ServiceError::NotSupported(format!(
                "systemd is not on the daemon's bus: units cannot be {what}"
            ))
        })
    }

    /// Writes drop-ins for `[services]` entries that have none (startup and reload).
    /// Returns the errors, one line per unit; they do not stop the daemon.
    pub async fn apply_configured(&self) -> Vec<String> {
        let cfg = self.config();
        let configured = self.configured();
        if configured.is_empty() {
            return Vec::new();
        }
        if self.systemd.is_none() {
            return vec![
                "systemd is not on the bus: [services] assignments are verified from records only"
                    .into(),
            ];
        }
        let dir = cfg.dropin_dir.clone();
        let existing: BTreeMap<String, String> = match self
            .blocking("reading drop-ins", move || dropins::scan(&dir))
            .await
        {
            Ok(v) => v.into_iter().collect(),
            Err(e) => return vec![e.to_string()],
        };
        let mut errors = Vec::new();
        for (unit, profile) in &configured {
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
    ) -> Result<ServiceInfo, ServiceError> {
        let guard = self.ops.lock().await;
        let cfg = self.config();
        check_unit(unit)?;
        if profile.contains('/') {
            return Err(ServiceError::InvalidArgs(format!(
                "{profile:?}: give the name of a profile on the profile path ({}), not a path",
                cfg.profile_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )));
        }
        let loader = Self::loader(&cfg);
        let name = profile.to_string();
        let loaded = self
            .blocking("loading the profile", move || {
                loader.load(&name).and_then(check_profile)
            })
            .await?
            .map_err(|e| ServiceError::InvalidArgs(format!("profile {profile}: {e}")))?;
        let sd = self.systemd_or("confined")?;
        let (facts, ignores_sigpipe) = sd.unit_facts(unit).await.map_err(|e| match e {
            SystemdError::NotLoaded { .. } => {
                ServiceError::InvalidArgs(format!("unknown unit: {e}"))
            }
            e => ServiceError::Failed(e.to_string()),
        })?;
        let extra = wrapper_options(&cfg, ignores_sigpipe);
        let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let denied = service_denied(&loaded.0);
        let denied_refs: Vec<&str> = denied.iter().map(String::as_str).collect();
        let content = dropin::render(
            &facts,
            &loaded.0.name,
            &cfg.exec_path,
            &extra_refs,
            &denied_refs,
        )
        .map_err(|e| ServiceError::InvalidArgs(e.to_string()))?;

        let persistent = dropins::path(&cfg.dropin_dir, unit);
        let p2 = persistent.clone();
        let persistent_profile = self
            .blocking("reading the drop-in", move || dropins::profile_of(&p2))
            .await?;
        let target = if runtime {
            if persistent_profile.is_some() {
                return Err(ServiceError::InvalidArgs(format!(
                    "{unit} is confined persistently ({}); release it before a --runtime confinement",
                    persistent.display()
                )));
            }
            dropins::path(&cfg.runtime_dropin_dir, unit)
        } else {
            persistent
        };
        let t2 = target.clone();
        let previous = self
            .blocking("reading the drop-in", move || {
                std::fs::read_to_string(&t2).ok()
            })
            .await?;
        if previous.is_some() && previous.as_deref().and_then(dropin::parse_marker).is_none() {
            return Err(ServiceError::Failed(format!(
                "{} exists and was not written by hardend; not overwriting it",
                target.display()
            )));
        }
        let (t2, c2) = (target.clone(), content.clone());
        self.blocking("writing the drop-in", move || dropins::write(&t2, &c2))
            .await??;
        let timeout = Duration::from_secs(cfg.restart_timeout);
        let applied = async {
            sd.reload().await?;
            if restart {
                sd.restart(unit, timeout).await?;
            }
            Ok::<(), SystemdError>(())
        }
        .await;
        if let Err(e) = applied {
            let restored = self
                .restore(sd, unit, &target, previous, restart, timeout)
                .await;
            return Err(ServiceError::Failed(format!(
                "{unit} did not start under profile {profile}: {e}; {restored}"
            )));
        }
        if restart {
            // Type=simple units finish their start job at fork, before hardend-exec has
            // confined the process and written its record, and a wrapper or program that
            // fails under the new profile does so only then: wait (bounded) for the record or
            // the failure, then watch a moment longer for a program that dies at start
            if let Some(outcome) = self.failed_after_start(sd, unit, timeout).await {
                let restored = self
                    .restore(sd, unit, &target, previous, restart, timeout)
                    .await;
                drop(guard);
                let _ = self.verify_unit(unit).await;
                return Err(ServiceError::Failed(format!(
                    "{unit} failed under profile {profile}: {}; {restored}",
                    outcome.describe()
                )));
            }
        }
        drop(guard);
        let _ = self.verify_unit(unit).await;
        self.service(unit)
            .ok_or_else(|| ServiceError::Failed(format!("{unit}: not found after confining")))
    }

    /// Puts the drop-in back as it was (`previous`, or none), reloads and restarts: what a
    /// failed confinement owes the unit. Says honestly whether that worked.
    async fn restore(
        &self,
        sd: &Systemd,
        unit: &str,
        target: &Path,
        previous: Option<String>,
        restart: bool,
        timeout: Duration,
    ) -> String {
        let t2 = target.to_path_buf();
        let written = self
            .blocking("restoring the drop-in", move || match &previous {
                Some(p) => dropins::write(&t2, p),
                None => dropins::remove(&t2),
            })
            .await;
        if let Err(e) = written.map_err(ServiceError::from).and_then(|r| r) {
            return format!(
                "restoring the previous configuration FAILED ({e}): {} still names the new profile; fix it or run hardenctl release {unit}",
                target.display()
            );
        }
        if let Err(e) = sd.reload().await {
            return format!(
                "the previous drop-in is back, but systemd did not reload ({e}): systemctl daemon-reload"
            );
        }
        if restart && let Err(e) = sd.restart(unit, timeout).await {
            return format!(
                "the previous configuration is back, but {unit} did not restart under it ({e})"
            );
        }
        "the previous configuration was restored".to_string()
    }

    /// After a restart: waits until the unit is confined or has failed (at most
    /// `restart_timeout`, and 10 s), then watches [`SETTLE`] longer; the failure, if any.
    async fn failed_after_start(
        &self,
        sd: &Systemd,
        unit: &str,
        timeout: Duration,
    ) -> Option<StartOutcome> {
        let deadline = Instant::now() + timeout.min(Duration::from_secs(10));
        let mut confined_at: Option<Instant> = None;
        loop {
            let outcome = sd.start_outcome(unit).await.ok();
            match outcome.as_ref() {
                Some(o) if o.failed() => return Some(o.clone()),
                // ran and ended well (Type=oneshot, or a program that is done)
                Some(o) if o.active_state == "inactive" => return None,
                _ => {}
            }
            let _ = self.verify_unit(unit).await;
            let confined = self.service(unit).is_some_and(|s| s.state.is_confined());
            let now = Instant::now();
            match (confined, confined_at) {
                (true, None) => confined_at = Some(now),
                (true, Some(t)) if now.duration_since(t) >= SETTLE => return None,
                (false, _) if now >= deadline => return None,
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes our drop-in for `unit`, reloads and (optionally) restarts it.
    pub async fn release(&self, unit: &str, restart: bool) -> Result<(), ServiceError> {
        let guard = self.ops.lock().await;
        let cfg = self.config();
        check_unit(unit)?;
        let candidates: Vec<PathBuf> = [&cfg.dropin_dir, &cfg.runtime_dropin_dir]
            .iter()
            .map(|d| dropins::path(d, unit))
            .collect();
        let paths: Vec<PathBuf> = self
            .blocking("reading drop-ins", move || {
                candidates
                    .into_iter()
                    .filter(|p| dropins::profile_of(p).is_some())
                    .collect()
            })
            .await?;
        if paths.is_empty() {
            return Err(ServiceError::InvalidArgs(format!(
                "{unit} is not confined by a hardend drop-in"
            )));
        }
        let sd = self.systemd_or("released")?;
        let p2 = paths.clone();
        self.blocking("removing the drop-in", move || {
            p2.iter().try_for_each(|p| dropins::remove(p))
        })
        .await??;
        sd.reload()
            .await
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        if restart {
            sd.restart(unit, Duration::from_secs(cfg.restart_timeout))
                .await
                .map_err(|e| ServiceError::Failed(e.to_string()))?;
        }
        drop(guard);
        let _ = self.verify_unit(unit).await;
        Ok(())
    }
}
