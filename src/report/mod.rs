//! The CRA readiness report: each essential requirement of the Cyber Resilience Act's
//! Annex I (and the support period of Art. 13(8)) with this device's evidence, a verdict and,
//! where something is missing, the remedy. Pure: the evidence is gathered by `hardenctl
//! report` ([`Evidence`]); [`evaluate`] decides, [`html`] renders one self-contained page.

pub mod html;

use serde::Serialize;

/// How far a requirement is shown to be met by what this device can prove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Met,
    Partial,
    NotMet,
    /// Outside what the device can show (organisational, or not measured here).
    NotAssessed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Partial => "partial",
            Verdict::NotMet => "not-met",
            Verdict::NotAssessed => "not-assessed",
        }
    }
}

/// A state some pillar reported, as text (`None`: not reachable or not configured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pillar {
    pub state: String,
    pub detail: String,
}

/// What the audit found, in short.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditSummary {
    /// systemd answered (units were assessed).
    pub assessed: bool,
    pub units: usize,
    /// Units running under a hardend profile (enforced or partial).
    pub confined: usize,
    /// (unit, combined exposure) above the threshold.
    pub above_threshold: Vec<(String, f64)>,
    pub threshold: f64,
    /// Failed device checks: (id, severity, finding, remedy).
    pub failed: Vec<(String, String, String, String)>,
}

impl AuditSummary {
    fn failed_with(&self, prefixes: &[&str]) -> Vec<&(String, String, String, String)> {
        self.failed
            .iter()
            .filter(|c| prefixes.iter().any(|p| c.0.starts_with(p)))
            .collect()
    }
}

/// Everything the report rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub audit: AuditSummary,
    pub verity: Option<Pillar>,
    pub identity: Option<Pillar>,
    pub integrity: Option<Pillar>,
    /// The daemon's vulnerability state, with the count of CVEs a fix exists for.
    pub vulns: Option<(Pillar, u32)>,
    /// Installed packages in the SBOM (or why it could not be made).
    pub sbom: Result<usize, String>,
    /// RAUC configured (`/etc/rauc/system.conf`).
    pub rauc: bool,
    /// APT sources and whether every one is signed (Signed-By or the archive keyring).
    pub apt_sources: usize,
    pub apt_signed: bool,
    pub config: crate::config::ReportConfig,
    /// Today, YYYY-MM-DD.
    pub today: String,
}

/// One requirement's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// "I.1", "I.2(a)", …, "II.1", …, "Art.13(8)"
    pub id: &'static str,
    pub title: &'static str,
    pub verdict: Verdict,
    /// What the device shows, one fact per line.
    pub evidence: Vec<String>,
    /// What is missing and what to do ("" when met).
    pub remedy: String,
}

fn req(
    id: &'static str,
    title: &'static str,
    verdict: Verdict,
    evidence: Vec<String>,
    remedy: impl Into<String>,
) -> Requirement {
    Requirement {
        id,
        title,
        verdict,
        evidence,
        remedy: if verdict == Verdict::Met {
            String::new()
        } else {
            remedy.into()
        },
    }
}

fn pillar_line(name: &str, p: &Option<Pillar>) -> String {
    match p {
        Some(p) if p.detail.is_empty() => format!("{name}: {}", p.state),
        Some(p) => format!("{name}: {} ({})", p.state, p.detail),
        None => format!("{name}: not known (hardend is not running)"),
    }
}

fn is(p: &Option<Pillar>, states: &[&str]) -> bool {
    p.as_ref()
        .is_some_and(|p| states.contains(&p.state.as_str()))
}

fn checks_line(failed: &[&(String, String, String, String)], what: &str) -> String {
    if failed.is_empty() {
        format!("{what}: every check passes")
    } else {
        let ids: Vec<String> = failed
            .iter()
            .map(|c| format!("{} ({})", c.0, c.1))
            .collect();
        format!("{what}: failed {}", ids.join(", "))
    }
}

fn remedies(failed: &[&(String, String, String, String)]) -> String {
    let r: Vec<String> = failed.iter().map(|c| format!("{}: {}", c.0, c.3)).collect();
    r.join("; ")
}

