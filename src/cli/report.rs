//! `hardenctl report [--html FILE]`: the CRA readiness report — the evidence gathered here
//! (the audit, the daemon's pillars, the SBOM, the update sources, `[report]` of
//! hardend.toml), judged by `crate::report`, printed as JSON or text and, with `--html`,
//! written as one self-contained page.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::client::Client;
use super::{CliError, Exit, Output, columns, safe};
use crate::report::{self, AuditSummary, Evidence, Pillar, Requirement, Verdict};

pub struct Request<'a> {
    pub config: &'a Path,
    pub bus: &'a str,
    pub html: Option<&'a Path>,
}

#[derive(Serialize)]
struct Device {
    hostname: String,
    os: String,
    product: Option<String>,
    manufacturer: Option<String>,
    systemd: Option<String>,
}

#[derive(Serialize)]
struct Document {
    generated: String,
    device: Device,
    summary: std::collections::BTreeMap<&'static str, usize>,
    requirements: Vec<Requirement>,
    html: Option<PathBuf>,
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// APT sources: how many, and whether apt verifies each one's signature (not `trusted=yes`,
/// and a keyring to check against).
fn apt_sources(root: &Path) -> (usize, bool) {
    let mut n = 0;
    let mut insecure = false;
    let mut files = vec![root.join("etc/apt/sources.list")];
    if let Ok(d) = std::fs::read_dir(root.join("etc/apt/sources.list.d")) {
        let mut v: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v);
    }
    // apt's booleans: yes/true/on/1 (any case)
    let truthy = |v: &str| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1"
        )
    };
    const INSECURE: [&str; 4] = [
        "trusted",
        "allow-insecure",
        "allow-weak",
        "allow-downgrade-to-insecure",
    ];
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let deb822 = f.extension().is_some_and(|e| e == "sources");
        for l in text.lines().map(str::trim) {
            let lower = l.to_ascii_lowercase();
            if deb822 {
                if lower.starts_with("types:") && lower.contains("deb") {
                    n += 1;
                }
                if let Some((k, v)) = lower.split_once(':')
                    && INSECURE.contains(&k.trim())
                    && truthy(v)
                {
                    insecure = true;
                }
            } else if lower
                .split_whitespace()
                .next()
                .is_some_and(|w| w == "deb" || w == "deb-src")
            {
                n += 1;
                let opts = lower
                    .split_once('[')
                    .and_then(|(_, r)| r.split_once(']'))
                    .map(|(o, _)| o)
                    .unwrap_or("");
                for o in opts.split_whitespace() {
                    if let Some((k, v)) = o.split_once('=')
                        && INSECURE.contains(&k)
                        && truthy(v)
                    {
                        insecure = true;
                    }
                }
            }
        }
    }
    // apt configured to accept unauthenticated packages
    if let Ok(d) = std::fs::read_dir(root.join("etc/apt/apt.conf.d")) {
        for e in d.flatten() {
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                .to_ascii_lowercase();
            if text.contains("allowunauthenticated")
                && ["\"true\"", "\"1\"", "\"yes\"", "\"on\""]
                    .iter()
                    .any(|v| text.contains(v))
            {
                insecure = true;
            }
        }
    }
    let keyring = ["etc/apt/trusted.gpg.d", "usr/share/keyrings"]
        .iter()
        .any(|d| std::fs::read_dir(root.join(d)).is_ok_and(|mut r| r.next().is_some()));
    (n, n > 0 && !insecure && keyring)
}

fn today_and_now() -> (String, String) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    (now.chars().take(10).collect(), now)
}

/// The daemon's pillars (each `None` when hardend does not answer).
#[derive(Default)]
struct Pillars {
    verity: Option<Pillar>,
    identity: Option<Pillar>,
    integrity: Option<Pillar>,
    vulns: Option<(Pillar, u32)>,
}

fn pillars(bus: &str) -> Pillars {
    let Ok(c) = Client::connect(bus) else {
        return Pillars::default();
    };
    let pillar = |state: Option<String>| {
        state.map(|s| Pillar {
            state: s,
            detail: String::new(),
        })
    };
    let verity = c.verity().ok().and_then(|v| c.block_on(v.state()).ok());
    let identity = c.identity().ok().and_then(|v| c.block_on(v.state()).ok());
    let integrity = c
        .integrity()
        .ok()
        .and_then(|i| c.block_on(i.status()).ok())
        .map(|(i,)| Pillar {
            state: i.state.to_string(),
            detail: i.detail,
        });
    let vulns = c
        .vulns()
        .ok()
        .and_then(|v| c.block_on(v.status()).ok())
        .map(|(v,)| {
            (
                Pillar {
                    state: v.state.to_string(),
                    detail: v.detail,
                },
                v.fix_available,
            )
        });
    Pillars {
        verity: pillar(verity),
        identity: pillar(identity),
        integrity,
        vulns,
    }
}

