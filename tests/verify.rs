//! Verification against real processes: a process started through hardend-exec is
//! enforced; a plain one is not; a changed profile makes it stale; a record planted by
//! another user does not count; a partial Landlock ABI is reported as partial.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::process::Command;

use common::*;
use hardend::daemon::verify::{ServiceState, verify_process};
use hardend::profile::ProfileLoader;

fn sleeper_profile(sb: &Sandbox) -> std::path::PathBuf {
    sb.profile(
        "sleeper",
        "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\n[seccomp]\nallow = [\"@system-service\"]\n",
    )
}

fn hash(p: &std::path::Path) -> String {
    ProfileLoader::new(vec![shipped_profiles()])
        .load_file(p)
        .unwrap()
        .policy_hash()
}

fn start(sb: &Sandbox, profile: &std::path::Path, extra: &[&str]) -> std::process::Child {
    let c = Command::new(hardend_exec())
        .arg("--profile")
        .arg(profile)
        .arg("--profile-path")
        .arg(shipped_profiles())
        .arg("--runtime-dir")
        .arg(sb.runtime_dir())
        .args(extra)
        .args(["--", "/usr/bin/sleep", "30"])
        .spawn()
        .unwrap();
    // wait until the exec happened (the record exists and /proc shows sleep)
    for _ in 0..100 {
        let comm = fs::read_to_string(format!("/proc/{}/comm", c.id())).unwrap_or_default();
        if comm.trim() == "sleep" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c
}

#[test]
fn enforced_not_enforced_and_stale() {
    let sb = Sandbox::new();
    let p = sleeper_profile(&sb);
    let mut confined = start(&sb, &p, &[]);
    let v = verify_process(confined.id(), "sleeper", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::Enforced, "{}", v.detail);

    let mut plain = Command::new("/usr/bin/sleep").arg("30").spawn().unwrap();
    let v = verify_process(plain.id(), "sleeper", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::NotEnforced);
    assert!(v.detail.contains("no enforcement record"), "{}", v.detail);

    let v = verify_process(confined.id(), "sleeper", Ok("0000"), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::Stale);
    let v = verify_process(confined.id(), "other", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::Stale);
    assert!(
        v.detail
            .contains("runs profile sleeper but other is assigned"),
        "{}",
        v.detail
    );

    // a record copied to the plain process's name is rejected: the kernel says no filter
    let rec = fs::read_dir(sb.runtime_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut forged: serde_json::Value = serde_json::from_slice(&fs::read(&rec).unwrap()).unwrap();
    let start_time = hardend::confine::record::process_start_time(plain.id()).unwrap();
    forged["pid"] = plain.id().into();
    forged["start_time"] = start_time.into();
    let forged_path = sb
        .runtime_dir()
        .join(format!("{}-{}.json", plain.id(), start_time));
    fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let v = verify_process(plain.id(), "sleeper", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::NotEnforced, "{}", v.detail);
    assert!(v.detail.contains("no_new_privs"), "{}", v.detail);

    // a record owned by another user than the process's does not count
    if is_root() {
        std::os::unix::fs::chown(&rec, Some(65534), Some(65534)).unwrap();
        let v = verify_process(confined.id(), "sleeper", Ok(&hash(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::NotEnforced);
        assert!(v.detail.contains("owned by uid 65534"), "{}", v.detail);
    }

    confined.kill().unwrap();
    confined.wait().unwrap();
    let v = verify_process(confined.id(), "sleeper", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::Inactive);
    plain.kill().unwrap();
    plain.wait().unwrap();
}

#[test]
fn partial_landlock_is_reported_as_partial() {
    if hardend::confine::landlock::kernel_abi() < 4 {
        return;
    }
    let sb = Sandbox::new();
    let p = sb.profile(
        "netsleeper",
        "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\nbind_tcp = []\n",
    );
    let mut c = start(&sb, &p, &["--max-landlock-abi", "3"]);
    let v = verify_process(c.id(), "netsleeper", Ok(&hash(&p)), &sb.runtime_dir());
    assert_eq!(v.state, ServiceState::Partial);
    assert!(v.detail.contains("net.bind_tcp (ABI 4)"), "{}", v.detail);
    c.kill().unwrap();
    c.wait().unwrap();
}
