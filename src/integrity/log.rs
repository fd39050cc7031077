//! The persistent event log: one JSON object per line in `events.log`, bounded — when the
//! file reaches half the limit it becomes `events.log.1` (the older half) and a new file
//! starts, so at most `max` events and two files are kept.
//!
//! One path may fill at most an eighth of a half (at least 2 lines): a noisy path — a file
//! its unprivileged owner rewrites in a loop — cannot push other paths' events out. Its
//! further events are folded: a `folded` line says so when it starts, and when the file
//! turns over a `folded` line says how many events were folded (`actual`: "N events",
//! `expected`: the last folded event's kind). `tail` shows the pending counts too.

use std::collections::{BTreeMap, HashMap};
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
    /// Lines per path in the current file.
    per_path: HashMap<String, usize>,
    /// Paths over their share: events not written since, and the last of them.
    folded: BTreeMap<String, (u64, Event)>,
}

/// What the log says about folded events of `last.path`.
fn fold_line(last: &Event, count: Option<u64>) -> Event {
    Event {
        time: last.time,
        event: "folded".into(),
        path: last.path.clone(),
        kind: last.kind.clone(),
        expected: match count {
            Some(_) => last.kind.clone(),
            None => String::new(),
        },
        actual: match count {
            Some(n) => format!("{n} events"),
            None => "further events of this path are folded until the log turns over".into(),
        },
        set: last.set.clone(),
        severity: last.severity.clone(),
    }
}

impl EventLog {
    pub fn open(dir: &Path, max: usize) -> EventLog {
        let path = dir.join("events.log");
        let mut lines = 0;
        let mut per_path: HashMap<String, usize> = HashMap::new();
        if let Ok(f) = fs::File::open(&path) {
            for l in BufReader::new(f).lines().map_while(Result::ok) {
                lines += 1;
                if let Ok(e) = serde_json::from_str::<Event>(&l) {
                    *per_path.entry(e.path).or_default() += 1;
                }
            }
        }
        EventLog {
            path,
            max: max.max(2),
            lines,
            per_path,
            folded: BTreeMap::new(),
        }
    }

    /// The most lines one path may have in a file (an eighth of a half, at least 2).
    fn share(&self) -> usize {
        (self.max / 16).max(2)
    }

    fn older(&self) -> PathBuf {
        self.path.with_extension("log.1")
    }

    pub fn append(&mut self, e: &Event) -> Result<(), IntegrityError> {
        if self.lines >= self.max / 2 {
            self.turn_over()?;
        }
        let share = self.share();
        let n = self.per_path.get(&e.path).copied().unwrap_or(0);
        if n + 1 >= share {
            if n + 1 == share {
                self.write(&fold_line(e, None))?;
                *self.per_path.entry(e.path.clone()).or_default() += 1;
            }
            let f = self.folded.entry(e.path.clone()).or_insert((0, e.clone()));
            f.0 += 1;
            f.1 = e.clone();
            return Ok(());
        }
        self.write(e)?;
        *self.per_path.entry(e.path.clone()).or_default() += 1;
        Ok(())
    }

    /// The current file becomes the older half; the new one starts with the fold counts.
    fn turn_over(&mut self) -> Result<(), IntegrityError> {
        fs::rename(&self.path, self.older()).map_err(|source| IntegrityError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.lines = 0;
        self.per_path.clear();
        for (path, (n, last)) in std::mem::take(&mut self.folded) {
            self.write(&fold_line(&last, Some(n)))?;
            *self.per_path.entry(path).or_default() += 1;
        }
        Ok(())
    }

    fn write(&mut self, e: &Event) -> Result<(), IntegrityError> {
        let io = |source| IntegrityError::Io {
            path: self.path.clone(),
            source,
        };
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
        // counts not written yet: the log turns over only when other paths fill it
        out.extend(
            self.folded
                .values()
                .map(|(n, last)| fold_line(last, Some(*n))),
        );
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

    fn ev(time: u64, path: &str) -> Event {
        Event {
            time,
            event: "violation".into(),
            path: path.into(),
            kind: "content".into(),
            expected: String::new(),
            actual: String::new(),
            set: "etc".into(),
            severity: "high".into(),
        }
    }

    #[test]
    fn one_noisy_path_cannot_push_others_out_and_the_log_says_what_it_folded() {
        let d = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(d.path(), 64); // halves of 32, a path's share 4
        log.append(&ev(1, "/etc/sudoers.d/admin")).unwrap();
        // the owner of a watched file rewrites it 10,000 times
        for t in 2..10_002 {
            log.append(&ev(t, "/home/mallory/.profile")).unwrap();
        }
        log.append(&ev(20_000, "/etc/shadow")).unwrap();
        let all = log.tail(1000);
        let paths: Vec<&str> = all.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"/etc/sudoers.d/admin"), "{paths:?}");
        assert!(paths.contains(&"/etc/shadow"), "{paths:?}");
        let noisy = all
            .iter()
            .filter(|e| e.path == "/home/mallory/.profile")
            .count();
        assert!(noisy <= 5, "{noisy} lines of the noisy path");
        let pending = all
            .iter()
            .find(|e| e.event == "folded" && e.actual.ends_with(" events"))
            .expect("the fold count is shown");
        assert_eq!(pending.actual, "9997 events", "10,000 minus 3 written");
        // when other paths fill the file it turns over and the count is written
        for t in 0..40 {
            log.append(&ev(30_000 + t, &format!("/etc/f{t}"))).unwrap();
        }
        let text = std::fs::read_to_string(d.path().join("events.log")).unwrap()
            + &std::fs::read_to_string(d.path().join("events.log.1")).unwrap();
        assert!(text.contains("\"9997 events\""), "{text}");
        // reopening: the written share is counted again
        let mut log2 = EventLog::open(d.path(), 64);
        for t in 0..100 {
            log2.append(&ev(40_000 + t, "/etc/f0")).unwrap();
        }
        assert!(
            log2.tail(1000)
                .iter()
                .filter(|e| e.path == "/etc/f0")
                .count()
                <= 6,
            "the share holds across a restart"
        );
    }
}
