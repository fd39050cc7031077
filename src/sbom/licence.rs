//! Declared licences from a package's copyright file, as one SPDX expression. Only
//! machine-readable (DEP-5) files are read; anything else is stated as unknown, never an
//! empty licence (an empty one makes an invalid CycloneDX document, trivy#8621).

use std::path::Path;

/// What a package declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    /// An SPDX licence expression (`GPL-2.0-or-later AND MIT`).
    Expression(String),
    /// Why no expression could be given.
    Unknown(String),
}

/// Debian's short names (copyright-format 1.0, "License short name") to SPDX identifiers.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("curl", "curl"),
    ("expat", "MIT"),
    ("fsfap", "FSFAP"),
    ("fsful", "FSFUL"),
    ("fsfullr", "FSFULLR"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl", "GPL-1.0-or-later"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("isc", "ISC"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("mit", "MIT"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("openssl", "OpenSSL"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("sleepycat", "Sleepycat"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
    ("zpl-2.1", "ZPL-2.1"),
];

/// SPDX exception identifiers Debian files name in `with … exception`.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("autoconf", "Autoconf-exception-generic"),
    ("bison", "Bison-exception-2.2"),
    ("classpath", "Classpath-exception-2.0"),
    ("gcc", "GCC-exception-3.1"),
    ("libtool", "Libtool-exception"),
    ("font", "Font-exception-2.0"),
];

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

/// One Debian licence name → an SPDX identifier (`LicenseRef-…` when SPDX has none).
fn spdx_id(name: &str) -> String {
    let key = name.trim().to_ascii_lowercase();
    SHORT_NAMES
        .iter()
        .find(|(d, _)| *d == key)
        .map(|(_, s)| (*s).to_string())
        .unwrap_or_else(|| format!("LicenseRef-{}", sanitize(name)))
}

/// A DEP-5 `License:` first line (`GPL-2+ or Artistic`, `GPL-2+ with OpenSSL exception`,
/// `LGPL-2.1+, MIT` — a comma is Debian's `and`) → an SPDX expression.
pub fn expression(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w.to_ascii_lowercase().trim_end_matches(',') {
            "or" => out.push("OR".into()),
            "and" => out.push("AND".into()),
            "with" => {
                // `with NAME exception`
                let mut name = Vec::new();
                i += 1;
                while i < words.len() && !words[i].eq_ignore_ascii_case("exception") {
                    name.push(words[i]);
                    i += 1;
                }
                let n = name.join(" ").to_ascii_lowercase();
                let id = EXCEPTIONS
                    .iter()
                    .find(|(k, _)| n.starts_with(k))
                    .map(|(_, v)| (*v).to_string())
                    .unwrap_or_else(|| format!("AdditionRef-{}-exception", sanitize(&n)));
                out.push("WITH".into());
                out.push(id);
            }
            _ => {
                let name = w.trim_end_matches(',');
                if !name.is_empty() {
                    out.push(spdx_id(name));
                }
                if w.ends_with(',') {
                    out.push("AND".into());
                }
            }
        }
        i += 1;
    }
    while out
        .last()
        .is_some_and(|t| t == "AND" || t == "OR" || t == "WITH")
    {
        out.pop();
    }
    (!out.is_empty()).then(|| out.join(" "))
}

/// The licences a DEP-5 copyright text declares (every `License:` first line), combined
/// with AND; `None` when the text is not machine-readable.
pub fn from_dep5(text: &str) -> Option<Declared> {
    let first = text.lines().next().unwrap_or_default();
    if !first.starts_with("Format:") || !first.contains("copyright-format") {
        return None;
    }
    // the conjunction of every licence named: plain AND terms are taken apart so that each
    // licence appears once; an expression with OR or WITH stays one (parenthesized) term
    let mut found: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:")
            && let Some(e) = expression(v)
        {
            let terms: Vec<String> = if e.contains(" OR ") || e.contains(" WITH ") {
                vec![e]
            } else {
                e.split(" AND ").map(str::to_string).collect()
            };
            for t in terms {
                if !found.contains(&t) {
                    found.push(t);
                }
            }
        }
    }
    Some(match found.len() {
        0 => Declared::Unknown("machine-readable copyright file without a License field".into()),
        1 => Declared::Expression(found.remove(0)),
        _ => Declared::Expression(
            found
                .iter()
                .map(|e| {
                    if e.contains(' ') {
                        format!("({e})")
                    } else {
                        e.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    })
}

/// At most this much of a copyright file is read (untrusted input).
const MAX_COPYRIGHT: u64 = 4 << 20;

/// What `/usr/share/doc/PKG/copyright` under `root` declares.
pub fn declared(root: &Path, package: &str) -> Declared {
    let rel = Path::new("usr/share/doc").join(package).join("copyright");
    let p = root.join(&rel);
    match super::rootfs::read_to_string(root, &rel, MAX_COPYRIGHT) {
        Err(e) => Declared::Unknown(format!("no copyright file ({}: {e})", p.display())),
        Ok(text) => from_dep5(&text).unwrap_or_else(|| {
            Declared::Unknown(format!("{} is not machine-readable (DEP-5)", p.display()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names_become_spdx_expressions() {
        let e = |s| expression(s).unwrap();
        assert_eq!(e("GPL-2+"), "GPL-2.0-or-later");
        assert_eq!(
            e("GPL-2+ or Artistic"),
            "GPL-2.0-or-later OR Artistic-1.0-Perl"
        );
        assert_eq!(e("LGPL-2.1+, Expat"), "LGPL-2.1-or-later AND MIT");
        assert_eq!(
            e("GPL-3+ with Autoconf exception"),
            "GPL-3.0-or-later WITH Autoconf-exception-generic"
        );
        assert_eq!(
            e("GPL-2+ with OpenSSL exception"),
            "GPL-2.0-or-later WITH AdditionRef-openssl-exception"
        );
        assert_eq!(e("public-domain"), "LicenseRef-public-domain");
        let t = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+\n\nFiles: lib/*\nLicense: GPL-3+\n\nFiles: m4/*\nLicense: FSFULLR\n\nLicense: GPL-3+\n text\n";
        assert_eq!(
            from_dep5(t),
            Some(Declared::Expression("GPL-3.0-or-later AND FSFULLR".into()))
        );
        assert_eq!(from_dep5("This is the Debian prepackaged version"), None);
    }
}
