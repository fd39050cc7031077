//! `hardenctl vulns`: the signed feed against the installed packages.

use std::path::PathBuf;

use super::{CliError, Exit, Output, columns};
use crate::sbom::status;
use crate::vulns::feed::{Format, load_verified};
use crate::vulns::matching::{Verdict, matches};

pub use crate::cmdline::hardenctl::VulnsArgs as Args;

fn os_release(root: &std::path::Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join("etc/os-release")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

pub fn run(out: &Output, a: &Args) -> Result<Exit, CliError> {
    let sig = a.signature.clone().unwrap_or_else(|| {
        let mut s = a.feed.as_os_str().to_owned();
        s.push(".sig");
        PathBuf::from(s)
    });
    let release = match &a.release {
        Some(r) => r.clone(),
        None => {
            let key = match a.format {
                Format::Tracker => "VERSION_CODENAME=",
                Format::Osv => "VERSION_ID=",
            };
            os_release(&a.root, key).ok_or_else(|| {
                CliError::Input(format!(
                    "{}: no {}; name the release with --release",
                    a.root.join("etc/os-release").display(),
                    key.trim_end_matches('=')
                ))
            })?
        }
    };
    let feed = load_verified(&a.feed, &sig, &a.key, a.format, &release)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let packages = status::load(&a.root.join("var/lib/dpkg/status"))
        .map_err(|e| CliError::Input(e.to_string()))?;
    let (findings, counts) = matches(&packages, &feed);
    if out.json {
        out.json(&serde_json::json!({
            "release": release,
            "counts": counts,
            "findings": findings,
        }));
    } else {
        println!(
            "{release}: {} with a fix available, {} open, {} open without advisory (no-dsa); {} fixed, {} not affecting this release",
            counts.fix_available, counts.open, counts.no_dsa, counts.fixed, counts.not_affected
        );
        let mut rows = vec![vec![
            "CVE".to_string(),
            "SOURCE".into(),
            "INSTALLED".into(),
            "STATE".into(),
            "FIXED IN".into(),
            "URGENCY".into(),
        ]];
        for f in findings
            .iter()
            .filter(|f| f.verdict == Verdict::FixAvailable)
        {
            rows.push(vec![
                f.cve.clone(),
                f.source.clone(),
                f.installed.clone(),
                out.paint("fix-available", Some(false)),
                f.fixed_version.clone().unwrap_or_default(),
                f.urgency.clone(),
            ]);
        }
        if rows.len() > 1 {
            print!("{}", columns(&rows));
        }
    }
    Ok(if counts.fix_available > 0 {
        Exit::Bad
    } else {
        Exit::Ok
    })
}
