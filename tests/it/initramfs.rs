//! The initramfs local-top script that opens the verity root (units/initramfs/local-top),
//! run by `sh` with stub tools: it parses hardend.verity.* parameters, calls hardenctl with
//! the right arguments, boots from /dev/mapper/hardend-root, and fails closed (panic, no
//! ROOT change) on anything missing or wrong. The real boot path is for the VM tests.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

struct Run {
    code: Option<i32>,
    hardenctl_args: String,
    panic: String,
    param_conf: String,
}

fn stub(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/initramfs/local-top");
/// The script's production entry point, its last line: the kernel command line and the real
/// param.conf, nothing from the environment.
const ENTRY: &str = "hardend_verity \"$(cat /proc/cmdline)\" /conf/param.conf";

/// The script with its entry point replaced by one that takes the command line and the
/// param.conf path as arguments: the same function, called by the test.
fn test_entry(dir: &Path) -> std::path::PathBuf {
    let text = fs::read_to_string(SCRIPT).unwrap();
    let body = text
        .trim_end()
        .strip_suffix(ENTRY)
        .expect("the script ends with its production entry point");
    let p = dir.join("local-top-test");
    fs::write(&p, format!("{body}hardend_verity \"$1\" \"$2\"\n")).unwrap();
    p
}

fn run(cmdline: &str, hardenctl_ok: bool) -> Run {
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let log = d.path().display();
    stub(
        &bin,
        "hardenctl",
        &format!(
            "echo \"$*\" > {log}/hardenctl.args\n{}",
            if hardenctl_ok {
                "exit 0"
            } else {
                "echo 'verity open: root hash mismatch' >&2; exit 1"
            }
        ),
    );
    stub(&bin, "panic", &format!("echo \"$*\" > {log}/panic"));
    stub(
        &bin,
        "blkid",
        "for a; do last=$a; done; echo \"/dev/stub-$last\"",
    );
    stub(&bin, "modprobe", "exit 0");
    let out = Command::new("sh")
        .arg(test_entry(d.path()))
        .arg(cmdline)
        .arg(d.path().join("param.conf"))
        // what the kernel would hand init for `IFS=x HARDEND_PARAM_CONF=/dev/null` on its
        // command line: the script must not care
        .env("IFS", "x")
        .env("HARDEND_PARAM_CONF", "/dev/null")
        .env("HARDEND_CMDLINE", "")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    let read = |f: &str| fs::read_to_string(d.path().join(f)).unwrap_or_default();
    Run {
        code: out.status.code(),
        hardenctl_args: read("hardenctl.args").trim().to_string(),
        panic: read("panic"),
        param_conf: read("param.conf"),
    }
}

const HASH: &str = "4392712ba01368efdf14b05c76f9e4df0d53664630b5d48632ed17a137f39076";

#[test]
fn without_a_root_hash_it_does_nothing() {
    let r = run("root=/dev/vda ro quiet", true);
    assert_eq!(r.code, Some(0));
    assert_eq!(r.hardenctl_args, "");
    assert_eq!(r.param_conf, "");
}

#[test]
fn it_opens_the_verity_root_and_boots_from_it() {
    let r = run(
        &format!(
            "root=/dev/vda hardend.verity.roothash={HASH} hardend.verity.data=PARTUUID=aaa hardend.verity.hash=PARTUUID=bbb hardend.verity.hash_offset=4096 hardend.verity.options=restart,check_at_most_once"
        ),
        true,
    );
    assert_eq!(r.code, Some(0), "{}", r.panic);
    assert_eq!(
        r.hardenctl_args,
        format!(
            "verity open hardend-root /dev/stub-PARTUUID=aaa /dev/stub-PARTUUID=bbb {HASH} --hash-offset 4096 --on-corruption restart --check-at-most-once"
        )
    );
    assert_eq!(r.param_conf, "ROOT=/dev/mapper/hardend-root\n");
    assert_eq!(r.panic, "");
}

#[test]
fn every_failure_stops_the_boot_and_never_uses_the_raw_device() {
    let cases = [
        (
            format!("hardend.verity.roothash={HASH} hardend.verity.data=UUID=x"),
            false,
            "root hash mismatch",
        ),
        (
            format!("hardend.verity.roothash={HASH}"),
            true,
            "hardend.verity.data is not",
        ),
        (
            "hardend.verity.roothash=xyz hardend.verity.data=UUID=x".to_string(),
            true,
            "not hex",
        ),
        (
            format!(
                "hardend.verity.roothash={HASH} hardend.verity.data=UUID=x hardend.verity.options=fast"
            ),
            true,
            "unknown hardend.verity.options entry 'fast'",
        ),
        (
            format!("hardend.verity.roothash={HASH} hardend.verity.data=sda1"),
            true,
            "bad device 'sda1'",
        ),
        // an empty roothash appended by whoever can edit the command line: not "no verity"
        (
            format!(
                "hardend.verity.roothash={HASH} hardend.verity.data=UUID=x hardend.verity.roothash="
            ),
            true,
            "hardend.verity.roothash is given more than once",
        ),
        (
            "hardend.verity.roothash= hardend.verity.data=UUID=x".to_string(),
            true,
            "hardend.verity.roothash is empty",
        ),
        (
            format!(
                "hardend.verity.roothash={HASH} hardend.verity.data=UUID=x hardend.verity.data=UUID=y"
            ),
            true,
            "hardend.verity.data is given more than once",
        ),
        (
            "hardend.verity.data=UUID=x".to_string(),
            true,
            "no hardend.verity.roothash",
        ),
        (
            format!(
                "hardend.verity.roothash={HASH} hardend.verity.data=UUID=x hardend.verity.rothash=aa"
            ),
            true,
            "unknown parameter hardend.verity.rothash",
        ),
        (
            format!(
                "hardend.verity.roothash={HASH} hardend.verity.data=UUID=x hardend.verity.hash_offset=4k"
            ),
            true,
            "hash_offset is not a number",
        ),
    ];
    for (cmdline, hardenctl_ok, why) in cases {
        let r = run(&cmdline, hardenctl_ok);
        assert_ne!(r.code, Some(0), "{cmdline}");
        assert!(r.panic.contains(why), "{cmdline}: {}", r.panic);
        assert!(r.panic.contains("refusing to boot an unverified root"));
        assert_eq!(r.param_conf, "", "{cmdline}: ROOT must not change");
    }
}

#[test]
fn the_production_script_reads_nothing_from_the_environment() {
    // the unmodified script, with the variables the old script honoured: it reads this
    // host's /proc/cmdline (no hardend.verity.* there) and does nothing
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    fs::create_dir(&bin).unwrap();
    stub(
        &bin,
        "hardenctl",
        &format!("echo called > {}/hardenctl.args", d.path().display()),
    );
    stub(&bin, "panic", "exit 0");
    let host = fs::read_to_string("/proc/cmdline").unwrap();
    assert!(
        !host.contains("hardend.verity."),
        "this test needs a host booted without verity"
    );
    let out = Command::new("sh")
        .arg(SCRIPT)
        .env(
            "HARDEND_CMDLINE",
            format!("hardend.verity.roothash={HASH} hardend.verity.data=/dev/null"),
        )
        .env("HARDEND_PARAM_CONF", d.path().join("param.conf"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !d.path().join("hardenctl.args").exists(),
        "the environment was obeyed"
    );
    assert!(!d.path().join("param.conf").exists());
}
