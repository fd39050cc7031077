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
    /// `.list` files that could not be read (then no removal is accepted)
    unreadable: Vec<String>,
}

/// dpkg's files are read as untrusted input: at most this large.
const MAX_INFO_FILE: u64 = 64 << 20;

/// One file of dpkg's `info/` directory: a regular file (no link followed, no FIFO or
/// device opened for reading), at most [`MAX_INFO_FILE`], read as its lstat described it.
fn read_info_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let bad = |what: String| std::io::Error::other(format!("{}: {what}", path.display()));
    let m = fs::symlink_metadata(path)?;
    if !m.file_type().is_file() {
        return Err(bad("not a regular file".into()));
    }
    if m.len() > MAX_INFO_FILE {
        return Err(bad(format!(
            "{} bytes, more than dpkg ever writes",
            m.len()
        )));
    }
    let mut out = Vec::with_capacity(m.len() as usize);
    match super::entry::read_open(path, &m, &mut |b| out.extend_from_slice(b))? {
        Some(_) => Ok(out),
        None => Err(bad("changed while it was read".into())),
    }
}

/// dpkg's admin directory.
pub const DPKG_ADMIN: &str = "/var/lib/dpkg";

impl DpkgDb {
    pub fn load(admin: &Path) -> std::io::Result<DpkgDb> {
        let mut md5 = HashMap::new();
        let mut listed = HashSet::new();
        let mut unreadable = Vec::new();
        for e in fs::read_dir(admin.join("info"))?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".md5sums") {
                let Some(pkg) = info_package(e.file_name().as_bytes()) else {
                    continue;
                };
                let text = match read_info_file(&e.path()) {
                    Ok(t) => t,
                    Err(err) => {
                        // its package vouches for nothing
                        tracing::warn!("integrity: dpkg's md5sums not used: {err}");
                        continue;
                    }
                };
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
                let text = match read_info_file(&e.path()) {
                    Ok(t) => t,
                    Err(err) => {
                        tracing::warn!("integrity: dpkg's list not read: {err}");
                        unreadable.push(name.into_owned());
                        continue;
                    }
                };
                for line in text.split(|b| *b == b'\n') {
                    if !line.is_empty() {
                        listed.insert(line.to_vec());
                    }
                }
            }
        }
        Ok(DpkgDb {
            md5,
            listed,
            unreadable,
        })
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
    /// Violations were dropped (the in-memory cap) when the hold began: which info files
    /// differed is not known, so dpkg's database vouches for nothing in this run.
    pub overflowed: bool,
}

