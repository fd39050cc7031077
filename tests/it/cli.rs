//! hardenctl as a new admin meets it: a closed pipe, a missing or unexecutable program, names
//! that carry terminal escapes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::common::*;

fn ctl() -> Command {
    let mut c = Command::new(hardenctl());
    c.arg("--profile-path").arg(shipped_profiles());
    c
}

#[test]
fn a_reader_that_goes_away_ends_hardenctl_like_any_unix_tool() {
    // `hardenctl profile show base --expand | head -0`, made deterministic: the read end is
    // closed before hardenctl writes its first line
    let mut child = ctl()
        .args(["profile", "show", "base", "--expand"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
    // the same through a shell pipe: head's status, no core dump, nothing on stderr
    let sh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --profile-path {} profile show base --expand | head -1 >/dev/null",
            hardenctl(),
            shipped_profiles().display()
        ))
        .output()
        .unwrap();
    assert!(sh.status.success(), "{sh:?}");
    assert!(
        sh.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&sh.stderr)
    );
}

#[test]
fn exec_of_a_missing_program_is_127_and_of_an_unexecutable_one_126_with_the_right_hint() {
    let sb = Sandbox::new();
    let p = sb.profile("p", "include = [\"base\"]\n");
    let out = ctl()
        .args(["exec", "--profile"])
        .arg(&p)
        .args(["--", "/bin/nosuch"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("/bin/nosuch: command not found"), "{err}");
    let out = ctl()
        .args(["exec", "--profile"])
        .arg(&p)
        .args(["--", "nosuch-command-anywhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    // a file without execute permission: the profile is not the reason, and says so
    let f = sb.path("script");
    fs::write(&f, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let out = ctl()
        .args(["exec", "--profile"])
        .arg(&p)
        .arg("--")
        .arg(&f)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // (root too: execve needs some execute bit even for root)
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(
        err.contains("not executable before any confinement"),
        "{err}"
    );
    assert!(!err.contains("read_exec"), "{err}");
    // a directory
    let out = ctl()
        .args(["exec", "--profile"])
        .arg(&p)
        .args(["--", "/usr/bin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Is a directory"));
}

#[test]
fn profile_file_names_with_terminal_escapes_are_printed_escaped() {
    let sb = Sandbox::new();
    // a profile's name must be plain, so the escapes sit in its directory's name
    let dir = sb.path("ok\x1b[2K\x1b[1Agone");
    fs::create_dir(&dir).unwrap();
    let f = dir.join("fine.toml");
    fs::write(&f, "description = \"fine\"\n").unwrap();
    let out = ctl().args(["profile", "check"]).arg(&f).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("ok\\x1b[2K\\x1b[1Agone/fine.toml"), "{text}");
    // an invalid one: the error names the file escaped too
    fs::write(&f, "nonsense = 1\n").unwrap();
    let out = ctl().args(["profile", "check"]).arg(&f).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn tpm_errors_are_one_clear_line_without_the_tss_librarys_noise() {
    // nothing listens on this port: the TSS library would print ERROR:tcti: lines
    let out = Command::new(hardenctl())
        .env_remove("TSS2_LOG")
        .args(["identity", "show", "--tcti", "swtpm:host=127.0.0.1,port=9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("ERROR:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // a device that does not exist is named as such, not "response code not recognized"
    let out = Command::new(hardenctl())
        .env_remove("TSS2_LOG")
        .args(["identity", "show", "--tcti", "device:/nonexistent/tpmrm0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no TPM device at /nonexistent/tpmrm0") && err.contains("driver"),
        "{err}"
    );
}

#[test]
fn misspelt_names_get_one_suggestion_not_a_list() {
    let sb = Sandbox::new();
    let p = sb.profile(
        "typo",
        "[seccomp]\nerrno = \"EACESS\"\nallow = [\"@system-service\"]\n",
    );
    let out = ctl().args(["profile", "check"]).arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(
            "typo.toml:2: seccomp.errno: unknown errno \"EACESS\"; did you mean \"EACCES\"?"
        ),
        "{text}"
    );
    assert!(
        !text.contains("EHWPOISON"),
        "no list of every errno: {text}"
    );
    let out = ctl()
        .args(["profile", "show", "mosquito"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did you mean \"mosquitto\"?"), "{err}");
    // a bare name is looked up on the profile path, a missing file is an error (1)
    let out = ctl()
        .args(["profile", "check", "mosquitto"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ctl()
        .args(["profile", "check", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn quiet_prints_nothing_on_stdout_and_keeps_errors_and_documents() {
    let out = ctl()
        .args(["--quiet", "profile", "show", "base"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ctl()
        .args(["profile", "show", "nosuch", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    // --json wins: a script asked for the document
    let out = ctl()
        .args(["-q", "--json", "profile", "show", "base"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"]["name"], "base");
}

#[test]
fn global_options_a_command_would_ignore_are_refused() {
    for (args, needle) in [
        (
            &[
                "--bus",
                "system",
                "exec",
                "--profile",
                "base",
                "--",
                "/bin/true",
            ][..],
            "--bus does not apply",
        ),
        (
            &["verity", "dump", "/nonexistent", "--bus", "system"][..],
            "--bus does not apply",
        ),
        (
            &["status", "--profile-path", "/tmp"][..],
            "--profile-path does not apply",
        ),
        (
            &["--profile-path", "/tmp", "services"][..],
            "--profile-path does not apply",
        ),
    ] {
        let out = Command::new(hardenctl()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // the environment is not the command line: HARDEND_BUS stays usable everywhere
    let out = Command::new(hardenctl())
        .env("HARDEND_BUS", "unix:path=/nonexistent")
        .args(["--profile-path"])
        .arg(shipped_profiles())
        .args(["profile", "show", "base"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn profile_check_reports_the_errors_of_every_section_at_once() {
    let sb = Sandbox::new();
    let p = sb.profile(
        "many",
        "[landlock]\nread = [\"relative\"]\n[seccomp]\nerrno = \"EACESS\"\n[network]\nfamilies = [\"inet7\"]\n",
    );
    let out = ctl().args(["profile", "check"]).arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for needle in [
        "many.toml:2: landlock.read",
        "many.toml:4: seccomp.errno",
        "many.toml:6: network.families: unknown address family \"inet7\"; did you mean \"inet6\"?",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let out = ctl()
        .args(["--json", "profile", "check"])
        .arg(&p)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["results"][0]["errors"].as_array().unwrap().len(),
        3,
        "{v}"
    );
    assert_eq!(v["results"][0]["line"], 2);
}

#[test]
fn a_missing_input_file_is_exit_1_for_every_command_that_reads_one() {
    for args in [
        &["profile", "check", "/nonexistent/p.toml"][..],
        &["verity", "dump", "/nonexistent/hash"][..],
        &[
            "verity",
            "format",
            "/nonexistent/data",
            "/tmp/hardend-test-hash-unused",
        ][..],
        &[
            "verity",
            "verify",
            "/nonexistent/data",
            "/nonexistent/hash",
            "00",
        ][..],
        &[
            "identity",
            "verify-quote",
            "/nonexistent/quote.json",
            "--nonce",
            "00",
            "--ak-name",
            "00",
        ][..],
    ] {
        let out = Command::new(hardenctl()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("os error"), "{args:?}: {err}");
        // and usage errors are 2
        let mut bad = args.to_vec();
        bad.push("--no-such-option");
        assert_eq!(
            Command::new(hardenctl())
                .args(&bad)
                .output()
                .unwrap()
                .status
                .code(),
            Some(2),
            "{bad:?}"
        );
    }
}
