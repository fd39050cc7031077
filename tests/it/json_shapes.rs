//! docs/json.md is the contract of `hardenctl --json`: this runs every command against a
//! real daemon (private bus, swtpm, an integrity watch on a temporary tree) and checks each
//! document against the shape written there, key for key; every subcommand must be
//! documented, and every documented shape must have been checked.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::swtpm::Swtpm;
use crate::common::*;

/// The shapes of docs/json.md: command (as in its heading; a heading may name several,
/// separated by ` · `) → shape. `error` is the error document.
pub(crate) fn documented() -> BTreeMap<String, Value> {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let mut shapes = BTreeMap::new();
    let mut heading = Some(vec!["error".to_string()]);
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = block.as_mut() {
            if line.starts_with("```") {
                let shape: Value = serde_json::from_str(b)
                    .unwrap_or_else(|e| panic!("docs/json.md, shape of {heading:?}: {e}"));
                for h in heading.take().unwrap_or_default() {
                    assert!(
                        shapes.insert(h.clone(), shape.clone()).is_none(),
                        "{h} twice"
                    );
                }
                block = None;
            } else {
                b.push_str(line);
                b.push('\n');
            }
        } else if let Some(h) = line.strip_prefix("### ") {
            heading = Some(
                h.split(" · ")
                    .filter_map(|c| c.trim_matches('`').strip_prefix("hardenctl "))
                    .map(str::to_string)
                    .collect(),
            );
        } else if line == "```json" && heading.is_some() {
            block = Some(String::new());
        }
    }
    shapes
}

