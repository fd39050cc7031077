//! hardend-exec as a wrapper: the enforcement record describes the exec'd process, inherited
//! fds reach the program, and every failure stops the command from running at all.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;

use crate::common::*;
use hardend::confine::LandlockStatus;
use hardend::confine::landlock::kernel_abi;
use hardend::confine::record::EnforcementRecord;
use hardend::profile::ProfileLoader;

fn records(sb: &Sandbox) -> Vec<EnforcementRecord> {
    let Ok(entries) = fs::read_dir(sb.runtime_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| serde_json::from_slice(&fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

#[test]
fn record_names_the_execd_pid_and_the_current_profile_hash() {
    let sb = Sandbox::new();
    let p = sb.probe_profile("rec", "", "[seccomp]\nallow = [\"@system-service\"]");
    let out = sb.run(&p, &["--unit", "probe.service"], &["pid"]);
    let r = ran(&out, 1);
    let pid: u32 = r[0].strip_prefix("ok ").unwrap().parse().unwrap();
    let recs = records(&sb);
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(
        rec.pid, pid,
        "the record's pid is the program's pid (exec in place)"
    );
    assert_eq!(rec.unit.as_deref(), Some("probe.service"));
    let profile = ProfileLoader::new(vec![shipped_profiles()])
        .load_file(&p)
        .unwrap();
    assert_eq!(rec.profile, "rec");
    assert_eq!(rec.profile_hash, profile.policy_hash());
    assert!(rec.confinement.no_new_privs);
    assert!(rec.confinement.seccomp.configured);
    assert_eq!(rec.confinement.landlock.kernel_abi, kernel_abi());
    assert_eq!(rec.command[0], probe().display().to_string());
    let names: Vec<String> = fs::read_dir(sb.runtime_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with(&EnforcementRecord::name_prefix(rec.pid, rec.start_time)),
        "record file is named by pid and start time, then a random part: {names:?}"
    );
    assert_eq!(
        EnforcementRecord::parse_name(&names[0]),
        Some((rec.pid, rec.start_time))
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(sb.runtime_dir().join(&names[0]))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only root and the writer read it");
}

#[test]
fn inherited_fd_3_is_readable_by_the_program() {
    let sb = Sandbox::new();
    fs::write(sb.path("passed.txt"), "socket-activation-stand-in").unwrap();
    let p = sb.probe_profile("fd", "", "");
    let mut cmd = sb.exec_cmd(&p, &[], &["readfd=3"]);
    // the file itself is outside every Landlock rule: only the inherited fd grants access
    with_fd3(&mut cmd, fs::File::open(sb.path("passed.txt")).unwrap());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("socket-activation-stand-in"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs something that must not start: asserts failure, the message, and that the probe
/// never ran (it would have created `marker`).
fn assert_not_started(sb: &Sandbox, profile: &std::path::Path, args: &[&str], needle: &str) {
    let marker = sb.path("marker");
    let op = format!("write={}", marker.display());
    let out = sb.run(profile, args, &[&op]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail; stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} lacks {needle:?}"
    );
    assert!(stderr.contains("not started"), "{stderr}");
    assert!(out.stdout.is_empty(), "the program ran: {:?}", out.stdout);
    assert!(!marker.exists());
    assert!(
        records(sb).is_empty(),
        "no record for a process that never ran confined"
    );
}

#[test]
fn min_abi_above_the_kernel_refuses_to_run() {
    let sb = Sandbox::new();
    let abi = kernel_abi();
    if abi < 10 {
        let p = sb.probe_profile("toonew", &format!("min_abi = {}", abi + 1), "");
        assert_not_started(&sb, &p, &[], "min_abi");
    }
    // the same through the ABI cap, which works on any kernel
    let p = sb.probe_profile("needs4", "min_abi = 4\nbind_tcp = [8080]", "");
    assert_not_started(
        &sb,
        &p,
        &["--max-landlock-abi", "3"],
        "below the profile's min_abi 4",
    );
}

#[test]
fn newer_rights_on_an_older_abi_are_partial_and_named() {
    if kernel_abi() < 6 {
        eprintln!("skipped: needs a kernel above the cap");
        return;
    }
    let sb = Sandbox::new();
    let p = sb.probe_profile("partial", "bind_tcp = [1]\nscope = [\"signal\"]", "");
    let out = sb.run(&p, &["--max-landlock-abi", "3"], &["pid"]);
    ran(&out, 1);
    let rec = &records(&sb)[0];
    let ll = &rec.confinement.landlock;
    assert_eq!(ll.status, LandlockStatus::Partial);
    assert_eq!(ll.effective_abi, 3);
    assert_eq!(ll.abi_cap, Some(3));
    let missing: Vec<(&str, u8)> = ll
        .missing
        .iter()
        .map(|m| (m.right.as_str(), m.needs_abi))
        .collect();
    assert_eq!(
        missing,
        [
            ("fs.ioctl_dev", 5),
            ("net.bind_tcp", 4),
            ("scope.abstract-unix-socket", 6),
            ("scope.signal", 6)
        ]
    );
    // and the kernel really does not enforce what is reported missing
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = ran(
        &sb.run(&p, &["--max-landlock-abi", "3"], &[&format!("bind={port}")]),
        1,
    );
    assert_eq!(r[0], "ok 0");
    // while uncapped the same profile is full and the bind is denied
    let r = ran(&sb.run(&p, &[], &[&format!("bind={port}")]), 1);
    assert_eq!(r[0], errno(libc::EACCES));
}

#[test]
fn unknown_or_invalid_profiles_and_unexecutable_programs_do_not_start() {
    let sb = Sandbox::new();
    assert_not_started(&sb, &sb.path("nope.toml"), &[], "nope.toml");
    let bad = sb.profile("bad", "[landlock]\nread = [\"relative/path\"]\n");
    assert_not_started(&sb, &bad, &[], "bad.toml:2: landlock.read");
    // the probe is not under read_exec: Landlock refuses the exec itself
    let noexec = sb.profile("noexec", "include = [\"base\"]\n[landlock]\n");
    let marker = sb.path("marker");
    let out = sb.run(&noexec, &[], &[&format!("write={}", marker.display())]);
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read_exec"));
    assert!(!marker.exists());
}

#[test]
fn bare_names_are_found_on_the_profile_path() {
    let sb = Sandbox::new();
    sb.probe_profile("byname", "", "");
    let out = std::process::Command::new(hardend_exec())
        .args(["--profile", "byname", "--profile-path"])
        .arg(format!(
            "{}:{}",
            sb.dir.path().display(),
            shipped_profiles().display()
        ))
        .arg("--runtime-dir")
        .arg(sb.runtime_dir())
        .arg("--")
        .arg(probe())
        .arg("uname")
        .output()
        .unwrap();
    assert_eq!(ran(&out, 1)[0], "ok 0");
}

#[test]
fn argv0_replaces_the_programs_first_argument() {
    let sb = Sandbox::new();
    let p = sb.profile(
        "argv0",
        "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/busybox\"]\n",
    );
    // busybox dispatches on argv[0]: with argv0 "echo" it behaves as echo
    let out = std::process::Command::new(hardend_exec())
        .args(["--profile"])
        .arg(&p)
        .arg("--profile-path")
        .arg(shipped_profiles())
        .arg("--runtime-dir")
        .arg(sb.runtime_dir())
        .args([
            "--argv0",
            "echo",
            "--",
            "/usr/bin/busybox",
            "hello",
            "world",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = &records(&sb)[0];
    assert_eq!(rec.command[0], "/usr/bin/busybox");
}

#[test]
fn no_environment_variable_makes_the_wrapper_skip_the_service() {
    // the old build-time switch: with it set, hardend-exec wrote man pages and exited 0
    // without running the service. Now the wrapper reads no variable of its own.
    let sb = Sandbox::new();
    let docs = sb.path("docs");
    let p = sb.probe_profile("nodocs", "", "");
    let out = sb
        .exec_cmd(&p, &[], &["pid"])
        .env("HARDEND_GENERATE_DOCS", &docs)
        .output()
        .unwrap();
    let r = ran(&out, 1);
    assert!(r[0].starts_with("ok "), "{r:?}");
    assert!(!docs.exists(), "nothing generated");
}
