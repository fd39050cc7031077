//! Debian version order against the real peers: libapt (python3-apt's
//! `apt_pkg.version_compare`) on 100,000 generated pairs, and `dpkg --compare-versions`
//! itself on 2,000 of them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::cmp::Ordering;
use std::io::Write;
use std::process::Command;

use crate::common::FeedKey;
use hardend::vulns::version::compare;

/// xorshift64*: deterministic, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// A version shaped like Debian's: epochs, `~`, `+debNuM`, `+bN`, letters against digits,
/// leading zeros, dfsg suffixes.
fn version(r: &mut Rng) -> String {
    let mut v = String::new();
    if r.next() % 5 == 0 {
        v.push_str(r.pick(&["1:", "2:", "0:", "10:"]));
    }
    let parts = 1 + r.next() % 4;
    for i in 0..parts {
        if i > 0 {
            v.push_str(r.pick(&[".", ".", ".", "+", "~", "a"]));
        }
        v.push_str(r.pick(&[
            "0", "1", "2", "9", "10", "010", "12", "36", "2025b", "1a", "rc1", "dfsg", "b",
        ]));
    }
    if r.next() % 4 != 0 {
        v.push('-');
        v.push_str(r.pick(&["1", "2", "0", "9", "1.1", "10"]));
        v.push_str(r.pick(&[
            "",
            "",
            "+b1",
            "+b2",
            "~deb12u1",
            "+deb12u1",
            "+deb12u10",
            "~bpo12+1",
            "ubuntu1",
            "~",
        ]));
    }
    v
}

/// A pair: half of them one small edit apart (the interesting neighbourhood).
fn pairs(n: usize) -> Vec<(String, String)> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let a = version(&mut r);
            let b = if i % 2 == 0 {
                version(&mut r)
            } else {
                let edit = r.pick(&["~", "+b1", "a", "0", ".0", "-1", "~rc1", "+"]);
                match r.next() % 3 {
                    0 => format!("{a}{edit}"),
                    1 => a.replacen('.', edit, 1),
                    _ => a.replacen('-', &format!("{edit}-"), 1),
                }
            };
            (a, b)
        })
        .collect()
}

fn sign(o: Ordering) -> i32 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

/// What PROGRAM (run with the file of pairs as its last argument) says of each pair, one
/// of -1, 0, 1 per line, checked to answer for every pair.
fn their_order(ps: &[(String, String)], program: &mut Command) -> Vec<i32> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for (a, b) in ps {
        writeln!(f, "{a} {b}").unwrap();
    }
    f.flush().unwrap();
    let out = program
        .arg(f.path())
        .output()
        .expect("the reference program");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<i32> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), ps.len());
    theirs
}

#[test]
fn the_version_order_is_libapts_on_100000_generated_pairs() {
    let ps = pairs(100_000);
    // Debian's python (python3-apt lives there, not in another interpreter on PATH)
    let theirs = their_order(
        &ps,
        Command::new("/usr/bin/python3").arg("-c").arg(
            "import sys, apt_pkg\napt_pkg.init_system()\nfor l in open(sys.argv[1]):\n    a, b = l.split()\n    c = apt_pkg.version_compare(a, b)\n    print((c > 0) - (c < 0))\n",
        ),
    );
    let differ: Vec<_> = ps
        .iter()
        .zip(&theirs)
        .filter(|((a, b), t)| sign(compare(a, b)) != **t)
        .take(10)
        .collect();
    assert!(differ.is_empty(), "differ from libapt: {differ:?}");
    let less = theirs.iter().filter(|t| **t < 0).count();
    let eq = theirs.iter().filter(|t| **t == 0).count();
    assert!(
        less > 10_000 && eq > 100,
        "a useful mix: {less} less, {eq} equal"
    );
}

