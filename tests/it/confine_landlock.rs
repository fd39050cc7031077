//! Landlock enforcement on this host's kernel: the probe runs confined by the real
//! hardend-exec in a child process, and each forbidden operation must fail with the exact
//! errno the kernel gives for a Landlock denial.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::symlink;

use crate::common::*;
use hardend::confine::landlock::kernel_abi;

fn tree(sb: &Sandbox) {
    fs::create_dir_all(sb.path("allowed")).unwrap();
    fs::create_dir_all(sb.path("outside")).unwrap();
    fs::create_dir_all(sb.path("w")).unwrap();
    fs::write(sb.path("allowed/f"), "allowed").unwrap();
    fs::write(sb.path("outside/o"), "outside").unwrap();
    fs::write(sb.path("w/x"), "x").unwrap();
    symlink("/etc/shadow", sb.path("allowed/to-shadow")).unwrap();
    symlink(sb.path("outside/o"), sb.path("allowed/to-outside")).unwrap();
}

fn fs_profile(sb: &Sandbox) -> std::path::PathBuf {
    sb.probe_profile(
        "fs",
        "read = [\"{dir}/allowed\"]\nwrite = [\"{dir}/w\"]",
        "",
    )
}

#[test]
fn reads_only_what_is_granted_and_symlinks_do_not_escape() {
    let sb = Sandbox::new();
    tree(&sb);
    let p = fs_profile(&sb);
    let d = sb.dir.path().display().to_string();
    let ops = [
        format!("read={d}/allowed/f"),
        "read=/etc/shadow".into(),
        format!("read={d}/allowed/to-shadow"),
        format!("read={d}/allowed/to-outside"),
        format!("read={d}/outside/o"),
        format!("readdir={d}/outside"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let out = sb.run(&p, &[], &ops);
    let r = ran(&out, ops.len());
    assert_eq!(r[0], "ok 7");
    for (i, res) in r.iter().enumerate().skip(1) {
        assert_eq!(*res, errno(libc::EACCES), "op {}", ops[i]);
    }
    // control: unconfined, the same reads work (as root also /etc/shadow)
    let control = run_unconfined(&ops[3..5]);
    assert_eq!(control, ["ok 7", "ok 7"]);
}

#[test]
fn no_hardlink_or_rename_between_outside_and_writable_trees() {
    let sb = Sandbox::new();
    tree(&sb);
    let p = fs_profile(&sb);
    let d = sb.dir.path().display().to_string();
    let ops = [
        format!("link={d}/outside/o,{d}/w/o-linked"),
        format!("rename={d}/outside/o,{d}/w/o-moved"),
        format!("link={d}/w/x,{d}/outside/x-linked"),
        format!("rename={d}/w/x,{d}/outside/x-moved"),
        format!("link={d}/allowed/f,{d}/w/f-linked"),
        format!("rename={d}/w/x,{d}/w/x-renamed"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let out = sb.run(&p, &[], &ops);
    let r = ran(&out, ops.len());
    // Linking a file into a tree where it would gain rights is a cross-"device" move for
    // Landlock: EXDEV. Taking a file out of a tree without remove rights, or creating in a
    // tree without make rights: EACCES. As root, the write tree is also its own (writable)
    // mount in a read-only view: every move across it is EXDEV before Landlock is asked.
    // (a link's target directory is checked for writability before the mounts are
    // compared: EROFS)
    let root = is_root();
    let across = if root { libc::EXDEV } else { libc::EACCES };
    assert_eq!(r[0], errno(libc::EXDEV));
    assert_eq!(r[1], errno(across));
    assert_eq!(r[2], errno(if root { libc::EROFS } else { libc::EACCES }));
    assert_eq!(r[3], errno(across));
    assert_eq!(r[4], errno(libc::EXDEV));
    assert_eq!(r[5], "ok 0", "renames inside the writable tree work");
    assert!(sb.path("outside/o").exists());
    assert!(!sb.path("w/o-linked").exists());
}

#[test]
fn writes_only_under_write_and_read_only_files_cannot_be_truncated() {
    let sb = Sandbox::new();
    tree(&sb);
    let p = fs_profile(&sb);
    let d = sb.dir.path().display().to_string();
    let ops = [
        format!("write={d}/outside/new"),
        format!("write={d}/allowed/f"),
        format!("write={d}/w/new"),
        format!("truncate={d}/allowed/f"),
        format!("truncate={d}/w/new"),
        format!("unlink={d}/allowed/f"),
        "write=/tmp/hardend-probe-must-not-exist".into(),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &ops), ops.len());
    // as root the view outside the write trees is read-only: the mount refuses first
    let outside = if is_root() { libc::EROFS } else { libc::EACCES };
    assert_eq!(r[0], errno(outside));
    assert_eq!(r[1], errno(outside));
    assert_eq!(r[2], "ok 1");
    if kernel_abi() >= 3 || is_root() {
        assert_eq!(
            r[3],
            errno(outside),
            "truncate needs Landlock ABI 3 (or the view)"
        );
    }
    assert_eq!(r[4], "ok 0");
    assert_eq!(r[5], errno(outside));
    assert_eq!(r[6], errno(outside));
    assert_eq!(fs::read_to_string(sb.path("allowed/f")).unwrap(), "allowed");
    assert!(!std::path::Path::new("/tmp/hardend-probe-must-not-exist").exists());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_bind_and_connect_follow_the_port_lists() {
    if kernel_abi() < 4 {
        eprintln!("skipped: Landlock ABI {} has no TCP rules", kernel_abi());
        return;
    }
    let sb = Sandbox::new();
    let (bind_ok, bind_no) = (free_port(), free_port());
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (c_ok, c_no) = (
        open.local_addr().unwrap().port(),
        closed.local_addr().unwrap().port(),
    );
    let p = sb.probe_profile(
        "net",
        &format!("bind_tcp = [{bind_ok}]\nconnect_tcp = [{c_ok}]"),
        "",
    );
    let ops = [
        format!("bind={bind_ok}"),
        format!("bind={bind_no}"),
        format!("connect={c_ok}"),
        format!("connect={c_no}"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &ops), 4);
    assert_eq!(r[0], "ok 0");
    assert_eq!(r[1], errno(libc::EACCES));
    assert_eq!(r[2], "ok 0");
    assert_eq!(r[3], errno(libc::EACCES));
    // control: the denied ones work unconfined
    assert_eq!(run_unconfined(&ops[1..2]), ["ok 0"]);
    assert_eq!(run_unconfined(&ops[3..4]), ["ok 0"]);
}

#[test]
fn signal_scope_blocks_signals_to_outside_processes() {
    if kernel_abi() < 6 {
        eprintln!("skipped: Landlock ABI {} has no scopes", kernel_abi());
        return;
    }
    let sb = Sandbox::new();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let p = sb.probe_profile("sig", "scope = [\"signal\"]", "");
    let op = format!("kill={},15", sleeper.id());
    let r = ran(&sb.run(&p, &[], &[&op]), 1);
    assert_eq!(r[0], errno(libc::EPERM));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the outside process survived"
    );
    // base scopes signals too: that is the default
    let p3 = sb.probe_profile("basesig", "", "");
    assert_eq!(ran(&sb.run(&p3, &[], &[&op]), 1)[0], errno(libc::EPERM));
    // without any scope the same signal is delivered
    let p2 = sb.bare_probe_profile("nosig", "");
    let r = ran(&sb.run(&p2, &[], &[&op]), 1);
    assert_eq!(r[0], "ok 0");
    let _ = sleeper.wait();
}

#[test]
fn abstract_socket_scope_blocks_connecting_out() {
    if kernel_abi() < 6 {
        eprintln!("skipped: Landlock ABI {} has no scopes", kernel_abi());
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let name = format!("hardend-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let sb = Sandbox::new();
    let op = format!("abstract-connect={name}");
    let p = sb.probe_profile("abs", "scope = [\"abstract-unix-socket\"]", "");
    assert_eq!(ran(&sb.run(&p, &[], &[&op]), 1)[0], errno(libc::EPERM));
    let p3 = sb.probe_profile("baseabs", "", "");
    assert_eq!(
        ran(&sb.run(&p3, &[], &[&op]), 1)[0],
        errno(libc::EPERM),
        "base scopes abstract sockets"
    );
    let p2 = sb.bare_probe_profile("noabs", "");
    assert_eq!(ran(&sb.run(&p2, &[], &[&op]), 1)[0], "ok 0");
}
