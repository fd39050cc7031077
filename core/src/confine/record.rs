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

/// Records are small; anything bigger was not written by hardend-exec.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

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

    /// The start of every record name of process `pid` started at `start_time`: the name
    /// is `PID-START.RANDOM.json`, so nobody can take a record's name before the wrapper
    /// writes it (the directory is writable by every service).
    pub fn name_prefix(pid: u32, start_time: u64) -> String {
        format!("{pid}-{start_time}.")
    }

    /// `(pid, start time)` of a record file name.
    pub fn parse_name(name: &str) -> Option<(u32, u64)> {
        let stem = name.strip_suffix(".json")?;
        let (ids, random) = stem.split_once('.')?;
        if random.is_empty() || random.contains('.') {
            return None;
        }
        let (pid, start) = ids.split_once('-')?;
        Some((pid.parse().ok()?, start.parse().ok()?))
    }

    /// Writes the record into `dir` (created if missing) and returns its path: a temporary
    /// file with a random name, renamed to another random name, mode 0600 (only root and
    /// the writer read it).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, RecordError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let werr = |source| RecordError::Write {
            path: dir.to_path_buf(),
            source,
        };
        if !dir.is_dir() {
            // Services running as their own user write here too: like /tmp, anyone may
            // create, nobody may list or replace another user's files (sticky, no read).
            fsutil::create_dir_all_mode(dir, 0o755).map_err(werr)?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o1733));
        }
        let json = serde_json::to_vec(self).map_err(|e| werr(io::Error::other(e)))?;
        let prefix = Self::name_prefix(self.pid, self.start_time);
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{prefix}"))
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(werr)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(werr)?;
        tmp.write_all(&json).map_err(werr)?;
        // the final name: the random part of the temporary one (records live on tmpfs and
        // describe running processes: atomic, no fsync)
        let random = tmp
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&format!(".{prefix}")))
            .and_then(|n| n.strip_suffix(".tmp"))
            .unwrap_or("x")
            .to_string();
        let path = dir.join(format!("{prefix}{random}.json"));
        tmp.persist_noclobber(&path).map_err(|e| werr(e.error))?;
        Ok(path)
    }

    /// Reads one record file. The directory is writable by every service: the name is
    /// opened without following a link and without blocking (a FIFO planted there cannot
    /// hang the reader), and only a regular file of a sane size is read. Returns the record
    /// and the uid that owns the file.
    pub fn read_file(path: &Path) -> Result<(Self, u32), RecordError> {
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let rerr = |source| RecordError::Read {
            path: path.to_path_buf(),
            source,
        };
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(rerr)?;
        let meta = f.metadata().map_err(rerr)?;
        if !meta.is_file() {
            return Err(rerr(io::Error::other("not a regular file")));
        }
        if meta.len() > MAX_RECORD_BYTES {
            return Err(rerr(io::Error::other(format!(
                "larger than {MAX_RECORD_BYTES} bytes"
            ))));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(rerr)?;
        serde_json::from_slice(&bytes)
            .map(|r| (r, meta.uid()))
            .map_err(|source| RecordError::Parse {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Every record file of process `pid` started at `start_time` in `dir`, read (or the
    /// error reading it), with the owner of each: the caller decides whom to believe.
    pub fn find(dir: &Path, pid: u32, start_time: u64) -> Vec<Result<(Self, u32), RecordError>> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let prefix = Self::name_prefix(pid, start_time);
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix) && Self::parse_name(n).is_some())
            })
            .map(|e| Self::read_file(&e.path()))
            .collect()
    }

    /// The record of process `pid` (started at `start_time`, running as `uid`) that only
    /// root or that uid can have written; `Ok(None)` when there is none, the error of the
    /// last unreadable one otherwise.
    pub fn find_trusted(
        dir: &Path,
        pid: u32,
        start_time: u64,
        uid: u32,
    ) -> Result<Option<Self>, RecordError> {
        let mut last_err = None;
        for r in Self::find(dir, pid, start_time) {
            match r {
                Ok((rec, owner)) if owner == 0 || owner == uid => return Ok(Some(rec)),
                Ok(_) => {}
                Err(e) => last_err = Some(e),
            }
        }
        last_err.map_or(Ok(None), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_unpredictable_and_parse_back() {
        assert_eq!(
            EnforcementRecord::parse_name("123-456.Ab3dEf.json"),
            Some((123, 456))
        );
        assert_eq!(
            EnforcementRecord::parse_name("123-456.json"),
            None,
            "no random part"
        );
        assert_eq!(EnforcementRecord::parse_name(".123-456.x.tmp"), None);
        assert_eq!(EnforcementRecord::parse_name("123-456.a.b.json"), None);
    }

    #[test]
    fn start_time_of_self_is_stable() {
        let a = process_start_time(std::process::id()).unwrap();
        let b = process_start_time(std::process::id()).unwrap();
        assert_eq!(a, b);
        assert!(a > 0);
    }
}
