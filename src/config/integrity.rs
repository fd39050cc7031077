//! `[integrity]` and its `[[integrity.watch]]` sets.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, RawDuration, absolute, absolute_value, duration, non_negative};
use crate::integrity::{Attrs, Severity, WatchSet};
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    enabled: Option<bool>,
    dir: Option<Spanned<String>>,
    scan_interval: Option<Spanned<RawDuration>>,
    scan_rate_mb: Option<Spanned<i64>>,
    max_watches: Option<Spanned<i64>>,
    max_events: Option<Spanned<i64>>,
    #[serde(default)]
    watch: Vec<Spanned<RawWatch>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    name: Spanned<String>,
    paths: Vec<Spanned<String>>,
    recursive: Option<bool>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_files: Vec<Spanned<String>>,
    attributes: Option<Vec<Spanned<String>>>,
    severity: Option<Spanned<String>>,
}

/// `[integrity]`: what to watch and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityConfig {
    pub enabled: bool,
    /// Baseline, MAC key and event log.
    pub dir: PathBuf,
    /// Seconds between full rescans.
    pub scan_interval: u64,
    /// Periodic scans read at most this many bytes per second (None: unlimited).
    pub scan_rate: Option<u64>,
    /// inotify watches to use at most (0: half of fs.inotify.max_user_watches).
    pub max_watches: usize,
    /// Events kept in the persistent log.
    pub max_events: usize,
    pub sets: Vec<WatchSet>,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            enabled: true,
            dir: "/var/lib/hardend/integrity".into(),
            scan_interval: 86_400,
            scan_rate: None,
            max_watches: 0,
            max_events: 10_000,
            sets: WatchSet::defaults(),
        }
    }
}

pub(super) fn parse(src: &Source, r: &Raw) -> Result<IntegrityConfig, ConfigError> {
    let invalid =
        |span: std::ops::Range<usize>, key: &str, message: String| src.invalid(span, key, message);
    let d = IntegrityConfig::default();
    let dir = absolute(src, &r.dir, "integrity.dir", &d.dir)?;
    let scan_interval = duration(
        src,
        &r.scan_interval,
        "integrity.scan_interval",
        d.scan_interval,
        (60, 366 * 86_400),
    )?;
    let nonneg =
        |v: &Option<Spanned<i64>>, key: &str, default: u64| non_negative(src, v, key, default);
    let rate = nonneg(&r.scan_rate_mb, "integrity.scan_rate_mb", 0)?;
    let max_watches = nonneg(&r.max_watches, "integrity.max_watches", 0)? as usize;
    let max_events = nonneg(&r.max_events, "integrity.max_events", d.max_events as u64)? as usize;
    let mut sets = Vec::new();
    for w in &r.watch {
        let span = w.span();
        let w = w.get_ref();
        let name = w.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                w.name.span(),
                "integrity.watch.name",
                format!("{name:?}: letters, digits, - _ . only"),
            ));
        }
        if sets.iter().any(|s: &WatchSet| &s.name == name) {
            return Err(invalid(
                w.name.span(),
                "integrity.watch.name",
                format!("{name:?} is used twice"),
            ));
        }
        if w.paths.is_empty() {
            return Err(invalid(
                span,
                "integrity.watch.paths",
                format!("set {name:?} has no paths"),
            ));
        }
        let paths = w
            .paths
            .iter()
            .map(|p| absolute_value(src, p, "integrity.watch.paths"))
            .collect::<Result<Vec<_>, _>>()?;
        for (list, key) in [
            (&w.exclude, "integrity.watch.exclude"),
            (&w.exclude_files, "integrity.watch.exclude_files"),
        ] {
            for e in list {
                if let Err(err) = globset::Glob::new(e.get_ref()) {
                    return Err(invalid(e.span(), key, err.to_string()));
                }
            }
        }
        let attrs = match &w.attributes {
            None => Attrs::ALL,
            Some(list) => {
                for a in list {
                    if !Attrs::NAMES.contains(&a.get_ref().as_str()) {
                        return Err(invalid(
                            a.span(),
                            "integrity.watch.attributes",
                            format!(
                                "unknown attribute {:?} (one of {})",
                                a.get_ref(),
                                Attrs::NAMES.join(", ")
                            ),
                        ));
                    }
                }
                Attrs::from_names(list.iter().map(|a| a.get_ref().as_str()))
                    .map_err(|m| invalid(span.clone(), "integrity.watch.attributes", m))?
            }
        };
        let severity = match &w.severity {
            None => Severity::High,
            Some(s) => Severity::parse(s.get_ref()).ok_or_else(|| {
                invalid(
                    s.span(),
                    "integrity.watch.severity",
                    format!("{:?}: one of low, medium, high, critical", s.get_ref()),
                )
            })?,
        };
        sets.push(WatchSet {
            name: name.clone(),
            paths,
            recursive: w.recursive.unwrap_or(true),
            exclude: w.exclude.iter().map(|e| e.get_ref().clone()).collect(),
            exclude_files: w
                .exclude_files
                .iter()
                .map(|e| e.get_ref().clone())
                .collect(),
            attrs,
            severity,
        });
    }
    Ok(IntegrityConfig {
        enabled: r.enabled.unwrap_or(true),
        dir,
        scan_interval,
        scan_rate: (rate > 0).then(|| rate * 1_000_000),
        max_watches,
        max_events,
        sets: if sets.is_empty() { d.sets } else { sets },
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn integrity_sets_and_their_errors() {
        let c = parse("[integrity]\nscan_interval = \"6h\"\n[[integrity.watch]]\nname = \"app\"\npaths = [\"/opt/app\"]\nexclude = [\"**/*.log\"]\nattributes = [\"content\", \"mode\"]\nseverity = \"critical\"\n").unwrap();
        assert_eq!(c.integrity.scan_interval, 6 * 3600);
        assert_eq!(c.integrity.sets.len(), 1);
        assert!(!c.integrity.sets[0].attrs.owner);
        assert_eq!(parse("").unwrap().integrity.sets.len(), 6, "the defaults");
        let c = parse(
            "[[integrity.watch]]\nname = \"a\"\npaths = [\"/x\"]\nexclude_files = [\"**/*.tmp\"]\n",
        )
        .unwrap();
        assert_eq!(c.integrity.sets[0].exclude_files, ["**/*.tmp"]);
        let e = parse(
            "[[integrity.watch]]\nname = \"a\"\npaths = [\"/x\"]\nexclude_files = [\"a[\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":4: integrity.watch.exclude_files: "), "{e}");
        let e = parse(
            "[[integrity.watch]]\nname = \"a\"\npaths = [\"/x\"]\n\nattributes = [\"colour\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/etc/hardend/hardend.toml:5: integrity.watch.attributes: unknown attribute \"colour\""), "{e}");
        let e = parse("[[integrity.watch]]\nname = \"a\"\npaths = [\"rel\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:3: integrity.watch.paths:"),
            "{e}"
        );
        let e = parse("[integrity]\nscan_interval = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: integrity.scan_interval:"),
            "{e}"
        );
    }
}