pub fn run(out: &Output, req: &Request) -> Result<Exit, CliError> {
    let root = Path::new("/");
    let config = super::audit::device_config(root, req.config)?;
    let audit = super::audit::gather(&super::audit::Request {
        unit: None,
        root,
        config: req.config,
        bus: req.bus,
        threshold: None,
        fail_on: None,
    })?;
    let threshold = audit.threshold;
    let summary = AuditSummary {
        assessed: audit.systemd.reachable,
        units: audit.units.len(),
        confined: audit
            .units
            .iter()
            .filter(|u| matches!(u.confinement.state.as_str(), "enforced" | "partial"))
            .count(),
        above_threshold: audit
            .units
            .iter()
            .filter(|u| u.exposure > threshold)
            .map(|u| (u.unit.clone(), u.exposure))
            .collect(),
        threshold,
        failed: audit
            .device
            .iter()
            .filter(|c| c.status == crate::audit::device::Status::Fail)
            .map(|c| {
                (
                    c.id.to_string(),
                    c.severity.as_str().to_string(),
                    c.finding.clone(),
                    c.remedy.clone(),
                )
            })
            .collect(),
    };
    let Pillars {
        verity,
        identity,
        integrity,
        vulns,
    } = pillars(req.bus);
    let (apt_sources, apt_signed) = apt_sources(root);
    let (today, now) = today_and_now();
    let evidence = Evidence {
        audit: summary,
        verity,
        identity,
        integrity,
        vulns,
        sbom: crate::sbom::status::load_root(root)
            .map(|p| p.len())
            .map_err(|e| e.to_string()),
        rauc: root.join("etc/rauc/system.conf").is_file(),
        apt_sources,
        apt_signed,
        config: config.report.clone(),
        today,
    };
    let requirements = report::evaluate(&evidence);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let device = Device {
        hostname,
        os: os_pretty_name(),
        product: config.report.product.clone(),
        manufacturer: config.report.manufacturer.clone(),
        systemd: audit.systemd.version.clone(),
    };
    if let Some(path) = req.html {
        let mut facts: report::html::Facts = vec![
            ("Device", device.hostname.clone()),
            ("Operating system", device.os.clone()),
            ("Generated", now.clone()),
            ("hardend", super::json::VERSION.to_string()),
        ];
        if let Some(p) = &device.product {
            facts.insert(0, ("Product", p.clone()));
        }
        if let Some(m) = &device.manufacturer {
            facts.insert(1.min(facts.len()), ("Manufacturer", m.clone()));
        }
        let page = report::html::render("CRA readiness report", &facts, &requirements);
        crate::fsutil::write_atomic(path, page.as_bytes(), 0o644)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    }
    let bad = requirements.iter().any(|r| r.verdict == Verdict::NotMet);
    let doc = Document {
        generated: now,
        summary: report::summary(&requirements),
        requirements,
        device,
        html: req.html.map(Path::to_path_buf),
    };
    if out.json {
        out.json(&doc);
    } else {
        let rows: Vec<Vec<String>> = doc
            .requirements
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    out.paint(
                        r.verdict.as_str(),
                        match r.verdict {
                            Verdict::Met => Some(true),
                            Verdict::NotMet => Some(false),
                            _ => None,
                        },
                    ),
                    r.title.to_string(),
                ]
            })
            .collect();
        print!("{}", columns(&rows));
        for r in doc
            .requirements
            .iter()
            .filter(|r| !r.remedy.is_empty() && r.verdict != Verdict::NotAssessed)
        {
            println!("{} → {}", r.id, safe(&r.remedy));
        }
        let s: Vec<String> = doc
            .summary
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        println!("\n{}", s.join(", "));
        if let Some(p) = &doc.html {
            println!("written: {}", p.display());
        }
    }
    Ok(if bad { Exit::Bad } else { Exit::Ok })
}
