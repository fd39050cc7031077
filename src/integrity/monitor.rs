//! The engine: the baseline, the current violations, and how scans and events change them.
//! Pure bookkeeping over the file system: no D-Bus, no threads.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::db::Baseline;
use super::entry::{Entry, compare, describe};
use super::scan::{Entries, Excludes, covers};
use super::{Attrs, ChangeKind, IntegrityError, Violation, WatchSet, now};

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
            .map(|s| Ok((s.clone(), Excludes::for_set(s)?)))
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
            path: super::pathname::to_wire(path),
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

    /// The set (index) and attributes that decide `path`: `None` without a baseline or
    /// when no set covers it. Cheap; the caller reads the file (outside any lock) with
    /// [`read_entry`] and hands the result to [`Monitor::judge_read`].
    pub fn target(&self, path: &Path) -> Option<(usize, Attrs)> {
        self.baseline.as_ref()?;
        let set = self.set_for(path)?;
        Some((set, self.sets[set].0.attrs))
    }

    /// Records the verdict for `path`, read as `cur` for `attrs`. When the sets changed
    /// since the read (a reload), nothing is recorded: the rescan that follows decides.
    pub fn judge_read(&mut self, path: &Path, attrs: Attrs, cur: Option<Entry>) -> Vec<Update> {
        let mut out = Vec::new();
        match self.target(path) {
            Some((set, a)) if a == attrs => {
                let k = key(path);
                let v = self.judge(set, path, self.baseline_entry(&k), cur.as_ref());
                self.record(k, v, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Compares `path` on disk with the baseline (read and judged in one go).
    pub fn check_path(&mut self, path: &Path) -> Vec<Update> {
        let Some((_, attrs)) = self.target(path) else {
            return Vec::new();
        };
        match read_entry(path, &attrs) {
            Ok(cur) => self.judge_read(path, attrs, cur),
            Err(e) => {
                tracing::warn!("integrity: cannot read {}: {e}", path.display());
                Vec::new()
            }
        }
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
            generation: 0,
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

    /// Where each of `paths` would go in the baseline: all or nothing — a path outside the
    /// watch sets, or no baseline at all, is an error and nothing is staged.
    pub fn stage(&self, paths: &[PathBuf]) -> Result<Vec<Staged>, IntegrityError> {
        if self.baseline.is_none() {
            return Err(IntegrityError::NoBaseline(
                paths.first().cloned().unwrap_or_default(),
            ));
        }
        let in_baseline = |p: &Path| {
            self.baseline
                .as_ref()
                .is_some_and(|b| b.entries.contains_key(&key(p)))
        };
        paths
            .iter()
            .map(|path| match self.set_for(path) {
                // accepting a removal is taking it out of the baseline; a path that is
                // neither on disk nor in the baseline has nothing to accept (a typo, or a
                // name that lost bytes on the way)
                Some(_) if !in_baseline(path) && std::fs::symlink_metadata(path).is_err() => {
                    Err(IntegrityError::Invalid(format!(
                        "{}: not on disk and not in the baseline: nothing to accept",
                        super::pathname::to_wire(path)
                    )))
                }
                Some(set) => Ok(Staged {
                    path: path.clone(),
                    set,
                    attrs: self.sets[set].0.attrs,
                }),
                None => Err(IntegrityError::Invalid(format!(
                    "{} is not in any watch set",
                    path.display()
                ))),
            })
            .collect()
    }

    /// Takes entries read for staged paths into the baseline (`None`: the path is gone and
    /// leaves the baseline) and clears their violations. Returns what [`Monitor::undo`]
    /// needs to put the replaced entries back (no copy of the whole baseline).
    pub fn commit(&mut self, read: Vec<(Staged, Option<Entry>)>) -> (Undo, Vec<Update>) {
        let mut out = Vec::new();
        let mut undo = Undo(Vec::with_capacity(read.len()));
        for (st, cur) in read {
            let k = key(&st.path);
            if let Some(b) = self.baseline.as_mut() {
                let old = match cur {
                    Some(e) => b.entries.insert(k.clone(), (st.set as u16, e)),
                    None => b.entries.remove(&k),
                };
                undo.0.push((k.clone(), old));
            }
            self.record(k, None, &mut out);
        }
        (undo, out)
    }

    /// Takes the current state of every path into the baseline. Everything is read first:
    /// a path outside the watch sets or unreadable changes nothing at all.
    pub fn accept_all(&mut self, paths: &[PathBuf]) -> Result<Vec<Update>, IntegrityError> {
        let read = read_staged(self.stage(paths)?)?;
        Ok(self.commit(read).1)
    }

    /// Puts back the entries a [`Monitor::commit`] replaced (its change could not be
    /// stored); the caller judges the paths again.
    pub fn undo(&mut self, undo: Undo) {
        if let Some(b) = self.baseline.as_mut() {
            for (k, old) in undo.0.into_iter().rev() {
                match old {
                    Some(e) => {
                        b.entries.insert(k, e);
                    }
                    None => {
                        b.entries.remove(&k);
                    }
                }
            }
        }
    }

    /// The recorded entry for `path` and the attributes its set compares.
    pub fn recorded(&self, path: &Path) -> (Option<Entry>, Attrs) {
        let attrs = self
            .set_for(path)
            .map_or(super::Attrs::ALL, |i| self.sets[i].0.attrs);
        (self.baseline_entry(&key(path)).cloned(), attrs)
    }
}

/// The entries a commit replaced (`None`: the path was not in the baseline).
#[derive(Debug, Default)]
pub struct Undo(Vec<(Vec<u8>, Option<Recorded>)>);

/// A baseline record: the set index and the entry.
pub type Recorded = (u16, Entry);

/// A path accepted into the baseline, before its current state is read.
#[derive(Clone, Debug)]
pub struct Staged {
    pub path: PathBuf,
    pub set: usize,
    pub attrs: Attrs,
}

/// The current entry of `path` for `attrs`; `None` when it does not exist.
pub fn read_entry(path: &Path, attrs: &Attrs) -> std::io::Result<Option<Entry>> {
    match Entry::read_for(path, attrs, &mut |_| {}) {
        Ok(e) => Ok(Some(e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads every staged path; the first unreadable one is the error.
pub fn read_staged(staged: Vec<Staged>) -> Result<Vec<(Staged, Option<Entry>)>, IntegrityError> {
    staged
        .into_iter()
        .map(|st| match read_entry(&st.path, &st.attrs) {
            Ok(e) => Ok((st, e)),
            Err(source) => Err(IntegrityError::Io {
                path: st.path.clone(),
                source,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Severity;

    #[test]
    fn accepting_several_paths_is_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "one\n").unwrap();
        let set = WatchSet {
            name: "t".into(),
            paths: vec![d.path().to_path_buf()],
            recursive: true,
            exclude: vec![],
            exclude_files: vec![],
            attrs: Attrs::ALL,
            severity: Severity::High,
        };
        let mut m = Monitor::new(std::slice::from_ref(&set)).unwrap();
        let (e, _) =
            crate::integrity::scan::scan_set(&set, &Default::default(), &Default::default())
                .unwrap();
        let b = m.new_baseline(vec![e]);
        m.set_baseline(Some(b.clone()));
        std::fs::write(d.path().join("a"), "two\n").unwrap();
        assert_eq!(m.check_path(&d.path().join("a")).len(), 1);
        // the second path is outside every set: nothing is taken, the violation stays
        let err = m
            .accept_all(&[d.path().join("a"), "/elsewhere/x".into()])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("/elsewhere/x is not in any watch set")
        );
        assert_eq!(m.baseline.as_ref(), Some(&b));
        assert_eq!(m.violation_count(), 1);
        // both fine: taken, cleared
        assert_eq!(m.accept_all(&[d.path().join("a")]).unwrap().len(), 1);
        assert_eq!(m.violation_count(), 0);
        assert_ne!(m.baseline.as_ref(), Some(&b));
    }
}
