//! CRA evidence costs, printed (not asserted), in one run:
//! 1. `hardenctl sbom` of this machine (median of 5; goal ≤ 1 s), with its peak RSS;
//! 2. `hardenctl vulns` against a tracker-size feed (7,000 sources, 70,000 CVEs, four
//!    releases; goal ≤ 3 s and ≤ 100 MiB) next to `debsecan` on the same states in its own
//!    format (median of 3 each, ratio printed), with peak RSS of each;
//! 3. the daemon watching its `[vulns]` feed: a full-size signed feed renamed into place
//!    until the daemon reports it matched (check_interval 1 s, so about one interval of
//!    settling is part of it), the daemon's peak RSS during that evaluation against its idle
//!    RSS (VmHWM reset through clear_refs), and what it keeps resident afterwards.
//!
//! Run with `scripts/bench` (release build; installs debsecan).

#![allow(clippy::unwrap_used)] // a benchmark that cannot run has nothing to report

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::FeedKey;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `cmd` under /usr/bin/time: (wall time, peak RSS in KiB).
fn timed(cmd: &mut Command) -> (Duration, u64) {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let wall = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    let kb = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (wall, kb)
}

fn with_time(prog: &str) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "maxrss %M", prog]);
    c
}

fn main() {
    let hardenctl = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/hardenctl");
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();

    let runs: Vec<(Duration, u64)> = (0..5)
        .map(|_| timed(with_time(hardenctl).args(["sbom", "-o", &p("s.json")])))
        .collect();
    let n = std::fs::read_to_string(p("s.json"))
        .unwrap()
        .matches("\"bom-ref\": \"pkg:")
        .count();
    println!(
        "sbom of this machine: {n} packages, median {:.0} ms, peak RSS {:.1} MiB (goal ≤ 1 s)",
        median(runs.iter().map(|r| r.0).collect()).as_secs_f64() * 1e3,
        runs.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0
    );

    // the same tracker states in both formats; the installed sources of this machine get
    // a share of them so that matching has work to do
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let sources: Vec<String> = status
        .split("\n\n")
        .filter_map(|para| {
            let f = |k: &str| {
                para.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            let src = f("Source:")
                .map(|s| s.split(' ').next().unwrap_or("").to_string())
                .or_else(|| f("Package:"))?;
            Some(src)
        })
        .collect();
    let mut json = String::from("{");
    let (mut vulns, mut pkgs) = (Vec::new(), Vec::new());
    for s in 0..7000usize {
        let src = sources
            .get(s)
            .cloned()
            .unwrap_or_else(|| format!("synthetic-src-{s}"));
        if s > 0 {
            json.push_str(", ");
        }
        json.push_str(&format!("{src:?}: {{"));
        for c in 0..10 {
            let id = format!("CVE-2024-{s}{c:02}");
            let fixed = format!("{}.{}-1", c % 4, s % 7);
            let rel = |st: &str| {
                format!(
                    "{{\"status\": \"{st}\", \"fixed_version\": \"{fixed}\", \"urgency\": \"medium\", \"repositories\": {{\"bookworm\": \"1.0-1\"}}}}"
                )
            };
            json.push_str(&format!(
                "{}\"{id}\": {{\"description\": \"A synthetic flaw in component {s} that lets a remote attacker do things.\", \"scope\": \"remote\", \"releases\": {{\"bullseye\": {}, \"bookworm\": {}, \"trixie\": {}, \"sid\": {}}}}}",
                if c > 0 { ", " } else { "" },
                rel("resolved"), rel("resolved"), rel("resolved"), rel("resolved"),
            ));
            pkgs.push(format!("{src},{},SM F,{fixed},", vulns.len()));
            vulns.push(format!("{id},,A synthetic flaw in component {s}"));
        }
        json.push('}');
    }
    json.push('}');
    std::fs::write(p("feed.json"), &json).unwrap();
    std::fs::create_dir(p("ds")).unwrap();
    std::fs::write(
        p("ds/raw"),
        format!(
            "VERSION 1\n{}\n\n{}\n\n\n",
            vulns.join("\n"),
            pkgs.join("\n")
        ),
    )
    .unwrap();
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, zlib; open(sys.argv[2], 'wb').write(zlib.compress(open(sys.argv[1], 'rb').read()))"])
        .args([p("ds/raw"), p("ds/bookworm")])
        .status()
        .unwrap();
    assert!(ok.success());
    let key = FeedKey::new(d.path(), "k");
    key.sign(d.path().join("feed.json").as_path());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(timed(with_time(hardenctl).args([
            "--json",
            "vulns",
            "--feed",
            &p("feed.json"),
            "--key",
            key.public_str(),
            "--release",
            "bookworm",
        ])));
        theirs.push(timed(with_time("debsecan").args([
            "--suite",
            "bookworm",
            "--format",
            "summary",
            "--source",
            &format!("file://{}/", p("ds")),
        ])));
    }
    let (o, t) = (
        median(ours.iter().map(|r| r.0).collect()),
        median(theirs.iter().map(|r| r.0).collect()),
    );
    println!(
        "vulns against a {:.0} MB feed (70,000 CVEs): hardend {:.0} ms, peak {:.1} MiB (goal ≤ 3 s, ≤ 100 MiB); debsecan on the same states {:.0} ms, peak {:.1} MiB; ratio {:.1}x",
        json.len() as f64 / 1e6,
        o.as_secs_f64() * 1e3,
        ours.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0,
        t.as_secs_f64() * 1e3,
        theirs.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0,
        t.as_secs_f64() / o.as_secs_f64()
    );
    daemon_watching(d.path(), &key);
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Part 3: DIR/feed.json (signed by `key`) delivered to a daemon that watches DIR/live.json.
fn daemon_watching(dir: &std::path::Path, key: &FeedKey) {
    let live = dir.join("live.json");
    std::fs::write(&live, "{}").unwrap();
    key.sign(&live);
    let bus = common::TestBus::start();
    let daemon = common::TestDaemon::start(
        &bus,
        "",
        &format!(
            "[vulns]\nfeed = \"{}\"\nkey = \"{}\"\nrelease = \"bookworm\"\ncheck_interval = \"1s\"\n",
            live.display(),
            key.public_str()
        ),
    );
    let sha = |doc: &serde_json::Value| doc["feed"]["sha256"].as_str().unwrap_or("").to_string();
    let mut doc = daemon.ctl_json(&["vulns"]);
    while doc["feed"]["sha256"].is_null() {
        std::thread::sleep(Duration::from_millis(50));
        doc = daemon.ctl_json(&["vulns"]);
    }
    let empty = sha(&doc);
    let pid = daemon.child.as_ref().unwrap().id();
    let idle = proc_kib(pid, "VmRSS:");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    // the fleet's agent renames the signature, then the feed, into place
    let feed = dir.join("feed.json");
    let t = Instant::now();
    std::fs::rename(dir.join("feed.json.sig"), dir.join("live.json.sig")).unwrap();
    std::fs::rename(&feed, &live).unwrap();
    while sha(&doc) == empty {
        std::thread::sleep(Duration::from_millis(50));
        doc = daemon.ctl_json(&["vulns"]);
    }
    let took = t.elapsed();
    let peak = proc_kib(pid, "VmHWM:");
    let after = proc_kib(pid, "VmRSS:");
    println!(
        "daemon watching the feed: delivered to matched in {:.1} s (check_interval 1 s), state {}, {} findings; RSS idle {:.1} MiB, peak during the evaluation {:.1} MiB, resident after {:.1} MiB",
        took.as_secs_f64(),
        doc["state"],
        doc["findings"].as_array().map_or(0, |f| f.len()),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
