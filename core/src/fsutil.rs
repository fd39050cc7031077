//! Filesystem helpers shared by every module that writes state.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `data` to `path` atomically: a temporary file in the same directory is written,
/// fsynced and renamed over the target, then the directory is fsynced. A reader sees either
/// the old content or the new one, never a torn file. The file is created with `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, data, mode, true)
}

/// Like [`write_atomic`], but without fsync when `durable` is false: still atomic for
/// readers, but not guaranteed to survive a crash. For runtime state on tmpfs (`/run`),
/// where fsync buys nothing and costs milliseconds on a disk-backed test directory.
///
/// The temporary file has a random name created with O_EXCL (`tempfile`): a name left by a
/// crash, or planted by someone else in a shared directory, never blocks the next write.
pub fn write_atomic_with(path: &Path, data: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // exactly `mode`, whatever the umask
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(data)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    // on failure the temporary file is removed when `tmp` drops
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Opens `path` for reading when it is a regular file: non-blocking (a FIFO or device put
/// in its place never hangs the reader) and checked with fstat before any byte is read.
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Renames `from` to `to` (same directory) and fsyncs the directory, so the rename survives
/// a crash once this returns.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let dir = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its parents with `mode` for the directories this call creates.
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_atomic_replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // no temporary files left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn names_others_planted_do_not_block_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        // what the old pid-named scheme would have used, and a FIFO under a plausible name
        fs::write(
            dir.path()
                .join(format!(".state.json.tmp.{}", std::process::id())),
            "x",
        )
        .unwrap();
        let fifo =
            std::ffi::CString::new(dir.path().join(".state.json.tmp").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        write_atomic(&p, b"data", 0o640).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"data");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }
}
