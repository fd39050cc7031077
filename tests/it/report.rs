//! `hardenctl report --html`: the page rendered by a real headless Chromium (Debian's
//! package): a screenshot kept as a test artifact (target/test-artifacts/report.png), no
//! console error, no request for anything outside the page, and the verdict of every
//! requirement in the rendered DOM equal to the JSON document's.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .env("HOME", profile)
        .output()
        .expect("chromium (Debian's package; scripts/install-deps installs it)")
}

/// `data-requirement="ID" data-verdict="V"` pairs of the rendered DOM.
fn verdicts_in(dom: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in dom.split("data-requirement=\"").skip(1) {
        let (id, rest) = part.split_once('"').unwrap();
        let v = rest
            .split_once("data-verdict=\"")
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(v, _)| v)
            .unwrap();
        out.insert(id.to_string(), v.to_string());
    }
    out
}

#[test]
fn the_html_report_renders_in_chromium_with_the_verdicts_of_the_json() {
    let bus = TestBus::start();
    let d = TestDaemon::start(
        &bus,
        "",
        "[report]\nproduct = \"Gateway <X1>\"\nsecurity_contact = \"psirt@example.com\"\nsupport_until = \"2031-12-31\"\n",
    );
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("report.html");
    let config = d.path("hardend.toml");
    let out = d.ctl(&[
        "--json",
        "report",
        "--html",
        page.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let json: BTreeMap<String, String> = doc["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(json.len() >= 15, "{doc:#}");
    // what the configuration says is evidence: the contact and the support period are met
    assert_eq!(json["II.6"], "met");
    assert_eq!(json["Art.13(8)"], "met");
    assert_eq!(json["II.5"], "not-met", "no disclosure policy configured");
    assert_eq!(doc["device"]["product"], "Gateway <X1>");

    let html = fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "self-contained"
    );
    assert!(html.contains("Gateway &lt;X1&gt;"), "escaped");

    let profile = work.path().join("chromium");
    fs::create_dir_all(&profile).unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url], &profile);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let rendered = verdicts_in(&String::from_utf8_lossy(&dom.stdout));
    assert_eq!(rendered, json, "the page's verdicts are the JSON's");
    let log = String::from_utf8_lossy(&dom.stderr);
    for bad in [":CONSOLE", "Refused to", "net::ERR_", "Uncaught"] {
        assert!(
            !log.lines().any(|l| l.contains(bad)),
            "chromium reported {bad}: {log}"
        );
    }

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = fs::remove_file(&shot);
    let out = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600",
            "--hide-scrollbars",
            &url,
        ],
        &profile,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a rendered page, not a blank one: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());
}
