//! dpkg's status file: one paragraph per package, `Field: value` lines, continuation lines
//! starting with a space. Only installed packages (`Status: … installed`) are kept.

use std::collections::BTreeMap;
use std::path::Path;

use super::SbomError;

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package and its version (the binary's when the status names none).
    pub source: String,
    pub source_version: String,
    pub maintainer: String,
    pub homepage: String,
    pub description: String,
    /// Depends and Pre-Depends: each a list of alternatives (package names).
    pub depends: Vec<Vec<String>>,
    /// Virtual packages this one provides.
    pub provides: Vec<String>,
}

/// One paragraph's fields.
type Fields = BTreeMap<String, String>;

/// The paragraphs of an RFC 822 control file, with the line each starts on.
fn paragraphs(path: &Path, text: &str) -> Result<Vec<(usize, Fields)>, SbomError> {
    let mut out = Vec::new();
    let mut cur = Fields::new();
    let mut start = 1;
    let mut last: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push((start, std::mem::take(&mut cur)));
            }
            last = None;
            start = n + 1;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(k) = &last else {
                return Err(SbomError::Parse {
                    path: path.to_path_buf(),
                    line: n,
                    what: "a continuation line with no field before it".into(),
                });
            };
            if let Some(v) = cur.get_mut(k) {
                v.push('\n');
                v.push_str(line.trim_start());
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(SbomError::Parse {
                path: path.to_path_buf(),
                line: n,
                what: format!("not a `Field: value` line: {line:?}"),
            });
        };
        if cur.is_empty() {
            start = n;
        }
        cur.insert(k.to_string(), v.trim().to_string());
        last = Some(k.to_string());
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    Ok(out)
}

/// `a (>= 1), b | c:any (<< 2) [amd64]` → `[[a], [b, c]]`.
fn relations(v: &str) -> Vec<Vec<String>> {
    v.split(',')
        .map(|alts| {
            alts.split('|')
                .filter_map(|a| {
                    let name = a.trim().split([' ', '(', '[', '<']).next()?;
                    let name = name.split(':').next()?.trim();
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .collect()
}

/// At most this much status file is read (a device with thousands of packages has a few
/// MiB).
const MAX_STATUS: u64 = 256 << 20;

/// The installed packages in the status file at `path`: a regular file (opened
/// non-blocking, so a FIFO in its place is an error, not a hang), at most 256 MiB, bytes
/// that are not UTF-8 (old packages' descriptions) replaced rather than failing the file.
pub fn load(path: &Path) -> Result<Vec<Package>, SbomError> {
    let io = |source| SbomError::Io {
        path: path.to_path_buf(),
        source,
    };
    read(path, crate::fsutil::open_regular(path).map_err(io)?)
}

/// The installed packages of the system at `root` (`var/lib/dpkg/status` resolved inside
/// that root: see [`super::rootfs`]).
pub fn load_root(root: &Path) -> Result<Vec<Package>, SbomError> {
    let rel = Path::new("var/lib/dpkg/status");
    let path = root.join(rel);
    let f = super::rootfs::open(root, rel).map_err(|source| SbomError::Io {
        path: path.clone(),
        source,
    })?;
    read(&path, f)
}

fn read(path: &Path, f: std::fs::File) -> Result<Vec<Package>, SbomError> {
    use std::io::Read;
    let io = |source| SbomError::Io {
        path: path.to_path_buf(),
        source,
    };
    if f.metadata().map_err(io)?.len() > MAX_STATUS {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_STATUS} bytes"
        ))));
    }
    let mut bytes = Vec::new();
    f.take(MAX_STATUS).read_to_end(&mut bytes).map_err(io)?;
    parse(path, &String::from_utf8_lossy(&bytes))
}

/// [`load`] on text already read (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::new();
    for (line, p) in paragraphs(path, text)? {
        let installed = p
            .get("Status")
            .is_some_and(|s| s.split_whitespace().last() == Some("installed"));
        if !installed {
            continue;
        }
        let field = |k: &str| p.get(k).cloned().unwrap_or_default();
        let (name, version) = (field("Package"), field("Version"));
        if name.is_empty() || version.is_empty() {
            return Err(SbomError::Parse {
                path: path.to_path_buf(),
                line,
                what: "an installed package without Package or Version".into(),
            });
        }
        // `Source: glibc` or `Source: glibc (2.36-9)`
        let src = field("Source");
        let (source, source_version) = match src.split_once('(') {
            Some((s, v)) => (
                s.trim().to_string(),
                v.trim_end_matches(')').trim().to_string(),
            ),
            None if src.is_empty() => (name.clone(), version.clone()),
            None => (src.trim().to_string(), version.clone()),
        };
        let mut depends = relations(&field("Pre-Depends"));
        depends.extend(relations(&field("Depends")));
        out.push(Package {
            arch: field("Architecture"),
            source,
            source_version,
            maintainer: field("Maintainer"),
            homepage: field("Homepage"),
            description: field("Description")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            depends,
            provides: relations(&field("Provides"))
                .into_iter()
                .flatten()
                .collect(),
            name,
            version,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_that_is_not_utf8_costs_nothing_and_a_fifo_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let status = d.path().join("status");
        std::fs::write(
            &status,
            b"Package: old\nStatus: install ok installed\nVersion: 1.0-1\nDescription: caf\xe9 latin-1\n",
        )
        .unwrap();
        let p = load(&status).unwrap();
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("old", "1.0-1")
        );
        let fifo = d.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = load(&fifo).unwrap_err().to_string();
        assert!(e.ends_with("fifo: not a regular file"), "{e}");
    }

    #[test]
    fn installed_packages_with_sources_relations_and_errors_by_line() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDepends: libgcc-s1\nDescription: GNU C Library\n more text\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: krb5-x\nStatus: install ok installed\nVersion: 1:1.20.1-2+b1\nSource: krb5 (1.20.1-2)\nPre-Depends: a (>= 1)\nDepends: b | c:any (<< 2), d [amd64]\nProvides: mail-transport-agent\n";
        let p = parse(Path::new("status"), text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].source.as_str(), p[0].source_version.as_str()),
            ("glibc", "2.36-9+deb12u4")
        );
        assert_eq!(p[0].description, "GNU C Library");
        assert_eq!(
            (p[1].source.as_str(), p[1].source_version.as_str()),
            ("krb5", "1.20.1-2")
        );
        assert_eq!(p[1].depends, vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
        assert_eq!(p[1].provides, ["mail-transport-agent"]);
        let e = parse(
            Path::new("/var/lib/dpkg/status"),
            "Package: x\nbroken line\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/var/lib/dpkg/status:2: not a `Field: value` line: \"broken line\""
        );
    }
}
