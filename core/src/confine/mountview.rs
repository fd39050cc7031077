//! The mount view: what Landlock cannot restrict, closed with the wrapper's own mount
//! namespace — for services that start as root (CAP_SYS_ADMIN), before any capability is
//! dropped and before Landlock forbids mount changes.
//!
//! * **Metadata.** Landlock has no rights for chmod, chown, xattrs or timestamps. The whole
//!   tree is made read-only (like systemd's `ProtectSystem=strict`, `/dev` included), and
//!   only the profile's write trees are bound back writable. Device nodes stay writable on a
//!   read-only mount (that is data, not metadata), which is what `write = ["/dev/null"]`
//!   needs; their metadata does not.
//! * **Pathname UNIX sockets** (below Landlock ABI 9). Every socket in reach at start that
//!   the profile does not grant gets `/dev/null` bound over it (connect: ECONNREFUSED), and
//!   the directories of the control sockets (`sockets::CONTROL_DIRS`: systemd's, the system
//!   bus, user buses, container runtimes) are covered by a read-only tmpfs — empty, or
//!   filtered: showing what the directory held at start minus the sockets not granted — so
//!   what listens there later (systemd's private socket after a re-exec) is out of reach.
//!
//! Propagation is private: nothing done here reaches the host, and mounts made on the host
//! later do not appear in the service's view.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags};
use serde::{Deserialize, Serialize};

use super::paths::Opened;
use super::sockets;

/// Errors while making the view. The service is not started after any of them.
#[derive(Debug, thiserror::Error)]
pub enum MountViewError {
    #[error("mount view: {what}: {source}")]
    Step { what: String, source: io::Error },
}

fn step(what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> MountViewError {
    let what = what.into();
    move |e| MountViewError::Step {
        what,
        source: e.into(),
    }
}

/// How connecting to pathname UNIX sockets is restricted for this service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnixSockets {
    /// Landlock (ABI ≥ 9) denies every socket that is not granted.
    Landlock,
    /// The mount view hides every socket that is not granted.
    MountView,
    /// Not restricted beyond file permissions (a service that does not start as root on a
    /// kernel below Landlock ABI 9): reported as partial.
    #[default]
    Permissions,
}

/// What the view will do (decided in `prepare`, made in `enforce`).
#[derive(Debug, Default)]
pub struct MountViewPlan {
    /// Whether a view is made at all (the process has CAP_SYS_ADMIN).
    pub active: bool,
    /// Everything read-only but the write trees (the profile has `[landlock]`).
    pub read_only: bool,
    pub hide_dirs: Vec<PathBuf>,
    /// Covered by a copy of what they hold at start, less the sockets not granted; nested
    /// ones first.
    pub filter_dirs: Vec<PathBuf>,
    pub hide_sockets: Vec<PathBuf>,
    /// Paths whose sockets the service may reach (unix grants as given and resolved,
    /// write trees).
    pub grants: BTreeSet<PathBuf>,
    /// Write trees where the service may also execute (inside a `read_exec` path): they
    /// are not made `noexec`.
    pub exec_trees: Vec<PathBuf>,
    pub report: MountViewReport,
}

/// What the view is decided from.
pub struct ViewInput<'a> {
    /// The profile has `[landlock]`.
    pub landlock: bool,
    /// Landlock itself restricts pathname sockets (ABI ≥ 9).
    pub landlock_unix: bool,
    /// The sockets the service may reach (unix_connect, its notify socket).
    pub unix_grants: &'a BTreeSet<PathBuf>,
    /// Its write paths, resolved.
    pub write_trees: &'a [PathBuf],
    /// Its read_exec paths.
    pub exec_trees: &'a [PathBuf],
    pub guard: &'a super::paths::LinkGuard,
}

