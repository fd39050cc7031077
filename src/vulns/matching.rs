//! Which installed packages a feed's CVEs affect, matched the way the tracker means them:
//! by **source** package and the installed source version (a binNMU `+b1` or a binary
//! version with its own epoch is not the source's), for this release only, in dpkg's
//! version order. Four outcomes are kept apart, never mixed into one count.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::feed::Feed;
use super::version::compare;
use crate::sbom::status::Package;

/// What a CVE means for an installed source package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Fixed in a version the release has; the installed one is older: upgrade.
    FixAvailable,
    /// Affects the release, no fix yet.
    Open,
    /// Open, but the security team will not issue an advisory (minor issue).
    NoDsa,
}

/// One affecting CVE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub cve: String,
    pub source: String,
    pub installed: String,
    pub verdict: Verdict,
    /// The fixing version (fix-available only).
    pub fixed_version: Option<String>,
    pub urgency: String,
    /// The installed binary packages built from this source.
    pub packages: Vec<String>,
}

/// The counts besides the findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub fix_available: usize,
    pub open: usize,
    pub no_dsa: usize,
    /// CVEs of installed sources already fixed in the installed version.
    pub fixed: usize,
    /// CVEs the tracker marks as not affecting this release (fixed_version 0).
    pub not_affected: usize,
}

/// Matches `packages` against `feed` for `release` (a codename: `bookworm`).
/// `feed` holds one release's states (see [`super::feed::parse`]).
pub fn matches(packages: &[Package], feed: &Feed) -> (Vec<Finding>, Counts) {
    // source → (installed source version, binaries); one source version per source (the
    // highest, should two binaries disagree during an upgrade)
    let mut sources: BTreeMap<&str, (&str, Vec<String>)> = BTreeMap::new();
    for p in packages {
        let e = sources
            .entry(p.source.as_str())
            .or_insert((p.source_version.as_str(), Vec::new()));
        if compare(&p.source_version, e.0) == Ordering::Greater {
            e.0 = p.source_version.as_str();
        }
        e.1.push(p.name.clone());
    }
    let mut out = Vec::new();
    let mut counts = Counts::default();
    for (src, (ver, bins)) in &sources {
        let Some(cves) = feed.get(*src) else {
            continue;
        };
        for (id, cve) in cves {
            let Some(r) = &cve.release else {
                continue;
            };
            let fixed = r.fixed_version.as_deref().filter(|v| !v.is_empty());
            let verdict = match (r.status.as_str(), fixed) {
                (_, Some("0")) => {
                    counts.not_affected += 1;
                    continue;
                }
                // before the first affected version: the flaw is not in it
                _ if r
                    .introduced
                    .as_deref()
                    .is_some_and(|i| compare(ver, i) == Ordering::Less) =>
                {
                    counts.not_affected += 1;
                    continue;
                }
                ("resolved", Some(f)) if compare(ver, f) == Ordering::Less => Verdict::FixAvailable,
                ("resolved", _) => {
                    counts.fixed += 1;
                    continue;
                }
                // open or undetermined: affected until the tracker says otherwise
                _ if r.nodsa.is_some() => Verdict::NoDsa,
                _ => Verdict::Open,
            };
            match verdict {
                Verdict::FixAvailable => counts.fix_available += 1,
                Verdict::Open => counts.open += 1,
                Verdict::NoDsa => counts.no_dsa += 1,
            }
            out.push(Finding {
                cve: id.clone(),
                source: (*src).to_string(),
                installed: (*ver).to_string(),
                verdict,
                fixed_version: (verdict == Verdict::FixAvailable)
                    .then(|| fixed.unwrap_or_default().to_string()),
                urgency: r.urgency.clone(),
                packages: bins.clone(),
            });
        }
    }
    out.sort_by(|a, b| (a.verdict, &a.source, &a.cve).cmp(&(b.verdict, &b.source, &b.cve)));
    (out, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::status::parse;
    use std::path::Path;

    #[test]
    fn matched_by_source_version_and_release_with_the_four_outcomes_apart() {
        let status = "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2+b1\nSource: openssl (3.0.11-1~deb12u2)\nArchitecture: amd64\n\nPackage: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n";
        let pkgs = parse(Path::new("status"), status).unwrap();
        let feed = crate::vulns::feed::parse(br#"{
          "openssl": {
            "CVE-1": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "high"}}},
            "CVE-2": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.11-1~deb12u2", "urgency": "medium"}}},
            "CVE-3": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"}}},
            "CVE-4": {"releases": {"bookworm": {"status": "open", "urgency": "low", "nodsa": "Minor issue"}}},
            "CVE-5": {"releases": {"bookworm": {"status": "open", "urgency": "not yet assigned"}}},
            "CVE-6": {"releases": {"trixie": {"status": "open", "urgency": "high"}}}
          },
          "other-source": {"CVE-7": {"releases": {"bookworm": {"status": "open"}}}}
        }"#, "bookworm").unwrap();
        let (f, c) = matches(&pkgs, &feed);
        let got: Vec<(&str, Verdict)> = f.iter().map(|x| (x.cve.as_str(), x.verdict)).collect();
        assert_eq!(
            got,
            [
                ("CVE-1", Verdict::FixAvailable),
                ("CVE-5", Verdict::Open),
                ("CVE-4", Verdict::NoDsa)
            ]
        );
        // the binNMU's binary version (…+b1) is not compared: the source's is
        assert_eq!(f[0].installed, "3.0.11-1~deb12u2");
        assert_eq!(f[0].packages, ["libssl3", "openssl"]);
        assert_eq!((c.fixed, c.not_affected), (1, 1));
    }
}