#[test]
fn the_version_order_is_dpkgs_on_2000_pairs() {
    let ps: Vec<_> = pairs(100_000).into_iter().step_by(50).collect();
    assert_eq!(ps.len(), 2000);
    let theirs = their_order(
        &ps,
        Command::new("sh").arg("-c").arg("while read a b; do if dpkg --compare-versions \"$a\" lt \"$b\"; then echo -1; elif dpkg --compare-versions \"$a\" eq \"$b\"; then echo 0; else echo 1; fi; done < \"$1\"").arg("sh"),
    );
    for ((a, b), t) in ps.iter().zip(&theirs) {
        assert_eq!(sign(compare(a, b)), *t, "{a} vs {b}: dpkg says {t}");
    }
}

/// A feed the size of the tracker's (about 7,000 source packages, 70,000 CVEs, four releases
/// each, descriptions included), with known entries for sources of the fixed image.
fn synthetic_feed() -> String {
    let mut r = Rng(42);
    let mut out = String::from("{");
    let rel = |status: &str, fixed: Option<&str>, urgency: &str, nodsa: bool| {
        let mut s = format!("{{\"status\": \"{status}\", \"urgency\": \"{urgency}\"");
        if let Some(f) = fixed {
            s.push_str(&format!(", \"fixed_version\": \"{f}\""));
        }
        if nodsa {
            s.push_str(", \"nodsa\": \"Minor issue\", \"nodsa_reason\": \"\"");
        }
        s.push_str(", \"repositories\": {\"bookworm\": \"1.0-1\"}}");
        s
    };
    for s in 0..7000 {
        out.push_str(&format!("\"synthetic-src-{s}\": {{"));
        for c in 0..10 {
            let v = version(&mut r);
            out.push_str(&format!(
                "\"CVE-2024-{s}{c:02}\": {{\"description\": \"A synthetic flaw in the parser of component {s} that lets a remote attacker do things.\", \"scope\": \"remote\", \"releases\": {{\"bullseye\": {}, \"bookworm\": {}, \"trixie\": {}, \"sid\": {}}}}}{}",
                rel("resolved", Some(&v), "medium", false),
                rel("resolved", Some(&v), "medium", false),
                rel("open", None, "low", false),
                rel("open", None, "low", false),
                if c < 9 { ", " } else { "" }
            ));
        }
        out.push_str("}, ");
    }
    // the fixed image has libssl3 3.0.19-1~deb12u2 (source openssl), tar 1.34+dfsg-1.2+deb12u1
    out.push_str(&format!(
        "\"openssl\": {{\"CVE-A\": {{\"releases\": {{\"bookworm\": {}}}}}, \"CVE-B\": {{\"releases\": {{\"bookworm\": {}}}}}, \"CVE-C\": {{\"releases\": {{\"bookworm\": {}}}}}, \"CVE-D\": {{\"releases\": {{\"trixie\": {}}}}}}}, ",
        rel("resolved", Some("3.0.19-1~deb12u3"), "high", false),
        rel("resolved", Some("3.0.19-1~deb12u1"), "high", false),
        rel("open", None, "low", true),
        rel("open", None, "high", false),
    ));
    out.push_str(&format!(
        "\"tar\": {{\"CVE-E\": {{\"releases\": {{\"bookworm\": {}}}}}, \"CVE-F\": {{\"releases\": {{\"bookworm\": {}}}}}}}}}",
        rel("resolved", Some("0"), "unimportant", false),
        rel("open", None, "not yet assigned", false),
    ));
    out
}

