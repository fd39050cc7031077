//! A hostile local user (`nobody`) against a running daemon: a FIFO where records go, a
//! forged record, CheckProfile as an oracle on root's files, a flood of TPM checks; and a
//! process that installs a filter of its own under a genuine-looking record. The daemon
//! keeps answering, reports the truth, and stops on SIGTERM.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::swtpm::Swtpm;
use crate::common::*;

const SLEEPER: &str = "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\n[seccomp]\nallow = [\"@system-service\"]\n";

fn root_only() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root to act as nobody");
        return false;
    }
    true
}

/// A call straight over the bus as nobody (busctl-like, through dbus-send).
fn nobody_call(d: &TestDaemon, iface_method: &str, args: &[&str]) -> Output {
    Command::new("dbus-send")
        .uid(65534)
        .gid(65534)
        .arg(format!("--bus={}", d.bus))
        .args(["--print-reply", "--dest=org.hardend1", "/org/hardend1"])
        .arg(format!("org.hardend1.{iface_method}"))
        .args(args)
        .output()
        .unwrap()
}

/// The hang detector: `hardenctl status` answers within 10 s (generous: not a timing test).
fn answers(d: &TestDaemon) -> serde_json::Value {
    let mut c = Command::new(hardenctl());
    c.arg("--bus").arg(&d.bus).args(["--json", "status"]);
    let mut child = c.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(_st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "the daemon stopped answering");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo touches no other memory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
}

/// A process of nobody's, alive, with no_new_privs: what an attacker dresses up.
fn nobody_sleeper() -> std::process::Child {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap()
}

fn start_time(pid: u32) -> u64 {
    hardend::confine::record::process_start_time(pid).unwrap()
}

/// Waits until the daemon ran at least one more verification pass (verify_interval = 1).
fn one_pass() {
    std::thread::sleep(Duration::from_millis(2500));
}

#[test]
fn fifos_where_records_go_do_not_hang_the_daemon_and_sigterm_still_stops_it() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let mut d = TestDaemon::start(&bus, "verify_interval = 1", "");
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
    let mut genuine = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    d.wait_state("sleeper.service", confined_state());
    // nobody's FIFOs: named like a live record of its own process, like the genuine
    // unit's record, and like any record
    let rec = d.records_dir();
    let mine = nobody_sleeper();
    let g = genuine.id();
    for name in [
        format!("{}-{}.AAAAAA.json", mine.id(), start_time(mine.id())),
        format!("{}-{}.BBBBBB.json", g, start_time(g)),
        "zzz.json".to_string(),
    ] {
        let out = Command::new("mkfifo")
            .uid(65534)
            .gid(65534)
            .arg(rec.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    one_pass();
    assert_eq!(answers(&d)["state"], "ok");
    let s = d.wait_state("sleeper.service", confined_state());
    assert_eq!(s["pid"], g, "the genuine unit is still verified");
    // a restarted daemon comes up past them (TestDaemon::spawn waits for an answer)
    d.kill(libc::SIGTERM);
    d.spawn();
    assert_eq!(answers(&d)["state"], "ok");
    // SIGTERM ends it promptly
    let pid = d.child.as_ref().unwrap().id();
    let t = Instant::now();
    // SAFETY: kill with a valid pid and signal number touches no memory.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let mut child = d.child.take().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "SIGTERM did not stop it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    genuine.kill().unwrap();
    let _ = genuine.wait();
    let mut mine = mine;
    mine.kill().unwrap();
    let _ = mine.wait();
}

#[test]
fn a_forged_record_assigns_nothing_and_fools_nothing() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
    let mut genuine = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    let before = d.wait_state("sleeper.service", confined_state());
    // nobody copies the genuine record onto its own NNP process, once naming the assigned
    // unit, once sshd.service with a profile path into /etc
    let rec_dir = d.records_dir();
    let genuine_rec = fs::read_dir(&rec_dir)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", genuine.id()))
        })
        .unwrap()
        .path();
    let mut mine = nobody_sleeper();
    let (pid, start) = (mine.id(), start_time(mine.id()));
    for (n, (unit, profile)) in [
        ("sleeper.service", "sleeper"),
        ("sshd.service", "/etc/shadow"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(&genuine_rec).unwrap()).unwrap();
        v["pid"] = pid.into();
        v["start_time"] = start.into();
        v["unit"] = unit.into();
        v["profile"] = profile.into();
        let p = rec_dir.join(format!("{pid}-{start}.forged{n}.json"));
        fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    one_pass();
    let v = d.ctl_json(&["services"]);
    let units: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["sleeper.service"], "no assignment from a record");
    let s = d.wait_state("sleeper.service", confined_state());
    assert_eq!(s["pid"], before["pid"], "the genuine process, not nobody's");
    assert_eq!(answers(&d)["state"], "ok");
    assert!(
        !d.log().contains("/etc/shadow"),
        "the record's profile path was never used"
    );
    mine.kill().unwrap();
    let _ = mine.wait();
    genuine.kill().unwrap();
    let _ = genuine.wait();
}

