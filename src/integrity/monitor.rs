//! The engine: the baseline, the current violations, and how scans and events change them.
//! Pure bookkeeping over the file system: no D-Bus, no threads.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::db::Baseline;
use super::entry::{Entry, compare, describe};
use super::scan::{Entries, Excludes, covers};
use super::{ChangeKind, IntegrityError, Violation, WatchSet, now};

/// A change in the list of violations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// A new violation, or one whose actual state changed again.
    Raised(Violation),
    /// The path matches the baseline again (reverted or accepted).
    Cleared(String),
}

/// Baseline plus violations.
pub struct Monitor {
    sets: Vec<(WatchSet, Excludes)>,
    pub baseline: Option<Baseline>,
    violations: BTreeMap<Vec<u8>, Violation>,
    /// At most this many violations are kept (memory bound); beyond, they are counted.
    pub max_violations: usize,
    pub dropped: u64,
}

fn key(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn path_of(k: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(k))
}

impl Monitor {
    pub fn new(sets: &[WatchSet]) -> Result<Monitor, IntegrityError> {
        let sets = sets
            .iter()
            .map(|s| Ok((s.clone(), Excludes::new(&s.exclude)?)))
            .collect::<Result<Vec<_>, IntegrityError>>()?;
        Ok(Monitor {
            sets,
            baseline: None,
            violations: BTreeMap::new(),
            max_violations: 200_000,
            dropped: 0,
        })
    }

    pub fn sets(&self) -> impl Iterator<Item = &WatchSet> {
        self.sets.iter().map(|(s, _)| s)
    }

