//! dpkg's own record of what it installed: `info/*.md5sums` (content checksums) and
//! `info/*.list` (every path of every installed package). A change is accepted as dpkg's
//! when the file's content matches the md5sum of the package that owns it; dpkg vouches for
//! content only, so a changed mode, owner or xattr is never accepted this way.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// What dpkg knows, loaded once per acceptance run.
pub struct DpkgDb {
    /// absolute path bytes → (package, md5)
    md5: HashMap<Vec<u8>, (String, [u8; 16])>,
    /// every path any installed package lists
    listed: HashSet<Vec<u8>>,
}

/// dpkg's admin directory.
pub const DPKG_ADMIN: &str = "/var/lib/dpkg";

impl DpkgDb {
    pub fn load(admin: &Path) -> std::io::Result<DpkgDb> {
        let mut md5 = HashMap::new();
        let mut listed = HashSet::new();
        for e in fs::read_dir(admin.join("info"))?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(pkg) = name.strip_suffix(".md5sums") {
                let pkg = pkg.split(':').next().unwrap_or(pkg).to_string();
                let text = fs::read(e.path())?;
                for line in text.split(|b| *b == b'\n') {
                    // "<32 hex>  <path relative to />"
                    if line.len() < 35 || &line[32..34] != b"  " {
                        continue;
                    }
                    let Ok(sum) = hex::decode(&line[..32]) else {
                        continue;
                    };
                    let Ok(sum) = <[u8; 16]>::try_from(sum.as_slice()) else {
                        continue;
                    };
                    let mut p = b"/".to_vec();
                    p.extend_from_slice(&line[34..]);
                    md5.insert(p, (pkg.clone(), sum));
                }
            } else if name.ends_with(".list") {
                let text = fs::read(e.path())?;
                for line in text.split(|b| *b == b'\n') {
                    if !line.is_empty() {
                        listed.insert(line.to_vec());
                    }
                }
            }
        }
        Ok(DpkgDb { md5, listed })
    }

    /// The package and md5sum dpkg recorded for `path`.
    pub fn md5sum(&self, path: &Path) -> Option<&(String, [u8; 16])> {
        self.md5.get(path.as_os_str().as_bytes()).or_else(|| {
            // dpkg records paths as packaged: /bin/x on merged-/usr systems is /usr/bin/x
            let alt = usr_merge_alias(path)?;
            self.md5.get(alt.as_os_str().as_bytes())
        })
    }

    /// Whether an installed package lists `path`.
    pub fn lists(&self, path: &Path) -> bool {
        self.listed.contains(path.as_os_str().as_bytes())
            || usr_merge_alias(path).is_some_and(|a| self.listed.contains(a.as_os_str().as_bytes()))
    }
}

/// `/usr/bin/x` ↔ `/bin/x` (and sbin, lib*) on merged-/usr systems.
fn usr_merge_alias(path: &Path) -> Option<PathBuf> {
    for d in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let usr = Path::new("/usr").join(d);
        let root = Path::new("/").join(d);
        if let Ok(rest) = path.strip_prefix(&usr) {
            return Some(root.join(rest));
        }
        if let Ok(rest) = path.strip_prefix(&root) {
            return Some(usr.join(rest));
        }
    }
    None
}

/// MD5 of a file's content.
/// MD5 of the regular file at `path`, through the same guarded read as the baseline's
/// hashes (no link followed, no FIFO or device read, at most the size lstat saw, bounded
/// retries): what dpkg's md5sums are compared with.
pub fn md5_file(path: &Path) -> std::io::Result<[u8; 16]> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..crate::integrity::entry::MAX_TRIES {
        let m = fs::symlink_metadata(path)?;
        if !m.file_type().is_file() {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file (mode {:o})",
                path.display(),
                m.mode()
            )));
        }
        let mut h = Md5::new();
        if crate::integrity::entry::read_content(path, &m, &mut |b| h.update(b))? {
            return Ok(h.finalize().into());
        }
    }
    Err(std::io::Error::other(format!(
        "unstable: {} kept changing while it was read",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sums_and_lists_are_read_with_usr_merge_aliases() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("info")).unwrap();
        fs::write(
            d.path().join("info/coreutils.md5sums"),
            "d41d8cd98f00b204e9800998ecf8427e  bin/true\nbroken line\n",
        )
        .unwrap();
        fs::write(
            d.path().join("info/libc6:amd64.list"),
            "/.\n/etc/ld.so.conf.d\n",
        )
        .unwrap();
        let db = DpkgDb::load(d.path()).unwrap();
        let (pkg, sum) = db.md5sum(Path::new("/usr/bin/true")).unwrap();
        assert_eq!(pkg, "coreutils");
        assert_eq!(hex::encode(sum), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(db.md5sum(Path::new("/bin/true")).is_some());
        assert!(db.lists(Path::new("/etc/ld.so.conf.d")));
        assert!(!db.lists(Path::new("/etc/shadow")));
    }
}
