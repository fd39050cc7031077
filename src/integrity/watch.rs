//! Real-time watching with inotify: one instance per watch set (so an overflow names the set
//! to rescan), a watch on every directory of the set inside a global watch budget, and a
//! watch on every multiply-linked file (a write through a hard link from outside the tree
//! reaches only the inode's own watchers). Overflows and watches that could not be added
//! become rescans of the set — reported, never silently lost. Events are debounced into
//! batches of changed paths; the monitor's own reads (open, read, close without writing)
//! are not subscribed to.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::scan::{Excludes, covers};
use super::{IntegrityError, WatchSet};

/// Debounce: a batch closes after this much quiet...
const QUIET: Duration = Duration::from_millis(15);
/// ...or this long after its first event.
const MAX_BATCH: Duration = Duration::from_millis(150);

/// What changed since the last batch.
#[derive(Debug, Default)]
pub struct Batch {
    /// (set index, path) for every path an event named.
    pub changed: BTreeSet<(usize, PathBuf)>,
    /// Directories created or moved in: their whole subtree must be checked.
    pub new_dirs: BTreeSet<(usize, PathBuf)>,
    /// Sets to rescan completely, with the reason (overflow, out of watches).
    pub rescan: Vec<(usize, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.new_dirs.is_empty() && self.rescan.is_empty()
    }
}

struct Instance {
    set: WatchSet,
    ex: Excludes,
    inotify: Inotify,
    /// watch → (watched path, is a directory watch)
    wds: HashMap<WatchDescriptor, (PathBuf, bool)>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

/// The watches of every set.
pub struct Watcher {
    inst: Vec<Instance>,
    budget: usize,
    used: usize,
    /// Directories and files that could not be watched (budget or ENOSPC), per set.
    pub unwatched: Vec<u64>,
    buf: Vec<u8>,
}

const DIR_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::DONT_FOLLOW);

const FILE_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::DONT_FOLLOW);

