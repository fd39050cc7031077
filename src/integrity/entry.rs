//! What is recorded about one path, read without following symlinks and without changing
//! its access time, and how two records differ for a watch set's attributes.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Attrs, ChangeKind};

/// File type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Device, FIFO or socket.
    Special,
}

impl Kind {
    fn of(m: &Metadata) -> Kind {
        let t = m.file_type();
        if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            // block and character devices, FIFOs, sockets
            Kind::Special
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Special => "special",
        }
    }
}

/// One path's recorded state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Regular files only.
    pub sha256: Option<[u8; 32]>,
    /// Symlinks only.
    pub target: Option<Vec<u8>>,
    /// Sorted by name; `security.capability` among them.
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub ino: u64,
    pub nlink: u64,
}

/// Read buffer per file: large reads, few syscalls.
const READ_BUF: usize = 256 * 1024;

/// How often a file that changes while it is read is read again before it is reported as
/// unstable: a file its owner grows one byte at a time must neither recurse nor loop.
pub const MAX_TRIES: usize = 3;

fn unstable(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "unstable: {} kept changing while it was read ({MAX_TRIES} tries)",
        path.display()
    ))
}

/// The one read path for file content: opened with O_NOFOLLOW, O_NONBLOCK and (where
/// allowed) O_NOATIME; after the open, `fstat` must show the regular file the caller's
/// lstat `expect` saw (same device, inode, mode and owner: what is judged is what was
/// read), and at most its size is read. `Ok(None)`: the file changed under the read
/// (replaced, grown, shrunk, re-permissioned, or a device or FIFO swapped in) and
/// `on_chunk` saw something that must not be used. `Ok(Some(file))`: the open file, for
/// what else is judged on the same descriptor (xattrs).
pub fn read_open(
    path: &Path,
    expect: &Metadata,
    on_chunk: &mut dyn FnMut(&[u8]),
) -> std::io::Result<Option<File>> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | flags)
            .open(path)
    };
    // O_NOATIME needs ownership or CAP_FOWNER; without it, fall back to a plain open
    let f: File = match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0)?,
        r => r?,
    };
    let fm = f.metadata()?;
    let id = |m: &Metadata| (m.dev(), m.ino(), m.mode(), m.uid(), m.gid());
    if !fm.file_type().is_file() || id(&fm) != id(expect) {
        return Ok(None);
    }
    // one byte more than the size: a file that grew is noticed without reading it all
    let mut r = (&f).take(expect.size().saturating_add(1));
    let mut buf = vec![0u8; READ_BUF];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        on_chunk(&buf[..n]);
    }
    Ok((total == expect.size()).then_some(f))
}

/// [`read_open`] without the descriptor: `Ok(false)` when the file changed under the read.
pub fn read_content(
    path: &Path,
    expect: &Metadata,
    on_chunk: &mut dyn FnMut(&[u8]),
) -> std::io::Result<bool> {
    Ok(read_open(path, expect, on_chunk)?.is_some())
}

/// SHA-256 of the regular file `expect` describes (see [`read_content`]); `None` when it
/// changed under the read. Calls `on_read` with each chunk's length (rate limiting).
pub fn hash_file(
    path: &Path,
    expect: &Metadata,
    on_read: &mut dyn FnMut(usize),
) -> std::io::Result<Option<[u8; 32]>> {
    let mut h = Sha256::new();
    let same = read_content(path, expect, &mut |b| {
        on_read(b.len());
        h.update(b);
    })?;
    Ok(same.then(|| h.finalize().into()))
}

fn sorted_xattrs(
    names: impl Iterator<Item = std::ffi::OsString>,
    get: impl Fn(&std::ffi::OsStr) -> std::io::Result<Option<Vec<u8>>>,
) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = names
        .filter_map(|n| {
            let v = get(&n).ok()??;
            Some((n.to_string_lossy().into_owned(), v))
        })
        .collect();
    out.sort();
    out
}

/// The xattrs of the open file `f` (fgetxattr: the inode that was read, not a name).
fn fd_xattrs(f: &File) -> Vec<(String, Vec<u8>)> {
    use xattr::FileExt;
    match f.list_xattr() {
        Ok(names) => sorted_xattrs(names, |n| f.get_xattr(n)),
        Err(_) => Vec::new(),
    }
}

fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    // `xattr::list`/`get` do not follow symlinks (llistxattr, lgetxattr)
    match xattr::list(path) {
        Ok(names) => sorted_xattrs(names, |n| xattr::get(path, n)),
        Err(_) => Vec::new(),
    }
}

impl Entry {
    /// Records `path` (lstat; content hashed for regular files).
    pub fn read(path: &Path, on_read: &mut dyn FnMut(usize)) -> std::io::Result<Entry> {
        Self::read_for(path, &Attrs::ALL, on_read)
    }

    /// Records what a set with attributes `a` compares of `path`: the content is hashed
    /// only when `content` is compared, xattrs read only when `xattrs` is (what is not
    /// compared is not collected; [`compare`] never looks at it).
    pub fn read_for(
        path: &Path,
        a: &Attrs,
        on_read: &mut dyn FnMut(usize),
    ) -> std::io::Result<Entry> {
        let m = std::fs::symlink_metadata(path)?;
        Self::from_metadata_for(path, &m, a, on_read)
    }

    /// Records `path` whose lstat result is `m`.
    pub fn from_metadata(
        path: &Path,
        m: &Metadata,
        on_read: &mut dyn FnMut(usize),
    ) -> std::io::Result<Entry> {
        Self::from_metadata_for(path, m, &Attrs::ALL, on_read)
    }

    /// Like [`from_metadata`](Self::from_metadata), collecting only what `a` compares. A
    /// file that changes while it is read is read again, at most [`MAX_TRIES`] times, then
    /// reported unstable (an error; the scan goes on).
    pub fn from_metadata_for(
        path: &Path,
        m: &Metadata,
        a: &Attrs,
        on_read: &mut dyn FnMut(usize),
    ) -> std::io::Result<Entry> {
        let mut m = m.clone();
        for _ in 0..MAX_TRIES {
            if let Some(e) = Self::try_read(path, &m, a, on_read)? {
                return Ok(e);
            }
            m = std::fs::symlink_metadata(path)?;
        }
        Err(unstable(path))
    }

    /// Records `path` and, for a regular file, the MD5 of the very bytes its SHA-256 was
    /// computed over (one read: what dpkg's md5sums are compared with is exactly what is
    /// stored). `None`: the path does not exist. The content is read even when the set
    /// does not compare it (dpkg vouches for content only); then no SHA-256 is kept.
    pub fn read_with_md5(
        path: &Path,
        a: &Attrs,
    ) -> std::io::Result<Option<(Entry, Option<[u8; 16]>)>> {
        use md5::Md5;
        let mut m = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let with_content = Attrs {
            content: true,
            ..*a
        };
        for _ in 0..MAX_TRIES {
            let mut md5 = Md5::new();
            let read =
                Self::try_read_with(path, &m, &with_content, &mut |_| {}, &mut |b| md5.update(b))?;
            if let Some(mut e) = read {
                let sum = (e.kind == Kind::File).then(|| md5.finalize().into());
                if !a.content {
                    e.sha256 = None;
                }
                return Ok(Some((e, sum)));
            }
            m = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
        }
        Err(unstable(path))
    }

    /// One read of `path` as `m` describes it; `None` when it changed meanwhile.
    fn try_read(
        path: &Path,
        m: &Metadata,
        a: &Attrs,
        on_read: &mut dyn FnMut(usize),
    ) -> std::io::Result<Option<Entry>> {
        Self::try_read_with(path, m, a, on_read, &mut |_| {})
    }

