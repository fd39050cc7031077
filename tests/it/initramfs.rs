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
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/units/initramfs/local-top"
        ))
        .env("HARDEND_CMDLINE", cmdline)
        .env("HARDEND_PARAM_CONF", d.path().join("param.conf"))
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
    ];
    for (cmdline, hardenctl_ok, why) in cases {
        let r = run(&cmdline, hardenctl_ok);
        assert_ne!(r.code, Some(0), "{cmdline}");
        assert!(r.panic.contains(why), "{cmdline}: {}", r.panic);
        assert!(r.panic.contains("refusing to boot an unverified root"));
        assert_eq!(r.param_conf, "", "{cmdline}: ROOT must not change");
    }
}