/// The package an `info/` file belongs to: `python3.11:amd64.md5sums` → `python3.11`.
/// (Lossy for names that are not UTF-8, the same way everywhere: an info file cannot
/// vouch under one name and escape its taint under another.)
fn info_package(file: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(file);
    let (pkg, _suffix) = name.rsplit_once('.')?;
    let pkg = pkg.split(':').next().unwrap_or(pkg);
    (!pkg.is_empty()).then(|| pkg.to_string())
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
            let text = match read_info_file(&e.path()) {
                Ok(t) => t,
                Err(err) => {
                    // its paths are not in the snapshot: their removal is refused
                    tracing::warn!("integrity: dpkg hold: list not read: {err}");
                    continue;
                }
            };
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
            overflowed: false,
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

/// What a new path grants that dpkg does not vouch for: setuid or setgid, file capabilities,
/// write access for everyone (a directory without the sticky bit), an owner other than root.
fn privileged(e: &Entry) -> Option<String> {
    if e.mode & 0o6000 != 0 {
        return Some(format!("a setuid or setgid bit (mode {:04o})", e.mode));
    }
    if e.xattrs.iter().any(|(n, _)| n == "security.capability") {
        return Some("file capabilities (security.capability)".into());
    }
    if e.mode & 0o002 != 0 && !(e.kind == Kind::Dir && e.mode & 0o1000 != 0) {
        return Some(format!("write access for everyone (mode {:04o})", e.mode));
    }
    if e.uid != 0 {
        return Some(format!("owner uid {}", e.uid));
    }
    None
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
        let Some(pkg) = info_package(rest.as_os_str().as_bytes()) else {
            return Err("not a file dpkg names after a package".into());
        };
        if h.overflowed || h.tainted.contains(&pkg) {
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
        return if !db.unreadable.is_empty() {
            Err(format!(
                "removed, but dpkg's lists could not all be read ({}): no removal is accepted",
                db.unreadable.join(", ")
            ))
        } else if db.lists(path) {
            Err("removed, but an installed package still ships it".into())
        } else if !h.listed(path) {
            Err("removed, but no package listed it when this dpkg run began".into())
        } else {
            Ok(None)
        };
    };
    match cur.kind {
        Kind::File => {}
        Kind::Dir if db.lists(path) && kind == ChangeKind::Added => {
            return match privileged(&cur) {
                Some(what) => Err(format!(
                    "a new directory a package lists, but {what}: dpkg does not vouch for permissions"
                )),
                None => Ok(Some(cur)),
            };
        }
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
    if hold.is_some_and(|h| h.overflowed) {
        return Err("too many violations to know whether dpkg's md5sums were changed before this run: not trusted".into());
    }
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
    if base.is_none()
        && let Some(what) = privileged(&cur)
    {
        // a new file: nothing to compare with, so what it could grant is judged (a package's
        // own bytes put back with a setuid bit or a capability are not dpkg's doing)
        return Err(format!(
            "content is {pkg}'s, but the new file has {what}: dpkg does not vouch for permissions"
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

    /// Writes a trojan to F and an md5sums file SUMS vouching for it.
    fn trojan_vouched_by(f: &Path, sums: &Path) {
        fs::write(f, "trojan\n").unwrap();
        let rel = f.strip_prefix("/").unwrap().display().to_string();
        fs::write(
            sums,
            format!("{}  {rel}\n", hex::encode(Md5::digest(b"trojan\n"))),
        )
        .unwrap();
    }

    /// dpkg's word on P changed during HOLD (BASE: P's baseline entry, if any).
    fn modified(
        db: &DpkgDb,
        hold: &HoldSnapshot,
        p: &Path,
        base: Option<&Entry>,
    ) -> Result<Option<Entry>, String> {
        vouch(db, Some(hold), p, base, &Attrs::ALL, ChangeKind::Modified)
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
        let sums = admin.join("info/demo.md5sums");
        // edited outside any dpkg run to vouch for the trojan: a violation when the hold begins
        trojan_vouched_by(&f, &sums);
        let hold = HoldSnapshot::take(&admin, |_| true, std::iter::once(sums.as_path())).unwrap();
        assert_eq!(hold.tainted().collect::<Vec<_>>(), ["demo"]);
        let db = DpkgDb::load(&admin).unwrap();
        let base = file_entry(&f);
        let e = modified(&db, &hold, &f, Some(&base)).unwrap_err();
        assert!(e.contains("package demo's md5sums differed"), "{e}");
        let e = modified(&db, &hold, &sums, None).unwrap_err();
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
        assert!(modified(&db, &clean, &f, Some(&base)).is_ok());
    }

    #[test]
    fn a_new_file_with_the_packages_bytes_but_a_setuid_bit_is_not_dpkgs() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        fs::create_dir_all(admin.join("info")).unwrap();
        let f = d.path().join("pkexec");
        fs::write(&f, "the package's own bytes\n").unwrap();
        let rel = f.strip_prefix("/").unwrap().display().to_string();
        let sum = hex::encode(Md5::digest(b"the package's own bytes\n"));
        fs::write(
            admin.join("info/policykit.md5sums"),
            format!("{sum}  {rel}\n"),
        )
        .unwrap();
        let db = DpkgDb::load(&admin).unwrap();
        let hold = HoldSnapshot::take(&admin, |_| true, std::iter::empty()).unwrap();
        let added = |mode| {
            fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
            vouch(&db, Some(&hold), &f, None, &Attrs::ALL, ChangeKind::Added)
        };
        let e = added(0o4755).unwrap_err();
        assert!(e.contains("setuid or setgid bit (mode 4755)"), "{e}");
        let e = added(0o666).unwrap_err();
        assert!(e.contains("write access for everyone"), "{e}");
        assert!(
            added(0o755).is_ok(),
            "the same file without the bit is dpkg's"
        );
    }

    #[test]
    fn hostile_files_in_dpkgs_database_neither_block_nor_vouch() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        let info = admin.join("info");
        fs::create_dir_all(&info).unwrap();
        let c = std::ffi::CString::new(info.join("fifo.list").as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo touches no other memory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/dev/zero", info.join("zero.md5sums")).unwrap();
        fs::create_dir(info.join("dir.list")).unwrap();
        // neither a FIFO without a writer nor an endless device is read: both return at once
        let db = DpkgDb::load(&admin).unwrap();
        assert_eq!(db.unreadable.len(), 2, "{:?}", db.unreadable);
        let hold = HoldSnapshot::take(&admin, |_| true, std::iter::empty()).unwrap();
        // a list could not be read: no removal is accepted at all
        let gone = d.path().join("gone");
        fs::write(&gone, "x\n").unwrap();
        let base = file_entry(&gone);
        fs::remove_file(&gone).unwrap();
        let e = vouch(
            &db,
            Some(&hold),
            &gone,
            Some(&base),
            &Attrs::ALL,
            ChangeKind::Removed,
        )
        .unwrap_err();
        assert!(e.contains("could not all be read"), "{e}");
        // an md5sums file whose name is not UTF-8 is tainted under the name it vouches with
        let odd = info.join(std::ffi::OsStr::from_bytes(b"x\xff.md5sums"));
        let f = d.path().join("tool");
        trojan_vouched_by(&f, &odd);
        let hold = HoldSnapshot::take(&admin, |_| true, std::iter::once(odd.as_path())).unwrap();
        let db = DpkgDb::load(&admin).unwrap();
        let base = file_entry(&f);
        let e = modified(&db, &hold, &f, Some(&base)).unwrap_err();
        assert!(e.contains("md5sums differed"), "{e}");
        let e = modified(&db, &hold, &odd, None).unwrap_err();
        assert!(e.contains("already differed"), "{e}");
    }
}