    /// [`try_read`](Self::try_read), every chunk of content also handed to `also`. Mode,
    /// owner and xattrs of a regular file whose content is read are the open descriptor's.
    fn try_read_with(
        path: &Path,
        m: &Metadata,
        a: &Attrs,
        on_read: &mut dyn FnMut(usize),
        also: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<Option<Entry>> {
        let kind = Kind::of(m);
        let (mut sha256, mut fd_x) = (None, None);
        if kind == Kind::File && a.content {
            let mut h = Sha256::new();
            let Some(f) = read_open(path, m, &mut |b| {
                on_read(b.len());
                h.update(b);
                also(b);
            })?
            else {
                return Ok(None);
            };
            sha256 = Some(h.finalize().into());
            if a.xattrs {
                fd_x = Some(fd_xattrs(&f));
            }
        }
        let target = match kind {
            Kind::Symlink => Some(
                std::os::unix::ffi::OsStrExt::as_bytes(std::fs::read_link(path)?.as_os_str())
                    .to_vec(),
            ),
            _ => None,
        };
        // the file may have been replaced while it was hashed: a second lstat must agree
        let m2 = std::fs::symlink_metadata(path)?;
        let id = |m: &Metadata| (m.ino(), m.size(), m.mode(), m.uid(), m.gid());
        if id(&m2) != id(m) {
            return Ok(None);
        }
        let xattrs = match fd_x {
            Some(x) => x,
            None if a.xattrs => read_xattrs(path),
            None => Vec::new(),
        };
        Ok(Some(Entry {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: if kind == Kind::Dir { 0 } else { m.size() },
            sha256,
            target,
            xattrs,
            ino: m.ino(),
            // a directory's link count changes with every subdirectory added or removed
            nlink: if kind == Kind::Dir { 0 } else { m.nlink() },
        }))
    }
}

fn short(h: &[u8; 32]) -> String {
    hex::encode(h)
}

fn xattr_names(x: &[(String, Vec<u8>)]) -> String {
    if x.is_empty() {
        return "-".into();
    }
    x.iter()
        .map(|(n, v)| format!("{n}:{}", &hex::encode(Sha256::digest(v))[..12]))
        .collect::<Vec<_>>()
        .join(",")
}

/// How `actual` differs from `expected` for the attributes in `a`: the kind of change and the
/// differing attributes as `name=value` lists (expected, actual). `None`: no difference.
pub fn compare(
    expected: &Entry,
    actual: &Entry,
    a: &Attrs,
) -> Option<(ChangeKind, String, String)> {
    let (mut e, mut n) = (Vec::new(), Vec::new());
    let mut push = |name: &str, ev: String, av: String| {
        e.push(format!("{name}={ev}"));
        n.push(format!("{name}={av}"));
    };
    if a.kind && expected.kind != actual.kind {
        push(
            "type",
            expected.kind.name().into(),
            actual.kind.name().into(),
        );
        return Some((ChangeKind::TypeChanged, e.join(" "), n.join(" ")));
    }
    let mut content = false;
    if a.content
        && let (Some(x), Some(y)) = (&expected.sha256, &actual.sha256)
        && x != y
    {
        push("sha256", short(x), short(y));
        content = true;
    }
    if a.size && expected.size != actual.size {
        push("size", expected.size.to_string(), actual.size.to_string());
        content = true;
    }
    if a.target && expected.target != actual.target {
        let t = |v: &Option<Vec<u8>>| {
            v.as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        push("target", t(&expected.target), t(&actual.target));
        content = true;
    }
    if a.mode && expected.mode != actual.mode {
        push(
            "mode",
            format!("{:04o}", expected.mode),
            format!("{:04o}", actual.mode),
        );
    }
    if a.owner && (expected.uid, expected.gid) != (actual.uid, actual.gid) {
        push(
            "owner",
            format!("{}:{}", expected.uid, expected.gid),
            format!("{}:{}", actual.uid, actual.gid),
        );
    }
    if a.xattrs && expected.xattrs != actual.xattrs {
        push(
            "xattrs",
            xattr_names(&expected.xattrs),
            xattr_names(&actual.xattrs),
        );
    }
    if a.inode && expected.ino != actual.ino {
        push("inode", expected.ino.to_string(), actual.ino.to_string());
    }
    if a.inode && expected.nlink != actual.nlink {
        push(
            "links",
            expected.nlink.to_string(),
            actual.nlink.to_string(),
        );
    }
    if e.is_empty() {
        return None;
    }
    let kind = if content {
        ChangeKind::Modified
    } else {
        ChangeKind::Metadata
    };
    Some((kind, e.join(" "), n.join(" ")))
}

/// A one-line summary of an entry (for added files).
pub fn describe(x: &Entry) -> String {
    let mut s = format!(
        "type={} mode={:04o} owner={}:{}",
        x.kind.name(),
        x.mode,
        x.uid,
        x.gid
    );
    if let Some(h) = &x.sha256 {
        s.push_str(&format!(" size={} sha256={}", x.size, short(h)));
    }
    if let Some(t) = &x.target {
        s.push_str(&format!(" target={}", String::from_utf8_lossy(t)));
    }
    if !x.xattrs.is_empty() {
        s.push_str(&format!(" xattrs={}", xattr_names(&x.xattrs)));
    }
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_file_that_grows_under_every_read_is_unstable_not_a_stack_overflow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("grows");
        std::fs::write(&p, "0123456789").unwrap();
        let m = std::fs::symlink_metadata(&p).unwrap();
        // the owner appends a byte between every read the monitor makes: deterministic
        let mut grow = |_: usize| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(b"x").unwrap();
        };
        let e = Entry::from_metadata_for(&p, &m, &Attrs::ALL, &mut grow).unwrap_err();
        assert!(e.to_string().contains("unstable"), "{e}");
        // a file that holds still is read as usual
        let m = std::fs::symlink_metadata(&p).unwrap();
        let e = Entry::from_metadata_for(&p, &m, &Attrs::ALL, &mut |_| {}).unwrap();
        assert_eq!(e.size, m.size());
    }

