//! The attacks a red-team review found against a confined root service, each replayed as a
//! forked confined child with the control beside it: a socket bound through a link, a
//! forged line in the kernel's socket list, links planted by another confined service, a
//! read-only mount inside a write tree, native code mapped from a write tree, System V IPC
//! and the keyring of other root processes, and a root unit without CAP_SYS_ADMIN.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::process::Command;

use crate::common::*;

fn root_only() -> bool {
    if !is_root() {
        eprintln!("skipped: these attacks are a root service's (run as root)");
        return false;
    }
    true
}

/// PostgreSQL's default on Debian binds `/var/run/postgresql/.s.PGSQL.5432`: the kernel's
/// list shows the name through the link. The socket must be covered anyway.
#[test]
fn a_socket_bound_through_a_link_is_out_of_reach() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    let real = sb.path("real");
    fs::create_dir(&real).unwrap();
    let alias = sb.path("alias");
    symlink(&real, &alias).unwrap();
    let _l = UnixListener::bind(alias.join("db.sock")).unwrap();
    let p = sb.probe_profile("vialink", "", "");
    let op = format!("unix-connect={}", real.join("db.sock").display());
    let op2 = format!("unix-connect={}", alias.join("db.sock").display());
    let r = ran(&sb.run(&p, &[], &[&op, &op2]), 2);
    assert_eq!(r[0], errno(libc::ECONNREFUSED), "by its real path");
    assert_eq!(
        r[1],
        errno(libc::ECONNREFUSED),
        "by the name it was bound as"
    );
    assert_eq!(run_unconfined(&[&op]), ["ok 0"], "the control");
}

/// A socket whose name holds a newline forges a line of `/proc/net/unix` naming any path:
/// the view must not cover a file that is not a socket (blanking it) nor fail to start on
/// a directory. The socket is bound by nobody, like any local user can.
#[test]
fn a_forged_line_in_the_socket_list_blanks_nothing_and_stops_nothing() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    let victim = sb.path("victim.conf");
    fs::write(&victim, "deny all\n").unwrap();
    let victim_dir = sb.path("victim.d");
    fs::create_dir(&victim_dir).unwrap();
    let spool = std::path::Path::new("/tmp").join(format!("hardend-forge-{}", std::process::id()));
    fs::create_dir_all(&spool).unwrap();
    fs::set_permissions(&spool, fs::Permissions::from_mode(0o777)).unwrap();
    // two forged lines: a file and a directory (the forger makes the directories its
    // socket's name runs through)
    let forge = |target: &std::path::Path, n: u32| {
        spool
            .join(format!(
                "x{n}\n0: 00000002 00000000 00010000 0001 01 1 {}",
                target.display()
            ))
            .display()
            .to_string()
    };
    let script = format!(
        "import os,socket,time\nkeep=[]\nfor p in {:?}:\n    os.makedirs(os.path.dirname(p), exist_ok=True)\n    s=socket.socket(socket.AF_UNIX); s.bind(p); s.listen(); keep.append(s)\nopen({:?},'w').close()\ntime.sleep(30)\n",
        [forge(&victim, 1), forge(&victim_dir, 2)],
        spool.join("ready").display().to_string()
    );
    let mut binder = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(&script)
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if spool.join("ready").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let unix = fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        unix.lines()
            .any(|l| l.ends_with(&victim.display().to_string())),
        "the forged line is in the kernel's list"
    );
    let p = sb.probe_profile(
        "forged",
        &format!("read = [\"{}\"]\n", victim.display()),
        "",
    );
    let out = sb.run(&p, &[], &[&format!("read={}", victim.display())]);
    let r = ran(&out, 1);
    binder.kill().unwrap();
    let _ = binder.wait();
    let _ = fs::remove_dir_all(&spool);
    assert_eq!(r[0], "ok 9", "the file's 9 bytes, not /dev/null's 0");
}

/// A confined root service makes root-owned links in its write tree; another profile's rule
/// path that runs through that tree must not follow them (it would read /etc/shadow).
#[test]
fn a_link_planted_in_another_profiles_write_tree_is_refused() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    let profiles = sb.path("profiles");
    fs::create_dir(&profiles).unwrap();
    let shared = sb.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(
        profiles.join("producer.toml"),
        format!(
            "include = [\"base\"]\n[landlock]\nread_exec = [\"{}\"]\nwrite = [\"{}\"]\n",
            probe().display(),
            shared.display()
        ),
    )
    .unwrap();
    fs::copy(
        shipped_profiles().join("base.toml"),
        profiles.join("base.toml"),
    )
    .unwrap();
    // the producer, confined, plants the link (root-owned: it runs as root)
    let report = shared.join("report");
    let out = Command::new(hardend_exec())
        .args(["--profile", "producer", "--profile-path"])
        .arg(&profiles)
        .arg("--runtime-dir")
        .arg(sb.runtime_dir())
        .arg("--")
        .arg(probe())
        .arg(format!("symlink=/etc/shadow,{}", report.display()))
        .output()
        .unwrap();
    assert_eq!(
        ran(&out, 1)[0],
        "ok 0",
        "the producer may make links at home"
    );
    fs::write(
        profiles.join("consumer.toml"),
        format!(
            "include = [\"base\"]\n[landlock]\nread_exec = [\"{}\"]\nread = [\"{}\"]\n",
            probe().display(),
            report.display()
        ),
    )
    .unwrap();
    let out = Command::new(hardend_exec())
        .args(["--profile", "consumer", "--profile-path"])
        .arg(&profiles)
        .arg("--runtime-dir")
        .arg(sb.runtime_dir())
        .arg("--")
        .arg(probe())
        .arg("read=/etc/shadow")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "not started: {err}");
    assert!(
        err.contains("inside a write tree") && err.contains(&report.display().to_string()),
        "{err}"
    );
}