#[test]
fn a_signed_feed_is_matched_and_a_changed_or_foreign_one_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    let feed = synthetic_feed();
    assert!(feed.len() > 40_000_000, "full size: {} bytes", feed.len());
    std::fs::write(p("feed.json"), &feed).unwrap();
    let key = FeedKey::new(d.path(), "key");
    let other = FeedKey::new(d.path(), "other");
    key.sign(d.path().join("feed.json").as_path());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root");
    let run = |key: &str| {
        Command::new(crate::common::hardenctl())
            .args([
                "--json",
                "vulns",
                "--feed",
                &p("feed.json"),
                "--key",
                &p(key),
                "--root",
                root,
            ])
            .output()
            .unwrap()
    };
    let o = run(key.public_str());
    assert_eq!(o.status.code(), Some(3), "a fix is available: {o:?}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["release"], "bookworm");
    let c = &doc["counts"];
    assert_eq!(
        (
            &c["fix_available"],
            &c["open"],
            &c["no_dsa"],
            &c["fixed"],
            &c["not_affected"]
        ),
        (&1.into(), &1.into(), &1.into(), &1.into(), &1.into()),
        "{doc}"
    );
    let f = &doc["findings"][0];
    assert_eq!(
        (f["cve"].as_str(), f["source"].as_str()),
        (Some("CVE-A"), Some("openssl"))
    );
    assert_eq!(f["fixed_version"], "3.0.19-1~deb12u3");
    assert_eq!(f["packages"][0], "libssl3");
    // signed by another key: refused before anything is parsed
    let o = run(other.public_str());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("does not verify"),
        "{o:?}"
    );
    // one byte changed
    let mut bytes = feed.into_bytes();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(p("feed.json"), &bytes).unwrap();
    let o = run(key.public_str());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("the feed was changed or signed by another key"),
        "{o:?}"
    );
}

/// The fixed image's installed sources with their source versions (from its status file).
fn image_sources() -> Vec<(String, String, Vec<String>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root");
    let pkgs = hardend::sbom::status::load(&std::path::Path::new(root).join("var/lib/dpkg/status"))
        .unwrap();
    let mut by: std::collections::BTreeMap<String, (String, Vec<String>)> = Default::default();
    for p in pkgs {
        let e = by
            .entry(p.source.clone())
            .or_insert((p.source_version.clone(), Vec::new()));
        e.1.push(p.name);
    }
    by.into_iter().map(|(s, (v, b))| (s, v, b)).collect()
}

#[test]
fn the_affected_set_is_debsecans_on_the_same_data() {
    let mut r = Rng(7);
    // one tracker state per CVE, derived from the installed source version so that every
    // order case occurs: newer fix (with ~, +debNuM, an epoch), the installed version
    // itself, an older one, open, no-dsa, not affected
    let mut feed = serde_json::Map::new();
    let mut ds_vulns = Vec::new();
    let mut ds_pkgs = Vec::new();
    let mut ds_bins = Vec::new();
    for (src, ver, bins) in image_sources() {
        let mut cves = serde_json::Map::new();
        for i in 0..12 {
            let name = format!(
                "CVE-2025-{}{i:02}",
                src.len() * 100 + (r.next() % 90) as usize
            );
            let fixed = match r.next() % 9 {
                0 => Some(format!("{ver}+deb12u99")),
                1 => Some(format!("{ver}~1")),
                2 => Some(ver.clone()),
                3 => Some(format!("1:{ver}")),
                4 => Some(version(&mut r)),
                5 => Some(ver.replacen('.', ".9", 1)),
                6 => Some("0".to_string()),
                _ => None,
            };
            let nodsa = fixed.is_none() && r.next() % 2 == 0;
            let mut rel = serde_json::json!({
                "status": if fixed.is_some() { "resolved" } else { "open" },
                "urgency": "medium",
            });
            if let Some(f) = &fixed {
                rel["fixed_version"] = f.clone().into();
            }
            if nodsa {
                rel["nodsa"] = "Minor issue".into();
            }
            cves.insert(
                name.clone(),
                serde_json::json!({ "releases": { "bookworm": rel } }),
            );
            // the same state in debsecan's format (what the tracker serves it)
            match fixed.as_deref() {
                Some("0") => continue,
                Some(f) => {
                    ds_pkgs.push(format!("{src},{},SM F,{f},", ds_vulns.len()));
                }
                None => ds_pkgs.push(format!("{src},{},SM  ,,", ds_vulns.len())),
            }
            ds_vulns.push(format!("{name},,synthetic"));
        }
        feed.insert(src.clone(), cves.into());
        ds_bins.push(format!("{src},{}", bins.join(" ")));
    }
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    std::fs::write(p("feed.json"), serde_json::to_vec(&feed).unwrap()).unwrap();
    let text = format!(
        "VERSION 1\n{}\n\n{}\n\n{}\n\n",
        ds_vulns.join("\n"),
        ds_pkgs.join("\n"),
        ds_bins.join("\n")
    );
    std::fs::create_dir(p("debsecan")).unwrap();
    std::fs::write(p("debsecan/bookworm.txt"), &text).unwrap();
    // debsecan reads zlib data (as the tracker serves it)
    let z = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, zlib; open(sys.argv[2], 'wb').write(zlib.compress(open(sys.argv[1], 'rb').read()))"])
        .arg(p("debsecan/bookworm.txt"))
        .arg(p("debsecan/bookworm"))
        .status()
        .unwrap();
    assert!(z.success());
    let key = FeedKey::new(d.path(), "k");
    key.sign(d.path().join("feed.json").as_path());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root");
    let ours = Command::new(crate::common::hardenctl())
        .args([
            "--json",
            "vulns",
            "--feed",
            &p("feed.json"),
            "--key",
            key.public_str(),
            "--root",
            root,
        ])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let mut mine = std::collections::BTreeSet::new();
    for f in doc["findings"].as_array().unwrap() {
        for b in f["packages"].as_array().unwrap() {
            mine.insert((
                f["cve"].as_str().unwrap().to_string(),
                b.as_str().unwrap().to_string(),
                f["verdict"] == "fix-available",
            ));
        }
    }
    let out = Command::new("debsecan")
        .args(["--suite", "bookworm", "--format", "summary", "--status"])
        .arg(format!("{root}/var/lib/dpkg/status"))
        .arg("--source")
        .arg(format!("file://{}/", p("debsecan")))
        .output()
        .expect("debsecan (apt-get install debsecan)");
    assert!(out.status.success(), "{out:?}");
    // "CVE-… PACKAGE (fixed, medium urgency)"
    let theirs: std::collections::BTreeSet<(String, String, bool)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let cve = w.next().unwrap().to_string();
            let pkg = w.next().unwrap().to_string();
            (cve, pkg, l.contains("(fixed"))
        })
        .collect();
    assert!(theirs.len() > 30, "a useful set: {theirs:?}");
    assert!(theirs.iter().any(|t| t.2) && theirs.iter().any(|t| !t.2));
    assert_eq!(
        mine.difference(&theirs).collect::<Vec<_>>(),
        Vec::<&(String, String, bool)>::new(),
        "ours but not debsecan's"
    );
    assert_eq!(
        theirs.difference(&mine).collect::<Vec<_>>(),
        Vec::<&(String, String, bool)>::new(),
        "debsecan's but not ours"
    );
}

