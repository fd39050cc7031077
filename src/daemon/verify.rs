//! Verification: is the process running a unit really confined by the profile assigned to
//! it, as that profile is now? The answer comes from the kernel (`/proc/PID/status`) and
//! the enforcement record that hardend-exec wrote for exactly that process (PID + start
//! time), never from the daemon's own bookkeeping.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::confine::LandlockStatus;
use crate::confine::record::{EnforcementRecord, process_start_time};

/// A unit's enforcement state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Running, confined by the current version of its profile.
    Enforced,
    /// Confined, but the kernel lacks rights the profile relies on.
    Partial,
    /// Running without (proof of) the wrapper: drop-in overridden, record missing, ...
    NotEnforced,
    /// Confined by an older version of the profile (or another profile).
    Stale,
    /// Not running.
    Inactive,
    /// systemd reports the unit failed.
    Failed,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Enforced => "enforced",
            ServiceState::Partial => "partial",
            ServiceState::NotEnforced => "not-enforced",
            ServiceState::Stale => "stale",
            ServiceState::Inactive => "inactive",
            ServiceState::Failed => "failed",
        }
    }

    /// States an admin must act on.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            ServiceState::NotEnforced | ServiceState::Stale | ServiceState::Failed
        )
    }
}

/// The outcome for one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: ServiceState,
    pub detail: String,
    pub record: Option<EnforcementRecord>,
}

fn verdict(
    state: ServiceState,
    detail: impl Into<String>,
    record: Option<EnforcementRecord>,
) -> Verdict {
    Verdict {
        state,
        detail: detail.into(),
        record,
    }
}

/// `(NoNewPrivs, Seccomp mode, real uid)` from `/proc/PID/status`.
fn proc_status(pid: u32) -> Option<(u32, u32, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((field("NoNewPrivs:")?, field("Seccomp:")?, field("Uid:")?))
}

/// Verifies process `pid` against the assignment `(profile name, current policy hash)`.
/// `current_hash` is `Err(reason)` when the assigned profile cannot be loaded now.
pub fn verify_process(
    pid: u32,
    profile: &str,
    current_hash: Result<&str, &str>,
    records_dir: &Path,
) -> Verdict {
    let Ok(start_time) = process_start_time(pid) else {
        return verdict(
            ServiceState::Inactive,
            format!("process {pid} is gone"),
            None,
        );
    };
    let Some((nnp, seccomp, uid)) = proc_status(pid) else {
        return verdict(
            ServiceState::Inactive,
            format!("process {pid} is gone"),
            None,
        );
    };
    let name = EnforcementRecord::file_name(pid, start_time);
    let path = records_dir.join(&name);
    let record = match EnforcementRecord::find(records_dir, pid, start_time) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return verdict(
                ServiceState::NotEnforced,
                format!(
                    "process {pid} has no enforcement record: it was not started through hardend-exec"
                ),
                None,
            );
        }
        Err(e) => return verdict(ServiceState::NotEnforced, e.to_string(), None),
    };
    // Only root or the process's own user could have written a genuine record.
    match fs::metadata(&path) {
        Ok(m) if m.uid() == 0 || m.uid() == uid => {}
        Ok(m) => {
            return verdict(
                ServiceState::NotEnforced,
                format!(
                    "record {name} is owned by uid {} but the process runs as uid {uid}",
                    m.uid()
                ),
                Some(record),
            );
        }
        Err(e) => return verdict(ServiceState::NotEnforced, e.to_string(), Some(record)),
    }
    if record.pid != pid || record.start_time != start_time {
        return verdict(
            ServiceState::NotEnforced,
            format!("record {name} describes another process"),
            Some(record),
        );
    }
    if nnp != 1 {
        return verdict(
            ServiceState::NotEnforced,
            format!("process {pid} does not have no_new_privs"),
            Some(record),
        );
    }
    if record.confinement.seccomp.configured && seccomp != 2 {
        return verdict(
            ServiceState::NotEnforced,
            format!("process {pid} has no seccomp filter (Seccomp: {seccomp})"),
            Some(record),
        );
    }
    if record.profile != profile {
        let d = format!(
            "runs profile {} but {profile} is assigned; restart the unit",
            record.profile
        );
        return verdict(ServiceState::Stale, d, Some(record));
    }
    match current_hash {
        Err(reason) => {
            return verdict(
                ServiceState::Stale,
                format!("profile {profile} cannot be loaded now: {reason}"),
                Some(record),
            );
        }
        Ok(h) if h != record.profile_hash => {
            return verdict(
                ServiceState::Stale,
                format!("profile {profile} changed since the process started; restart the unit"),
                Some(record),
            );
        }
        Ok(_) => {}
    }
    let ll = &record.confinement.landlock;
    if ll.status == LandlockStatus::Partial {
        let missing: Vec<String> = ll
            .missing
            .iter()
            .map(|m| format!("{} (ABI {})", m.right, m.needs_abi))
            .collect();
        let d = format!(
            "Landlock ABI {}: missing {}",
            ll.effective_abi,
            missing.join(", ")
        );
        return verdict(ServiceState::Partial, d, Some(record));
    }
    let d = format!(
        "pid {pid}: Landlock {} (ABI {}), seccomp {}",
        match ll.status {
            LandlockStatus::None => "not configured",
            _ => "full",
        },
        ll.effective_abi,
        if record.confinement.seccomp.configured {
            "filter"
        } else {
            "not configured"
        }
    );
    verdict(ServiceState::Enforced, d, Some(record))
}

/// The newest record for `unit` whose process is still alive (for hosts without systemd,
/// where no MainPID is available): `(pid, record)`.
pub fn live_record_for_unit(records_dir: &Path, unit: &str) -> Option<(u32, EnforcementRecord)> {
    live_records(records_dir)
        .into_iter()
        .filter(|r| r.unit.as_deref() == Some(unit))
        .max_by_key(|r| r.start_time)
        .map(|r| (r.pid, r))
}

/// Every record whose process still runs (same PID and start time).
pub fn live_records(records_dir: &Path) -> Vec<EnforcementRecord> {
    let Ok(entries) = fs::read_dir(records_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (pid, start) = name.strip_suffix(".json")?.split_once('-')?;
            let (pid, start): (u32, u64) = (pid.parse().ok()?, start.parse().ok()?);
            if process_start_time(pid).ok()? != start {
                return None;
            }
            EnforcementRecord::find(records_dir, pid, start)
                .ok()
                .flatten()
        })
        .collect()
}

/// Deletes records of processes that no longer exist; returns how many.
pub fn prune_records(records_dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(records_dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let Some(name) = e.file_name().into_string().ok() else {
            continue;
        };
        let Some((pid, start)) = name.strip_suffix(".json").and_then(|s| s.split_once('-')) else {
            continue;
        };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            continue;
        };
        if process_start_time(pid).ok() != Some(start) && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}
