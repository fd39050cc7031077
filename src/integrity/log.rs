//! The persistent event log: one JSON object per line in `events.log`, bounded — when the
//! file reaches half the limit it becomes `events.log.1` (the older half) and a new file
//! starts, so at most `max` events and two files are kept.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IntegrityError;

/// One logged event (on the bus as `api::EventInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time: u64,
    /// `violation`, `cleared`, `accepted`, `rescan`, `baseline`, `tampered`.
    pub event: String,
    pub path: String,
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub set: String,
    pub severity: String,
}

/// The log files in a directory.
pub struct EventLog {
    path: PathBuf,
    max: usize,
    lines: usize,
}

impl EventLog {
    pub fn open(dir: &Path, max: usize) -> EventLog {
        let path = dir.join("events.log");
        let lines = fs::File::open(&path)
            .map(|f| BufReader::new(f).lines().count())
            .unwrap_or(0);
        EventLog {
            path,
            max: max.max(2),
            lines,
        }
    }

    fn older(&self) -> PathBuf {
        self.path.with_extension("log.1")
    }

    pub fn append(&mut self, e: &Event) -> Result<(), IntegrityError> {
        let io = |source| IntegrityError::Io {
            path: self.path.clone(),
            source,
        };
        if self.lines >= self.max / 2 {
            fs::rename(&self.path, self.older()).map_err(io)?;
            self.lines = 0;
        }
        let mut line = serde_json::to_vec(e)
            .map_err(|e| IntegrityError::Invalid(format!("cannot encode an event: {e}")))?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(&line).map_err(io)?;
        self.lines += 1;
        Ok(())
    }

    /// The last `n` events, oldest first (lines that do not parse are skipped).
    pub fn tail(&self, n: usize) -> Vec<Event> {
        let mut out = Vec::new();
        for p in [self.older(), self.path.clone()] {
            if let Ok(f) = fs::File::open(&p) {
                for l in BufReader::new(f).lines().map_while(Result::ok) {
                    if let Ok(e) = serde_json::from_str::<Event>(&l) {
                        out.push(e);
                    }
                }
            }
        }
        let skip = out.len().saturating_sub(n);
        out.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(d.path(), 10);
        for i in 0..25 {
            log.append(&Event {
                time: i,
                event: "violation".into(),
                path: format!("/etc/f{i}"),
                kind: "added".into(),
                expected: String::new(),
                actual: String::new(),
                set: "etc".into(),
                severity: "high".into(),
            })
            .unwrap();
        }
        let all = log.tail(100);
        assert!(all.len() <= 10, "{}", all.len());
        assert_eq!(all.last().unwrap().time, 24);
        assert_eq!(
            log.tail(3).iter().map(|e| e.time).collect::<Vec<_>>(),
            [22, 23, 24]
        );
        // reopening counts what is there
        let log2 = EventLog::open(d.path(), 10);
        assert_eq!(log2.tail(1)[0].time, 24);
    }
}
