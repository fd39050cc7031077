//! Opening a profile's rule paths without letting the service move them. A rule path is
//! opened once at start, and the rule follows the inode it names; so whoever can put a
//! symlink where a rule path points decides what the rule grants. Symlinks are followed
//! only where nobody but root could have made them:
//!
//! * inside a write tree — this profile's, or any profile's on the profile path, since a
//!   confined *root* service makes root-owned links in its own write trees — or below a
//!   directory a non-root user can write, no symlink is followed at all (a planted link is
//!   an error that stops the start, naming the path). Write trees are compared as spelled
//!   and resolved (`/var/run/x` is `/run/x`);
//! * elsewhere a symlink is followed when it and every directory on the way are owned by
//!   root and not writable by group or others (`/lib` → `/usr/lib`, `/etc/localtime`, the
//!   `/proc/self` link, `/var/run` → `/run`).
//!
//! The resolved path is then opened with `openat2(RESOLVE_NO_SYMLINKS)`, so a link swapped
//! in between the check and the open fails too.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Links followed while resolving one path, at most (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// Why a rule path was not opened.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: {} is a symlink {why}; hardend does not follow it (a planted link would move the rule); remove it or name the target",
        path.display(),
        link.display()
    )]
    UntrustedLink {
        path: PathBuf,
        link: PathBuf,
        why: &'static str,
    },
    #[error("{}: more than {MAX_LINKS} symlinks", path.display())]
    TooManyLinks { path: PathBuf },
}

impl PathError {
    /// The path does not exist (the rule is skipped and stays denied).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PathError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Where no link is trusted: write trees, as spelled and resolved. The write trees of the
/// other profiles on the profile path are read only when a rule path holds a link at all
/// (rare: the fast path opens without following any).
#[derive(Debug, Default)]
pub struct LinkGuard {
    own: Vec<PathBuf>,
    profile_path: Vec<PathBuf>,
    others: std::cell::OnceCell<Vec<PathBuf>>,
}

/// A path and, when it resolves to another spelling, that too.
fn both_spellings(p: &Path) -> Vec<PathBuf> {
    let mut v = vec![p.to_path_buf()];
    if let Ok(c) = std::fs::canonicalize(p)
        && c != p
    {
        v.push(c);
    }
    v
}

impl LinkGuard {
    /// `own`: this profile's write trees; `profile_path`: where the other profiles are.
    pub fn new(own: &[PathBuf], profile_path: &[PathBuf]) -> Self {
        LinkGuard {
            own: own.iter().flat_map(|p| both_spellings(p)).collect(),
            profile_path: profile_path.to_vec(),
            others: std::cell::OnceCell::new(),
        }
    }

    fn others(&self) -> &[PathBuf] {
        self.others.get_or_init(|| {
            let loader = crate::profile::ProfileLoader::new(self.profile_path.clone());
            loader
                .list()
                .into_iter()
                .filter_map(|(_, f)| loader.load_file(&f).ok())
                .filter_map(|p| p.landlock)
                .flat_map(|l| l.write.into_iter().collect::<Vec<_>>())
                .flat_map(|w| both_spellings(&w))
                .collect()
        })
    }

    /// Whether `p` (resolved so far) lies in a write tree.
    pub fn in_write_tree(&self, p: &Path) -> bool {
        self.own.iter().any(|w| p.starts_with(w)) || self.others().iter().any(|w| p.starts_with(w))
    }
}

/// An opened rule path.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    /// The path with every trusted link resolved.
    pub resolved: PathBuf,
    pub is_dir: bool,
    /// A character or block device (written to, never re-mounted).
    pub is_device: bool,
}

fn trusted_dir(m: &std::fs::Metadata) -> bool {
    m.uid() == 0 && m.mode() & 0o022 == 0
}