/// Checks `v` against `shape` (docs/json.md, "How to read a shape").
pub(crate) fn conforms(shape: &Value, v: &Value, at: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("{at}: expected {what}, found {v}"));
    match shape {
        Value::String(t) => {
            let (t, nullable) = match t.strip_suffix('?') {
                Some(t) => (t, true),
                None => (t.as_str(), false),
            };
            if v.is_null() {
                return if nullable { Ok(()) } else { bad(t) };
            }
            let ok = match t {
                "string" => v.is_string(),
                "integer" => v.is_u64() || v.is_i64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "object" => v.is_object(),
                "rfc3339" => v
                    .as_str()
                    .is_some_and(|s| humantime::parse_rfc3339(s).is_ok()),
                t if t.starts_with("map:") => {
                    let Some(m) = v.as_object() else {
                        return bad("an object");
                    };
                    let inner = Value::String(t["map:".len()..].to_string());
                    for (k, e) in m {
                        conforms(&inner, e, &format!("{at}.{k}"))?;
                    }
                    true
                }
                t if t.contains('|') => v.as_str().is_some_and(|s| t.split('|').any(|c| c == s)),
                t => panic!("docs/json.md: unknown type {t:?} at {at}"),
            };
            if ok { Ok(()) } else { bad(t) }
        }
        Value::Array(a) => {
            let Some(items) = v.as_array() else {
                return bad("an array");
            };
            for (i, e) in items.iter().enumerate() {
                conforms(&a[0], e, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        Value::Object(m) => {
            if v.is_null() && m.get("?") == Some(&Value::Bool(true)) {
                return Ok(());
            }
            let Some(o) = v.as_object() else {
                return bad("an object");
            };
            let want: BTreeSet<_> = m.keys().filter(|k| *k != "?").collect();
            let have: BTreeSet<_> = o.keys().collect();
            if want != have {
                return Err(format!(
                    "{at}: keys differ: documented but missing {:?}, present but undocumented {:?}",
                    want.difference(&have).collect::<Vec<_>>(),
                    have.difference(&want).collect::<Vec<_>>()
                ));
            }
            for (k, s) in m.iter().filter(|(k, _)| *k != "?") {
                conforms(s, &o[k], &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        s => panic!("docs/json.md: {s} is not a type"),
    }
}

/// The subcommands clap knows, as "group leaf" strings.
fn subcommands() -> BTreeSet<String> {
    use clap::CommandFactory;
    let mut out = BTreeSet::new();
    fn walk(c: &clap::Command, prefix: &str, out: &mut BTreeSet<String>) {
        for s in c.get_subcommands() {
            let name = if prefix.is_empty() {
                s.get_name().to_string()
            } else {
                format!("{prefix} {}", s.get_name())
            };
            if s.get_subcommands().next().is_none() {
                out.insert(name);
            } else {
                walk(s, &name, out);
            }
        }
    }
    walk(&hardend::cmdline::hardenctl::Args::command(), "", &mut out);
    out.remove("help");
    out.retain(|s| !s.ends_with(" help"));
    out
}

/// The subcommand a documented heading is about ("verity status NAME" → "verity status").
fn leaf(heading: &str) -> String {
    heading
        .split_whitespace()
        .take_while(|w| !w.starts_with("--") && w.chars().any(|c| c.is_lowercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Run<'a> {
    shapes: &'a BTreeMap<String, Value>,
    checked: BTreeSet<String>,
    failures: Vec<String>,
}

impl Run<'_> {
    /// Checks one document (the error document when `exit` is 1 or 2).
    fn doc(&mut self, key: &str, text: &[u8], exit: Option<i32>) -> Value {
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                self.failures.push(format!(
                    "{key}: not one JSON document ({e}): {}",
                    String::from_utf8_lossy(text)
                ));
                return Value::Null;
            }
        };
        let which = if matches!(exit, Some(1 | 2)) {
            "error"
        } else {
            key
        };
        let shape = self
            .shapes
            .get(which)
            .unwrap_or_else(|| panic!("docs/json.md has no shape for `hardenctl {which}`"));
        if let Err(e) = conforms(shape, &v, which) {
            self.failures.push(format!("hardenctl {key}: {e}"));
        }
        self.checked.insert(which.to_string());
        v
    }

    fn out(&mut self, key: &str, out: &Output, exits: &[i32]) -> Value {
        let code = out.status.code();
        if !code.is_some_and(|c| exits.contains(&c)) {
            self.failures.push(format!(
                "hardenctl {key}: exit {code:?}, expected one of {exits:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.doc(key, &out.stdout, code)
    }
}

#[test]
fn every_command_prints_the_documented_document() {
    let shapes = documented();
    // every subcommand is documented
    let documented_leaves: BTreeSet<String> = shapes.keys().map(|k| leaf(k)).collect();
    let missing: Vec<_> = subcommands()
        .into_iter()
        .filter(|c| !documented_leaves.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json.md documents no shape for {missing:?}"
    );

    let sw = Swtpm::start();
    let bus = TestBus::start();
    let tree = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    fs::write(tree.path().join("f"), "one\n").unwrap();
    let d = TestDaemon::start(
        &bus,
        "verify_interval = 1",
        &format!(
            "[identity]\ntcti = \"{}\"\ndir = \"{}\"\n[integrity]\ndir = \"{}\"\n[[integrity.watch]]\nname = \"tree\"\npaths = [\"{}\"]\n",
            sw.tcti(),
            keys.path().join("identity").display(),
            state.path().display(),
            tree.path().display()
        ),
    );
    let sleeper = "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\", \"/usr/bin/true\"]\n[seccomp]\nallow = [\"@system-service\"]\n";
    fs::write(d.path("profiles/sleeper.toml"), sleeper).unwrap();
    let mut child = d.start_confined("sleeper.service", "sleeper", &["sleep", "60"]);
    d.wait_state("sleeper.service", confined_state());

    let mut r = Run {
        shapes: &shapes,
        checked: BTreeSet::new(),
        failures: Vec::new(),
    };
    let j = |args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        d.ctl(&a)
    };
    // the daemon
    r.out("status", &j(&["status"]), &[0, 3]);
    let v = r.out("services", &j(&["services"]), &[0]);
    assert_eq!(v["services"][0]["unit"], "sleeper.service", "{v}");
    r.out("reload", &j(&["reload"]), &[0]);
    // the daemon's vulnerability state (no feed configured here: disabled; the daemon with a
    // feed is in tests/it/vulns.rs)
    let v = r.out("vulns", &j(&["vulns"]), &[0]);
    assert_eq!(v["state"], "disabled", "{v}");
    r.out("doctor", &j(&["doctor"]), &[0, 3]);
    // no systemd here: the units are not assessed (incomplete, exit 3); the device checks
    // run (the units' shape is checked against systemd in the VM suite)
    let v = r.out("audit", &j(&["audit"]), &[3]);
    assert!(
        matches!(v["verdict"].as_str(), Some("bad" | "incomplete")),
        "{v}"
    );
    assert_eq!(v["hardend_reachable"], true, "{v}");
    let v = r.out("report", &j(&["report"]), &[0, 3]);
    assert_eq!(v["requirements"][0]["id"], "I.2(a)", "{v}");
    // no systemd on this bus: the error document (the VM suite confines for real)
    r.out("confine", &j(&["confine", "x.service", "sleeper"]), &[1]);
    r.out("release", &j(&["release", "x.service"]), &[1]);
    // profiles, from the daemon and locally
    r.out("profile list", &j(&["profile", "list"]), &[0]);
    let local = Command::new(hardenctl())
        .args(["--bus", "unix:path=/nonexistent/bus", "--profile-path"])
        .arg(shipped_profiles())
        .args(["--json", "profile", "list"])
        .output()
        .unwrap();
    let v = r.out("profile list", &local, &[0]);
    assert_eq!(v["source"], "local", "{v}");
    let p = d.path("profiles/sleeper.toml");
    let p = p.to_str().unwrap();
    r.out("profile show", &j(&["profile", "show", p]), &[0]);
    r.out(
        "profile show",
        &j(&["profile", "show", p, "--expand"]),
        &[0],
    );
    r.out("profile check", &j(&["profile", "check", p]), &[0]);
    let bad = d.path("bad.toml");
    fs::write(&bad, "nonsense = 1\n").unwrap();
    r.out(
        "profile check",
        &j(&["profile", "check", bad.to_str().unwrap()]),
        &[3],
    );
    let exec = j(&["exec", "--profile", p, "--", "/usr/bin/true"]);
    assert!(exec.status.success(), "{exec:?}");
    assert!(exec.stdout.is_empty(), "stdout belongs to the program");
    r.doc("exec", &exec.stderr, Some(0));
    let exec = j(&["exec", "--profile", p, "--", "/nonexistent/prog"]);
    assert_eq!(exec.status.code(), Some(127));
    r.doc("exec", &exec.stderr, Some(1));
    // dm-verity, offline
    let img = d.path("data.img");
    let hash = d.path("hash.img");
    fs::write(&img, vec![7u8; 64 * 4096]).unwrap();
    let (img, hash) = (img.to_str().unwrap(), hash.to_str().unwrap());
    let v = r.out("verity format", &j(&["verity", "format", img, hash]), &[0]);
    let root = v["root_hash"].as_str().unwrap_or_default().to_string();
    r.out(
        "verity format",
        &j(&["verity", "format", img, hash, "--salt", "-"]),
        &[0],
    );
    let v = r.out("verity dump", &j(&["verity", "dump", hash]), &[0]);
    assert_eq!(v["salt"], Value::Null, "an empty salt is null, not \"-\"");
    let root2 = r.out("verity format", &j(&["verity", "format", img, hash]), &[0])["root_hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    r.out(
        "verity verify",
        &j(&["verity", "verify", img, hash, &root2]),
        &[0],
    );
    let v = r.out(
        "verity verify",
        &j(&["verity", "verify", img, hash, &root]),
        &[3],
    );
    assert_eq!(v["verified"], false, "{v}");
    r.out("verity status", &j(&["verity", "status"]), &[0]);
    // no device-mapper on this host: the error documents (the VM suite opens for real)
    r.out(
        "verity status NAME",
        &j(&["verity", "status", "vtest"]),
        &[1],
    );
    r.out(
        "verity open",
        &j(&["verity", "open", "vtest", img, hash, &root2]),
        &[1],
    );
    r.out("verity close", &j(&["verity", "close", "vtest"]), &[1]);
    // the identity, through the daemon
    r.out("identity show", &j(&["identity", "show"]), &[3]);
    r.out("identity create", &j(&["identity", "create"]), &[0]);
    r.out("identity show", &j(&["identity", "show"]), &[0]);
    r.out(
        "identity sign",
        &j(&["identity", "sign", "--nonce", "00ff"]),
        &[0],
    );
    r.out("identity csr", &j(&["identity", "csr"]), &[0]);
    let q = r.out(
        "identity quote",
        &j(&["identity", "quote", "--nonce", "0011"]),
        &[0],
    );
    let qf = d.path("quote.json");
    fs::write(&qf, q.to_string()).unwrap();
    let qf = qf.to_str().unwrap();
    let name = q["ak_name"].as_str().unwrap().to_string();
    r.out(
        "identity verify-quote",
        &j(&[
            "identity",
            "verify-quote",
            qf,
            "--nonce",
            "0011",
            "--ak-name",
            &name,
        ]),
        &[0],
    );
    r.out(
        "identity verify-quote",
        &j(&[
            "identity",
            "verify-quote",
            qf,
            "--nonce",
            "ff",
            "--ak-name",
            &name,
        ]),
        &[3],
    );
    let e = r.out(
        "identity enroll",
        &j(&["identity", "enroll", "--ek-ca", "/nonexistent"]),
        &[0],
    );
    // the fleet's challenge, made in software by tpm2-tools for this EK and AK name
    let ekf = d.path("ek.pub");
    fs::write(
        &ekf,
        hex::decode(e["enrollment"]["ek_public"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let (cred, secret) = (d.path("cred.bin"), d.path("secret.bin"));
    fs::write(&secret, b"fleet-secret").unwrap();
    let mk = std::process::Command::new("tpm2_makecredential")
        .args(["-T", "none", "-u"])
        .arg(&ekf)
        .arg("-s")
        .arg(&secret)
        .args(["-n", e["enrollment"]["ak_name"].as_str().unwrap(), "-o"])
        .arg(&cred)
        .output()
        .unwrap();
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    let a = r.out(
        "identity activate",
        &j(&["identity", "activate", cred.to_str().unwrap()]),
        &[0],
    );
    assert_eq!(a["secret"], hex::encode(b"fleet-secret"));
    r.out("identity rotate", &j(&["identity", "rotate"]), &[0]);
    r.out(
        "identity rotate",
        &j(&["identity", "rotate", "--abort"]),
        &[0],
    );
    r.out("identity rotate", &j(&["identity", "rotate"]), &[0]);
    r.out(
        "identity rotate",
        &j(&["identity", "rotate", "--commit"]),
        &[0],
    );
    // integrity
    r.out("integrity status", &j(&["integrity", "status"]), &[3]);
    r.out("integrity init", &j(&["integrity", "init"]), &[0]);
    fs::write(tree.path().join("f"), "two\n").unwrap();
    fs::write(tree.path().join("new"), "added\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.ctl_json(&["integrity", "status"])["status"]["violations"] != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the changes were not seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    r.out("integrity status", &j(&["integrity", "status"]), &[3]);
    r.out("integrity scan", &j(&["integrity", "scan"]), &[3]);
    r.out("integrity events", &j(&["integrity", "events"]), &[0]);
    let mut follow = Command::new(hardenctl())
        .args(["--bus", &d.bus, "--json", "integrity", "events", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(follow.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    r.doc("integrity events --follow", line.as_bytes(), Some(0));
    r.out("sbom", &j(&["sbom"]), &[0]);
    let feed_dir = tempfile::tempdir().unwrap();
    let fp = |f: &str| feed_dir.path().join(f).to_str().unwrap().to_string();
    fs::write(
        fp("feed.json"),
        r#"{"openssl": {"CVE-1": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "99:1", "urgency": "high"}}}, "CVE-2": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}}"#,
    )
    .unwrap();
    let key = crate::common::FeedKey::new(feed_dir.path(), "k");
    key.sign(feed_dir.path().join("feed.json").as_path());
    let sbom_root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sbom-root");
    r.out(
        "vulns",
        &j(&[
            "vulns",
            "--feed",
            &fp("feed.json"),
            "--key",
            key.public_str(),
            "--root",
            sbom_root,
        ]),
        &[3],
    );
    let admin = tempfile::tempdir().unwrap();
    fs::create_dir_all(admin.path().join("info")).unwrap();
    let admin_dir = admin.path().to_str().unwrap();
    r.out(
        "integrity dpkg-hold",
        &j(&["integrity", "dpkg-hold", "--dpkg-admin", admin_dir]),
        &[0],
    );
    r.out(
        "integrity accept --from-dpkg",
        &j(&[
            "integrity",
            "accept",
            "--from-dpkg",
            "--dpkg-admin",
            admin.path().to_str().unwrap(),
        ]),
        &[3],
    );
    let f = tree.path().join("f");
    r.out(
        "integrity accept",
        &j(&["integrity", "accept", f.to_str().unwrap()]),
        &[0],
    );

    let unchecked: Vec<_> = shapes.keys().filter(|k| !r.checked.contains(*k)).collect();
    assert!(
        r.failures.is_empty(),
        "documents that differ from docs/json.md:\n{}",
        r.failures.join("\n")
    );
    // confine, release, verity open/close/status NAME need systemd or device-mapper: their
    // error documents were checked here, their answers are checked in the VM suite's output
    let vm_only = [
        "confine",
        "release",
        "verity open",
        "verity close",
        "verity status NAME",
    ];
    // the Keylime agent's documents need a Keylime registrar and verifier: tests/it/keylime.rs
    // checks them against these shapes
    let keylime = ["identity keylime register", "identity keylime attest"];
    let unchecked: Vec<_> = unchecked
        .into_iter()
        .filter(|k| !vm_only.contains(&k.as_str()) && !keylime.contains(&k.as_str()))
        .collect();
    assert!(unchecked.is_empty(), "shapes never checked: {unchecked:?}");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn the_shape_checker_catches_what_it_must() {
    let shape: Value = serde_json::json!({
        "a": "string?", "t": "rfc3339", "e": "x|y", "l": [{"n": "integer"}], "m": "map:string"
    });
    let good = serde_json::json!({
        "a": null, "t": "2026-12-02T01:46:52Z", "e": "y", "l": [{"n": 1}], "m": {"0": "ab"}
    });
    assert_eq!(conforms(&shape, &good, "$"), Ok(()));
    for (key, bad) in [
        ("a", serde_json::json!(1)),
        ("t", serde_json::json!(1_764_640_012)),
        ("e", serde_json::json!("z")),
        ("l", serde_json::json!([{"n": "1"}])),
        ("m", serde_json::json!({"0": 1})),
    ] {
        let mut v = good.clone();
        v[key] = bad;
        assert!(conforms(&shape, &v, "$").is_err(), "{key}");
    }
    let mut extra = good.clone();
    extra["new"] = Value::Null;
    assert!(
        conforms(&shape, &extra, "$")
            .unwrap_err()
            .contains("undocumented")
    );
}