/// The kernel's per-user watch limit.
pub fn max_user_watches() -> usize {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

impl Watcher {
    /// One inotify instance per set; no watches yet.
    pub fn new(sets: &[WatchSet], budget: usize) -> Result<Watcher, IntegrityError> {
        let mut inst = Vec::new();
        for s in sets {
            inst.push(Instance {
                set: s.clone(),
                ex: Excludes::for_set(s)?,
                inotify: Inotify::init().map_err(IntegrityError::Inotify)?,
                wds: HashMap::new(),
                by_path: HashMap::new(),
            });
        }
        Ok(Watcher {
            unwatched: vec![0; inst.len()],
            inst,
            budget,
            used: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Watches in use.
    pub fn watches(&self) -> usize {
        self.used
    }

    fn add(&mut self, i: usize, path: &Path, dir: bool) -> bool {
        if self.inst[i].by_path.contains_key(path) {
            return true;
        }
        if self.used >= self.budget {
            self.unwatched[i] += 1;
            return false;
        }
        let mask = if dir {
            DIR_MASK | WatchMask::ONLYDIR
        } else {
            FILE_MASK
        };
        let inst = &mut self.inst[i];
        match inst.inotify.watches().add(path, mask) {
            Ok(wd) => {
                // the same inode may already be watched under another name: a hard link (both
                // names are this inode: keep the first), or a rename (`mv A B`: the old name is
                // gone or now another inode — `mv A B; mkdir A` — so the watch and its events
                // belong to the new name)
                match inst.wds.entry(wd.clone()) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((path.to_path_buf(), dir));
                        self.used += 1;
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        if o.get().0 != path && !same_inode(&o.get().0, path) {
                            let old = std::mem::replace(o.get_mut(), (path.to_path_buf(), dir)).0;
                            inst.by_path.remove(&old);
                        }
                    }
                }
                inst.by_path.insert(path.to_path_buf(), wd);
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                self.unwatched[i] += 1;
                false
            }
            // vanished or unreadable: the scan reports it
            Err(_) => true,
        }
    }

    /// Adds watches for `root` and everything under it that set `i` covers. Returns false
    /// when some could not be added (budget or kernel limit).
    pub fn watch_tree(&mut self, i: usize, root: &Path) -> bool {
        let mut ok = true;
        let recursive = self.inst[i].set.recursive;
        let mut w = walkdir::WalkDir::new(root)
            .follow_links(false)
            .same_file_system(true);
        if !recursive {
            w = w.max_depth(1);
        }
        let mut it = w.into_iter();
        while let Some(r) = it.next() {
            let Ok(e) = r else { continue };
            if self.inst[i].ex.matches(e.path(), e.file_type().is_dir()) {
                if e.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            let t = e.file_type();
            if t.is_dir() {
                ok &= self.add(i, e.path(), true);
            } else if t.is_file() && e.metadata().is_ok_and(|m| m.nlink() > 1) {
                ok &= self.add(i, e.path(), false);
            }
        }
        ok
    }

    /// Watches every set. Returns the sets that could not be watched completely.
    pub fn watch_all(&mut self) -> Vec<usize> {
        let mut short = Vec::new();
        for i in 0..self.inst.len() {
            let roots = self.inst[i].set.paths.clone();
            let mut ok = true;
            for r in roots {
                match std::fs::symlink_metadata(&r) {
                    Ok(m) if m.is_dir() => ok &= self.watch_tree(i, &r),
                    Ok(_) => {
                        // a file root: its directory (for replacement by rename) and itself
                        if let Some(parent) = r.parent() {
                            ok &= self.add(i, parent, true);
                        }
                        ok &= self.add(i, &r, false);
                    }
                    Err(_) => {
                        // not there (yet): watch the parent so that its creation is seen
                        if let Some(parent) = r.parent() {
                            ok &= self.add(i, parent, true);
                        }
                    }
                }
            }
            if !ok {
                short.push(i);
            }
        }
        short
    }

    /// Waits up to `timeout` for events, then debounces; `None` when nothing happened.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<Batch>, IntegrityError> {
        let mut batch = Batch::default();
        if !self.poll(timeout)? {
            return Ok(None);
        }
        let first = Instant::now();
        loop {
            self.read_all(&mut batch)?;
            let left = MAX_BATCH.saturating_sub(first.elapsed());
            if left.is_zero() || !self.poll(QUIET.min(left))? {
                break;
            }
        }
        Ok(Some(batch).filter(|b| !b.is_empty()))
    }

    fn poll(&self, timeout: Duration) -> Result<bool, IntegrityError> {
        let mut fds: Vec<libc::pollfd> = self
            .inst
            .iter()
            .map(|i| libc::pollfd {
                fd: i.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd structures that
        // lives across the call; poll only writes their `revents` fields.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(IntegrityError::Inotify(e));
        }
        Ok(n > 0)
    }

    fn read_all(&mut self, batch: &mut Batch) -> Result<(), IntegrityError> {
        for i in 0..self.inst.len() {
            loop {
                let mut new_dirs = Vec::new();
                let mut gone = Vec::new();
                let mut overflow = false;
                let mut count = 0;
                {
                    let inst = &mut self.inst[i];
                    let events = match inst.inotify.read_events(&mut self.buf) {
                        Ok(ev) => ev,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(IntegrityError::Inotify(e)),
                    };
                    for ev in events {
                        count += 1;
                        if ev.mask.contains(EventMask::Q_OVERFLOW) {
                            overflow = true;
                            continue;
                        }
                        let Some((base, is_dir)) = inst.wds.get(&ev.wd).cloned() else {
                            continue;
                        };
                        if ev.mask.contains(EventMask::IGNORED) {
                            gone.push(ev.wd.clone());
                            continue;
                        }
                        let path = match (ev.name, is_dir) {
                            (Some(n), true) => base.join(n),
                            _ => base.clone(),
                        };
                        if !covers(&inst.set, &inst.ex, &path) {
                            continue;
                        }
                        if ev.mask.contains(EventMask::ISDIR)
                            && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                        {
                            new_dirs.push(path.clone());
                        }
                        batch.changed.insert((i, path));
                    }
                }
                for wd in gone {
                    if let Some((p, _)) = self.inst[i].wds.remove(&wd) {
                        self.inst[i].by_path.remove(&p);
                        self.used = self.used.saturating_sub(1);
                    }
                }
                if overflow {
                    batch.rescan.push((
                        i,
                        "the kernel's inotify queue overflowed (events were lost)".into(),
                    ));
                }
                for d in new_dirs {
                    // watch first, then the monitor walks it: nothing created in between
                    // is missed
                    if !self.watch_tree(i, &d) {
                        batch
                            .rescan
                            .push((i, format!("out of inotify watches under {}", d.display())));
                    }
                    batch.new_dirs.insert((i, d));
                }
                if count == 0 {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Whether both names are the same inode now (a name that is gone is no inode).
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| {
        std::fs::symlink_metadata(p)
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    matches!((id(a), id(b)), (Some(x), Some(y)) if x == y)
}
