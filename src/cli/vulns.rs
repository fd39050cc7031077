//! `hardenctl vulns`: the signed feed against the installed packages — the daemon's view of
//! its own feed, or with `--feed` a feed read and matched here. Both print the same shape.

use std::path::{Path, PathBuf};

use super::client::{Client, bus_error};
use super::{CliError, Exit, Output, columns, safe};
use crate::api::{VulnsInfo, VulnsState};
use crate::sbom::status;
use crate::vulns::feed::{parse_as, verified_bytes};
use crate::vulns::matching::{Finding, Verdict, matches};
use crate::vulns::release;

pub use crate::cmdline::hardenctl::VulnsArgs as Args;

pub fn run(out: &Output, bus: &str, a: &Args) -> Result<Exit, CliError> {
    match &a.feed {
        Some(feed) => here(out, a, feed),
        None => from_daemon(out, bus, a.evaluate),
    }
}

fn here(out: &Output, a: &Args, feed: &Path) -> Result<Exit, CliError> {
    let sig = a.signature.clone().unwrap_or_else(|| {
        let mut s = feed.as_os_str().to_owned();
        s.push(".sig");
        PathBuf::from(s)
    });
    let release = match &a.release {
        Some(r) => r.clone(),
        None => release::of_root(&a.root, a.format)
            .map_err(|e| CliError::Input(format!("{e} with --release")))?,
    };
    let input = |e: crate::vulns::feed::FeedError| CliError::Input(e.to_string());
    let data = verified_bytes(feed, &sig, &a.key).map_err(input)?;
    let parsed = parse_as(&data, feed, a.format, &release).map_err(input)?;
    let packages = status::load_root(&a.root).map_err(|e| CliError::Input(e.to_string()))?;
    let (findings, counts) = matches(&packages, &parsed);
    let mut info = VulnsInfo::new(VulnsState::Starting);
    info.set_counts(&counts);
    info.feed = feed.display().to_string();
    info.feed_sha256 = hex::encode(openssl::sha::sha256(&data));
    info.release = release;
    info.format = a.format.as_str().into();
    info.evaluated = crate::integrity::now();
    Ok(print(out, &info, &findings))
}

fn from_daemon(out: &Output, bus: &str, evaluate: bool) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = c.vulns()?;
    let (info,) = if evaluate {
        c.block_on(p.evaluate())
    } else {
        c.block_on(p.status())
    }
    .map_err(|e| bus_error(bus, e))?;
    let findings: Vec<Finding> = c
        .block_on(p.list_findings())
        .map_err(|e| bus_error(bus, e))?
        .into_iter()
        .map(Finding::from)
        .collect();
    Ok(print(out, &info, &findings))
}

fn when(t: u64) -> Option<String> {
    (t > 0).then(|| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
            .to_string()
    })
}

fn print(out: &Output, i: &VulnsInfo, findings: &[Finding]) -> Exit {
    if out.json {
        out.json(&serde_json::json!({
            "state": i.state,
            "feed": {
                "path": (!i.feed.is_empty()).then_some(&i.feed),
                "sha256": (!i.feed_sha256.is_empty()).then_some(&i.feed_sha256),
                "format": (!i.format.is_empty()).then_some(&i.format),
                "evaluated": when(i.evaluated),
            },
            "detail": (!i.detail.is_empty()).then_some(&i.detail),
            "release": (!i.release.is_empty()).then_some(&i.release),
            "counts": i.counts(),
            "findings": findings,
        }));
    } else if i.state == VulnsState::Disabled {
        println!("no vulnerability feed is configured ([vulns] feed in hardend.toml)");
    } else {
        if !i.detail.is_empty() {
            println!(
                "{}: {}",
                out.paint(i.state.as_str(), Some(!i.state.is_bad())),
                safe(&i.detail)
            );
        }
        if i.evaluated > 0 {
            println!(
                "{}: {} with a fix available, {} open, {} open without advisory (no-dsa); {} fixed, {} not affecting this release",
                i.release, i.fix_available, i.open, i.no_dsa, i.fixed, i.not_affected
            );
            println!(
                "feed {} (sha256 {}), matched {}",
                safe(&i.feed),
                i.feed_sha256,
                when(i.evaluated).unwrap_or_default()
            );
        } else if i.detail.is_empty() {
            println!("{}: not evaluated yet", i.state);
        }
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
                safe(&f.cve).into_owned(),
                safe(&f.source).into_owned(),
                safe(&f.installed).into_owned(),
                out.paint("fix-available", Some(false)),
                safe(f.fixed_version.as_deref().unwrap_or_default()).into_owned(),
                safe(&f.urgency).into_owned(),
            ]);
        }
        if rows.len() > 1 {
            print!("{}", columns(&rows));
        }
    }
    if i.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    }
}
