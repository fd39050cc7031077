//! dpkg's own record of what it installed: `info/*.md5sums` (content checksums) and
//! `info/*.list` (every path of every installed package). A change is accepted as dpkg's
//! when the file's content matches the md5sum of the package that owns it; dpkg vouches for
//! content only, so a changed mode, owner or xattr is never accepted this way.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::entry::{Entry, Kind, compare};
use super::{Attrs, ChangeKind};

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

/// What dpkg's database said when a hold began (`DpkgHold`, dpkg's pre-invoke hook):
/// which baseline paths an installed package listed, and which packages' own info files
/// already differed from the baseline (changed outside any dpkg run).
#[derive(Clone, Debug, Default)]
pub struct HoldSnapshot {
    pub admin: PathBuf,
    /// Baseline paths (as the baseline spells them) some package listed.
    listed: HashSet<Vec<u8>>,
    /// Packages whose `info/` files were violations when the hold began.
    tainted: HashSet<String>,
}

/// The package an `info/` file belongs to: `python3.11:amd64.md5sums` → `python3.11`.
fn info_package(file: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(file).ok()?;
    let (pkg, _suffix) = name.rsplit_once('.')?;
    Some(pkg.split(':').next().unwrap_or(pkg).to_string())
}

impl HoldSnapshot {
    /// Reads every `info/*.list` under `admin`, keeping the paths `in_baseline` knows;
    /// `violations` are the paths that differ from the baseline now.
    pub fn take<'a>(
        admin: &Path,
        in_baseline: impl Fn(&[u8]) -> bool,
        violations: impl Iterator<Item = &'a Path>,
    ) -> std::io::Result<HoldSnapshot> {
        let mut listed = HashSet::new();
        for e in fs::read_dir(admin.join("info"))?.flatten() {
            if !e.file_name().as_bytes().ends_with(b".list") {
                continue;
            }
            let text = fs::read(e.path())?;
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if in_baseline(line) {
                    listed.insert(line.to_vec());
                } else if let Some(alias) =
                    usr_merge_alias(Path::new(std::ffi::OsStr::from_bytes(line)))
                    && in_baseline(alias.as_os_str().as_bytes())
                {
                    listed.insert(alias.as_os_str().as_bytes().to_vec());
                }
            }
        }
        let info = admin.join("info");
        let tainted = violations
            .filter_map(|p| p.strip_prefix(&info).ok())
            .filter_map(|rest| info_package(rest.as_os_str().as_bytes()))
            .collect();
        Ok(HoldSnapshot {
            admin: admin.to_path_buf(),
            listed,
            tainted,
        })
    }

    fn listed(&self, path: &Path) -> bool {
        self.listed.contains(path.as_os_str().as_bytes())
    }

    /// Packages whose md5sums are not trusted in this run.
    pub fn tainted(&self) -> impl Iterator<Item = &str> {
        self.tainted.iter().map(String::as_str)
    }
}

