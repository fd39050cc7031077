//! Files of the system being described, which may be an image mounted at `--root`: every
//! link resolves inside that root (an absolute link in the image points into the image,
//! never at the host — the kernel's `RESOLVE_IN_ROOT`, openat2), magic links are refused,
//! and only regular files are read (opened non-blocking: a FIFO planted in the image
//! cannot hang the reader).

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Opens `rel` (relative to the root) of the system at `root` for reading. For `/` itself
/// the path is opened as it is (the same resolution; and RESOLVE_IN_ROOT's lookups fail
/// inside systemd sandboxes such as hardend.service's, where renames and mounts elsewhere
/// keep invalidating them).
pub fn open(root: &Path, rel: &Path) -> io::Result<File> {
    if root == Path::new("/") {
        return crate::fsutil::open_regular(&root.join(rel));
    }
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // RESOLVE_IN_ROOT answers EAGAIN when a rename elsewhere in the tree raced the lookup
    // (apt running): tried again a few times
    let mut tries = 0;
    let fd = loop {
        match rustix::fs::openat2(
            &dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 8 => tries += 1,
            r => break r?,
        }
    };
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Reads at most `cap` bytes of `rel` of the system at `root` as text (bytes that are not
/// UTF-8, or a character cut at the cap, replaced).
pub fn read_to_string(root: &Path, rel: &Path, cap: u64) -> io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open(root, rel)?.take(cap).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_inside_the_root_and_fifos_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/share/doc/real")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("usr/share/doc/real/copyright"), "inside\n").unwrap();
        std::fs::write(r.join("etc/hostname"), "image\n").unwrap();
        // a relative link to another package's doc dir (as Debian does) works
        std::os::unix::fs::symlink("real", r.join("usr/share/doc/alias")).unwrap();
        let t = |p: &str| read_to_string(r, Path::new(p), 1 << 20);
        assert_eq!(t("usr/share/doc/alias/copyright").unwrap(), "inside\n");
        // an absolute link means the image's /etc, not the host's
        std::os::unix::fs::symlink("/etc/hostname", r.join("usr/share/doc/abs")).unwrap();
        assert_eq!(t("usr/share/doc/abs").unwrap(), "image\n");
        // and ../ cannot climb out of the root either
        std::os::unix::fs::symlink("../../../../../../etc/passwd", r.join("usr/share/doc/up"))
            .unwrap();
        assert!(
            t("usr/share/doc/up").is_err(),
            "the image has no etc/passwd"
        );
        let fifo = r.join("usr/share/doc/real/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = t("usr/share/doc/real/fifo").unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
    }
}
