//! The enforcement records in the runtime directory: which are live, which are stale.

use std::fs;
use std::path::Path;

use crate::confine::record::{EnforcementRecord, process_start_time};

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