/// A process with no_new_privs and a seccomp filter of its own (any filter: here hardend's
/// for an allow-everything profile), under a record that claims the assigned profile: the
/// kernel's program is not the profile's, so it is not enforced.
#[test]
fn a_filter_that_is_not_the_profiles_is_not_enforced() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
    fs::write(
        d.path("profiles/open.toml"),
        "[landlock]\nread_exec = [\"/usr/bin/sleep\", \"/usr/lib\", \"/usr/lib64\"]\nread = [\"/etc/ld.so.cache\"]\n[seccomp]\nallow = [\"@known\"]\n",
    )
    .unwrap();
    // the genuine record of a sleeper, to copy
    let mut genuine = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    d.wait_state("sleeper.service", confined_state());
    let rec_dir = d.records_dir();
    let genuine_rec = fs::read_dir(&rec_dir)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", genuine.id()))
        })
        .unwrap()
        .path();
    let record = fs::read(&genuine_rec).unwrap();
    genuine.kill().unwrap();
    let _ = genuine.wait();
    // the impostor: confined by "open", dressed in the sleeper's record (root-owned)
    let mut impostor = d.start_unassigned("sleeper.service", "open", &["sleep", "30"]);
    for _ in 0..200 {
        if fs::read_to_string(format!("/proc/{}/comm", impostor.id()))
            .unwrap_or_default()
            .trim()
            == "sleep"
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (pid, start) = (impostor.id(), start_time(impostor.id()));
    for e in fs::read_dir(&rec_dir).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{pid}-"))
        {
            fs::remove_file(e.path()).unwrap();
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(&record).unwrap();
    v["pid"] = pid.into();
    v["start_time"] = start.into();
    fs::write(
        rec_dir.join(format!("{pid}-{start}.dressed.json")),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let s = d.wait_state("sleeper.service", "not-enforced");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("is the program profile sleeper compiles to"),
        "{s}"
    );
    let (nnp, seccomp) = proc_confinement(pid);
    assert_eq!(
        (nnp.as_str(), seccomp.as_str()),
        ("1", "2"),
        "what /proc alone shows"
    );
    impostor.kill().unwrap();
    let _ = impostor.wait();
}

#[test]
fn check_profile_tells_nobody_nothing_about_root_files_and_never_blocks() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let secret = d.path("secret.toml");
    fs::write(&secret, "name = \"s3cr3t-value\"\n[landlock\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let fifo = d.path("fifo.toml");
    mkfifo(&fifo);
    // a root-only profile on the profile path
    let private = d.path("profiles/private.toml");
    fs::write(&private, "description = \"hidden-detail\"\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let mut answers_seen = Vec::new();
    for arg in [
        "/etc/shadow".to_string(),
        secret.display().to_string(),
        fifo.display().to_string(),
        "/nonexistent/x.toml".to_string(),
        "private".to_string(),
    ] {
        let t = Instant::now();
        let out = nobody_call(&d, "Manager.CheckProfile", &[&format!("string:{arg}")]);
        assert!(t.elapsed() < Duration::from_secs(10), "{arg}: blocked");
        let reply = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(reply.contains("boolean false"), "{arg}: {reply}");
        for leak in ["root:", "s3cr3t", "hidden-detail", "line", ":1:", ":2:"] {
            assert!(!reply.contains(leak), "{arg}: {leak} in {reply}");
        }
        // the reply without dbus-send's header line (serials and times differ)
        let body: String = reply.lines().skip(1).collect::<Vec<_>>().join("\n");
        answers_seen.push(body.replace(&arg, "ARG"));
    }
    // whether a path exists is not told either: every path gets the same answer
    assert_eq!(answers_seen[0], answers_seen[3]);
    assert_eq!(answers_seen[1], answers_seen[3]);
    assert!(
        answers_seen[4].contains("not readable by every user"),
        "{}",
        answers_seen[4]
    );
    // a document is checked, its includes by name from the profile path
    let out = nobody_call(
        &d,
        "Manager.CheckProfileDocument",
        &[
            "string:include = [\"base\"]\n[landlock]\nread = [\"/srv\"]\n",
            "string:mine.toml",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("boolean true"));
    let out = nobody_call(
        &d,
        "Manager.CheckProfileDocument",
        &["string:include = [\"/etc/shadow\"]\n", "string:mine.toml"],
    );
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.contains("boolean false") && !reply.contains("root:"),
        "{reply}"
    );
    // root still gets the real answer about a path, and a FIFO does not block it
    let t = Instant::now();
    let c = Command::new("dbus-send")
        .arg(format!("--bus={}", d.bus))
        .args(["--print-reply", "--dest=org.hardend1", "/org/hardend1"])
        .arg("org.hardend1.Manager.CheckProfile")
        .arg(format!("string:{}", fifo.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&c.stdout).to_string();
    let ok = err.contains("boolean true");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(!ok && err.contains("not a regular file"), "{err}");
    assert_eq!(answers(&d)["state"], "ok");
}

#[test]
fn a_flood_of_tpm_checks_by_nobody_is_rate_limited_and_root_still_signs() {
    if !root_only() {
        return;
    }
    let sw = Swtpm::start();
    let bus = TestBus::start();
    let keys = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(
        &bus,
        "",
        &format!(
            "[identity]\ntcti = \"{}\"\ndir = \"{}\"\n",
            sw.tcti(),
            keys.path().join("identity").display()
        ),
    );
    assert!(d.ctl(&["identity", "create"]).status.success());
    let mut limited = 0;
    let mut answered = 0;
    for _ in 0..20 {
        let out = nobody_call(&d, "Identity.Check", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            answered += 1;
        } else {
            assert!(
                err.contains("LimitsExceeded") && err.contains("rate limit"),
                "{err}"
            );
            limited += 1;
        }
    }
    assert!(answered >= 1, "some checks are answered");
    assert!(limited >= 1, "a flood is limited: {answered} answered");
    // root is not limited and signs while nobody keeps flooding
    let flood = std::thread::spawn({
        let bus = d.bus.clone();
        move || {
            for _ in 0..50 {
                let _ = Command::new("dbus-send")
                    .uid(65534)
                    .gid(65534)
                    .arg(format!("--bus={bus}"))
                    .args(["--print-reply", "--dest=org.hardend1", "/org/hardend1"])
                    .arg("org.hardend1.Identity.Check")
                    .output();
            }
        }
    });
    for _ in 0..5 {
        let out = d.ctl(&["identity", "sign", "--nonce", "00ff"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    flood.join().unwrap();
}

#[test]
fn integrity_disabled_means_no_method_changes_state() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("integrity");
    let d = TestDaemon::start(
        &bus,
        "",
        &format!(
            "[integrity]\nenabled = false\ndir = \"{}\"\n",
            dir.display()
        ),
    );
    for args in [
        &["integrity", "init"][..],
        &["integrity", "scan"][..],
        &["integrity", "accept", "/etc/hostname"][..],
        &["integrity", "accept", "--from-dpkg"][..],
    ] {
        let out = d.ctl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("enabled = false"), "{args:?}: {err}");
    }
    assert!(!dir.exists(), "nothing was created");
}
