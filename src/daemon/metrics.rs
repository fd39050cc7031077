//! `hardend.prom` for node_exporter's textfile collector: the five pillars as Prometheus
//! series (exposition format 0.0.4, HELP and TYPE on every family), written atomically
//! when a state changes (looked at every two seconds) and at least every `interval`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Pillars;
use super::lock;
use super::workers::Workers;
use crate::api::{IdentityInfo, IntegrityInfo, ServiceInfo, VerityInfo, VulnsInfo};
use crate::config::MetricsConfig;
use crate::integrity::Severity;
use crate::vulns::matching::Verdict;

/// The file node_exporter reads.
pub const FILE_NAME: &str = "hardend.prom";

/// What the series are made from: one consistent read of every pillar.
pub struct Snapshot {
    pub services: Vec<ServiceInfo>,
    pub integrity: IntegrityInfo,
    /// Violations now, by severity.
    pub violations: BTreeMap<&'static str, u64>,
    pub verity: VerityInfo,
    pub identity: IdentityInfo,
    /// When the TPM last quoted (0: not since the daemon started).
    pub last_quote: u64,
    pub vulns: VulnsInfo,
    /// Findings by (verdict, urgency).
    pub findings: BTreeMap<(Verdict, String), u64>,
    /// Per assigned unit: systemd's and the combined exposure, in tenths.
    pub exposures: super::services::exposure::Exposures,
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.sample_text(name, labels, &value.to_string());
    }
    fn sample_text(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

/// The series of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.family("hardend_info", "The running hardend (value 1).");
    o.sample("hardend_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    let services_bad = s.services.iter().any(|u| u.state.is_bad());
    o.family(
        "hardend_bad",
        "1 while a pillar is in a state an admin must act on (what makes hardenctl status exit 3), else 0.",
    );
    for (pillar, bad) in [
        ("services", services_bad),
        ("integrity", s.integrity.state.is_bad()),
        ("identity", s.identity.state.is_bad()),
        ("verity", s.verity.state.is_bad()),
        ("vulns", s.vulns.state.is_bad()),
    ] {
        o.sample("hardend_bad", &[("pillar", pillar)], u64::from(bad));
    }
    o.family(
        "hardend_service_state",
        "Each assigned unit's enforcement state (one series per unit, value 1).",
    );
    for u in &s.services {
        o.sample(
            "hardend_service_state",
            &[
                ("unit", &u.unit),
                ("profile", &u.profile),
                ("state", u.state.as_str()),
            ],
            1,
        );
    }
    o.family(
        "hardend_service_exposure",
        "Each assigned unit's exposure on systemd's 0-10 scale: score=systemd as systemd-analyze security computes it, score=hardend with hardend's kernel-proven layers credited (docs/audit.md).",
    );
    for (unit, (sd, combined)) in &s.exposures {
        for (score, t) in [("systemd", sd), ("hardend", combined)] {
            o.sample_text(
                "hardend_service_exposure",
                &[("unit", unit), ("score", score)],
                &format!("{}.{}", t / 10, t % 10),
            );
        }
    }
    for (name, help, state) in [
        (
            "hardend_integrity_state",
            "The integrity monitor's state (value 1).",
            s.integrity.state.as_str(),
        ),
        (
            "hardend_verity_state",
            "The root file system's dm-verity state (value 1).",
            s.verity.state.as_str(),
        ),
        (
            "hardend_identity_state",
            "The TPM-bound device identity's state (value 1).",
            s.identity.state.as_str(),
        ),
        (
            "hardend_vulns_state",
            "The vulnerability status against the signed feed (value 1).",
            s.vulns.state.as_str(),
        ),
    ] {
        o.family(name, help);
        o.sample(name, &[("state", state)], 1);
    }
    o.family(
        "hardend_integrity_violations",
        "Watched paths that differ from the baseline now, by the severity of their set.",
    );
    for sev in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        let n = s.violations.get(sev.as_str()).copied().unwrap_or(0);
        o.sample(
            "hardend_integrity_violations",
            &[("severity", sev.as_str())],
            n,
        );
    }
    o.family(
        "hardend_integrity_last_scan_timestamp_seconds",
        "When the last full integrity scan finished (0: none yet).",
    );
    o.sample(
        "hardend_integrity_last_scan_timestamp_seconds",
        &[],
        s.integrity.last_scan,
    );
    o.family(
        "hardend_identity_last_quote_timestamp_seconds",
        "When the TPM last produced a PCR quote through the daemon (0: not since it started).",
    );
    o.sample(
        "hardend_identity_last_quote_timestamp_seconds",
        &[],
        s.last_quote,
    );
    let verdict = |v: Verdict| match v {
        Verdict::FixAvailable => "fix-available",
        Verdict::Open => "open",
        Verdict::NoDsa => "no-dsa",
    };
    o.family(
        "hardend_vulnerabilities",
        "CVEs affecting installed packages, by verdict and the feed's urgency.",
    );
    for ((v, urgency), n) in &s.findings {
        o.sample(
            "hardend_vulnerabilities",
            &[("verdict", verdict(*v)), ("urgency", urgency)],
            *n,
        );
    }
    o.family(
        "hardend_vulnerabilities_by_verdict",
        "CVEs affecting installed packages, by verdict (every verdict, also at 0).",
    );
    for v in [Verdict::FixAvailable, Verdict::Open, Verdict::NoDsa] {
        let n: u64 = s
            .findings
            .iter()
            .filter(|((x, _), _)| *x == v)
            .map(|(_, n)| n)
            .sum();
        o.sample(
            "hardend_vulnerabilities_by_verdict",
            &[("verdict", verdict(v))],
            n,
        );
    }
    o.family(
        "hardend_vulns_evaluated_timestamp_seconds",
        "When the vulnerability findings were last computed (0: never).",
    );
    o.sample(
        "hardend_vulns_evaluated_timestamp_seconds",
        &[],
        s.vulns.evaluated,
    );
    o.0
}

