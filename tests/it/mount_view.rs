//! A root service against what Landlock (below ABI 9) cannot restrict, played as the
//! attacker with the probe under the real hardend-exec: pathname UNIX sockets outside the
//! grants (a root-only socket, the daemon's own bus), metadata writes outside the write trees
//! (chmod, fchmod on a read-only descriptor, chown, xattrs, file capabilities, timestamps,
//! mknod), and a symlink planted at an absent rule path. Root only: the mount view is the
//! root path; for other users file permissions are the boundary (reported partial).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};

use crate::common::*;

fn root_only() -> bool {
    if !is_root() {
        eprintln!("skipped: the mount view is the root path (run as root)");
        return false;
    }
    true
}

#[test]
fn unix_sockets_outside_the_grants_cannot_be_reached() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    // a root-only socket in a 0700 directory, like a control socket
    let private = sb.path("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let secret = private.join("control.sock");
    let _l = UnixListener::bind(&secret).unwrap();
    let dgram = private.join("dgram.sock");
    let _d = UnixDatagram::bind(&dgram).unwrap();
    // granted: one socket by name, one under a granted directory
    let granted_dir = sb.path("granted");
    fs::create_dir(&granted_dir).unwrap();
    let granted = granted_dir.join("ok.sock");
    let _g = UnixListener::bind(&granted).unwrap();
    let named = sb.path("named.sock");
    let _n = UnixListener::bind(&named).unwrap();
    let p = sb.probe_profile(
        "unixsock",
        "",
        &format!(
            "[network]\nunix_connect = [\"{}/\", \"{}\"]\n",
            granted_dir.display(),
            named.display()
        ),
    );
    let ops = [
        format!("unix-connect={}", secret.display()),
        format!("unix-sendto={}", dgram.display()),
        format!("unix-connect={}", granted.display()),
        format!("unix-connect={}", named.display()),
    ];
    let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &refs), 4);
    assert_eq!(r[0], errno(libc::ECONNREFUSED), "root-only stream socket");
    assert_eq!(r[1], errno(libc::ECONNREFUSED), "root-only datagram socket");
    assert_eq!(r[2], "ok 0", "under a granted directory");
    assert_eq!(r[3], "ok 0", "granted by name");
    // the control: unconfined root reaches them
    assert_eq!(run_unconfined(&refs[..2]), ["ok 0", "ok 1"]);
}