/// The verdict on each requirement, in the order of Annex I.
pub fn evaluate(e: &Evidence) -> Vec<Requirement> {
    let a = &e.audit;
    let mut out = Vec::new();
    let units_line = if a.assessed {
        format!(
            "{} service(s) assessed, {} confined by hardend, {} above the exposure threshold {:.1}",
            a.units,
            a.confined,
            a.above_threshold.len(),
            a.threshold
        )
    } else {
        "services not assessed (systemd did not answer)".to_string()
    };

    // (2)(a) no known exploitable vulnerabilities
    out.push(match &e.vulns {
        Some((p, _)) if p.state == "ok" => req("I.2(a)", "Made available without known exploitable vulnerabilities", Verdict::Met, vec![format!("signed vulnerability feed evaluated: no fix pending ({})", p.detail)], ""),
        Some((p, fixes)) if p.state == "fix-available" => req("I.2(a)", "Made available without known exploitable vulnerabilities", Verdict::NotMet, vec![format!("{fixes} known vulnerabilit(ies) with a fix available")], "apt-get update && apt-get upgrade; see hardenctl vulns"),
        Some((p, _)) if p.state == "disabled" => req("I.2(a)", "Made available without known exploitable vulnerabilities", Verdict::NotAssessed, vec!["no vulnerability feed configured".into()], "configure [vulns] feed (docs/sbom.md): the device then matches a signed feed against its packages"),
        Some((p, _)) => req("I.2(a)", "Made available without known exploitable vulnerabilities", Verdict::NotMet, vec![format!("vulnerability feed {}: {}", p.state, p.detail)], "fix the feed delivery (hardenctl vulns)"),
        None => req("I.2(a)", "Made available without known exploitable vulnerabilities", Verdict::NotAssessed, vec!["hardend is not running".into()], "start hardend with a [vulns] feed"),
    });

    // (2)(b) secure by default configuration
    let conf = a.failed_with(&["ssh.", "accounts.", "files.", "kernel.", "fs.", "net.bpf"]);
    let high = conf.iter().any(|c| c.1 == "high" || c.1 == "critical");
    out.push(req(
        "I.2(b)",
        "Secure by default configuration",
        if conf.is_empty() {
            Verdict::Met
        } else if high {
            Verdict::NotMet
        } else {
            Verdict::Partial
        },
        vec![checks_line(
            &conf,
            "SSH, accounts, file modes and kernel settings",
        )],
        remedies(&conf),
    ));

    // (2)(c) security updates, with rollback
    let mut ev = vec![format!(
        "{} APT source(s){}",
        e.apt_sources,
        if e.apt_signed {
            ", all signed"
        } else {
            ", not all signed"
        }
    )];
    ev.push(if e.rauc {
        "RAUC configured (A/B updates)".into()
    } else {
        "no A/B update mechanism (RAUC not configured)".into()
    });
    out.push(req(
        "I.2(c)",
        "Vulnerabilities can be addressed through security updates",
        if e.rauc && e.apt_signed { Verdict::Met } else if e.apt_sources > 0 { Verdict::Partial } else { Verdict::NotMet },
        ev,
        "an update mechanism with automatic rollback (RAUC A/B slots on dm-verity; hardend as its health gate is planned)",
    ));

    // (2)(d) protection from unauthorised access
    let access = a.failed_with(&["ssh.", "accounts."]);
    let id_ok = is(&e.identity, &["ok"]);
    out.push(req(
        "I.2(d)",
        "Protection from unauthorised access (authentication, identity, access management)",
        match (access.is_empty(), id_ok) {
            (true, true) => Verdict::Met,
            (true, false) | (false, true) => Verdict::Partial,
            (false, false) => Verdict::NotMet,
        },
        vec![
            checks_line(&access, "SSH and accounts"),
            pillar_line("TPM-bound device identity", &e.identity),
        ],
        {
            let mut r = remedies(&access);
            if !id_ok {
                if !r.is_empty() {
                    r.push_str("; ");
                }
                r.push_str("hardenctl identity create (a key that cannot leave the TPM)");
            }
            r
        },
    ));

    // (2)(e) confidentiality
    out.push(req(
        "I.2(e)",
        "Confidentiality of stored, transmitted and processed data",
        Verdict::NotAssessed,
        vec!["encryption of data at rest and in transit is not observed by hardend".into()],
        "document how data is encrypted (disk encryption, TLS) in the technical documentation",
    ));

    // (2)(f) integrity of programs and configuration, reporting corruption
    let verity = is(&e.verity, &["verified"]);
    let integrity = is(&e.integrity, &["ok"]);
    out.push(req(
        "I.2(f)",
        "Integrity of data, programs and configuration; corruption reported",
        match (verity, integrity) {
            (true, true) => Verdict::Met,
            (false, false) => Verdict::NotMet,
            _ => Verdict::Partial,
        },
        vec![pillar_line("dm-verity root", &e.verity), pillar_line("integrity monitoring", &e.integrity)],
        match (verity, integrity) {
            (false, false) => "a read-only root on dm-verity (docs/verity.md) and an integrity baseline (hardenctl integrity init)",
            (false, true) => "a read-only root on dm-verity (docs/verity.md)",
            _ => "an intact integrity baseline (hardenctl integrity init / status)",
        },
    ));

    // (2)(g) data minimisation, (h) availability, (i) impact on other networks
    out.push(req(
        "I.2(g)",
        "Data minimisation",
        Verdict::NotAssessed,
        vec!["what data the product processes is not observed by hardend".into()],
        "document the data processed and why",
    ));
    out.push(req(
        "I.2(h)",
        "Availability of essential functions, resilience against denial of service",
        Verdict::NotAssessed,
        vec!["not measured by hardend".into()],
        "document resilience measures (restart policies, rate limits, watchdogs)",
    ));
    out.push(req(
        "I.2(i)",
        "Minimised impact on the availability of other devices and networks",
        Verdict::NotAssessed,
        vec!["not measured by hardend".into()],
        "document outbound traffic limits",
    ));

    // (2)(j) limit attack surfaces
    let surface = a.failed_with(&["net.listen-all", "firewall."]);
    let exposed = !a.above_threshold.is_empty();
    let mut ev = vec![
        units_line.clone(),
        checks_line(&surface, "listening sockets and firewall"),
    ];
    if exposed {
        let list: Vec<String> = a
            .above_threshold
            .iter()
            .map(|(u, x)| format!("{u} {x:.1}"))
            .collect();
        ev.push(format!("above the threshold: {}", list.join(", ")));
    }
    out.push(req(
        "I.2(j)",
        "Limited attack surfaces, including external interfaces",
        if !a.assessed {
            Verdict::NotAssessed
        } else if surface.is_empty() && !exposed {
            Verdict::Met
        } else if a.confined > 0 || surface.is_empty() {
            Verdict::Partial
        } else {
            Verdict::NotMet
        },
        ev,
        {
            let mut r = remedies(&surface);
            if exposed {
                if !r.is_empty() {
                    r.push_str("; ");
                }
                r.push_str(
                    "confine the exposed services (hardenctl audit lists the command for each)",
                );
            }
            r
        },
    ));

    // (2)(k) exploitation mitigation
    let kernel = a.failed_with(&["kernel.", "fs.", "net.bpf", "boot."]);
    out.push(req(
        "I.2(k)",
        "Exploitation mitigation mechanisms reduce the impact of an incident",
        if !a.assessed {
            Verdict::NotAssessed
        } else if a.confined > 0 && kernel.is_empty() && !exposed {
            Verdict::Met
        } else if a.confined > 0 || kernel.is_empty() {
            Verdict::Partial
        } else {
            Verdict::NotMet
        },
        vec![units_line, checks_line(&kernel, "kernel hardening settings")],
        {
            let mut r = remedies(&kernel);
            if a.confined == 0 || exposed {
                if !r.is_empty() {
                    r.push_str("; ");
                }
                r.push_str("confine services with Landlock and seccomp profiles (hardenctl confine UNIT PROFILE)");
            }
            r
        },
    ));

    // (2)(l) recording and monitoring of security-relevant activity
    let monitoring = is(&e.integrity, &["ok", "violations"]);
    out.push(req(
        "I.2(l)",
        "Security-relevant activity recorded and monitored",
        if monitoring {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
        vec![
            pillar_line("integrity monitoring", &e.integrity),
            "events in the journal with stable MESSAGE_IDs; metrics for node_exporter".into(),
        ],
        "hardenctl integrity init, with hardend running",
    ));

    // (2)(m) secure removal of data
    out.push(req(
        "I.2(m)",
        "Data and settings can be removed securely and permanently",
        Verdict::NotAssessed,
        vec!["not observed by hardend".into()],
        "document the factory reset (and that it clears the TPM: tpm2_clear)",
    ));

    // Part II
    out.push(match &e.sbom {
        Ok(n) if *n > 0 => req(
            "II.1",
            "Components identified: a software bill of materials",
            Verdict::Met,
            vec![format!(
                "{n} installed package(s); hardenctl sbom writes the CycloneDX 1.6 document"
            )],
            "",
        ),
        Ok(_) => req(
            "II.1",
            "Components identified: a software bill of materials",
            Verdict::NotMet,
            vec!["no installed package found".into()],
            "hardenctl sbom on the device image",
        ),
        Err(why) => req(
            "II.1",
            "Components identified: a software bill of materials",
            Verdict::NotMet,
            vec![format!("no SBOM: {why}")],
            "hardenctl sbom",
        ),
    });
    out.push(match &e.vulns {
        Some((p, 0)) if p.state == "ok" => req(
            "II.2",
            "Vulnerabilities remediated without delay",
            Verdict::Met,
            vec!["no known vulnerability with a fix pending".into()],
            "",
        ),
        Some((p, n)) if p.state == "fix-available" => req(
            "II.2",
            "Vulnerabilities remediated without delay",
            Verdict::NotMet,
            vec![format!("{n} fix(es) available, not installed")],
            "install the security updates (apt-get upgrade)",
        ),
        _ => req(
            "II.2",
            "Vulnerabilities remediated without delay",
            Verdict::NotAssessed,
            vec!["no evaluated vulnerability feed".into()],
            "configure [vulns] feed",
        ),
    });
    let contact = e.config.security_contact.clone();
    let policy = e.config.disclosure_policy.clone();
    out.push(req(
        "II.5",
        "A coordinated vulnerability disclosure policy",
        if policy.is_some() {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
        vec![
            policy.map_or("no disclosure policy configured".into(), |p| {
                format!("policy: {p}")
            }),
        ],
        "set [report] disclosure_policy (the URL of the policy) in hardend.toml",
    ));
    out.push(req(
        "II.6",
        "A contact address for reporting vulnerabilities",
        if contact.is_some() {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
        vec![
            contact.map_or("no security contact configured".into(), |c| {
                format!("contact: {c}")
            }),
        ],
        "set [report] security_contact in hardend.toml",
    ));
    out.push(req(
        "II.7",
        "Security updates distributed securely",
        if e.apt_sources > 0 && e.apt_signed {
            Verdict::Met
        } else {
            Verdict::NotMet
        },
        vec![format!(
            "{} APT source(s){}",
            e.apt_sources,
            if e.apt_signed {
                ", every one signed"
            } else {
                ", not every one signed"
            }
        )],
        "sign every update source (APT Signed-By, RAUC bundles with a keyring)",
    ));
    // Art. 13(8): support period
    out.push(match &e.config.support_until {
        Some(d) if d.as_str() >= e.today.as_str() => req(
            "Art.13(8)",
            "Support period determined and stated",
            Verdict::Met,
            vec![format!("supported until {d}")],
            "",
        ),
        Some(d) => req(
            "Art.13(8)",
            "Support period determined and stated",
            Verdict::NotMet,
            vec![format!("the support period ended on {d}")],
            "extend the support period or take the product off the market",
        ),
        None => req(
            "Art.13(8)",
            "Support period determined and stated",
            Verdict::NotMet,
            vec!["no support period configured".into()],
            "set [report] support_until = \"YYYY-MM-DD\" in hardend.toml (docs/support.md)",
        ),
    });
    out
}

/// Counts per verdict.
pub fn summary(reqs: &[Requirement]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in [
        Verdict::Met,
        Verdict::Partial,
        Verdict::NotMet,
        Verdict::NotAssessed,
    ] {
        m.insert(v.as_str(), reqs.iter().filter(|r| r.verdict == v).count());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Evidence {
        Evidence {
            audit: AuditSummary {
                assessed: true,
                units: 10,
                confined: 3,
                threshold: 8.9,
                ..AuditSummary::default()
            },
            verity: Some(Pillar {
                state: "verified".into(),
                detail: String::new(),
            }),
            identity: Some(Pillar {
                state: "ok".into(),
                detail: String::new(),
            }),
            integrity: Some(Pillar {
                state: "ok".into(),
                detail: String::new(),
            }),
            vulns: Some((
                Pillar {
                    state: "ok".into(),
                    detail: String::new(),
                },
                0,
            )),
            sbom: Ok(300),
            rauc: true,
            apt_sources: 2,
            apt_signed: true,
            config: crate::config::ReportConfig {
                security_contact: Some("psirt@example.com".into()),
                disclosure_policy: Some("https://example.com/cvd".into()),
                support_until: Some("2031-12-31".into()),
                ..Default::default()
            },
            today: "2026-12-03".into(),
        }
    }

    fn verdict(r: &[Requirement], id: &str) -> Verdict {
        r.iter().find(|r| r.id == id).unwrap().verdict
    }

    #[test]
    fn a_device_with_every_pillar_meets_what_it_can_show() {
        let r = evaluate(&good());
        for x in &r {
            assert!(
                matches!(x.verdict, Verdict::Met | Verdict::NotAssessed),
                "{x:?}"
            );
            assert_eq!(x.verdict == Verdict::Met, x.remedy.is_empty(), "{x:?}");
        }
        assert_eq!(summary(&r)["not-met"], 0);
    }

    #[test]
    fn each_gap_turns_its_requirement_and_names_the_remedy() {
        let mut e = good();
        e.verity = Some(Pillar {
            state: "not-verity".into(),
            detail: String::new(),
        });
        e.vulns = Some((
            Pillar {
                state: "fix-available".into(),
                detail: String::new(),
            },
            4,
        ));
        e.config.support_until = Some("2025-01-01".into());
        e.config.security_contact = None;
        e.audit.failed.push((
            "ssh.root-login".into(),
            "high".into(),
            "PermitRootLogin yes".into(),
            "set PermitRootLogin no".into(),
        ));
        let r = evaluate(&e);
        assert_eq!(verdict(&r, "I.2(f)"), Verdict::Partial);
        assert_eq!(verdict(&r, "I.2(a)"), Verdict::NotMet);
        assert_eq!(verdict(&r, "II.2"), Verdict::NotMet);
        assert_eq!(verdict(&r, "Art.13(8)"), Verdict::NotMet);
        assert_eq!(verdict(&r, "II.6"), Verdict::NotMet);
        assert_eq!(verdict(&r, "I.2(b)"), Verdict::NotMet);
        assert_eq!(verdict(&r, "I.2(d)"), Verdict::Partial);
        let b = r.iter().find(|r| r.id == "I.2(b)").unwrap();
        assert!(b.remedy.contains("PermitRootLogin no"), "{b:?}");
        // without the daemon nothing is claimed
        let r = evaluate(&Evidence {
            audit: AuditSummary::default(),
            verity: None,
            identity: None,
            integrity: None,
            vulns: None,
            sbom: Ok(1),
            rauc: false,
            apt_sources: 0,
            apt_signed: false,
            config: crate::config::ReportConfig::default(),
            today: "2026-12-03".into(),
        });
        assert_eq!(verdict(&r, "I.2(f)"), Verdict::NotMet);
        assert_eq!(verdict(&r, "I.2(j)"), Verdict::NotAssessed);
    }
}