    /// The set responsible for `path`: of those covering it, the one with the longest root.
    pub fn set_for(&self, path: &Path) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, (s, ex)) in self.sets.iter().enumerate() {
            if !covers(s, ex, path) {
                continue;
            }
            let len = s
                .paths
                .iter()
                .filter(|r| path.starts_with(r))
                .map(|r| r.as_os_str().len())
                .max()
                .unwrap_or(0);
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((i, len));
            }
        }
        best.map(|(i, _)| i)
    }

    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.violations.values()
    }

    pub fn violation_count(&self) -> usize {
        self.violations.len()
    }

    fn baseline_entry(&self, k: &[u8]) -> Option<&Entry> {
        self.baseline
            .as_ref()
            .and_then(|b| b.entries.get(k))
            .map(|(_, e)| e)
    }

    /// The violation (if any) for `path` given its baseline and current entries.
    fn judge(
        &self,
        set: usize,
        path: &Path,
        base: Option<&Entry>,
        cur: Option<&Entry>,
    ) -> Option<Violation> {
        let (s, _) = &self.sets[set];
        let v = |kind, expected: String, actual: String| Violation {
            path: path.to_string_lossy().into_owned(),
            kind,
            expected,
            actual,
            set: s.name.clone(),
            severity: s.severity,
            time: now(),
        };
        match (base, cur) {
            (None, None) => None,
            (Some(b), None) => Some(v(ChangeKind::Removed, describe(b), String::new())),
            (None, Some(c)) => Some(v(ChangeKind::Added, String::new(), describe(c))),
            (Some(b), Some(c)) => compare(b, c, &s.attrs).map(|(k, e, a)| v(k, e, a)),
        }
    }

    fn record(&mut self, k: Vec<u8>, v: Option<Violation>, out: &mut Vec<Update>) {
        match v {
            None => {
                if let Some(old) = self.violations.remove(&k) {
                    out.push(Update::Cleared(old.path));
                }
            }
            Some(v) => {
                if let Some(old) = self.violations.get(&k)
                    && (old.kind, &old.expected, &old.actual) == (v.kind, &v.expected, &v.actual)
                {
                    return; // already known, unchanged
                }
                if !self.violations.contains_key(&k) && self.violations.len() >= self.max_violations
                {
                    self.dropped += 1;
                    return;
                }
                self.violations.insert(k, v.clone());
                out.push(Update::Raised(v));
            }
        }
    }

    /// Compares `path` on disk with the baseline (real-time path). No baseline: nothing.
    pub fn check_path(&mut self, path: &Path) -> Vec<Update> {
        let mut out = Vec::new();
        if self.baseline.is_none() {
            return out;
        }
        let Some(set) = self.set_for(path) else {
            return out;
        };
        let cur = match Entry::read_for(path, &self.sets[set].0.attrs, &mut |_| {}) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!("integrity: cannot read {}: {e}", path.display());
                return out;
            }
        };
        let k = key(path);
        let v = self.judge(set, path, self.baseline_entry(&k), cur.as_ref());
        self.record(k, v, &mut out);
        out
    }

    /// Replaces the violations of set `set` with a full comparison of `scanned` (everything
    /// the scanner found for the set) against the baseline.
    pub fn apply_scan(&mut self, set: usize, scanned: &Entries) -> Vec<Update> {
        let mut out = Vec::new();
        let Some(b) = &self.baseline else {
            return out;
        };
        let mut fresh: BTreeMap<Vec<u8>, Option<Violation>> = BTreeMap::new();
        for (k, (_, e)) in &b.entries {
            let p = path_of(k);
            if self.set_for(p) == Some(set) {
                fresh.insert(k.clone(), self.judge(set, p, Some(e), scanned.get(k)));
            }
        }
        for (k, e) in scanned {
            let p = path_of(k);
            if !fresh.contains_key(k) && self.set_for(p) == Some(set) {
                fresh.insert(k.clone(), self.judge(set, p, None, Some(e)));
            }
        }
        // violations of this set that the scan no longer sees (e.g. out of the set now)
        let stale: Vec<Vec<u8>> = self
            .violations
            .iter()
            .filter(|(k, v)| v.set == self.sets[set].0.name && !fresh.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.record(k, None, &mut out);
        }
        for (k, v) in fresh {
            self.record(k, v, &mut out);
        }
        out
    }

    /// A new baseline from full scans of every set (index = set).
    pub fn new_baseline(&self, scans: Vec<Entries>) -> Baseline {
        let mut b = Baseline {
            created: now(),
            sets: self.sets.iter().map(|(s, _)| s.name.clone()).collect(),
            entries: BTreeMap::new(),
        };
        for (i, entries) in scans.into_iter().enumerate() {
            for (k, e) in entries {
                if self.set_for(path_of(&k)) == Some(i) {
                    b.entries.insert(k, (i as u16, e));
                }
            }
        }
        b
    }

    /// Installs `b` and forgets every violation (after init or load; a scan follows).
    pub fn set_baseline(&mut self, b: Option<Baseline>) -> Vec<Update> {
        self.baseline = b;
        self.dropped = 0;
        std::mem::take(&mut self.violations)
            .into_values()
            .map(|v| Update::Cleared(v.path))
            .collect()
    }

    /// Takes the current state of `path` into the baseline (or drops it when it is gone).
    /// Returns whether the baseline changed.
    pub fn accept(&mut self, path: &Path) -> Result<Vec<Update>, IntegrityError> {
        let Some(set) = self.set_for(path) else {
            return Err(IntegrityError::Invalid(format!(
                "{} is not in any watch set",
                path.display()
            )));
        };
        let cur = match Entry::read_for(path, &self.sets[set].0.attrs, &mut |_| {}) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(IntegrityError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let k = key(path);
        let Some(b) = self.baseline.as_mut() else {
            return Err(IntegrityError::NoBaseline(path.to_path_buf()));
        };
        match cur {
            Some(e) => {
                b.entries.insert(k.clone(), (set as u16, e));
            }
            None => {
                b.entries.remove(&k);
            }
        }
        let mut out = Vec::new();
        self.record(k, None, &mut out);
        Ok(out)
    }

    /// The recorded entry and the current one for `path` (dpkg acceptance).
    pub fn entries_for(&self, path: &Path) -> (Option<Entry>, Option<Entry>) {
        let k = key(path);
        let attrs = self
            .set_for(path)
            .map_or(super::Attrs::ALL, |i| self.sets[i].0.attrs);
        (
            self.baseline_entry(&k).cloned(),
            Entry::read_for(path, &attrs, &mut |_| {}).ok(),
        )
    }
}
