//! Enforcement records: the proof, written by `hardend-exec` just before it execs the service,
//! of which profile (by content hash) confines which process, and how.
//!
//! A record is `RUNTIME_DIR/<pid>-<starttime>.json`. The process start time (from
//! `/proc/PID/stat`) makes the name unique for the process's lifetime, so a recycled PID can
//! never be mistaken for the confined process. Records are written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::ConfinementReport;
use crate::fsutil;
use crate::profile::Profile;

/// Default directory for records.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/hardend/enforced";

/// Record format version.
pub const RECORD_VERSION: u32 = 1;

/// Errors while writing or reading records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read the start time of process {pid}: {source}")]
    StartTime { pid: u32, source: io::Error },
    #[error("cannot write the enforcement record {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the enforcement record {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("malformed enforcement record {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One confined process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforcementRecord {
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    pub pid: u32,
    /// Process start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    pub profile: String,
    pub profile_hash: String,
    pub profile_source: PathBuf,
    pub command: Vec<String>,
    #[serde(flatten)]
    pub confinement: ConfinementReport,
    /// RFC 3339, UTC.
    pub time: String,
}

/// The start time of process `pid` in clock ticks after boot.
pub fn process_start_time(pid: u32) -> Result<u64, RecordError> {
    let path = format!("/proc/{pid}/stat");
    let err = |source| RecordError::StartTime { pid, source };
    let stat = fs::read_to_string(path).map_err(err)?;
    // The command name (field 2) is in parentheses and may contain spaces or ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| err(io::Error::other("malformed stat")))?;
    // after ')' comes field 3 (state); start time is field 22.
    after
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(io::Error::other("malformed stat")))
}

impl EnforcementRecord {
    /// A record for the current process.
    pub fn for_self(
        unit: Option<String>,
        profile: &Profile,
        command: Vec<String>,
        confinement: ConfinementReport,
    ) -> Result<Self, RecordError> {
        let pid = std::process::id();
        Ok(EnforcementRecord {
            version: RECORD_VERSION,
            unit,
            pid,
            start_time: process_start_time(pid)?,
            profile: profile.name.clone(),
            profile_hash: profile.policy_hash(),
            profile_source: profile.source.clone(),
            command,
            confinement,
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        })
    }

    /// The file name of the record of process `pid` started at `start_time`.
    pub fn file_name(pid: u32, start_time: u64) -> String {
        format!("{pid}-{start_time}.json")
    }

    /// Writes the record atomically into `dir` (created if missing) and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, RecordError> {
        let path = dir.join(Self::file_name(self.pid, self.start_time));
        let werr = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        if !dir.is_dir() {
            // Services running as their own user write here too: like /tmp, anyone may
            // create, nobody may list or replace another user's files (sticky, no read).
            fsutil::create_dir_all_mode(dir, 0o755).map_err(werr)?;
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o1733));
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| werr(io::Error::other(e)))?;
        // Records describe running processes and live on tmpfs: atomic, no fsync.
        fsutil::write_atomic_with(&path, &json, 0o644, false).map_err(werr)?;
        Ok(path)
    }

    /// Reads the record of process `pid` started at `start_time` from `dir`, if there is one.
    pub fn find(dir: &Path, pid: u32, start_time: u64) -> Result<Option<Self>, RecordError> {
        let path = dir.join(Self::file_name(pid, start_time));
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RecordError::Parse { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RecordError::Read { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let a = process_start_time(std::process::id()).unwrap();
        let b = process_start_time(std::process::id()).unwrap();
        assert_eq!(a, b);
        assert!(a > 0);
    }
}