#[test]
fn osv_records_give_the_same_findings_as_the_tracker_with_introduced_versions_honoured() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    let rec = |id: &str, pkg: &str, eco: &str, events: &str, urgency: &str| {
        format!(
            r#"{{"id": "{id}", "aliases": ["CVE-x"], "affected": [{{"package": {{"ecosystem": "{eco}", "name": "{pkg}", "purl": "pkg:deb/debian/{pkg}?arch=source"}}, "ranges": [{{"type": "ECOSYSTEM", "events": [{events}]}}], "ecosystem_specific": {{"urgency": "{urgency}"}}}}]}}"#
        )
    };
    // the fixed image: libssl3 from openssl 3.0.19-1~deb12u2, tar 1.34+dfsg-1.2+deb12u1
    let records = [
        rec(
            "DEBIAN-CVE-A",
            "openssl",
            "Debian:12",
            r#"{"introduced": "0"}, {"fixed": "3.0.19-1~deb12u3"}"#,
            "high",
        ),
        rec(
            "DEBIAN-CVE-B",
            "openssl",
            "Debian:12",
            r#"{"introduced": "0"}, {"fixed": "3.0.19-1~deb12u1"}"#,
            "high",
        ),
        rec(
            "DEBIAN-CVE-C",
            "openssl",
            "Debian:12",
            r#"{"introduced": "0"}"#,
            "low",
        ),
        rec(
            "DEBIAN-CVE-D",
            "openssl",
            "Debian:13",
            r#"{"introduced": "0"}"#,
            "high",
        ),
        // introduced after the installed version: not in it
        rec(
            "DEBIAN-CVE-E",
            "tar",
            "Debian:12",
            r#"{"introduced": "1.35-1"}"#,
            "medium",
        ),
        rec(
            "DEBIAN-CVE-F",
            "tar",
            "Debian:12",
            r#"{"introduced": "1.30-1"}, {"fixed": "1.34+dfsg-1.2+deb12u2"}"#,
            "medium",
        ),
    ];
    std::fs::write(p("osv.json"), format!("[{}]", records.join(", "))).unwrap();
    let key = FeedKey::new(d.path(), "k");
    key.sign(d.path().join("osv.json").as_path());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root");
    let o = Command::new(crate::common::hardenctl())
        .args([
            "--json",
            "vulns",
            "--format",
            "osv",
            "--feed",
            &p("osv.json"),
            "--key",
            key.public_str(),
            "--root",
            root,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["release"], "12");
    let got: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["cve"].as_str().unwrap().into(),
                f["verdict"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("DEBIAN-CVE-A", "fix-available"),
        ("DEBIAN-CVE-F", "fix-available"),
        ("DEBIAN-CVE-C", "open"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{doc}");
    assert_eq!(doc["counts"]["not_affected"], 1, "CVE-E introduced later");
    assert_eq!(doc["counts"]["fixed"], 1, "CVE-B");
}

/// A small tracker feed for the fixed image's sources: `extra` adds CVEs of openssl.
pub(crate) fn image_feed(extra: &str) -> String {
    format!(
        r#"{{"openssl": {{"CVE-2024-0001": {{"releases": {{"bookworm": {{"status": "resolved", "fixed_version": "3.0.19-1~deb12u1", "urgency": "high"}}}}}}{extra}}},
            "tar": {{"CVE-2024-0002": {{"releases": {{"bookworm": {{"status": "open", "urgency": "low"}}}}}}}}}}"#
    )
}