#[test]
fn a_confined_root_service_cannot_reach_the_daemons_bus() {
    if !root_only() {
        return;
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let sock = bus.address.strip_prefix("unix:path=").unwrap().to_string();
    let sb = Sandbox::new();
    let p = sb.probe_profile("nobus", "", "");
    let r = ran(&sb.run(&p, &[], &[&format!("unix-connect={sock}")]), 1);
    assert_eq!(
        r[0],
        errno(libc::ECONNREFUSED),
        "the bus hardend and systemd listen on"
    );
    assert_eq!(run_unconfined(&[&format!("unix-connect={sock}")]), ["ok 0"]);
    drop(d);
}

#[test]
fn metadata_outside_the_write_trees_cannot_be_changed() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    let w = sb.path("w");
    fs::create_dir(&w).unwrap();
    fs::write(w.join("mine"), "x").unwrap();
    let secret = sb.path("secret");
    fs::write(&secret, "s3cret").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let granted_bin = sb.path("tool");
    fs::write(&granted_bin, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&granted_bin, fs::Permissions::from_mode(0o755)).unwrap();
    let p = sb.probe_profile(
        "meta",
        &format!(
            "read = [\"{}\"]\nwrite = [\"{}\"]\n",
            granted_bin.display(),
            w.display()
        ),
        "",
    );
    let (s, b, m) = (
        secret.display().to_string(),
        granted_bin.display().to_string(),
        w.join("mine").display().to_string(),
    );
    let fifo_out = sb.path("fifo").display().to_string();
    let fifo_in = w.join("fifo").display().to_string();
    let ops = [
        format!("chmod={s},0o666"),   // an unreadable secret made readable
        format!("chmod={b},0o4755"),  // a granted binary made setuid
        format!("fchmod={b},0o4755"), // through a read-only descriptor
        format!("chown={s},65534,65534"),
        format!("setxattr={b},security.capability,x"), // file capabilities
        format!("setxattr={s},user.hardend,x"),
        format!("utimes={s}"),
        format!("mkfifo={fifo_out}"),
        format!("chmod={m},0o640"), // inside its write tree: fine
        format!("setxattr={m},user.hardend,x"),
        format!("utimes={m}"),
        format!("mkfifo={fifo_in}"),
    ];
    // the real modes: 0o666 = 438, 0o4755 = 2541, 0o640 = 416
    let ops: Vec<String> = ops
        .iter()
        .map(|o| {
            o.replace("0o666", "438")
                .replace("0o4755", "2541")
                .replace("0o640", "416")
        })
        .collect();
    let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &refs), refs.len());
    for (op, res) in refs.iter().zip(&r).take(8) {
        assert_eq!(res, &errno(libc::EROFS), "{op}");
    }
    for (op, res) in refs.iter().zip(&r).skip(8) {
        assert_eq!(res, "ok 0", "{op}");
    }
    assert_eq!(
        fs::metadata(&secret).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(
        fs::metadata(&granted_bin).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    // the control: unconfined root can
    assert_eq!(run_unconfined(&[&format!("utimes={s}")]), ["ok 0"]);
}

#[test]
fn a_symlink_planted_at_an_absent_rule_path_stops_the_next_start() {
    let sb = Sandbox::new();
    let w = sb.path("w");
    fs::create_dir(&w).unwrap();
    let optional = w.join("optional");
    let p = sb.probe_profile(
        "planted",
        &format!(
            "read = [\"{}\"]\nwrite = [\"{}\"]\n",
            optional.display(),
            w.display()
        ),
        "",
    );
    // first start: the optional path is absent (skipped); the service plants a link there
    let r = ran(
        &sb.run(&p, &[], &[&format!("symlink=/,{}", optional.display())]),
        1,
    );
    assert_eq!(r[0], "ok 0");
    assert!(
        fs::symlink_metadata(&optional)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // next start: refused, naming the link, instead of a rule for /
    let out = sb.run(&p, &[], &["pid"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(results(&out).is_empty(), "nothing ran");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is a symlink inside a write tree",
            optional.display()
        )),
        "{err}"
    );
}

#[test]
fn a_confined_service_that_reaches_the_bus_still_cannot_change_state() {
    if !root_only() {
        return;
    }
    // the bus granted on purpose: the daemon itself must refuse a caller inside a confined
    // service, whatever its uid
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let sock = bus.address.strip_prefix("unix:path=").unwrap().to_string();
    fs::write(
        d.path("profiles/busclient.toml"),
        format!(
            "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/dbus-send\"]\n[network]\nunix_connect = [\"{sock}\"]\n"
        ),
    )
    .unwrap();
    let call = |confined: bool| {
        let mut c = if confined {
            let mut c = std::process::Command::new(hardend_exec());
            c.args([
                "--profile",
                "busclient",
                "--unit",
                "evil.service",
                "--profile-path",
            ])
            .arg(d.path("profiles"))
            .arg("--runtime-dir")
            .arg(d.records_dir())
            .arg("--")
            .arg("/usr/bin/dbus-send");
            c
        } else {
            std::process::Command::new("/usr/bin/dbus-send")
        };
        c.args([
            &format!("--bus={}", bus.address),
            "--print-reply",
            "--dest=org.hardend1",
            "/org/hardend1",
            "org.hardend1.Manager.Reload",
        ]);
        c.output().unwrap()
    };
    let out = call(true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("AccessDenied")
            && err.contains("refused to processes of a service hardend confines (evil.service)"),
        "{err}"
    );
    // the control: the same call from an unconfined root process works
    let out = call(false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(d);
}
