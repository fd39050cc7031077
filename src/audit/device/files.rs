//! File modes in system paths: world-writable files and directories, and the setuid,
//! setgid and file-capability inventory compared with what dpkg installed (its file lists
//! and `dpkg-statoverride`). One walk, on each start path's own file system, symlinks not
//! followed, bounded in entries so that a huge tree cannot stall the audit.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Check, Severity, Status, Target};

/// Where system files live (merged-/usr links are skipped as links).
pub const SYSTEM_PATHS: &[&str] = &[
    "/usr", "/etc", "/boot", "/opt", "/srv", "/bin", "/sbin", "/lib", "/lib64", "/var/lib",
];

/// The walk stops after this many entries (the checks then say they are incomplete).
pub const MAX_ENTRIES: usize = 2_000_000;

#[derive(Debug, Default)]
pub struct Walk {
    pub world_writable: Vec<String>,
    /// (device path, what: "setuid", "setgid", "caps")
    pub privileged: Vec<(String, String)>,
    pub entries: usize,
    pub truncated: bool,
    pub unreadable: usize,
    /// Start paths that are links to somewhere else than their merged-/usr target (not
    /// walked: the check says so).
    pub linked: Vec<String>,
}

/// A path as dpkg knows it: `/bin/x` and `/usr/bin/x` are one file on merged-/usr.
pub fn canonical(path: &str) -> String {
    for (alias, real) in [
        ("/bin/", "/usr/bin/"),
        ("/sbin/", "/usr/sbin/"),
        ("/lib/", "/usr/lib/"),
        ("/lib64/", "/usr/lib64/"),
        ("/lib32/", "/usr/lib32/"),
        ("/libx32/", "/usr/libx32/"),
    ] {
        if let Some(rest) = path.strip_prefix(alias) {
            return format!("{real}{rest}");
        }
    }
    path.to_string()
}

pub fn walk(t: &Target, starts: &[&str]) -> Walk {
    let mut w = Walk::default();
    for start in starts {
        let top = t.path(start);
        let Ok(meta) = std::fs::symlink_metadata(&top) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            // merged /usr: /bin -> usr/bin is walked as /usr/bin
            let target = std::fs::read_link(&top).unwrap_or_default();
            let alias = format!("usr{start}");
            if target != Path::new(&alias) && target != Path::new(&format!("/{alias}")) {
                w.linked.push(format!("{start} -> {}", target.display()));
            }
            continue;
        }
        if !meta.is_dir() {
            continue;
        }
        let dev = meta.dev();
        let mut stack: Vec<PathBuf> = vec![top];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                w.unreadable += 1;
                continue;
            };
            for e in rd.flatten() {
                w.entries += 1;
                if w.entries > MAX_ENTRIES {
                    w.truncated = true;
                    return w;
                }
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    w.unreadable += 1;
                    continue;
                };
                let shown = device_path(t.root, &p);
                let mode = m.permissions().mode();
                let ft = m.file_type();
                if ft.is_dir() {
                    // the sticky bit excuses a world-writable directory only under /var
                    // (spool and tmp-like directories), not in /etc or /usr
                    if mode & 0o002 != 0 && (mode & 0o1000 == 0 || !shown.starts_with("/var/")) {
                        w.world_writable.push(format!("{shown}/"));
                    }
                    if m.dev() == dev {
                        stack.push(p);
                    }
                } else if ft.is_file() {
                    if mode & 0o002 != 0 {
                        w.world_writable.push(shown.clone());
                    }
                    if mode & 0o4000 != 0 {
                        w.privileged.push((shown.clone(), "setuid".into()));
                    } else if mode & 0o2000 != 0 {
                        w.privileged.push((shown.clone(), "setgid".into()));
                    } else if has_caps(&p) {
                        w.privileged.push((shown.clone(), "caps".into()));
                    }
                }
            }
        }
    }
    w.world_writable.sort();
    w.privileged.sort();
    w
}

