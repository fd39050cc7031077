//! The scanner: walks a watch set (lstat only, no symlink following, one file system per
//! root), then records the entries on every core, hashing with large reads. A periodic scan
//! can be throttled (bytes per second) and runs at low CPU priority so it does not starve
//! the device.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::entry::Entry;
use super::{IntegrityError, WatchSet};

/// How to scan.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// At most this many bytes per second (None: as fast as the disk and CPU allow).
    pub rate: Option<u64>,
    /// Lower the workers' CPU priority (nice 10).
    pub background: bool,
}

/// Live counters, readable while a scan runs (progress display).
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub total_files: AtomicU64,
}

/// Path → entry for one set. Keys are the raw path bytes (paths need not be UTF-8).
pub type Entries = BTreeMap<Vec<u8>, Entry>;

/// The exclude patterns of a set, compiled: `any` excludes a path and, for a directory,
/// everything under it; `files` excludes only what is not a directory.
#[derive(Clone, Debug)]
pub struct Excludes {
    any: GlobSet,
    files: GlobSet,
}

impl Excludes {
    pub fn for_set(set: &WatchSet) -> Result<Excludes, IntegrityError> {
        Ok(Excludes {
            any: Self::compile(&set.exclude)?,
            files: Self::compile(&set.exclude_files)?,
        })
    }

    /// Patterns that exclude anything they match (tests, simple sets).
    pub fn new(patterns: &[String]) -> Result<Excludes, IntegrityError> {
        Ok(Excludes {
            any: Self::compile(patterns)?,
            files: Self::compile(&[])?,
        })
    }

    fn compile(patterns: &[String]) -> Result<GlobSet, IntegrityError> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            // `*` and `?` stay within one path component (as in a shell); `**` crosses them
            b.add(
                GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| IntegrityError::Invalid(format!("exclude pattern {p:?}: {e}")))?,
            );
        }
        b.build()
            .map_err(|e| IntegrityError::Invalid(e.to_string()))
    }

    /// Whether `path` (a directory when `is_dir`) is excluded.
    pub fn matches(&self, path: &Path, is_dir: bool) -> bool {
        self.matches_with(path, || is_dir)
    }

    /// As `matches`, asking `is_dir` only when a files-only pattern matches (an lstat per
    /// event would otherwise be paid for nothing).
    fn matches_with(&self, path: &Path, is_dir: impl FnOnce() -> bool) -> bool {
        self.any.is_match(path) || (self.files.is_match(path) && !is_dir())
    }
}

/// Whether `set` covers `path`: under one of its roots (directly under it when the set is
/// not recursive), and neither the path nor a directory between it and the root excluded.
pub fn covers(set: &WatchSet, ex: &Excludes, path: &Path) -> bool {
    for root in &set.paths {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        if !set.recursive && rel.components().count() > 1 {
            continue;
        }
        let mut cur = root.clone();
        if ex.matches(&cur, true) {
            continue;
        }
        let mut ok = true;
        let last = rel.components().count();
        for (i, c) in rel.components().enumerate() {
            cur.push(c);
            // what lies between is a directory; the path itself is what lstat says (a file
            // that is gone counts as a file)
            let is_dir = || {
                i + 1 < last
                    || std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_dir())
            };
            if ex.matches_with(&cur, is_dir) {
                ok = false;
                break;
            }
        }
        if ok {
            return true;
        }
    }
    false
}

/// The paths of a set with their lstat results (excluded subtrees not entered).
pub fn walk(set: &WatchSet, ex: &Excludes) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    for root in &set.paths {
        let mut w = walkdir::WalkDir::new(root)
            .follow_links(false)
            .same_file_system(true);
        if !set.recursive {
            w = w.max_depth(1);
        }
        let mut it = w.into_iter();
        while let Some(r) = it.next() {
            let Ok(e) = r else { continue };
            if ex.matches(e.path(), e.file_type().is_dir()) {
                if e.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            if let Ok(m) = e.metadata() {
                out.push((e.into_path(), m));
            }
        }
    }
    out
}

/// Sleeps as needed to keep `done` bytes since `start` under `rate` bytes/s.
fn throttle(rate: Option<u64>, start: Instant, done: u64) {
    if let Some(r) = rate.filter(|r| *r > 0) {
        let due = Duration::from_secs_f64(done as f64 / r as f64);
        let el = start.elapsed();
        if due > el {
            std::thread::sleep(due - el);
        }
    }
}