/// Resolves `path` under the rules above.
pub fn resolve(path: &Path, guard: &LinkGuard) -> Result<PathBuf, PathError> {
    let io = |source| PathError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut todo: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .rev()
        .collect();
    let mut cur = PathBuf::from("/");
    // from the first directory a non-root user can write, no link is trusted
    let mut untrusted = !trusted_dir(&std::fs::metadata("/").map_err(io)?);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let next = cur.join(&name);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) => return Err(io(e)),
        };
        if meta.file_type().is_symlink() {
            let in_write_tree = guard.in_write_tree(&next);
            let why = if in_write_tree {
                Some("inside a write tree")
            } else if untrusted {
                Some("below a directory a non-root user can write")
            } else if meta.uid() != 0 {
                Some("not owned by root")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(PathError::UntrustedLink {
                    path: path.to_path_buf(),
                    link: next,
                    why,
                });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(PathError::TooManyLinks {
                    path: path.to_path_buf(),
                });
            }
            let target = std::fs::read_link(&next).map_err(io)?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
                untrusted = false;
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => todo.push(n.to_os_string()),
                    Component::ParentDir => todo.push("..".into()),
                    _ => {}
                }
            }
            continue;
        }
        if name.as_bytes() == b".." {
            cur.pop();
            continue;
        }
        if meta.is_dir() && !trusted_dir(&meta) {
            untrusted = true;
        }
        cur = next;
    }
    Ok(cur)
}

fn open_no_symlinks(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        // no O_NOFOLLOW: with O_PATH it would open a trailing link itself; without it
        // RESOLVE_NO_SYMLINKS makes any link, the last one too, an ELOOP
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Resolves and opens `path` (`O_PATH`, no symlink followed at open time). A path without
/// any link is one `openat2`; only a path with links is walked and checked.
pub fn open(path: &Path, guard: &LinkGuard) -> Result<Opened, PathError> {
    let io = |source: io::Error| PathError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (fd, resolved) = match open_no_symlinks(path) {
        Ok(fd) => (fd, path.to_path_buf()),
        Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::XDEV) => {
            let resolved = resolve(path, guard)?;
            (
                open_no_symlinks(&resolved).map_err(|e| io(e.into()))?,
                resolved,
            )
        }
        Err(e) => return Err(io(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    Ok(Opened {
        fd,
        resolved,
        is_dir: kind == rustix::fs::FileType::Directory,
        is_device: matches!(
            kind,
            rustix::fs::FileType::CharacterDevice | rustix::fs::FileType::BlockDevice
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn trusted_system_links_are_followed() {
        // merged /usr: /lib -> usr/lib on Debian; the host may differ, so build our own
        let g = LinkGuard::default();
        let r = resolve(Path::new("/proc/self"), &g).unwrap();
        assert_eq!(r, PathBuf::from(format!("/proc/{}", std::process::id())));
        assert!(open(Path::new("/proc/self"), &g).unwrap().is_dir);
    }

    #[test]
    fn links_in_write_trees_or_user_writable_directories_are_refused() {
        let d = tempfile::tempdir().unwrap();
        // a tempdir is owned by whoever runs the test: for a non-root user it is "writable
        // by a non-root user"; for root make it group-writable to get the same
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let link = d.path().join("planted");
        symlink("/", &link).unwrap();
        let none = LinkGuard::default();
        let e = resolve(&link, &none).unwrap_err().to_string();
        assert!(
            e.contains("below a directory a non-root user can write"),
            "{e}"
        );
        let e = resolve(&link, &LinkGuard::new(&[d.path().to_path_buf()], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside a write tree"), "{e}");
        // no link: fine, also there
        let plain = d.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        assert_eq!(resolve(&plain, &none).unwrap(), plain);
        assert!(
            open(Path::new("/nonexistent-hardend"), &none)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn another_profiles_write_tree_and_other_spellings_are_guarded() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let profiles = d.path().join("profiles");
        std::fs::create_dir(&profiles).unwrap();
        std::fs::write(
            profiles.join("producer.toml"),
            format!("[landlock]\nwrite = [\"{}\"]\n", shared.display()),
        )
        .unwrap();
        symlink("/etc", shared.join("report")).unwrap();
        let g = LinkGuard::new(&[], &[profiles]);
        assert!(g.in_write_tree(&shared.join("report")));
        // a write tree spelled through a link guards its resolved form too
        let alias = d.path().join("alias");
        symlink(&shared, &alias).unwrap();
        let g = LinkGuard::new(&[alias], &[]);
        assert!(g.in_write_tree(&shared.join("x")));
    }
}