struct State {
    cfg: MetricsConfig,
    /// What was written last, and when (also after a failed write: retried when the
    /// series change or the interval is over, not every tick).
    last: Option<(String, Instant)>,
    /// The file written last, removed when metrics are turned off or move elsewhere.
    written: Option<PathBuf>,
    /// The last problem logged (each distinct one once).
    problem: Option<String>,
}

/// Writes `hardend.prom`.
pub struct MetricsService {
    state: Mutex<State>,
    worker: Workers,
    exposure: Mutex<super::services::exposure::ExposureCache>,
}

/// Whether `dir` may receive hardend's file: a real directory (not a link to one) that only
/// root can change — else another user could swap it for a link and have root write
/// elsewhere. `Ok(false)`: absent (node_exporter not installed).
fn usable_dir(dir: &std::path::Path) -> Result<bool, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    if !m.is_dir() {
        return Err(format!(
            "{}: not a directory (a link is not followed)",
            dir.display()
        ));
    }
    if m.uid() != 0 || m.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{}: owned by uid {} with mode {:o}: only a directory only root can change is written to",
            dir.display(),
            m.uid(),
            m.permissions().mode() & 0o7777
        ));
    }
    Ok(true)
}

enum Wrote {
    Written,
    /// The directory does not exist.
    Skipped,
}

impl MetricsService {
    pub fn new(cfg: MetricsConfig) -> Self {
        MetricsService {
            state: Mutex::new(State {
                cfg,
                last: None,
                written: None,
                problem: None,
            }),
            worker: Workers::new(
                "metrics",
                1,
                Duration::from_secs(5),
                Duration::from_secs(10),
            ),
            exposure: Mutex::new(Default::default()),
        }
    }

    pub fn configure(&self, cfg: MetricsConfig) {
        let mut st = lock(&self.state);
        st.cfg = cfg;
        st.last = None;
        st.problem = None;
    }

    fn report(&self, problem: String) {
        let mut st = lock(&self.state);
        if st.problem.as_deref() != Some(problem.as_str()) {
            tracing::warn!("metrics: {problem}");
            st.problem = Some(problem);
        }
    }