/// Records every path of `set` in parallel. Files that vanish while scanned are skipped;
/// other read errors are returned with the entries (a path that cannot be read is reported,
/// not silently dropped).
pub fn scan_set(
    set: &WatchSet,
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<(Entries, Vec<String>), IntegrityError> {
    let ex = Excludes::for_set(set)?;
    let paths = walk(set, &ex);
    progress
        .total_files
        .fetch_add(paths.len() as u64, Ordering::Relaxed);
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let next = AtomicUsize::new(0);
    let results = Mutex::new((Entries::new(), Vec::new()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                if opts.background {
                    // SAFETY: setpriority on the calling thread (who = 0 with PRIO_PROCESS is
                    // the calling thread on Linux); no pointers involved.
                    unsafe {
                        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                    }
                }
                let mut local = Entries::new();
                let mut errors = Vec::new();
                const CHUNK: usize = 32;
                loop {
                    let i = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if i >= paths.len() {
                        break;
                    }
                    for (p, m) in &paths[i..(i + CHUNK).min(paths.len())] {
                        let mut on_read = |n: usize| {
                            let done = progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            throttle(opts.rate, start, done + n as u64);
                        };
                        match Entry::from_metadata_for(p, m, &set.attrs, &mut on_read) {
                            Ok(e) => {
                                local.insert(p.as_os_str().as_bytes().to_vec(), e);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => errors.push(format!("{}: {e}", p.display())),
                        }
                        progress.files.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                r.0.append(&mut local);
                r.1.append(&mut errors);
            });
        }
    });
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn dpkg_excludes_match_dpkgs_suffixes_on_the_last_component_only() {
        let etc = crate::integrity::WatchSet::defaults().remove(0);
        let ex = Excludes::for_set(&etc).unwrap();
        for hidden in [
            "/etc/ssh/sshd_config.dpkg-old",
            "/etc/default/grub.ucf-dist",
            "/etc/x.conf~",
            "/etc/mtab",
        ] {
            assert!(ex.matches(std::path::Path::new(hidden), false), "{hidden}");
        }
        // what an attacker would name a file to hide it under the old `**/*.dpkg-*`
        for seen in [
            "/etc/systemd/system/backdoor.dpkg-x.service",
            "/etc/profile.d/x.dpkg-1.sh",
            "/etc/cron.d/job.dpkg-new.d/evil",
            "/etc/sudoers.d/a.dpkg-oldx",
        ] {
            assert!(!ex.matches(std::path::Path::new(seen), false), "{seen}");
        }
        // a directory with dpkg's suffix hides nothing: it is not excluded, nor what is in it
        assert!(!ex.matches(std::path::Path::new("/etc/x.dpkg-new"), true));
        let d = tempfile::tempdir().unwrap();
        let mut s = etc.clone();
        s.paths = vec![d.path().to_path_buf()];
        std::fs::create_dir(d.path().join("cron.dpkg-new")).unwrap();
        std::fs::write(d.path().join("cron.dpkg-new/evil"), "x").unwrap();
        std::fs::write(d.path().join("real.dpkg-new"), "x").unwrap();
        assert!(covers(&s, &ex, &d.path().join("cron.dpkg-new/evil")));
        assert!(covers(&s, &ex, &d.path().join("cron.dpkg-new")));
        assert!(!covers(&s, &ex, &d.path().join("real.dpkg-new")));
        let walked: Vec<_> = walk(&s, &ex).into_iter().map(|(p, _)| p).collect();
        assert!(
            walked.contains(&d.path().join("cron.dpkg-new/evil")),
            "{walked:?}"
        );
        assert!(
            !walked.contains(&d.path().join("real.dpkg-new")),
            "{walked:?}"
        );
        // a single `*` no longer crosses directories
        let ex = Excludes::new(&["/etc/*.log".to_string()]).unwrap();
        assert!(ex.matches(std::path::Path::new("/etc/a.log"), false));
        assert!(!ex.matches(std::path::Path::new("/etc/sub/a.log"), false));
    }
    use super::*;
    use crate::integrity::{Attrs, Severity};

    fn set(root: &Path, recursive: bool, exclude: &[&str]) -> WatchSet {
        WatchSet {
            name: "t".into(),
            paths: vec![root.to_path_buf()],
            recursive,
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            exclude_files: vec![],
            attrs: Attrs::ALL,
            severity: Severity::High,
        }
    }

    #[test]
    fn excludes_and_recursion() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/cache")).unwrap();
        std::fs::write(d.path().join("a/x"), "x").unwrap();
        std::fs::write(d.path().join("a/cache/y"), "y").unwrap();
        std::fs::write(d.path().join("top.bak"), "z").unwrap();
        let s = set(d.path(), true, &["**/cache", "**/*.bak"]);
        let (e, errs) = scan_set(&s, &ScanOptions::default(), &Progress::default()).unwrap();
        assert!(errs.is_empty());
        let names: Vec<String> = e
            .keys()
            .map(|k| String::from_utf8_lossy(k).replace(&d.path().display().to_string(), ""))
            .collect();
        assert_eq!(names, ["", "/a", "/a/x"]);
        let ex = Excludes::new(&s.exclude).unwrap();
        assert!(covers(&s, &ex, &d.path().join("a/x")));
        assert!(!covers(&s, &ex, &d.path().join("a/cache/y")));
        assert!(!covers(&s, &ex, &d.path().join("a/cache/new/z")));
        let flat = set(d.path(), false, &[]);
        let ex = Excludes::new(&[]).unwrap();
        assert!(covers(&flat, &ex, &d.path().join("top.bak")));
        assert!(!covers(&flat, &ex, &d.path().join("a/x")));
    }
}