pub(crate) const NEW_FIXABLE: &str = r#", "CVE-2025-1111": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.19-1~deb12u3", "urgency": "high"}}}"#;

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Waits up to 20 s for the next signal of `stream`.
async fn next_signal<S: futures_util::Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} signal within 20 s"))
        .unwrap_or_else(|| panic!("the {what} stream ended"))
}

/// A daemon on a private bus watching `DIR/feed.json` (written with `text` and signed by the
/// returned fleet key) every second, matched against the fixed image's dpkg status.
fn feed_daemon(
    dir: &std::path::Path,
    text: &str,
) -> (crate::common::TestBus, crate::common::TestDaemon, FeedKey) {
    feed_daemon_with(dir, text, "")
}

/// [`feed_daemon`] with more configuration (`extra`, TOML tables) after `[vulns]`.
pub(crate) fn feed_daemon_with(
    dir: &std::path::Path,
    text: &str,
    extra: &str,
) -> (crate::common::TestBus, crate::common::TestDaemon, FeedKey) {
    let feed = dir.join("feed.json");
    let key = FeedKey::new(dir, "fleet");
    std::fs::write(&feed, text).unwrap();
    key.sign(&feed);
    let bus = crate::common::TestBus::start();
    let daemon = crate::common::TestDaemon::start(
        &bus,
        "",
        &format!(
            "[vulns]\nfeed = \"{}\"\nkey = \"{}\"\nroot = \"{}\"\ncheck_interval = \"1s\"\n{extra}",
            feed.display(),
            key.public_str(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root")
        ),
    );
    (bus, daemon, key)
}

/// A client of the daemon's org.hardend1.Vulns on `bus`.
async fn vulns_proxy(bus: &crate::common::TestBus) -> hardend::api::VulnsProxy<'static> {
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    hardend::api::VulnsProxy::new(&conn).await.unwrap()
}