fn device_path(root: &Path, p: &Path) -> String {
    match p.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

fn has_caps(p: &Path) -> bool {
    let mut buf = [0u8; 64];
    rustix::fs::lgetxattr(p, "security.capability", &mut buf).is_ok_and(|n| n > 0)
}

/// Every path dpkg installed or has a stat override for (canonical form).
pub fn dpkg_paths(t: &Target) -> Result<BTreeSet<String>, String> {
    let info = t.path("/var/lib/dpkg/info");
    let rd = std::fs::read_dir(&info).map_err(|e| format!("{}: {e}", info.display()))?;
    let mut out = BTreeSet::new();
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_str().is_some_and(|n| n.ends_with(".list")) {
            continue;
        }
        let device = format!("/var/lib/dpkg/info/{}", name.to_string_lossy());
        if let Ok(text) = t.read(&device, 64 << 20) {
            out.extend(text.lines().map(canonical));
        }
    }
    // an override vouches for a privileged file only when its mode says setuid/setgid
    if let Ok(text) = t.read("/var/lib/dpkg/statoverride", 16 << 20) {
        out.extend(text.lines().filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mode = u32::from_str_radix(f.get(2)?, 8).ok()?;
            let path = f.get(3)?;
            (mode & 0o6000 != 0).then(|| canonical(path))
        }));
    }
    Ok(out)
}

pub fn checks(t: &Target) -> Vec<Check> {
    let w = walk(t, SYSTEM_PATHS);
    let mut gaps = Vec::new();
    if w.truncated {
        gaps.push(format!("stopped after {MAX_ENTRIES} entries"));
    }
    if w.unreadable > 0 {
        gaps.push(format!("{} entries could not be read", w.unreadable));
    }
    if !w.linked.is_empty() {
        gaps.push(format!("not walked: {}", w.linked.join(", ")));
    }
    let incomplete_walk = !gaps.is_empty();
    let incomplete = if gaps.is_empty() {
        String::new()
    } else {
        format!(" ({}: incomplete)", gaps.join("; "))
    };
    let ww = Check::new(
        "files.world-writable",
        Severity::High,
        if !w.world_writable.is_empty() {
            Status::Fail
        } else if incomplete_walk {
            Status::Unknown
        } else {
            Status::Pass
        },
        if w.world_writable.is_empty() {
            format!("no world-writable file or directory (without the sticky bit) in {} entries of the system paths{incomplete}", w.entries)
        } else {
            format!("{} world-writable path(s) in the system paths{incomplete}", w.world_writable.len())
        },
    )
    .remedy("chmod o-w PATH (or find out which package or script set the mode: dpkg -S PATH)")
    .items(w.world_writable.clone());
    let inventory = match dpkg_paths(t) {
        Err(e) => Check::new(
            "files.setuid-unknown",
            Severity::High,
            Status::Unknown,
            format!("no dpkg database: {e}"),
        ),
        Ok(known) => {
            let unknown: Vec<String> = w
                .privileged
                .iter()
                .filter(|(p, _)| !known.contains(&canonical(p)))
                .map(|(p, what)| format!("{p} ({what})"))
                .collect();
            let status = if !unknown.is_empty() {
                Status::Fail
            } else if incomplete_walk {
                Status::Unknown
            } else {
                Status::Pass
            };
            let finding = if unknown.is_empty() {
                format!(
                    "{} setuid/setgid/capability file(s), every one installed by a package{incomplete}",
                    w.privileged.len()
                )
            } else {
                format!(
                    "{} setuid/setgid/capability file(s) no package installed (of {}){incomplete}",
                    unknown.len(),
                    w.privileged.len()
                )
            };
            let items = if unknown.is_empty() {
                w.privileged
                    .iter()
                    .map(|(p, what)| format!("{p} ({what})"))
                    .collect()
            } else {
                unknown
            };
            Check::new("files.setuid-unknown", Severity::High, status, finding)
                .remedy("remove the file or its privilege (chmod u-s,g-s PATH; setcap -r PATH) unless you put it there on purpose; then record it with dpkg-statoverride")
                .items(items)
        }
    };
    vec![ww, inventory]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_aliases_are_one_path() {
        assert_eq!(canonical("/bin/su"), "/usr/bin/su");
        assert_eq!(canonical("/usr/bin/su"), "/usr/bin/su");
        assert_eq!(canonical("/binary"), "/binary");
    }
}