/// Whether dpkg vouches for the change at `path` (recorded as `base`, a violation of kind
/// `kind`), and if so the entry to store: read **once** — the MD5 compared with dpkg's is
/// of the very bytes whose SHA-256 is stored, and mode and owner are the same descriptor's,
/// so a write after this read is judged against the new baseline, never taken into it.
/// `Ok(None)`: the path is gone and leaves the baseline.
///
/// * content: must match the md5sum of the package that owns it, and that package's info
///   files must not have differed from the baseline when the hold began;
/// * mode, owner, xattrs, type: dpkg does not vouch for them, never accepted;
/// * a removal: only of a path a package listed when the hold began and none lists now;
/// * dpkg's own `info/` files: changes made during the hold (dpkg's bookkeeping), unless
///   that file already differed when the hold began.
pub fn vouch(
    db: &DpkgDb,
    hold: Option<&HoldSnapshot>,
    path: &Path,
    base: Option<&Entry>,
    attrs: &Attrs,
    kind: ChangeKind,
) -> Result<Option<Entry>, String> {
    let read = Entry::read_with_md5(path, attrs).map_err(|e| e.to_string())?;
    if let Some(h) = hold
        && let Ok(rest) = path.strip_prefix(h.admin.join("info"))
    {
        let pkg = info_package(rest.as_os_str().as_bytes()).unwrap_or_default();
        if h.tainted.contains(&pkg) {
            return Err(format!(
                "dpkg's record of {pkg} already differed from the baseline before this dpkg run began"
            ));
        }
        return Ok(read.map(|(e, _)| e));
    }
    let Some((cur, md5)) = read else {
        let Some(h) = hold else {
            return Err(
                "removed, but no dpkg hold began before this run: a removal is accepted only for a path a package listed when dpkg started".into(),
            );
        };
        return if db.lists(path) {
            Err("removed, but an installed package still ships it".into())
        } else if !h.listed(path) {
            Err("removed, but no package listed it when this dpkg run began".into())
        } else {
            Ok(None)
        };
    };
    match cur.kind {
        Kind::File => {}
        Kind::Dir if db.lists(path) && kind == ChangeKind::Added => return Ok(Some(cur)),
        _ => {
            return Err(format!(
                "a {:?} (dpkg records checksums of regular files only)",
                cur.kind
            ));
        }
    }
    let Some((pkg, sum)) = db.md5sum(path) else {
        return Err("no installed package has a checksum for it".into());
    };
    if hold.is_some_and(|h| h.tainted.contains(pkg)) {
        return Err(format!(
            "package {pkg}'s md5sums differed from the baseline before this dpkg run began: not trusted"
        ));
    }
    let Some(actual) = md5 else {
        return Err("not a regular file".into());
    };
    if &actual != sum {
        return Err(format!(
            "content does not match package {pkg} (md5 {} expected {})",
            hex::encode(actual),
            hex::encode(sum)
        ));
    }
    if let Some(b) = base {
        let perms = Attrs {
            mode: true,
            owner: true,
            xattrs: true,
            kind: true,
            ..Attrs::NONE
        };
        if let Some((_, e, a)) = compare(b, &cur, &perms) {
            return Err(format!(
                "content is {pkg}'s, but {a} (was {e}): dpkg does not vouch for permissions"
            ));
        }
    }
    Ok(Some(cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

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

    fn file_entry(p: &Path) -> Entry {
        Entry::read(p, &mut |_| {}).unwrap()
    }

    #[test]
    fn a_removal_is_dpkgs_only_for_a_path_a_package_listed_when_the_hold_began() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        fs::create_dir_all(admin.join("info")).unwrap();
        let files = d.path().join("etc");
        fs::create_dir_all(&files).unwrap();
        let (pkgconf, admins) = (files.join("pkg.conf"), files.join("sudoers-admin"));
        for f in [&pkgconf, &admins] {
            fs::write(f, "x\n").unwrap();
        }
        let base = [file_entry(&pkgconf), file_entry(&admins)];
        let list = admin.join("info/demo.list");
        fs::write(&list, format!("{}\n", pkgconf.display())).unwrap();
        let in_base =
            |p: &[u8]| p == pkgconf.as_os_str().as_bytes() || p == admins.as_os_str().as_bytes();
        let hold = HoldSnapshot::take(&admin, in_base, std::iter::empty()).unwrap();
        // dpkg purges demo: its file and its list go; the attacker removes the admin's file
        fs::remove_file(&pkgconf).unwrap();
        fs::remove_file(&admins).unwrap();
        fs::remove_file(&list).unwrap();
        let db = DpkgDb::load(&admin).unwrap();
        let removed = ChangeKind::Removed;
        let v = |p: &Path, b: &Entry, h: Option<&HoldSnapshot>| {
            vouch(&db, h, p, Some(b), &Attrs::ALL, removed)
        };
        assert_eq!(v(&pkgconf, &base[0], Some(&hold)), Ok(None));
        let e = v(&admins, &base[1], Some(&hold)).unwrap_err();
        assert!(
            e.contains("no package listed it when this dpkg run began"),
            "{e}"
        );
        let e = v(&pkgconf, &base[0], None).unwrap_err();
        assert!(e.contains("no dpkg hold began"), "{e}");
        // still listed by an installed package: not dpkg's doing
        fs::write(
            admin.join("info/other.list"),
            format!("{}\n", pkgconf.display()),
        )
        .unwrap();
        let db = DpkgDb::load(&admin).unwrap();
        let e = vouch(
            &db,
            Some(&hold),
            &pkgconf,
            Some(&base[0]),
            &Attrs::ALL,
            removed,
        )
        .unwrap_err();
        assert!(e.contains("still ships it"), "{e}");
    }

    #[test]
    fn md5sums_changed_before_the_run_vouch_for_nothing_and_dpkgs_own_files_are_its_bookkeeping() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        fs::create_dir_all(admin.join("info")).unwrap();
        let f = d.path().join("tool");
        fs::write(&f, "trojan\n").unwrap();
        let sums = admin.join("info/demo.md5sums");
        let rel = f.strip_prefix("/").unwrap().display().to_string();
        // edited outside any dpkg run to vouch for the trojan: a violation when the hold begins
        fs::write(
            &sums,
            format!("{}  {rel}\n", hex::encode(Md5::digest(b"trojan\n"))),
        )
        .unwrap();
        let hold = HoldSnapshot::take(&admin, |_| true, std::iter::once(sums.as_path())).unwrap();
        assert_eq!(hold.tainted().collect::<Vec<_>>(), ["demo"]);
        let db = DpkgDb::load(&admin).unwrap();
        let base = file_entry(&f);
        let e = vouch(
            &db,
            Some(&hold),
            &f,
            Some(&base),
            &Attrs::ALL,
            ChangeKind::Modified,
        )
        .unwrap_err();
        assert!(e.contains("package demo's md5sums differed"), "{e}");
        let e = vouch(
            &db,
            Some(&hold),
            &sums,
            None,
            &Attrs::ALL,
            ChangeKind::Modified,
        )
        .unwrap_err();
        assert!(e.contains("already differed"), "{e}");
        // another package's info file written during the run: dpkg's bookkeeping
        let other = admin.join("info/python3.11:amd64.list");
        fs::write(&other, "/usr/bin/python3.11\n").unwrap();
        let got = vouch(
            &db,
            Some(&hold),
            &other,
            None,
            &Attrs::ALL,
            ChangeKind::Added,
        )
        .unwrap();
        assert_eq!(got.map(|e| e.size), Some(20));
        // without the taint the same md5sums vouch
        let clean = HoldSnapshot::take(&admin, |_| true, std::iter::empty()).unwrap();
        assert!(
            vouch(
                &db,
                Some(&clean),
                &f,
                Some(&base),
                &Attrs::ALL,
                ChangeKind::Modified
            )
            .is_ok()
        );
    }
}