/// The same, in one profile: the write tree spelled through a link (`/var/run/x`), the rule
/// path through its resolved name (`/run/x/...`).
#[test]
fn a_write_tree_spelled_through_a_link_still_guards_its_links() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    let real = sb.path("real");
    fs::create_dir(&real).unwrap();
    let alias = sb.path("alias");
    symlink(&real, &alias).unwrap();
    symlink("/etc/shadow", real.join("plugins")).unwrap();
    let p = sb.probe_profile(
        "spelled",
        &format!(
            "write = [\"{}\"]\nread = [\"{}\"]\n",
            alias.display(),
            real.join("plugins").display()
        ),
        "",
    );
    let out = sb.run(&p, &[], &["read=/etc/shadow"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "not started: {err}");
    assert!(err.contains("inside a write tree"), "{err}");
}

/// A read-only mount the unit made inside a write tree (ReadOnlyPaths=, a read-only bind)
/// stays read-only in the service's view; and what the service writes it cannot map
/// executable (the dynamic loader would run it: Landlock checks execve only).
#[test]
fn write_trees_keep_their_read_only_mounts_and_are_not_executable() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    let w = sb.path("w");
    let ro = w.join("ro");
    fs::create_dir_all(&ro).unwrap();
    fs::write(w.join("payload"), b"\x7fELF").unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&ro)
        .arg(&ro)
        .status()
        .unwrap()
        .success()
        && Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&ro)
            .status()
            .unwrap()
            .success();
    assert!(mounted, "a read-only bind mount for the test");
    let p = sb.probe_profile("rosub", &format!("write = [\"{}\"]\n", w.display()), "");
    let ops = [
        format!("write={}", ro.join("x").display()),
        format!("write={}", w.join("y").display()),
        format!("mmap-exec={}", w.join("payload").display()),
        format!("mmap-exec={}", probe().display()),
    ];
    let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &refs), 4);
    let _ = Command::new("umount").arg(&ro).status();
    assert_eq!(
        r[0],
        errno(libc::EROFS),
        "the read-only mount below the write tree"
    );
    assert_eq!(r[1], "ok 1", "the write tree itself");
    assert_eq!(
        r[2],
        errno(libc::EPERM),
        "a file in the write tree, mapped executable"
    );
    assert_eq!(r[3], "ok 0", "the program itself");
}

/// System V IPC of other root processes (its own IPC namespace) and root's keyring (base
/// denies @keyring) are out of reach.
#[test]
fn other_processes_ipc_and_the_keyring_are_out_of_reach() {
    if !root_only() {
        return;
    }
    let key: libc::key_t = 0x4844_0000 | (std::process::id() as libc::key_t & 0xffff);
    // SAFETY: creates a private segment for the test; removed below.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "a segment for the test");
    let sb = Sandbox::new();
    let p = sb.probe_profile("ipc", "", "");
    let op = format!("shmget={key}");
    let r = ran(&sb.run(&p, &[], &[&op, "keyctl-user"]), 2);
    let control = run_unconfined(&[&op]);
    // SAFETY: removes the segment made above.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(r[0], errno(libc::ENOENT), "another namespace's segment");
    assert_eq!(r[1], errno(libc::EPERM), "the keyring");
    assert_eq!(control, [format!("ok {id}")], "the control");
}

/// A root unit whose bounding set lacks CAP_SYS_ADMIN cannot get the mount view: the
/// wrapper refuses to start it rather than run it with root's power over every file.
#[test]
fn root_without_cap_sys_admin_is_not_started() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    let p = sb.probe_profile("nosysadmin", "", "");
    let out = Command::new("setpriv")
        .args(["--bounding-set=-sys_admin", "--"])
        .args(sb.exec_cmd(&p, &[], &["pid"]).get_program().to_str())
        .args(
            sb.exec_cmd(&p, &[], &["pid"])
                .get_args()
                .map(|a| a.to_os_string()),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("starts as root without CAP_SYS_ADMIN") && err.contains("not started"),
        "{err}"
    );
    assert!(results(&out).is_empty(), "the probe never ran");
}
