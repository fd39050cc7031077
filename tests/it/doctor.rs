//! `hardenctl doctor --root DIR` on an image directory: good when everything is in place,
//! and each check broken on purpose is a problem with its remedy (exit 3). The live checks
//! (daemon, records directory, kernel command line) run in the VM suite.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A root file system with hardend installed and set up: the shipped policy and profiles,
/// hardend-exec, a tss group, a baseline, a [services] unit with its drop-in.
fn image() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &[u8], mode: u32| {
        let p = root.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    put(
        "etc/hardend/hardend.toml",
        b"[identity]\ntcti = \"device:/dev/tpmrm0\"\n[services]\n\"web.service\" = \"busybox-httpd\"\n",
        0o644,
    );
    put(
        "usr/share/dbus-1/system.d/org.hardend1.conf",
        &fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("units/org.hardend1.conf")).unwrap(),
        0o644,
    );
    for e in fs::read_dir(shipped_profiles()).unwrap() {
        let e = e.unwrap();
        put(
            &format!(
                "usr/share/hardend/profiles/{}",
                e.file_name().to_string_lossy()
            ),
            &fs::read(e.path()).unwrap(),
            0o644,
        );
    }
    put("usr/libexec/hardend/hardend-exec", b"#!/bin/sh\n", 0o755);
    put("etc/group", b"root:x:0:\ntss:x:112:\n", 0o644);
    put("var/lib/hardend/integrity/baseline.db", b"baseline", 0o600);
    put(
        "etc/systemd/system/web.service.d/50-hardend.conf",
        b"[Service]\n",
        0o644,
    );
    root
}

fn doctor(root: &Path) -> (Option<i32>, Value) {
    let out = Command::new(hardenctl())
        .args(["--json", "doctor", "--root"])
        .arg(root)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

/// Breaks the image with `f`, then expects `name` to be a problem whose detail and remedy
/// contain the given words, and every other check not to be.
fn broken(name: &str, detail: &str, remedy: &str, f: impl FnOnce(&Path)) {
    let img = image();
    f(img.path());
    let (code, v) = doctor(img.path());
    assert_eq!(code, Some(3), "{name}: {v:#}");
    let c = check(&v, name);
    assert_eq!(c["state"], "problem", "{name}: {v:#}");
    assert!(
        c["detail"].as_str().unwrap().contains(detail),
        "{name}: {c}"
    );
    assert!(
        c["remedy"].as_str().unwrap().contains(remedy),
        "{name}: {c}"
    );
    for other in v["checks"].as_array().unwrap() {
        if other["name"] != name {
            assert_ne!(other["state"], "problem", "{name} broke {other}");
        }
    }
}

#[test]
fn a_set_up_image_is_good() {
    let img = image();
    let (code, v) = doctor(img.path());
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    for (name, state) in [
        ("config", "ok"),
        ("daemon", "skipped"),
        ("landlock", "ok"),
        ("records", "skipped"),
        ("dbus-policy", "ok"),
        ("tpm", "skipped"),
        ("initramfs", "skipped"),
        ("integrity", "ok"),
        ("drop-ins", "ok"),
    ] {
        assert_eq!(check(&v, name)["state"], state, "{name}: {v:#}");
    }
    // the text form: one line per check, no remedies when nothing is wrong
    let out = Command::new(hardenctl())
        .args(["doctor", "--root"])
        .arg(img.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 9, "{text}");
}

#[test]
fn each_broken_check_is_a_problem_with_its_remedy() {
    broken(
        "config",
        "hardend.toml:2:1: unknown field `nonsense`",
        "fix the file",
        |r| {
            fs::write(
                r.join("etc/hardend/hardend.toml"),
                "[daemon]\nnonsense = 1\n",
            )
            .unwrap();
        },
    );
    broken(
        "dbus-policy",
        "not the policy this hardend ships",
        "--reinstall hardend",
        |r| {
            let p = r.join("usr/share/dbus-1/system.d/org.hardend1.conf");
            let text = fs::read_to_string(&p).unwrap().replace("<deny ", "<allow ");
            fs::write(p, text).unwrap();
        },
    );
    broken(
        "dbus-policy",
        "only root may write",
        "--reinstall hardend",
        |r| {
            let p = r.join("usr/share/dbus-1/system.d/org.hardend1.conf");
            fs::set_permissions(p, fs::Permissions::from_mode(0o666)).unwrap();
        },
    );
    broken("dbus-policy", "No such file", "--reinstall hardend", |r| {
        fs::remove_file(r.join("usr/share/dbus-1/system.d/org.hardend1.conf")).unwrap();
    });
    broken("tpm", "no tss group", "tpm-udev", |r| {
        fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    });
    broken(
        "integrity",
        "no baseline",
        "hardenctl integrity init",
        |r| {
            fs::remove_file(r.join("var/lib/hardend/integrity/baseline.db")).unwrap();
        },
    );
    broken("drop-ins", "web.service", "hardenctl reload", |r| {
        fs::remove_dir_all(r.join("etc/systemd/system/web.service.d")).unwrap();
    });
    broken(
        "drop-ins",
        "hardend-exec is missing",
        "--reinstall hardend",
        |r| {
            fs::remove_file(r.join("usr/libexec/hardend/hardend-exec")).unwrap();
        },
    );
    let abi = hardend::confine::landlock::kernel_abi();
    if i64::from(abi) < hardend::profile::MAX_KNOWN_ABI {
        let min = abi + 1;
        broken(
            "landlock",
            &format!("future (min_abi {min})"),
            "newer kernel",
            |r| {
                fs::write(
                    r.join("usr/share/hardend/profiles/future.toml"),
                    format!("[landlock]\nmin_abi = {min}\n"),
                )
                .unwrap();
            },
        );
    }
    broken(
        "landlock",
        "invalid profiles: bad",
        "hardenctl profile check",
        |r| {
            fs::write(
                r.join("usr/share/hardend/profiles/bad.toml"),
                "nonsense = 1\n",
            )
            .unwrap();
        },
    );
}