    /// Renders the series; writes them when they changed or the interval is over.
    pub async fn tick(&self, p: &Pillars) {
        let (cfg, due, written) = {
            let st = lock(&self.state);
            let due = st
                .last
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= Duration::from_secs(st.cfg.interval));
            (st.cfg.clone(), due, st.written.clone())
        };
        let path: PathBuf = cfg.dir.join(FILE_NAME);
        // turned off, or moved: the old file must not keep serving stale values
        if let Some(old) = written.filter(|w| !cfg.enabled || *w != path) {
            let removed = self
                .worker
                .run("removing the old hardend.prom", move || {
                    std::fs::remove_file(&old).or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(format!("cannot remove {}: {e}", old.display()))
                        }
                    })
                })
                .await;
            match removed {
                Ok(Ok(())) => lock(&self.state).written = None,
                Ok(Err(e)) => self.report(e),
                Err(e) => self.report(e.to_string()),
            }
        }
        if !cfg.enabled {
            return;
        }
        let mut snapshot = p.snapshot();
        snapshot.exposures = p.services.exposures(&self.exposure).await;
        let text = render(&snapshot);
        if !due
            && lock(&self.state)
                .last
                .as_ref()
                .is_some_and(|(t, _)| *t == text)
        {
            return;
        }
        let (data, target) = (text.clone(), path.clone());
        let written = self
            .worker
            .run("hardend.prom", move || {
                let dir = target.parent().unwrap_or(std::path::Path::new("/"));
                if !usable_dir(dir)? {
                    return Ok(Wrote::Skipped);
                }
                crate::fsutil::write_atomic_with(&target, data.as_bytes(), 0o644, false)
                    .map(|()| Wrote::Written)
                    .map_err(|e| {
                        format!(
                            "cannot write {}: {e} (after installing node_exporter, restart hardend: its sandbox allows the directory only when it exists at start)",
                            target.display()
                        )
                    })
            })
            .await;
        let outcome = match written {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        };
        {
            let mut st = lock(&self.state);
            st.last = Some((text, Instant::now()));
            if let Ok(Wrote::Written) = outcome {
                st.written = Some(path);
                st.problem = None;
            }
        }
        if let Err(e) = outcome {
            self.report(e);
        }
    }
}

impl Pillars {
    /// One read of every pillar for the metrics (counts, not copies, of violations and
    /// findings).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            services: self.services.services(),
            integrity: self.integrity.info(),
            violations: self.integrity.violation_counts(),
            verity: self.verity.info(),
            identity: self.identity.info(),
            last_quote: self.identity.last_quote(),
            vulns: self.vulns.info(),
            findings: self.vulns.finding_counts(),
            exposures: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IdentityState, IntegrityState, ServiceState, VulnsState};

    #[test]
    fn every_family_has_help_and_type_and_labels_are_escaped() {
        let unit = ServiceInfo::new(
            "we\"ird\\.service",
            "p",
            "dropin",
            ServiceState::NotEnforced,
            "",
        );
        let s = Snapshot {
            services: vec![unit],
            integrity: IntegrityInfo::new(IntegrityState::Violations),
            violations: BTreeMap::from([("critical", 2)]),
            verity: VerityInfo::default(),
            identity: IdentityInfo::bare(IdentityState::Disabled, ""),
            last_quote: 0,
            vulns: VulnsInfo::new(VulnsState::Ok),
            findings: BTreeMap::from([((Verdict::Open, "low".to_string()), 3)]),
            exposures: BTreeMap::from([("we\"ird\\.service".to_string(), (96, 70))]),
        };
        let t = render(&s);
        assert!(t.contains("hardend_service_state{unit=\"we\\\"ird\\\\.service\",profile=\"p\",state=\"not-enforced\"} 1\n"), "{t}");
        assert!(t.contains("hardend_bad{pillar=\"services\"} 1\n"));
        assert!(
            t.contains(
                "hardend_service_exposure{unit=\"we\\\"ird\\\\.service\",score=\"systemd\"} 9.6\n"
            ),
            "{t}"
        );
        assert!(t.contains("score=\"hardend\"} 7.0\n"), "{t}");
        assert!(t.contains("hardend_bad{pillar=\"identity\"} 0\n"));
        assert!(t.contains("hardend_integrity_violations{severity=\"critical\"} 2\n"));
        assert!(t.contains("hardend_integrity_violations{severity=\"low\"} 0\n"));
        assert!(t.contains("hardend_vulnerabilities{verdict=\"open\",urgency=\"low\"} 3\n"));
        assert!(t.contains("hardend_vulnerabilities_by_verdict{verdict=\"fix-available\"} 0\n"));
        assert!(t.contains("hardend_vulnerabilities_by_verdict{verdict=\"open\"} 3\n"));
        // every sample's family was announced with HELP and TYPE before it
        let mut announced = std::collections::BTreeSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                announced.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(announced.contains(name), "{name} without TYPE");
            }
        }
    }
}