    #[test]
    fn a_fifo_or_device_swapped_in_after_the_lstat_is_never_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "regular").unwrap();
        let m = std::fs::symlink_metadata(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo touches no other memory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // no writer and O_NONBLOCK: the open returns at once, fstat says FIFO
        assert!(!read_content(&p, &m, &mut |_| panic!("read a FIFO")).unwrap());
        std::fs::remove_file(&p).unwrap();
        if rustix::process::geteuid().is_root() {
            // /dev/zero's numbers (1:5): an endless read if it were read
            let dev = libc::makedev(1, 5);
            // SAFETY: a NUL-terminated path; mknod touches no other memory.
            let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, dev) };
            assert_eq!(made, 0);
            assert!(!read_content(&p, &m, &mut |_| panic!("read a device")).unwrap());
            let e = Entry::from_metadata_for(&p, &m, &Attrs::ALL, &mut |_| {}).unwrap();
            assert_eq!(e.kind, Kind::Special, "seen for what it is on the retry");
        }
    }
    use super::*;

    fn file() -> Entry {
        Entry {
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 3,
            sha256: Some([1; 32]),
            target: None,
            xattrs: vec![],
            ino: 7,
            nlink: 1,
        }
    }

    #[test]
    fn content_wins_over_metadata_and_type_over_everything() {
        let e = file();
        assert_eq!(compare(&e, &e, &Attrs::ALL), None);
        let mut a = file();
        a.mode = 0o4755;
        let (k, x, y) = compare(&e, &a, &Attrs::ALL).unwrap();
        assert_eq!(
            (k, x.as_str(), y.as_str()),
            (ChangeKind::Metadata, "mode=0644", "mode=4755")
        );
        a.sha256 = Some([2; 32]);
        assert_eq!(
            compare(&e, &a, &Attrs::ALL).unwrap().0,
            ChangeKind::Modified
        );
        a.kind = Kind::Symlink;
        assert_eq!(
            compare(&e, &a, &Attrs::ALL).unwrap().0,
            ChangeKind::TypeChanged
        );
    }

    #[test]
    fn only_the_sets_attributes_count() {
        let e = file();
        let mut a = file();
        a.uid = 1000;
        a.ino = 9;
        let only_content = Attrs::from_names(["content", "size"]).unwrap();
        assert_eq!(compare(&e, &a, &only_content), None);
        let (k, x, _) = compare(&e, &a, &Attrs::ALL).unwrap();
        assert_eq!(k, ChangeKind::Metadata);
        assert_eq!(x, "owner=0:0 inode=7");
        assert!(
            Attrs::from_names(["colour"])
                .unwrap_err()
                .contains("unknown attribute")
        );
    }
}
