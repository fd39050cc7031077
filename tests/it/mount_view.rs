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

/// The socket systemd re-binds after `daemon-reexec` (a routine package upgrade), or a bus
/// after a restart: a new inode at the same path in a control directory. The service's view
/// of the directory is its content at start, so the new socket is not there; granted sockets
/// and other entries are. Made deterministic: the probe waits for the go signal after
/// confinement, the test swaps the socket, then the probe connects.
#[test]
fn a_socket_bound_again_in_a_control_directory_stays_out_of_reach() {
    if !root_only() {
        return;
    }
    let dir = std::path::Path::new("/run/systemd");
    fs::create_dir_all(dir).unwrap();
    let tag = format!("hardend-test-{}", std::process::id());
    let sock = dir.join(format!("{tag}.sock"));
    let granted = dir.join(format!("{tag}-granted.sock"));
    let marker = dir.join(format!("{tag}.d"));
    let _ = fs::remove_file(&sock);
    let _ = fs::remove_file(&granted);
    fs::create_dir_all(&marker).unwrap();
    let old = UnixListener::bind(&sock).unwrap();
    let _g = UnixListener::bind(&granted).unwrap();
    let sb = Sandbox::new();
    let w = sb.path("w");
    fs::create_dir(&w).unwrap();
    let (ready, go) = (w.join("ready"), sb.path("go"));
    let p = sb.probe_profile(
        "rebound",
        &format!("write = [\"{}\"]\n", w.display()),
        &format!("[network]\nunix_connect = [\"{}\"]\n", granted.display()),
    );
    let ops = [
        format!("unix-connect={}", sock.display()),
        format!("write={}", ready.display()),
        format!("wait-file={}", go.display()),
        format!("unix-connect={}", sock.display()),
        format!("unix-connect={}", granted.display()),
        format!("lstat={}", marker.display()),
    ];
    let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
    let child = sb
        .exec_cmd(&p, &[], &refs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..2000 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready.exists(), "the probe did not start");
    // the swap, as systemd does on re-exec: unlink, bind anew
    drop(old);
    fs::remove_file(&sock).unwrap();
    let _new = UnixListener::bind(&sock).unwrap();
    fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let r = ran(&out, 6);
    // the control: outside the view the new socket answers
    let control = run_unconfined(&[refs[3]]);
    let _ = fs::remove_file(&sock);
    let _ = fs::remove_file(&granted);
    let _ = fs::remove_dir(&marker);
    assert_eq!(r[3], errno(libc::ENOENT), "the socket bound again later");
    assert_eq!(r[0], errno(libc::ENOENT), "the socket at start");
    assert_eq!(r[4], "ok 0", "a granted socket in the same directory");
    assert_eq!(r[5], "ok 0", "other entries of the directory stay visible");
    assert_eq!(control, ["ok 0"], "unconfined, the new socket is reachable");
}

/// `/dev/log` is granted by base as a link into journald's directory (inside the filtered
/// `/run/systemd`): syslog(3) keeps working from a confined root service. Where the machine
/// has no /dev/log (no journald), the test plays journald: a datagram socket at its path.
#[test]
fn syslog_through_dev_log_keeps_working() {
    if !root_only() {
        return;
    }
    let dev_log = std::path::Path::new("/dev/log");
    let journal = std::path::Path::new("/run/systemd/journal");
    let mut made = Vec::new();
    let _server = if fs::symlink_metadata(dev_log).is_err() {
        fs::create_dir_all(journal).unwrap();
        let s = journal.join("dev-log");
        let _ = fs::remove_file(&s);
        let server = UnixDatagram::bind(&s).unwrap();
        std::os::unix::fs::symlink(&s, dev_log).unwrap();
        made.push(dev_log.to_path_buf());
        made.push(s);
        Some(server)
    } else {
        None
    };
    let sb = Sandbox::new();
    let p = sb.probe_profile("syslog", "", "");
    let r = ran(&sb.run(&p, &[], &["unix-sendto=/dev/log"]), 1);
    for m in made {
        let _ = fs::remove_file(m);
    }
    assert_eq!(r[0], "ok 1", "a datagram to /dev/log");
}
