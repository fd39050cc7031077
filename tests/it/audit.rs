//! `hardenctl audit --root DIR`: the device checks on an image, each tested both ways — a
//! clean image passes, and the attack planted in it (a world-writable file, a setuid binary
//! dpkg does not know, `PermitRootLogin yes` where sshd reads it first, an empty password)
//! fails with its remedy and exit 3. The unit exposure is compared with systemd's own
//! `systemd-analyze security` in the VM suite (real systemd 252 and 257).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn put(root: &Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A small Debian-like image: sshd and passwd (setuid) installed by dpkg, sshd's config
/// with Debian's `Include` at the top, root and a service account.
fn image() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["usr", "etc", "var", "var/lib"] {
        fs::create_dir_all(r.join(d)).unwrap();
        fs::set_permissions(r.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
    put(r, "usr/sbin/sshd", "#!/bin/sh\n", 0o755);
    put(r, "usr/bin/passwd", "#!/bin/sh\n", 0o4755);
    put(
        r,
        "var/lib/dpkg/info/openssh-server.list",
        "/.\n/usr\n/usr/sbin\n/usr/sbin/sshd\n",
        0o644,
    );
    // merged /usr: dpkg lists /bin/passwd, the file is /usr/bin/passwd
    put(r, "var/lib/dpkg/info/passwd.list", "/bin/passwd\n", 0o644);
    put(
        r,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nPasswordAuthentication no\nPermitRootLogin no\n",
        0o644,
    );
    put(
        r,
        "etc/ssh/sshd_config.d/10-site.conf",
        "# site settings\n",
        0o644,
    );
    put(
        r,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nsvc:x:998:998::/var/lib/svc:/usr/sbin/nologin\n",
        0o644,
    );
    put(
        r,
        "etc/shadow",
        "root:$y$j9T$abc:19000:0:99999:7:::\nsvc:!:19000::::::\n",
        0o640,
    );
    root
}

fn audit(root: &Path) -> (i32, Value) {
    let out = Command::new(hardenctl())
        .args(["--json", "audit", "--root"])
        .arg(root)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), doc)
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["device"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {doc:#}"))
}

#[test]
fn audit_of_an_image_fails_each_planted_problem_and_passes_the_clean_image() {
    let img = image();
    let r = img.path();
    let (code, doc) = audit(r);
    // an offline audit: no units, no kernel checks, but every file check
    assert_eq!(doc["units"].as_array().unwrap().len(), 0);
    assert!(
        doc["systemd"]["detail"]
            .as_str()
            .unwrap()
            .contains("offline")
    );
    for id in [
        "ssh.root-login",
        "ssh.password-auth",
        "ssh.empty-passwords",
        "accounts.uid0",
        "accounts.empty-password",
        "files.world-writable",
        "files.setuid-unknown",
    ] {
        assert_eq!(check(&doc, id)["status"], "pass", "{id}: {doc:#}");
    }
    assert!(
        check(&doc, "files.setuid-unknown")["items"][0]
            .as_str()
            .unwrap()
            .contains("/usr/bin/passwd (setuid)")
    );
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["verdict"], "ok");

    // 1. a world-writable file and directory in /usr
    put(r, "usr/lib/evil.so", "", 0o666);
    fs::create_dir_all(r.join("usr/share/drop")).unwrap();
    fs::set_permissions(r.join("usr/share/drop"), fs::Permissions::from_mode(0o777)).unwrap();
    // a sticky world-writable directory (like /var/tmp) is not a finding
    fs::create_dir_all(r.join("var/lib/sticky")).unwrap();
    fs::set_permissions(r.join("var/lib/sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, doc) = audit(r);
    let ww = check(&doc, "files.world-writable");
    assert_eq!(ww["status"], "fail");
    assert_eq!(ww["severity"], "high");
    assert_eq!(
        ww["items"],
        serde_json::json!(["/usr/lib/evil.so", "/usr/share/drop/"])
    );
    assert!(ww["remedy"].as_str().unwrap().contains("chmod o-w"));
    assert_eq!(code, 3);
    assert_eq!(doc["verdict"], "bad");
    fs::remove_file(r.join("usr/lib/evil.so")).unwrap();
    fs::remove_dir(r.join("usr/share/drop")).unwrap();

    // 2. a setuid binary no package installed (and a file capability one)
    put(r, "usr/local/bin/rootshell", "#!/bin/sh\n", 0o4755);
    let (code, doc) = audit(r);
    let su = check(&doc, "files.setuid-unknown");
    assert_eq!(su["status"], "fail", "{su:#}");
    assert_eq!(
        su["items"],
        serde_json::json!(["/usr/local/bin/rootshell (setuid)"])
    );
    assert_eq!(code, 3);
    // recorded by the admin with dpkg-statoverride: known
    put(
        r,
        "var/lib/dpkg/statoverride",
        "root root 4755 /usr/local/bin/rootshell\n",
        0o644,
    );
    assert_eq!(check(&audit(r).1, "files.setuid-unknown")["status"], "pass");
    fs::remove_file(r.join("var/lib/dpkg/statoverride")).unwrap();
    fs::remove_file(r.join("usr/local/bin/rootshell")).unwrap();

    // 3. PermitRootLogin yes in a drop-in: sshd reads the Include first, first value wins
    put(
        r,
        "etc/ssh/sshd_config.d/50-vendor.conf",
        "PermitRootLogin yes\n",
        0o644,
    );
    let (code, doc) = audit(r);
    let rl = check(&doc, "ssh.root-login");
    assert_eq!(rl["status"], "fail", "{rl:#}");
    assert_eq!(rl["finding"], "PermitRootLogin yes");
    assert!(
        rl["remedy"]
            .as_str()
            .unwrap()
            .contains("PermitRootLogin no")
    );
    assert_eq!(code, 3);
    // only inside a Match block: not the default, passes
    put(
        r,
        "etc/ssh/sshd_config.d/50-vendor.conf",
        "Match Address 10.0.0.1\n    PermitRootLogin yes\n",
        0o644,
    );
    assert_eq!(check(&audit(r).1, "ssh.root-login")["status"], "pass");

    // 4. an account with an empty password (critical), and a second uid 0
    put(
        r,
        "etc/shadow",
        "root:$y$j9T$abc:19000:0:99999:7:::\nsvc::19000::::::\n",
        0o640,
    );
    put(
        r,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nsvc:x:998:998::/var/lib/svc:/usr/sbin/nologin\ntoor:x:0:0::/root:/bin/sh\n",
        0o644,
    );
    let (code, doc) = audit(r);
    let ep = check(&doc, "accounts.empty-password");
    assert_eq!(
        (ep["status"].as_str(), ep["severity"].as_str()),
        (Some("fail"), Some("critical"))
    );
    assert_eq!(ep["items"], serde_json::json!(["svc"]));
    assert_eq!(
        check(&doc, "accounts.uid0")["items"],
        serde_json::json!(["toor"])
    );
    assert_eq!(code, 3);

    // 5. the threshold: --fail-on critical still fails on the empty password
    let out = Command::new(hardenctl())
        .args(["audit", "--fail-on", "critical", "--root"])
        .arg(r)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("accounts.empty-password → lock them"),
        "{text}"
    );
}

#[test]
fn bad_options_and_units_are_usage_errors() {
    let out = Command::new(hardenctl())
        .args(["audit", "--threshold", "11"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(hardenctl())
        .args(["audit", "--fail-on", "severe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a severity"));
    let out = Command::new(hardenctl())
        .args(["audit", "cron.timer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a service unit"));
}

/// The ways a planted or edited configuration could make a failing check pass, each one
/// tried: sshd's quoting, comments, Match state across Include, `Match all`, dotfiles the
/// glob skips; an empty password in passwd itself; an absolute link in the image pointing
/// at the host's (good) file; a FIFO where dpkg's statoverride belongs; a sticky
/// world-writable directory in /etc; an override that does not say setuid.
#[test]
fn evasions_of_the_device_checks_are_caught() {
    let img = image();
    let r = img.path();
    let root_login = |r: &Path| check(&audit(r).1, "ssh.root-login")["status"].clone();

    for v in [
        "PermitRootLogin \"yes\"\n",
        "PermitRootLogin yes # for the installer\n",
        "permitrootlogin=yes\n",
    ] {
        put(r, "etc/ssh/sshd_config.d/50-vendor.conf", v, 0o644);
        assert_eq!(root_login(r), "fail", "{v:?}");
    }
    // a drop-in that ends inside a Match block does not hide the main file's settings
    put(
        r,
        "etc/ssh/sshd_config.d/50-vendor.conf",
        "Match User backup\n    X11Forwarding no\n",
        0o644,
    );
    put(
        r,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n",
        0o644,
    );
    assert_eq!(
        root_login(r),
        "fail",
        "Match state restored after an Include"
    );
    // Match all applies to everyone
    put(
        r,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nMatch all\nPermitRootLogin yes\n",
        0o644,
    );
    // (the drop-in's Match ends at its file; "Match all" is global)
    assert_eq!(root_login(r), "fail", "Match all");
    // a dotfile sshd's glob does not read cannot vouch
    put(
        r,
        "etc/ssh/sshd_config.d/.00-hide.conf",
        "PermitRootLogin no\n",
        0o644,
    );
    put(
        r,
        "etc/ssh/sshd_config.d/50-vendor.conf",
        "PermitRootLogin yes\n",
        0o644,
    );
    put(
        r,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\n",
        0o644,
    );
    assert_eq!(root_login(r), "fail", "dotfile ignored");

    // an empty password field in passwd (no shadow line): logs in without a password
    put(
        r,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nb::1001:1001::/home/b:/bin/bash\n",
        0o644,
    );
    let ep = check(&audit(r).1, "accounts.empty-password").clone();
    assert_eq!(ep["status"], "fail", "{ep:#}");
    assert!(ep["items"][0].as_str().unwrap().starts_with("b "), "{ep:#}");
    // uid "00" is uid 0
    put(
        r,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nz:x:00:0::/:/bin/sh\n",
        0o644,
    );
    assert_eq!(
        check(&audit(r).1, "accounts.uid0")["items"],
        serde_json::json!(["z"])
    );

    // the image's /etc/shadow is an absolute link: it is the image's target that is read
    // (with an empty password), not the host's /etc/shadow
    put(r, "etc/shadow-real", "root::19000:0:99999:7:::\n", 0o640);
    fs::remove_file(r.join("etc/shadow")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow-real", r.join("etc/shadow")).unwrap();
    let ep = check(&audit(r).1, "accounts.empty-password").clone();
    assert_eq!(ep["items"], serde_json::json!(["root"]), "{ep:#}");

    // a FIFO as dpkg's statoverride: refused, the audit does not block
    fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    let fifo = r.join("var/lib/dpkg/statoverride");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    // bounded: a blocking open would be killed after 30 s (exit 124), not hang the suite
    let out = Command::new("timeout")
        .arg("30")
        .arg(hardenctl())
        .args(["--json", "audit", "--root"])
        .arg(r)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(124),
        "the audit blocked on the FIFO"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check(&doc, "files.setuid-unknown")["status"], "pass");
    fs::remove_file(&fifo).unwrap();

    // a sticky world-writable directory in /etc (users could drop login scripts)
    fs::create_dir_all(r.join("etc/profile.d")).unwrap();
    fs::set_permissions(r.join("etc/profile.d"), fs::Permissions::from_mode(0o1777)).unwrap();
    let ww = check(&audit(r).1, "files.world-writable").clone();
    assert_eq!(
        ww["items"],
        serde_json::json!(["/etc/profile.d/"]),
        "{ww:#}"
    );
    fs::set_permissions(r.join("etc/profile.d"), fs::Permissions::from_mode(0o755)).unwrap();

    // an override whose mode is not setuid does not vouch for a setuid file
    put(r, "usr/local/bin/rootshell", "#!/bin/sh\n", 0o4755);
    put(
        r,
        "var/lib/dpkg/statoverride",
        "root root 0755 /usr/local/bin/rootshell\n",
        0o644,
    );
    assert_eq!(check(&audit(r).1, "files.setuid-unknown")["status"], "fail");
}
