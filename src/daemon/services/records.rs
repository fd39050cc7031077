//! The enforcement records in the runtime directory: which are live, which are stale.

use std::fs;
use std::path::Path;

use crate::confine::record::{EnforcementRecord, process_start_time};
use crate::proof::ProcStatus;

/// The process of `unit` on a host without systemd (no MainPID to ask): the newest live
/// record naming the unit that **root** wrote. A record another user wrote names whatever
/// that user likes, so it cannot say which process is a unit's; with systemd the MainPID
/// decides and the record is only checked.
pub fn live_record_for_unit(records_dir: &Path, unit: &str) -> Option<(u32, EnforcementRecord)> {
    live_records(records_dir)
        .into_iter()
        .filter(|(r, owner)| *owner == 0 && r.unit.as_deref() == Some(unit))
        .max_by_key(|(r, _)| r.start_time)
        .map(|(r, _)| (r.pid, r))
}

/// Every record whose process still runs (same PID and start time) and that root or the
/// process's own user wrote, with the record's owner.
pub fn live_records(records_dir: &Path) -> Vec<(EnforcementRecord, u32)> {
    let Ok(entries) = fs::read_dir(records_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (pid, start) = EnforcementRecord::parse_name(&name)?;
            if process_start_time(pid).ok()? != start {
                return None;
            }
            let uid = ProcStatus::read(pid)?.uid;
            let (r, owner) = EnforcementRecord::read_file(&e.path()).ok()?;
            (r.pid == pid && r.start_time == start && (owner == 0 || owner == uid))
                .then_some((r, owner))
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
        let Some((pid, start)) = EnforcementRecord::parse_name(&name) else {
            continue;
        };
        if process_start_time(pid).ok() != Some(start) && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}