/// `hardenctl --json vulns` once the daemon's first evaluation is done.
pub(crate) fn evaluated(daemon: &crate::common::TestDaemon) -> serde_json::Value {
    let mut doc = daemon.ctl_json(&["vulns"]);
    for _ in 0..200 {
        if doc["state"] != "starting" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        doc = daemon.ctl_json(&["vulns"]);
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_signals_a_new_cve_and_refuses_a_changed_or_foreign_feed_keeping_what_it_knew() {
    let d = tempfile::tempdir().unwrap();
    let feed = d.path().join("feed.json");
    let other = FeedKey::new(d.path(), "other");
    let (bus, daemon, key) = feed_daemon(d.path(), &image_feed(""));
    let state = || daemon.ctl_json(&["vulns"]);
    let doc = evaluated(&daemon);
    // the first feed: CVE-2024-0001 is fixed in the installed openssl, tar's is open
    assert_eq!(doc["state"], "ok", "{doc}");
    assert_eq!(doc["release"], "bookworm");
    assert_eq!(doc["counts"]["open"], 1);
    assert_eq!(doc["counts"]["fixed"], 1);
    let v1_sha = sha256_hex(image_feed("").as_bytes());
    assert_eq!(doc["feed"]["sha256"], v1_sha.as_str());

    let proxy = vulns_proxy(&bus).await;
    let mut found = proxy.receive_vulnerabilities_found().await.unwrap();
    let mut refused = proxy.receive_feed_refused().await.unwrap();

    // the fleet delivers a feed with a new fixable openssl CVE, the feed first and its
    // signature a moment later (not atomically): judged as the pair once both are there
    let v2 = image_feed(NEW_FIXABLE);
    std::fs::write(&feed, &v2).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    key.sign(&feed);
    let sig = next_signal(&mut found, "VulnerabilitiesFound").await;
    let new = sig.args().unwrap().findings().clone();
    assert_eq!(new.len(), 1, "only what is new: {new:?}");
    assert_eq!(
        (
            new[0].cve.as_str(),
            new[0].source.as_str(),
            new[0].fixed_version.as_str()
        ),
        ("CVE-2025-1111", "openssl", "3.0.19-1~deb12u3")
    );
    assert_eq!(new[0].packages, ["libssl3"]);
    let out = daemon.ctl(&["--json", "vulns"]);
    assert_eq!(out.status.code(), Some(3), "a fix is available");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "fix-available", "{doc}");
    assert_eq!(doc["feed"]["sha256"], sha256_hex(v2.as_bytes()).as_str());
    assert!(
        daemon
            .log()
            .contains(hardend::api::message_ids::VULNS_FOUND),
        "journal entry with VULNS_FOUND: {}",
        daemon.log()
    );

    // one byte of the delivered feed changed in place: refused, what it knew stays
    let mut bytes = v2.clone().into_bytes();
    let at = v2.find("3.0.19-1~deb12u3").unwrap() + 15;
    bytes[at] = b'9';
    std::fs::write(&feed, &bytes).unwrap();
    let sig = next_signal(&mut refused, "FeedRefused").await;
    let reason = sig.args().unwrap().reason().to_string();
    assert!(reason.contains("does not verify"), "{reason}");
    let doc = state();
    assert_eq!(doc["state"], "refused", "{doc}");
    assert_eq!(doc["feed"]["sha256"], sha256_hex(v2.as_bytes()).as_str());
    assert_eq!(
        doc["counts"]["fix_available"], 1,
        "the last verified findings stay"
    );
    assert_eq!(doc["findings"][0]["fixed_version"], "3.0.19-1~deb12u3");
    assert!(
        daemon
            .log()
            .contains(hardend::api::message_ids::VULNS_FEED_REFUSED),
        "{}",
        daemon.log()
    );

    // a feed with another new CVE, signed by a key the device does not trust: refused, and
    // its CVE is not believed
    std::fs::write(
        &feed,
        image_feed(r#", "CVE-2025-2222": {"releases": {"bookworm": {"status": "open"}}}"#),
    )
    .unwrap();
    other.sign(&feed);
    let sig = next_signal(&mut refused, "FeedRefused").await;
    assert!(sig.args().unwrap().reason().contains("does not verify"));
    let doc = state();
    assert!(!doc.to_string().contains("CVE-2025-2222"), "{doc}");

    // a FIFO in the feed's place: refused without blocking the daemon
    std::fs::remove_file(&feed).unwrap();
    let made = Command::new("mkfifo").arg(&feed).status().unwrap();
    assert!(made.success());
    let sig = next_signal(&mut refused, "FeedRefused").await;
    assert!(
        sig.args().unwrap().reason().contains("not a regular file"),
        "{:?}",
        sig.args().unwrap().reason()
    );
    // unchanged files are not judged again: no second alert for the same refusal
    let again = tokio::time::timeout(std::time::Duration::from_secs(3), {
        use futures_util::StreamExt;
        refused.next()
    })
    .await;
    assert!(again.is_err(), "the same refused feed alerted twice");
    let none = tokio::time::timeout(std::time::Duration::from_millis(100), {
        use futures_util::StreamExt;
        found.next()
    })
    .await;
    assert!(none.is_err(), "nothing new was believed");
    assert_eq!(state()["state"], "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_or_sparse_feeds_are_refused_a_new_fix_is_signalled_and_a_reload_forgets_nothing() {
    use futures_util::StreamExt;
    // tar's CVE-2024-0002 is open
    let d = tempfile::tempdir().unwrap();
    let feed = d.path().join("feed.json");
    let (bus, daemon, key) = feed_daemon(d.path(), &image_feed(""));
    assert_eq!(evaluated(&daemon)["state"], "ok");
    let proxy = vulns_proxy(&bus).await;
    let mut found = proxy.receive_vulnerabilities_found().await.unwrap();
    let mut refused = proxy.receive_feed_refused().await.unwrap();

    // the open CVE gains a fix: signalled again, now fix-available
    let fixed = image_feed("").replace(
        r#""status": "open", "urgency": "low""#,
        r#""status": "resolved", "fixed_version": "1.35+dfsg-1", "urgency": "low""#,
    );
    std::fs::write(&feed, &fixed).unwrap();
    key.sign(&feed);
    let sig = next_signal(&mut found, "VulnerabilitiesFound").await;
    let new = sig.args().unwrap().findings().clone();
    assert_eq!(
        new.iter()
            .map(|f| (f.cve.as_str(), f.verdict))
            .collect::<Vec<_>>(),
        [(
            "CVE-2024-0002",
            hardend::vulns::matching::Verdict::FixAvailable
        )]
    );

    // a reload that changes only the check interval forgets nothing
    let conf = daemon.path("hardend.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("check_interval = \"1s\"", "check_interval = \"2s\""),
    )
    .unwrap();
    assert_eq!(daemon.ctl(&["reload"]).status.code(), Some(0));
    let doc = daemon.ctl_json(&["vulns"]);
    assert_eq!(doc["state"], "fix-available", "{doc}");
    assert_eq!(doc["findings"][0]["cve"], "CVE-2024-0002");

    // garbage touched more often than the interval: it never settles, and is refused anyway
    std::fs::write(&feed, "not a feed at all").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toucher = {
        let (stop, feed) = (stop.clone(), feed.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&feed)
                    .unwrap();
                f.set_modified(std::time::SystemTime::now()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        })
    };
    let sig = next_signal(&mut refused, "FeedRefused").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    toucher.join().unwrap();
    let reason = sig.args().unwrap().reason().to_string();
    assert!(
        reason.contains("does not verify") || reason.contains("kept changing"),
        "{reason}"
    );
    let doc = daemon.ctl_json(&["vulns"]);
    assert_eq!(doc["state"], "refused", "{doc}");
    assert_eq!(
        doc["findings"][0]["cve"], "CVE-2024-0002",
        "what it knew stays"
    );

    // a sparse 1 GiB feed: refused by its size, without the daemon reading it into memory
    let f = std::fs::File::create(&feed).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let sig = next_signal(&mut refused, "FeedRefused").await;
    assert!(
        sig.args().unwrap().reason().contains("larger than"),
        "{:?}",
        sig.args().unwrap().reason()
    );
    let pid = daemon.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        hwm_kib < 256 * 1024,
        "the daemon's peak memory is {hwm_kib} KiB: the sparse file was read"
    );
    let none = tokio::time::timeout(std::time::Duration::from_millis(100), found.next()).await;
    assert!(none.is_err(), "nothing new was believed");
}