/// What the view does, for the enforcement record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountViewReport {
    /// The service runs in its own mount namespace made by the wrapper (and its own IPC
    /// namespace: System V IPC and POSIX message queues of other processes out of reach).
    pub namespace: bool,
    /// Everything is read-only except `writable`.
    pub read_only: bool,
    pub writable: Vec<PathBuf>,
    pub unix_sockets: UnixSockets,
    /// Directories hidden whole.
    pub hidden_dirs: Vec<PathBuf>,
    /// Directories that show what they held at start, without the sockets not granted.
    #[serde(default)]
    pub filtered_dirs: Vec<PathBuf>,
    /// Individual sockets hidden.
    pub hidden_sockets: usize,
    /// What stays open, and why (part of the record's `partial` list).
    pub gaps: Vec<String>,
}

/// Whether this process may make a mount namespace (root, or any process with the
/// capability).
pub fn can_mount() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false)
}

/// Decides the view.
pub fn plan(input: &ViewInput<'_>, mount_allowed: bool) -> MountViewPlan {
    let ViewInput {
        landlock,
        landlock_unix,
        unix_grants,
        write_trees,
        exec_trees,
        guard,
    } = *input;
    let mut p = MountViewPlan {
        active: mount_allowed,
        read_only: mount_allowed && landlock,
        exec_trees: write_trees
            .iter()
            .filter(|w| {
                exec_trees
                    .iter()
                    .any(|e| w.starts_with(e) || e.starts_with(w))
            })
            .cloned()
            .collect(),
        ..Default::default()
    };
    let mut r = MountViewReport {
        namespace: mount_allowed,
        read_only: p.read_only,
        writable: if p.read_only {
            write_trees.to_vec()
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    if landlock && !mount_allowed {
        r.gaps.push(
            "metadata: chmod, chown, xattrs and timestamps outside the write trees are limited only by file permissions (the service does not start as root, so no read-only view)"
                .into(),
        );
    }
    // a grant through a trusted link (base's /dev/log) also grants the socket it names
    let mut grants: BTreeSet<PathBuf> = unix_grants.clone();
    for g in unix_grants {
        if let Ok(r) = super::paths::resolve(g, guard) {
            grants.insert(r);
        }
    }
    grants.extend(write_trees.iter().cloned());
    if landlock_unix {
        r.unix_sockets = UnixSockets::Landlock;
    } else if mount_allowed {
        r.unix_sockets = UnixSockets::MountView;
        for d in sockets::CONTROL_DIRS {
            let d = Path::new(d);
            // a link or a missing directory: nothing listens there now, and what is made
            // there later is the gap below
            if !std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let granted_inside = grants.iter().any(|g| g.starts_with(d) || d.starts_with(g));
            if granted_inside || sockets::ALWAYS_FILTERED.iter().any(|a| Path::new(a) == d) {
                p.filter_dirs.push(d.to_path_buf());
            } else {
                p.hide_dirs.push(d.to_path_buf());
            }
        }
        for listed in sockets::present() {
            // as bound (`/var/run/x`) and as it resolves (`/run/x`): the list shows the
            // name the server used, which may run through links
            let real = std::fs::canonicalize(&listed).unwrap_or_else(|_| listed.clone());
            let covered = p.hide_dirs.iter().any(|d| real.starts_with(d))
                // a direct entry of a filtered directory is left out of its copy
                || real
                    .parent()
                    .is_some_and(|d| p.filter_dirs.iter().any(|f| f == d));
            if sockets::is_granted(&real, &grants)
                || sockets::is_granted(&listed, &grants)
                || covered
            {
                continue;
            }
            p.hide_sockets.push(listed);
        }
        r.hidden_dirs = p.hide_dirs.clone();
        r.filtered_dirs = p.filter_dirs.clone();
        r.hidden_sockets = p.hide_sockets.len();
        r.gaps.push(format!(
            "unix sockets: the {} bound at start are hidden and the control directories show only what they held at start; a socket created later elsewhere (also inside their subdirectories), or bound in another network namespace outside them, is reachable (Landlock ABI 9 closes this)",
            p.hide_sockets.len()
        ));
    } else {
        r.unix_sockets = UnixSockets::Permissions;
        r.gaps.push(
            "unix sockets: below Landlock ABI 9 and not started as root, pathname UNIX sockets are limited only by their file permissions"
                .into(),
        );
    }
    p.grants = grants;
    p.report = r;
    p
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: u32 = 0x8000;
const AT_EMPTY_PATH: u32 = 0x1000;

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr)`: rustix has no wrapper.
fn set_attr(fd: &impl AsFd, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from `attr`, which is a
    // live, properly laid out `struct mount_attr`; the path is a NUL-terminated empty string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn open_nofollow(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        // no O_NOFOLLOW: with O_PATH it would open a trailing link itself
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
}

/// A detached copy of the file or tree at `source`, moved onto the place `target` names.
fn clone_onto(source: &impl AsFd, target: &impl AsFd) -> rustix::io::Result<()> {
    let tree = rustix::mount::open_tree(
        source,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    rustix::mount::move_mount(
        &tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// Makes the view in a new mount namespace of the calling process. `write_trees` are the
/// write paths as the Landlock step opened them (the same inodes get the writable binds).
pub fn apply(plan: &MountViewPlan, write_trees: &[Opened]) -> Result<(), MountViewError> {
    if !plan.active {
        return Ok(());
    }
    // SAFETY: NEWNS and NEWIPC only: no file descriptor table is unshared, so no thread
    // can observe descriptors from another table (the wrapper is single-threaded anyway).
    // The IPC namespace keeps System V IPC and POSIX message queues of other root
    // processes out of reach (like PrivateIPC=).
    unsafe {
        rustix::thread::unshare_unsafe(
            rustix::thread::UnshareFlags::NEWNS | rustix::thread::UnshareFlags::NEWIPC,
        )
    }
    .map_err(step("unshare(CLONE_NEWNS | CLONE_NEWIPC)"))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(step("private propagation for /"))?;
    if plan.read_only {
        // Copies of the write trees first, as they are now — a tree the unit itself made
        // read-only (ReadOnlyPaths=), or a read-only mount below one, stays so — then `/`
        // read-only, then the copies put back on top.
        let mut copies = Vec::new();
        for w in write_trees {
            // opened again in this namespace (mounts of the old one cannot be cloned or
            // mounted onto), and checked to be the inode Landlock grants
            let here = open_nofollow(&w.resolved)
                .map_err(step(format!("open {}", w.resolved.display())))?;
            let (a, b) = (
                rustix::fs::fstat(&here).map_err(step("stat"))?,
                rustix::fs::fstat(&w.fd).map_err(step("stat"))?,
            );
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
                return Err(MountViewError::Step {
                    what: format!("{} changed while starting", w.resolved.display()),
                    source: io::Error::other("not the directory the rules were made for"),
                });
            }
            let tree = rustix::mount::open_tree(
                &here,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH
                    | OpenTreeFlags::AT_RECURSIVE,
            )
            .map_err(step(format!("clone {}", w.resolved.display())))?;
            // what the service writes it cannot map executable (the loader would run it:
            // Landlock checks execve only) unless the profile lets it execute there
            let mut flags = MOUNT_ATTR_NOSUID;
            if !plan.exec_trees.iter().any(|e| e == &w.resolved) {
                flags |= MOUNT_ATTR_NOEXEC;
            }
            set_attr(&tree, flags, 0, true).map_err(|source| MountViewError::Step {
                what: format!("noexec {}", w.resolved.display()),
                source,
            })?;
            copies.push((w.resolved.clone(), here, tree));
        }
        let root = open_nofollow(Path::new("/")).map_err(step("open /"))?;
        set_attr(&root, MOUNT_ATTR_RDONLY, 0, true).map_err(|source| MountViewError::Step {
            what: "read-only /".into(),
            source,
        })?;
        for (path, here, tree) in copies {
            rustix::mount::move_mount(
                &tree,
                "",
                &here,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(step(format!("bind {} writable", path.display())))?;
        }
    }
    // sockets first: the copies of filtered directories then carry these covers along
    if !plan.hide_sockets.is_empty() {
        let null = open_nofollow(Path::new("/dev/null")).map_err(step("open /dev/null"))?;
        for s in &plan.hide_sockets {
            // following links: the list shows the name as bound (`/var/run/...`)
            let target = match rustix::fs::open(s, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                // gone since the list was made: nothing to reach
                Err(rustix::io::Errno::NOENT)
                | Err(rustix::io::Errno::LOOP)
                | Err(rustix::io::Errno::NOTDIR)
                | Err(rustix::io::Errno::ACCESS) => continue,
                Err(e) => return Err(step(format!("open socket {}", s.display()))(e)),
            };
            // only a socket is covered: a forged line in the kernel's list (a socket named
            // with a newline) must not let anyone blank a file or stop every start
            let st = rustix::fs::fstat(&target).map_err(step(format!("stat {}", s.display())))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
                continue;
            }
            clone_onto(&null, &target).map_err(step(format!("hide socket {}", s.display())))?;
        }
    }
    for d in &plan.hide_dirs {
        rustix::mount::mount(
            "hardend-hidden",
            d,
            "tmpfs",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            Some(c"mode=000,size=4k,nr_inodes=1"),
        )
        .map_err(step(format!("hide {}", d.display())))?;
    }
    for d in &plan.filter_dirs {
        filter_dir(d, plan)?;
    }
    Ok(())
}

/// One entry of a filtered directory, taken before it is covered.
enum Kept {
    /// A detached copy of the entry (and what is mounted below it).
    Tree {
        name: OsString,
        tree: OwnedFd,
        dir: bool,
    },
    Link {
        name: OsString,
        target: PathBuf,
    },
}

/// Covers `d` with a tmpfs that holds copies of its entries at this moment, except the
/// sockets not granted and the directories hidden whole; then makes the tmpfs read-only.
fn filter_dir(d: &Path, plan: &MountViewPlan) -> Result<(), MountViewError> {
    let io_step = |what: String| move |source: io::Error| MountViewError::Step { what, source };
    let meta = std::fs::symlink_metadata(d).map_err(io_step(format!("stat {}", d.display())))?;
    let mut kept = Vec::new();
    let entries = std::fs::read_dir(d).map_err(io_step(format!("list {}", d.display())))?;
    for e in entries {
        let e = e.map_err(io_step(format!("list {}", d.display())))?;
        let path = e.path();
        let ft = match e.file_type() {
            Ok(ft) => ft,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io_step(format!("stat {}", path.display()))(err)),
        };
        if (ft.is_socket() && !sockets::is_granted(&path, &plan.grants))
            || plan.hide_dirs.iter().any(|h| h == &path)
        {
            continue;
        }
        if ft.is_symlink() {
            match std::fs::read_link(&path) {
                Ok(target) => kept.push(Kept::Link {
                    name: e.file_name(),
                    target,
                }),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_step(format!("read {}", path.display()))(err)),
            }
            continue;
        }
        let fd = match open_nofollow(&path) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::LOOP) => continue,
            Err(err) => return Err(step(format!("open {}", path.display()))(err)),
        };
        let tree = rustix::mount::open_tree(
            &fd,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(step(format!("copy {}", path.display())))?;
        kept.push(Kept::Tree {
            name: e.file_name(),
            tree,
            dir: ft.is_dir(),
        });
    }
    let opts = format!(
        "mode={:o},uid={},gid={},size=1m,nr_inodes={}",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid(),
        kept.len() + 16
    );
    let opts = std::ffi::CString::new(opts).map_err(|e| MountViewError::Step {
        what: format!("filter {}", d.display()),
        source: io::Error::other(e),
    })?;
    rustix::mount::mount(
        "hardend-filtered",
        d,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(opts.as_c_str()),
    )
    .map_err(step(format!("filter {}", d.display())))?;
    let top = rustix::fs::openat2(
        rustix::fs::CWD,
        d,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(step(format!("open {}", d.display())))?;
    for k in kept {
        match k {
            Kept::Link { name, target } => rustix::fs::symlinkat(&target, &top, &name)
                .map_err(step(format!("link {}", d.join(&name).display())))?,
            Kept::Tree { name, tree, dir } => {
                let at = d.join(&name);
                if dir {
                    rustix::fs::mkdirat(&top, &name, Mode::from_raw_mode(0o755))
                        .map_err(step(format!("place {}", at.display())))?;
                } else {
                    rustix::fs::openat(
                        &top,
                        &name,
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map_err(step(format!("place {}", at.display())))?;
                }
                let target = rustix::fs::openat2(
                    &top,
                    &name,
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
                )
                .map_err(step(format!("open {}", at.display())))?;
                rustix::mount::move_mount(
                    &tree,
                    "",
                    &target,
                    "",
                    MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                        | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                )
                .map_err(step(format!("copy onto {}", at.display())))?;
            }
        }
    }
    // the tmpfs alone: the copies keep their own flags (write trees stay writable)
    set_attr(&top, MOUNT_ATTR_RDONLY, 0, false).map_err(|source| MountViewError::Step {
        what: format!("read-only {}", d.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        landlock_unix: bool,
        grants: &'a BTreeSet<PathBuf>,
        guard: &'a super::super::paths::LinkGuard,
    ) -> ViewInput<'a> {
        ViewInput {
            landlock: true,
            landlock_unix,
            unix_grants: grants,
            write_trees: &[],
            exec_trees: &[],
            guard,
        }
    }

    #[test]
    fn without_root_the_gaps_are_named() {
        let (none, g) = (BTreeSet::new(), super::super::paths::LinkGuard::default());
        let p = plan(&input(false, &none, &g), false);
        assert!(!p.active && !p.read_only);
        assert_eq!(p.report.unix_sockets, UnixSockets::Permissions);
        assert_eq!(p.report.gaps.len(), 2, "{:?}", p.report.gaps);
        let p = plan(&input(true, &none, &g), false);
        assert_eq!(p.report.unix_sockets, UnixSockets::Landlock);
        assert_eq!(p.report.gaps.len(), 1, "metadata only");
        let p = plan(&input(true, &none, &g), true);
        assert!(p.report.gaps.is_empty(), "root on ABI 9: nothing open");
    }

    #[test]
    fn granted_sockets_and_the_dirs_holding_them_are_filtered_not_hidden() {
        let grants = BTreeSet::from([PathBuf::from("/run/dbus/system_bus_socket")]);
        let g = super::super::paths::LinkGuard::default();
        let p = plan(&input(false, &grants, &g), true);
        assert!(p.active && p.read_only);
        assert!(!p.hide_dirs.contains(&PathBuf::from("/run/dbus")));
        assert!(
            !p.hide_sockets
                .contains(&PathBuf::from("/run/dbus/system_bus_socket"))
        );
        if Path::new("/run/dbus").is_dir() {
            assert!(p.filter_dirs.contains(&PathBuf::from("/run/dbus")));
        }
        if Path::new("/run/systemd").is_dir() {
            assert!(
                p.filter_dirs.contains(&PathBuf::from("/run/systemd")),
                "always filtered"
            );
        }
        // nested control directories come before their parent
        let pos = |d: &str| {
            p.filter_dirs
                .iter()
                .chain(&p.hide_dirs)
                .position(|x| x == Path::new(d))
        };
        if let (Some(a), Some(b)) = (pos("/run/systemd/userdb"), pos("/run/systemd")) {
            assert!(p.hide_dirs.contains(&PathBuf::from("/run/systemd/userdb")) || a < b);
        }
    }
}
