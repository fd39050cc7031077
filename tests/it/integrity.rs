//! Integrity monitoring through a real daemon on a private bus, watching temporary trees on
//! this kernel: every kind of change raised in real time (the D-Bus signal) and found again
//! by a full scan of a fresh daemon; forced inotify overflow; a baseline edited, truncated
//! or interrupted while written; dpkg acceptance; a burst of 20,000 changes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{TestBus, TestDaemon, is_root};
use futures_util::StreamExt;
use hardend::api::IntegrityProxy;

struct Setup {
    tree: tempfile::TempDir,
    outside: tempfile::TempDir,
    state: tempfile::TempDir,
    d: TestDaemon,
    bus: TestBus,
}

impl Setup {
    fn start(extra: &str) -> Setup {
        Self::start_with(extra, |_| {})
    }

    /// A watched tree (prepared by `prepare` before the daemon starts), a directory outside
    /// it on the same file system, and a daemon watching the tree.
    fn start_with(extra: &str, prepare: impl FnOnce(&Path)) -> Setup {
        let tree = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let outside = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let state = tempfile::tempdir().unwrap();
        prepare(tree.path());
        let bus = TestBus::start();
        let d = TestDaemon::start(
            &bus,
            "",
            &format!(
                "[integrity]\ndir = \"{}\"\n{extra}\n[[integrity.watch]]\nname = \"tree\"\npaths = [\"{}\"]\nseverity = \"critical\"\nexclude = [\"**/*.swp\"]\n",
                state.path().display(),
                tree.path().display()
            ),
        );
        Setup {
            tree,
            outside,
            state,
            d,
            bus,
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tree.path().join(rel)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.d.ctl(args)
    }

    fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["--json", "integrity", "status"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// path → kind of every current violation.
    fn violations(&self) -> BTreeMap<String, String> {
        self.status()["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["path"].as_str().unwrap().to_string(),
                    v["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Waits until `f(status)` holds (a full scan or a burst takes a moment).
    fn wait_for(&self, what: &str, secs: u64, f: impl Fn(&serde_json::Value) -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if f(&s) {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "{what}: {s}\n{}",
                self.d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn restart(&mut self) {
        self.d.kill(libc::SIGKILL);
        self.d.spawn();
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A valid VFS_CAP_REVISION_2 `security.capability` value granting CAP_NET_BIND_SERVICE.
const CAP_NET_BIND: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_in_real_time_and_by_a_full_scan() {
    if !is_root() {
        eprintln!("skipped: needs root (chown, security.capability)");
        return;
    }
    let outside = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let out_dir = outside.path().to_path_buf();
    let mut s = Setup::start_with("", |t| {
        fs::create_dir_all(t.join("etc")).unwrap();
        fs::create_dir_all(t.join("bin")).unwrap();
        fs::write(t.join("etc/conf"), "alpha-1\n").unwrap();
        fs::write(t.join("etc/del"), "to be deleted\n").unwrap();
        fs::write(t.join("etc/repl"), "to be replaced by a symlink\n").unwrap();
        fs::write(t.join("etc/target-a"), "a\n").unwrap();
        fs::write(t.join("etc/target-b"), "b\n").unwrap();
        std::os::unix::fs::symlink("target-a", t.join("etc/link")).unwrap();
        fs::write(t.join("etc/renamed"), "original\n").unwrap();
        fs::write(t.join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(t.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.join("bin/owned"), "x\n").unwrap();
        fs::write(t.join("bin/capless"), "x\n").unwrap();
        fs::write(t.join("bin/linked"), "hard link target\n").unwrap();
        fs::hard_link(t.join("bin/linked"), out_dir.join("outside-link")).unwrap();
    });
    assert_eq!(s.status()["status"]["state"], "no-baseline");
    ok(s.ctl(&["integrity", "init"]));
    let st = s.status();
    assert_eq!(st["status"]["state"], "ok", "{st}");
    assert_eq!(
        st["status"]["key"], "file",
        "no TPM here: a root-only key file"
    );

    let conn = zbus::connection::Builder::address(s.bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let proxy = IntegrityProxy::new(&conn).await.unwrap();
    let mut signals = proxy.receive_integrity_violation().await.unwrap();
    let t = s.tree.path().to_path_buf();
    let outside_link = outside.path().join("outside-link");
    let staged = s.outside.path().join("staged");
    type Change = Box<dyn Fn()>;
    let changes: Vec<(&str, &str, Change)> = vec![
        ("etc/conf", "modified", {
            let t = t.clone();
            // same size, then the old mtime put back
            Box::new(move || {
                fs::copy(t.join("etc/conf"), t.join("../conf.ref")).unwrap();
                sh(&format!(
                    "touch -r {0}/etc/conf {0}/../conf.ref && printf 'alpha-2\\n' > {0}/etc/conf && touch -r {0}/../conf.ref {0}/etc/conf",
                    t.display()
                ));
            })
        }),
        ("bin/tool", "metadata", {
            let t = t.clone();
            Box::new(move || {
                fs::set_permissions(t.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap()
            })
        }),
        ("bin/owned", "metadata", {
            let t = t.clone();
            Box::new(move || {
                std::os::unix::fs::chown(t.join("bin/owned"), Some(1000), Some(1000)).unwrap()
            })
        }),
        ("etc/new", "added", {
            let t = t.clone();
            Box::new(move || fs::write(t.join("etc/new"), "planted\n").unwrap())
        }),
        ("etc/del", "removed", {
            let t = t.clone();
            Box::new(move || fs::remove_file(t.join("etc/del")).unwrap())
        }),
        ("etc/repl", "type-changed", {
            let t = t.clone();
            Box::new(move || {
                fs::remove_file(t.join("etc/repl")).unwrap();
                std::os::unix::fs::symlink("/etc/shadow", t.join("etc/repl")).unwrap();
            })
        }),
        ("etc/link", "modified", {
            let t = t.clone();
            Box::new(move || {
                fs::remove_file(t.join("etc/link")).unwrap();
                std::os::unix::fs::symlink("target-b", t.join("etc/link")).unwrap();
            })
        }),
        ("bin/capless", "metadata", {
            let t = t.clone();
            Box::new(move || {
                xattr::set(t.join("bin/capless"), "security.capability", &CAP_NET_BIND).unwrap()
            })
        }),
        ("bin/linked", "modified", {
            // written through the hard link outside the watched tree
            let l = outside_link.clone();
            Box::new(move || fs::write(&l, "changed from outside\n").unwrap())
        }),
        ("etc/renamed", "modified", {
            let t = t.clone();
            let staged = staged.clone();
            Box::new(move || {
                fs::write(&staged, "renamed into place\n").unwrap();
                fs::rename(&staged, t.join("etc/renamed")).unwrap();
            })
        }),
    ];
    for (rel, kind, change) in &changes {
        change();
        let want = t.join(rel).display().to_string();
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let sig = signals.next().await.unwrap();
                let a = sig.args().unwrap();
                if *a.path() == want {
                    return (
                        a.kind().to_string(),
                        a.severity().to_string(),
                        a.set().to_string(),
                    );
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no IntegrityViolation for {rel} within 10 s\n{}", s.d.log()));
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2.as_str()),
            (*kind, "critical", "tree"),
            "{rel}"
        );
    }
    let expect: BTreeMap<String, String> = changes
        .iter()
        .map(|(rel, kind, _)| (t.join(rel).display().to_string(), kind.to_string()))
        .collect();
    assert_eq!(s.violations(), expect, "the live list");
    let out = s.ctl(&["integrity", "status"]);
    assert_eq!(out.status.code(), Some(3), "violations: exit 3");
    let out = s.ctl(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(3), "the daemon is degraded");

    // a fresh daemon knows nothing of the events: its full scan must find every change
    s.restart();
    s.wait_for("the startup scan", 30, |st| st["status"]["last_scan"] != 0);
    assert_eq!(s.violations(), expect, "found again by a full scan");
    assert_eq!(s.ctl(&["integrity", "scan"]).status.code(), Some(3));
    assert_eq!(s.violations(), expect, "and by `integrity scan`");

    // accepting one path clears it; the event log has the story
    ok(s.ctl(&["integrity", "accept", t.join("etc/new").to_str().unwrap()]));
    let v = s.violations();
    assert!(!v.contains_key(&t.join("etc/new").display().to_string()));
    assert_eq!(v.len(), expect.len() - 1);
    let ev = ok(s.ctl(&["--json", "integrity", "events", "-n", "500"])).stdout;
    let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
    let ev = ev["events"].clone();
    let accepted =
        ev.as_array().unwrap().iter().any(|e| {
            e["event"] == "accepted" && e["path"] == t.join("etc/new").display().to_string()
        });
    assert!(accepted, "{ev}");
}

#[test]
fn reverting_a_change_clears_it_and_rescans_raise_nothing() {
    let s = Setup::start_with("", |t| {
        fs::write(t.join("f"), "one\n").unwrap();
    });
    ok(s.ctl(&["integrity", "init"]));
    fs::write(s.p("f"), "two\n").unwrap();
    s.wait_for("the change", 10, |st| st["status"]["violations"] == 1);
    fs::write(s.p("f"), "one\n").unwrap();
    s.wait_for("the revert", 10, |st| st["status"]["violations"] == 0);
    // two more full scans of an unchanged tree find nothing
    ok(s.ctl(&["integrity", "scan"]));
    ok(s.ctl(&["integrity", "scan"]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.status()["status"]["violations"], 0);
    // excluded paths are not watched
    fs::write(s.p("x.swp"), "editor\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.status()["status"]["violations"], 0);
}

#[test]
fn non_root_reads_the_state_but_not_the_paths_and_may_not_init_scan_or_accept() {
    if !is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let s = Setup::start("");
    use std::os::unix::process::CommandExt;
    let as_nobody = |args: &[&str]| {
        Command::new(crate::common::hardenctl())
            .uid(65534)
            .gid(65534)
            .arg("--bus")
            .arg(&s.bus.address)
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["integrity", "init"][..],
        &["integrity", "scan"][..],
        &["integrity", "accept", "/tmp/x"][..],
        &["integrity", "accept", "--from-dpkg"][..],
        // these name files, also in directories nobody may not list
        &["integrity", "status"][..],
        &["integrity", "events"][..],
    ] {
        let out = as_nobody(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("requires root (caller uid 65534)"),
            "{args:?}: {err}"
        );
    }
    // the state and the count are for everyone (monitoring), through `status`
    let out = as_nobody(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(3), "no baseline yet is not ok");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["integrity"]["state"], "no-baseline", "{v}");
    assert_eq!(v["integrity"]["bad"], true, "{v}");
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[test]
fn dpkg_vouches_for_content_not_for_permissions() {
    let s = Setup::start_with("", |t| {
        fs::create_dir_all(t.join("usr/bin")).unwrap();
        for f in ["upgraded", "tampered", "chmodded", "reinstalled"] {
            fs::write(t.join("usr/bin").join(f), "version 1\n").unwrap();
        }
    });
    ok(s.ctl(&["integrity", "init"]));
    // dpkg's record after an upgrade: what the package now ships
    let admin = tempfile::tempdir().unwrap();
    fs::create_dir_all(admin.path().join("info")).unwrap();
    let rel = |f: &str| {
        s.p("usr/bin")
            .join(f)
            .strip_prefix("/")
            .unwrap()
            .display()
            .to_string()
    };
    fs::write(
        admin.path().join("info/demo:amd64.md5sums"),
        format!(
            "{}  {}\n{}  {}\n{}  {}\n{}  {}\n",
            md5_hex(b"version 2\n"),
            rel("upgraded"),
            md5_hex(b"version 2\n"),
            rel("tampered"),
            md5_hex(b"version 1\n"),
            rel("chmodded"),
            md5_hex(b"version 1\n"),
            rel("reinstalled"),
        ),
    )
    .unwrap();
    fs::write(s.p("usr/bin/upgraded"), "version 2\n").unwrap();
    fs::write(s.p("usr/bin/tampered"), "version 2 plus a backdoor\n").unwrap();
    fs::set_permissions(s.p("usr/bin/chmodded"), fs::Permissions::from_mode(0o4755)).unwrap();
    // a reinstall of the same version: same content, a new inode renamed into place
    fs::write(s.outside.path().join("new"), "version 1\n").unwrap();
    fs::copy(
        s.outside.path().join("new"),
        s.p("usr/bin/.reinstalled.dpkg-new"),
    )
    .unwrap();
    fs::rename(
        s.p("usr/bin/.reinstalled.dpkg-new"),
        s.p("usr/bin/reinstalled"),
    )
    .unwrap();
    s.wait_for("four changes", 10, |st| st["status"]["violations"] == 4);

    let out = s.ctl(&[
        "--json",
        "integrity",
        "accept",
        "--from-dpkg",
        "--dpkg-admin",
        admin.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "some were refused");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accepted: Vec<&str> = v["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(accepted.len(), 2, "{v}");
    assert!(accepted.contains(&s.p("usr/bin/upgraded").to_str().unwrap()));
    assert!(accepted.contains(&s.p("usr/bin/reinstalled").to_str().unwrap()));
    let why = |f: &str| {
        v["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == s.p("usr/bin").join(f).display().to_string())
            .map(|r| r["why"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        why("tampered").contains("does not match package demo"),
        "{v}"
    );
    assert!(
        why("chmodded").contains("does not vouch for permissions"),
        "{v}"
    );
    let left = s.violations();
    assert_eq!(
        left.keys().cloned().collect::<Vec<_>>(),
        [
            s.p("usr/bin/chmodded").display().to_string(),
            s.p("usr/bin/tampered").display().to_string()
        ]
    );
}

#[test]
fn an_inotify_overflow_becomes_a_rescan_and_loses_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to shrink fs.inotify.max_queued_events");
        return;
    }
    let knob = "/proc/sys/fs/inotify/max_queued_events";
    let old = fs::read_to_string(knob).unwrap();
    // the limit is taken when an inotify instance is made: shrink it while the daemon starts
    fs::write(knob, "16").unwrap();
    let s = Setup::start_with("", |t| fs::create_dir_all(t.join("d")).unwrap());
    s.wait_for("the watcher", 10, |st| st["status"]["watches"] != 0);
    fs::write(knob, old.trim()).unwrap();
    ok(s.ctl(&["integrity", "init"]));
    for i in 0..300 {
        fs::write(s.p(&format!("d/f{i}")), format!("{i}\n")).unwrap();
    }
    s.wait_for("all 300 added files", 30, |st| {
        st["status"]["violations"] == 300
    });
    let st = s.status();
    assert!(st["status"]["rescans"].as_u64().unwrap() >= 1, "{st}");
    let ev = ok(s.ctl(&["--json", "integrity", "events", "-n", "1000"])).stdout;
    let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
    let ev = ev["events"].clone();
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "rescan" && e["actual"].as_str().unwrap().contains("overflowed")),
        "{ev}"
    );
    assert!(s.d.log().contains("rescanning set tree"), "{}", s.d.log());
}

#[test]
fn a_baseline_edited_truncated_or_interrupted_is_never_trusted_and_never_lost() {
    let mut s = Setup::start_with("", |t| {
        for i in 0..2000 {
            fs::write(t.join(format!("f{i}")), format!("file {i}\n")).unwrap();
        }
    });
    ok(s.ctl(&["integrity", "init"]));
    fs::write(s.p("f0"), "changed\n").unwrap();
    ok(s.ctl(&["integrity", "init"])); // so there is a previous generation
    let db = s.state.path().join("baseline.db");
    let prev = s.state.path().join("baseline.db.prev");
    let good = fs::read(&db).unwrap();
    let prev_bytes = fs::read(&prev).unwrap();

    // one recorded hash edited offline
    {
        use sha2::Digest;
        let h = sha2::Sha256::digest(b"file 7\n");
        let at = good
            .windows(32)
            .position(|w| w == h.as_slice())
            .expect("the hash of f7 in the baseline");
        let mut edited = good.clone();
        edited[at] ^= 0x55;
        s.d.kill(libc::SIGKILL);
        fs::write(&db, &edited).unwrap();
        s.d.spawn();
    }
    let out = s.ctl(&["--json", "integrity", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["status"]["state"], "tampered", "{st}");
    assert!(
        st["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("changed outside hardend"),
        "{st}"
    );
    assert!(s.d.log().contains("integrity baseline not trusted"));
    let ev = ok(s.ctl(&["--json", "integrity", "events"])).stdout;
    assert!(String::from_utf8_lossy(&ev).contains("\"tampered\""));
    let out = s.ctl(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(3), "the daemon is degraded");

    // truncated: a clear error, and the previous generation untouched
    s.d.kill(libc::SIGKILL);
    fs::write(&db, &good[..good.len() / 2]).unwrap();
    s.d.spawn();
    let st = s.status();
    assert_eq!(st["status"]["state"], "error", "{st}");
    let detail = st["status"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("truncated baseline") && detail.contains("baseline.db.prev"),
        "{detail}"
    );
    assert_eq!(fs::read(&prev).unwrap(), prev_bytes);

    // SIGKILL at many points of `integrity init` (scan, write, rename): the baseline on
    // disk is always a complete one, old or new
    s.d.kill(libc::SIGKILL);
    fs::write(&db, &good).unwrap();
    s.d.spawn();
    assert_eq!(s.status()["status"]["state"], "ok");
    for delay_ms in [0u64, 5, 15, 30, 50, 80, 120, 200] {
        let mut init = Command::new(crate::common::hardenctl())
            .args(["--bus", &s.bus.address, "integrity", "init"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        s.d.kill(libc::SIGKILL);
        let _ = init.wait();
        s.d.spawn();
        let st = s.status();
        let state = st["status"]["state"].as_str().unwrap();
        assert!(
            state == "ok" || state == "violations",
            "after SIGKILL at {delay_ms} ms: {st}"
        );
        assert_eq!(
            st["status"]["entries"], 2001,
            "after SIGKILL at {delay_ms} ms"
        );
    }
}

#[test]
fn a_burst_of_20000_changes_is_all_reported_with_bounded_memory() {
    let mut s = Setup::start_with("", |t| {
        for d in 0..20 {
            fs::create_dir_all(t.join(format!("d{d}"))).unwrap();
            for i in 0..1000 {
                fs::write(t.join(format!("d{d}/f{i}")), "v1\n").unwrap();
            }
        }
    });
    ok(s.ctl(&["integrity", "init"]));
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = counter.clone();
    let addr = s.bus.address.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let conn = zbus::connection::Builder::address(addr.as_str())
                .unwrap()
                .build()
                .await
                .unwrap();
            let proxy = IntegrityProxy::new(&conn).await.unwrap();
            let mut signals = proxy.receive_integrity_violation().await.unwrap();
            ready_tx.send(()).unwrap();
            while signals.next().await.is_some() {
                c2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    });
    ready.recv().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // each file replaced at once (written outside the tree, renamed over it): a truncating
    // write would show the monitor an empty file first, a real second change it rightly
    // signals, and the count below is about losing none, not about that race
    for d in 0..20 {
        for i in 0..1000 {
            let tmp = s.outside.path().join("next");
            fs::write(&tmp, "v2\n").unwrap();
            fs::rename(&tmp, s.p(&format!("d{d}/f{i}"))).unwrap();
        }
    }
    s.wait_for("20,000 violations", 180, |st| {
        st["status"]["violations"] == 20_000
    });
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while counter.load(std::sync::atomic::Ordering::Relaxed) < 20_000
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        counter.load(std::sync::atomic::Ordering::Relaxed),
        20_000,
        "one IntegrityViolation signal per changed file"
    );
    let pid = s.d.child.as_ref().unwrap().id();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    eprintln!(
        "daemon peak RSS after 20,000 violations: {} MiB",
        hwm_kb / 1024
    );
    assert!(hwm_kb < 200 * 1024, "peak RSS {hwm_kb} kB");
    s.restart();
}

/// The `[identity]` section of a daemon using the TPM at TCTI, its keys in KEYS.
fn tpm_identity(tcti: &str, keys: &Path) -> String {
    format!(
        "[identity]\ntcti = \"{tcti}\"\ndir = \"{}\"\n",
        keys.display()
    )
}

#[test]
fn with_a_tpm_the_baseline_key_is_sealed_and_never_bypassed() {
    let sw = crate::common::swtpm::Swtpm::start();
    let keys = tempfile::tempdir().unwrap();
    let identity = |tcti: &str| tpm_identity(tcti, keys.path());
    let mut s = Setup::start_with(&identity(&sw.tcti()), |t| {
        fs::write(t.join("f"), "one\n").unwrap();
    });
    ok(s.ctl(&["integrity", "init"]));
    assert_eq!(s.status()["status"]["key"], "tpm");
    assert!(s.state.path().join("mac-key.sealed.priv").exists());
    assert!(
        !s.state.path().join("mac-key").exists(),
        "no key on disk in the clear"
    );
    // the sealed key survives a restart (unsealed again by the same TPM)
    s.restart();
    assert_eq!(s.status()["status"]["state"], "ok");

    // another TPM cannot unseal it: the baseline is not trusted, nothing falls back
    let other = crate::common::swtpm::Swtpm::start();
    let cfg = s.d.path("hardend.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, text.replace(&sw.tcti(), &other.tcti())).unwrap();
    s.restart();
    let st = s.status();
    assert_eq!(st["status"]["state"], "error", "{st}");
    assert!(
        st["status"]["detail"].as_str().unwrap().contains("sealed"),
        "{st}"
    );
    // and without a TPM at all, the file key is not an escape hatch
    fs::write(&cfg, text.replace(&sw.tcti(), "none")).unwrap();
    s.restart();
    let st = s.status();
    assert_eq!(st["status"]["state"], "tampered", "{st}");
    assert!(
        st["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("protected by a TPM-sealed key"),
        "{st}"
    );
    assert!(!s.state.path().join("mac-key").exists());
}

/// The offline attacker (the disk edited while the device is off, no TPM owner
/// authorization): an older baseline generation put back, the sealed key swapped for a key
/// file of their own, a TPM that does not answer at init. Each ends `tampered` or refused.
#[test]
fn with_a_tpm_a_rollback_or_a_key_file_put_in_offline_is_tampered() {
    let sw = crate::common::swtpm::Swtpm::start();
    let keys = tempfile::tempdir().unwrap();
    let identity = |tcti: &str| tpm_identity(tcti, keys.path());
    // a TPM that does not answer at init: refused, and no key file made instead
    let dead = "swtpm:host=127.0.0.1,port=9";
    let mut s = Setup::start_with(&identity(dead), |t| {
        fs::write(t.join("f"), "one\n").unwrap();
    });
    let out = s.ctl(&["integrity", "init"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!s.state.path().join("mac-key").exists());
    assert!(!s.state.path().join("baseline.db").exists());
    let cfg = s.d.path("hardend.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    let with_tpm = text.replace(dead, &sw.tcti());
    fs::write(&cfg, &with_tpm).unwrap();
    s.restart();
    ok(s.ctl(&["integrity", "init"]));
    let g1 = s.status()["status"]["generation"].as_u64().unwrap();
    assert!(g1 > 0);
    fs::write(s.p("f"), "two (a security update)\n").unwrap();
    s.wait_for("the change", 10, |st| st["status"]["violations"] == 1);
    ok(s.ctl(&["integrity", "accept", s.p("f").to_str().unwrap()]));
    assert_eq!(s.status()["status"]["generation"], g1 + 1);
    s.restart();
    assert_eq!(s.status()["status"]["state"], "ok");

    // rollback: the previous generation copied over the current one (and the old file back)
    let db = s.state.path().join("baseline.db");
    let current = fs::read(&db).unwrap();
    fs::copy(s.state.path().join("baseline.db.prev"), &db).unwrap();
    fs::write(s.p("f"), "one\n").unwrap();
    s.restart();
    let st = s.status();
    assert_eq!(st["status"]["state"], "tampered", "{st}");
    let detail = st["status"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "baseline generation {g1}, but the TPM's monotonic counter is at {}",
            g1 + 1
        )) && detail.contains("rollback"),
        "{st}"
    );
    fs::write(&db, &current).unwrap();
    s.restart();
    assert_eq!(
        s.status()["status"]["state"],
        "violations",
        "the old file is seen again"
    );

    // downgrade: the sealed key deleted, a key file and a file-keyed baseline made with the
    // TPM configured away, then the TPM configuration restored
    for f in ["mac-key.sealed.pub", "mac-key.sealed.priv"] {
        fs::remove_file(s.state.path().join(f)).unwrap();
    }
    fs::write(&cfg, text.replace(dead, "none")).unwrap();
    s.restart();
    ok(s.ctl(&["integrity", "init"]));
    assert_eq!(s.status()["status"]["key"], "file");
    fs::write(&cfg, &with_tpm).unwrap();
    s.restart();
    let st = s.status();
    assert_eq!(st["status"]["state"], "tampered", "{st}");
    assert!(
        st["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("a TPM is configured and there is no sealed key"),
        "{st}"
    );
    // and a new sealed key is refused while the TPM still holds the old key's counter
    let out = s.ctl(&["integrity", "init"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the sealed key is gone while the TPM still holds hardend's baseline counter"),
        "{err}"
    );
    assert!(!s.state.path().join("mac-key.sealed.priv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_dpkg_run_only_what_dpkg_does_not_vouch_for_is_alerted() {
    let s = Setup::start_with("", |t| {
        fs::write(t.join("pkgfile"), "version 1\n").unwrap();
        fs::write(t.join("other"), "version 1\n").unwrap();
        fs::write(t.join("purged.conf"), "old package\n").unwrap();
        fs::write(t.join("admins-rule"), "the admin's own file\n").unwrap();
    });
    ok(s.ctl(&["integrity", "init"]));
    let admin = tempfile::tempdir().unwrap();
    fs::create_dir_all(admin.path().join("info")).unwrap();
    let rel = |f: &str| s.p(f).strip_prefix("/").unwrap().display().to_string();
    fs::write(
        admin.path().join("info/demo.md5sums"),
        format!(
            "{}  {}\n{}  {}\n",
            md5_hex(b"version 2\n"),
            rel("pkgfile"),
            md5_hex(b"version 2\n"),
            rel("other")
        ),
    )
    .unwrap();
    let conn = zbus::connection::Builder::address(s.bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let proxy = IntegrityProxy::new(&conn).await.unwrap();
    let mut signals = proxy.receive_integrity_violation().await.unwrap();
    let old_list = admin.path().join("info/old.list");
    fs::write(&old_list, format!("{}\n", s.p("purged.conf").display())).unwrap();
    // what the dpkg hooks do around an upgrade
    let admin_dir = admin.path().to_str().unwrap();
    ok(s.ctl(&["integrity", "dpkg-hold", "--dpkg-admin", admin_dir]));
    fs::write(s.p("pkgfile"), "version 2\n").unwrap();
    fs::write(s.p("other"), "not what the package ships\n").unwrap();
    // dpkg purges package old (its file and its list go); the attacker removes the admin's
    // file under cover of the run: no package ever listed it
    fs::remove_file(s.p("purged.conf")).unwrap();
    fs::remove_file(&old_list).unwrap();
    fs::remove_file(s.p("admins-rule")).unwrap();
    s.wait_for("recorded while dpkg runs", 10, |st| {
        st["status"]["violations"] == 4
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), signals.next())
            .await
            .is_err(),
        "but no alert yet"
    );
    let out = s.ctl(&[
        "integrity",
        "accept",
        "--from-dpkg",
        "--dpkg-admin",
        admin.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let mut alerted = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let sig = tokio::time::timeout(Duration::from_secs(5), signals.next())
            .await
            .expect("the alerts for what dpkg does not vouch for")
            .unwrap();
        alerted.insert(sig.args().unwrap().path().to_string());
    }
    let want: std::collections::BTreeSet<String> = [s.p("other"), s.p("admins-rule")]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(alerted, want);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), signals.next())
            .await
            .is_err(),
        "and none for the package's own file or the purged package's removal"
    );
    let v = s.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("no package listed it when this dpkg run began"),
        "{text}"
    );
}

#[test]
fn a_dpkg_run_before_the_first_baseline_holds_nothing_back() {
    let s = Setup::start_with("", |t| fs::write(t.join("f"), "one\n").unwrap());
    // the package's own installation runs the hooks before any baseline exists
    ok(s.ctl(&["integrity", "dpkg-hold"]));
    let _ = s.ctl(&["integrity", "accept", "--from-dpkg"]);
    ok(s.ctl(&["integrity", "init"]));
    fs::write(s.p("f"), "two\n").unwrap();
    s.wait_for("the change", 10, |st| st["status"]["violations"] == 1);
    // alerted, not held: the event log has it
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = ok(s.ctl(&["--json", "integrity", "events"])).stdout;
        let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
        let ev = ev["events"].clone();
        if ev
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "violation" && e["path"] == s.p("f").display().to_string())
        {
            break;
        }
        assert!(std::time::Instant::now() < end, "no alert: {ev}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_file_name_with_terminal_escapes_is_shown_escaped() {
    let s = Setup::start("");
    ok(s.ctl(&["integrity", "init"]));
    // a local user's file name that would move the cursor up and erase the rows above
    let evil = "x\x1b[1A\x1b[2Kgone\x07";
    fs::write(s.p(evil), "planted\n").unwrap();
    s.wait_for("the planted file", 10, |st| st["status"]["violations"] == 1);
    for args in [&["integrity", "status"][..], &["integrity", "events"][..]] {
        let out = s.ctl(args);
        assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(
            text.contains("x\\x1b[1A\\x1b[2Kgone\\x07"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn names_that_are_not_utf8_are_reported_and_accepted_exactly_and_a_missing_path_is_an_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Setup::start("");
    ok(s.ctl(&["integrity", "init"]));
    let raw = s.tree.path().join(OsStr::from_bytes(b"bad\xff"));
    let raw2 = s.tree.path().join(OsStr::from_bytes(b"also\xfe\\x41"));
    fs::write(&raw, "planted\n").unwrap();
    fs::write(&raw2, "planted\n").unwrap();
    s.wait_for("the planted files", 10, |st| {
        st["status"]["violations"] == 2
    });
    let v = s.violations();
    let wire = format!("{}/bad\\xff", s.tree.path().display());
    let wire2 = format!("{}/also\\xfe\\x5cx41", s.tree.path().display());
    assert!(v.contains_key(&wire), "{v:?}");
    assert!(v.contains_key(&wire2), "{v:?}");
    // the raw bytes on the command line, as a shell passes them
    let out = Command::new(crate::common::hardenctl())
        .arg("--bus")
        .arg(&s.bus.address)
        .args(["integrity", "accept"])
        .arg(&raw)
        .output()
        .unwrap();
    ok(out);
    // the escaped name, copied from the output
    ok(s.ctl(&["integrity", "accept", &wire2]));
    s.wait_for("both accepted", 10, |st| st["status"]["violations"] == 0);
    // a path that is nowhere: an error, not "accepted"
    let missing = s.p("no-such-file");
    let out = s.ctl(&["integrity", "accept", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not on disk and not in the baseline"), "{err}");
}

#[test]
fn a_change_made_and_reverted_during_a_dpkg_hold_is_still_logged() {
    let s = Setup::start_with("", |t| fs::write(t.join("f"), "one\n").unwrap());
    ok(s.ctl(&["integrity", "init"]));
    let admin = tempfile::tempdir().unwrap();
    fs::create_dir_all(admin.path().join("info")).unwrap();
    let hold = [
        "integrity",
        "dpkg-hold",
        "--dpkg-admin",
        admin.path().to_str().unwrap(),
    ];
    ok(s.ctl(&hold));
    fs::write(s.p("f"), "evil\n").unwrap();
    s.wait_for("the change", 10, |st| st["status"]["violations"] == 1);
    fs::write(s.p("f"), "one\n").unwrap();
    s.wait_for("the revert", 10, |st| st["status"]["violations"] == 0);
    let out = s.ctl(&[
        "integrity",
        "accept",
        "--from-dpkg",
        "--dpkg-admin",
        admin.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let path = s.p("f").display().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = ok(s.ctl(&["--json", "integrity", "events"])).stdout;
        let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
        let seen = ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "violation" && e["path"] == path.as_str());
        if seen {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never logged: {ev:#}\n{}",
            s.d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The owner of a watched file (nobody) rewrites it in a loop: root's events stay in the
/// bounded log, and the log counts what it folded.
#[test]
fn a_noisy_file_owned_by_nobody_cannot_push_roots_events_out_of_the_log() {
    if !is_root() {
        eprintln!("skipped: needs root (chown, setpriv)");
        return;
    }
    let s = Setup::start_with("max_events = 64", |t| {
        fs::write(t.join("root-file"), "one\n").unwrap();
        fs::write(t.join("mine"), "a\n").unwrap();
        std::os::unix::fs::chown(t.join("mine"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(t, None, None).unwrap();
    });
    ok(s.ctl(&["integrity", "init"]));
    fs::write(s.p("root-file"), "changed by root\n").unwrap();
    s.wait_for("root's change", 10, |st| st["status"]["violations"] == 1);
    let mine = s.p("mine");
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg("i=0; while [ $i -lt 160 ]; do echo $i > \"$1\"; sleep 0.05; i=$((i+1)); done")
        .arg("sh")
        .arg(&mine)
        .status()
        .unwrap();
    assert!(st.success());
    // the flood is over when the monitor reports the last content ("159\n") as the violation
    s.wait_for("the end of the flood", 60, |st| {
        st["violations"].as_array().is_some_and(|v| {
            v.iter()
                .any(|x| x["actual"].as_str().is_some_and(|a| a.contains("size=4")))
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let ev = ok(s.ctl(&["--json", "integrity", "events", "-n", "500"])).stdout;
    let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
    let ev = ev["events"].as_array().unwrap();
    let root_file = s.p("root-file").display().to_string();
    let mine = mine.display().to_string();
    assert!(
        ev.iter()
            .any(|e| e["path"] == root_file.as_str() && e["event"] == "violation"),
        "root's event was pushed out: {ev:?}"
    );
    let noisy = ev.iter().filter(|e| e["path"] == mine.as_str()).count();
    assert!(noisy <= 6, "{noisy} lines of the noisy file");
    let folded = ev
        .iter()
        .find(|e| {
            e["path"] == mine.as_str()
                && e["event"] == "folded"
                && e["actual"].as_str().is_some_and(|a| a.ends_with(" events"))
        })
        .unwrap_or_else(|| panic!("no fold count: {ev:?}"));
    let n: u64 = folded["actual"]
        .as_str()
        .unwrap()
        .trim_end_matches(" events")
        .parse()
        .unwrap();
    assert!(n >= 10, "{n} folded");
}

/// `mv A B` of a watched directory, accepted: changes under B/ (and deeper) are seen live,
/// under their new names, not only at the next full scan.
#[test]
fn after_an_accepted_directory_rename_changes_under_the_new_name_are_seen_live() {
    let s = Setup::start_with("", |t| {
        fs::create_dir_all(t.join("A/sub")).unwrap();
        fs::write(t.join("A/f"), "one\n").unwrap();
        fs::write(t.join("A/sub/g"), "one\n").unwrap();
    });
    ok(s.ctl(&["integrity", "init"]));
    // the attacker's variant: a new A at once, so the old name exists again (another inode)
    // when the watcher handles the rename
    fs::rename(s.p("A"), s.p("B")).unwrap();
    fs::create_dir(s.p("A")).unwrap();
    s.wait_for("the rename", 10, |st| {
        st["violations"].as_array().is_some_and(|v| {
            v.iter()
                .any(|x| x["path"].as_str().is_some_and(|p| p.ends_with("B/sub/g")))
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let paths: Vec<String> = s.violations().into_keys().collect();
    let mut args = vec!["integrity", "accept"];
    args.extend(paths.iter().map(String::as_str));
    ok(s.ctl(&args));
    s.wait_for("accepted", 10, |st| st["status"]["violations"] == 0);
    // a new A is a new directory: accept it as well, then change what moved
    ok(s.ctl(&["integrity", "accept", s.p("A").to_str().unwrap()]));
    fs::write(s.p("B/f"), "two\n").unwrap();
    fs::write(s.p("B/sub/g"), "two\n").unwrap();
    let (f, g) = (
        s.p("B/f").display().to_string(),
        s.p("B/sub/g").display().to_string(),
    );
    s.wait_for("changes under the new name", 10, |st| {
        let v = st["violations"].as_array().cloned().unwrap_or_default();
        let has = |p: &str| v.iter().any(|x| x["path"] == p);
        has(&f) && has(&g)
    });
    assert!(
        !s.violations().keys().any(|p| p.contains("/A/")),
        "nothing under the old name: {:?}",
        s.violations()
    );
}

/// The daemon under both attacks for 60 s: nobody appends to a watched file it owns one byte
/// at a time (it never holds still for a read), and a character device (1:5, endless if it
/// were read) is swapped in and out at a watched path. Scan and Accept keep completing (each
/// bounded by `timeout`: a hang fails the test), and the daemon is alive at the end.
#[test]
fn sixty_seconds_of_a_growing_file_and_a_device_swap_hang_and_kill_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod, setpriv)");
        return;
    }
    let mut s = Setup::start_with("", |t| {
        fs::set_permissions(t, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.join("grows"), "0").unwrap();
        fs::write(t.join("swapped"), "a regular file\n").unwrap();
        fs::write(t.join("accepted"), "v0\n").unwrap();
    });
    sh(&format!("chown nobody: {}", s.p("grows").display()));
    ok(s.ctl(&["integrity", "init"]));
    // niced: the attack runs flat out whenever the CPU is free, without starving the tests
    // that share this machine
    let grower = Command::new("nice")
        .args([
            "-n",
            "19",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "while :; do printf x >> '{}'; done",
            s.p("grows").display()
        ))
        .spawn()
        .unwrap();
    let swapper = Command::new("nice")
        .args(["-n", "19", "sh", "-c"])
        .arg(format!(
            "while :; do rm -f '{p}'; mknod '{p}' c 1 5; rm -f '{p}'; echo r > '{p}'; done",
            p = s.p("swapped").display()
        ))
        .spawn()
        .unwrap();
    let bounded = |args: &[&str]| {
        Command::new("timeout")
            .arg("60")
            .arg(crate::common::hardenctl())
            .args(args)
            .env("HARDEND_BUS", &s.bus.address)
            .output()
            .unwrap()
    };
    let end = std::time::Instant::now() + Duration::from_secs(60);
    let (mut scans, mut accepts) = (0, 0);
    while std::time::Instant::now() < end {
        let out = bounded(&["integrity", "scan"]);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "scan: {out:?}\n{}",
            s.d.log()
        );
        scans += 1;
        fs::write(s.p("accepted"), format!("v{accepts}\n")).unwrap();
        let out = bounded(&["integrity", "accept", s.p("accepted").to_str().unwrap()]);
        assert!(out.status.success(), "accept: {out:?}\n{}", s.d.log());
        accepts += 1;
    }
    for mut c in [grower, swapper] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let st = s.status();
    assert!(
        st["status"]["state"] == "ok" || st["status"]["state"] == "violations",
        "{st}"
    );
    let alive = s.d.child.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(alive, "the daemon exited\n{}", s.d.log());
    eprintln!("{scans} scans and {accepts} accepts completed under attack");
}

/// Offline: the baseline and its previous generation deleted so that the next `init` takes
/// the attacker's files in. The key is still there, so this is a deleted baseline
/// (`tampered`), not a device that never had one.
#[test]
fn a_deleted_baseline_is_tampered_not_missing() {
    let mut s = Setup::start_with("", |t| fs::write(t.join("f"), "one\n").unwrap());
    ok(s.ctl(&["integrity", "init"]));
    ok(s.ctl(&["integrity", "init"])); // a .prev too
    for f in ["baseline.db", "baseline.db.prev"] {
        fs::remove_file(s.state.path().join(f)).unwrap();
    }
    s.restart();
    let st = s.status();
    assert_eq!(st["status"]["state"], "tampered", "{st}");
    assert!(
        st["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("the baseline is gone, but its key"),
        "{st}"
    );
}
