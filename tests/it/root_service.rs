//! A root service confined by a profile that includes `base` and grants nothing extra,
//! played as the attacker: each test forks the probe under the real hardend-exec as root and
//! asserts the exact errno or signal of every attack of the "confinement that holds against
//! a root service" issue — and that the same operation works when the profile grants it.
//!
//! The profiles set `errno = "ETXTBSY"`: no kernel path returns it for these calls, so an
//! ETXTBSY proves the seccomp filter refused the call (an EPERM could be the kernel's own
//! capability check). Where a capability is what refuses, the kernel's EPERM is asserted
//! and the unconfined control shows that root could do it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::process::ExitStatusExt;

use crate::common::*;

const FILTERED: i32 = libc::ETXTBSY;

/// A probe profile including base; `extra` goes after a `[seccomp]` section that only sets
/// the errno (so more `[seccomp]` keys can follow directly).
fn profile(sb: &Sandbox, name: &str, landlock_extra: &str, extra: &str) -> std::path::PathBuf {
    sb.probe_profile(
        name,
        landlock_extra,
        &format!("[seccomp]\nerrno = \"ETXTBSY\"\n{extra}"),
    )
}

fn root_only() -> bool {
    if !is_root() {
        eprintln!("skipped: these attacks are those of a root service (run as root)");
        return false;
    }
    true
}

#[test]
fn a_root_service_keeps_no_capability_it_is_not_granted() {
    if !root_only() {
        return;
    }
    let sb = Sandbox::new();
    let p = profile(&sb, "nocaps", "", "");
    let sets = ["caps=Prm", "caps=Eff", "caps=Bnd", "caps=Amb", "caps=Inh"];
    let mut ops = vec!["uid", "ifflags-lo", "bind=81"];
    ops.extend(sets);
    let r = ran(&sb.run(&p, &[], &ops), 8);
    assert_eq!(r[0], "ok 0", "still uid 0");
    // `ip link set lo up` needs CAP_NET_ADMIN: the kernel says no
    assert_eq!(r[1], errno(libc::EPERM));
    // a port below 1024 needs CAP_NET_BIND_SERVICE
    assert_eq!(r[2], errno(libc::EACCES));
    assert_eq!(r[3..], ["ok 0"; 5], "every capability set is empty");
    assert_eq!(run_unconfined(&["ifflags-lo"]), ["ok 0"], "root could");

    // granted: kept in every set, and nothing else
    let p = profile(
        &sb,
        "somecaps",
        "",
        "[process]\ncapabilities = [\"CAP_NET_ADMIN\", \"CAP_NET_BIND_SERVICE\"]\n",
    );
    let mut ops = vec!["ifflags-lo", "bind=81"];
    ops.extend(sets);
    let r = ran(&sb.run(&p, &[], &ops), 7);
    assert_eq!(r[0], "ok 0");
    assert_eq!(r[1], "ok 0");
    let bits = format!("ok {}", (1 << 10) | (1 << 12)); // CAP_NET_BIND_SERVICE, CAP_NET_ADMIN
    assert_eq!(
        r[2..],
        [bits.as_str(); 5],
        "kept in every set, nothing else"
    );
}

#[test]
fn packet_and_netlink_sockets_are_refused_unless_their_family_is_granted() {
    let sb = Sandbox::new();
    let p = profile(&sb, "fam", "", "");
    // AF_PACKET raw (sniffing), NETLINK_NETFILTER (nf_tables), NETLINK_ROUTE (ip link)
    let ops = [
        "socket=17,3,768",
        "socket=16,3,12",
        "socket=16,3,0",
        "socket=1,1,0",
    ];
    let r = ran(&sb.run(&p, &[], &ops), 4);
    assert_eq!(r[..3], [errno(FILTERED), errno(FILTERED), errno(FILTERED)]);
    assert_eq!(r[3], "ok 0", "unix sockets are in the default families");
    if is_root() {
        assert_eq!(run_unconfined(&ops[..3]), ["ok 0", "ok 0", "ok 0"]);
    }
    let p = profile(
        &sb,
        "famnl",
        "",
        "[network]\nfamilies = [\"unix\", \"netlink\"]\n",
    );
    let r = ran(&sb.run(&p, &[], &["socket=16,3,0", "socket=2,1,0"]), 2);
    assert_eq!(r[0], "ok 0", "netlink granted");
    assert_eq!(r[1], errno(FILTERED), "inet no longer granted");
}

#[test]
fn namespaces_cannot_be_created_or_joined_unless_granted() {
    let sb = Sandbox::new();
    let p = profile(&sb, "nons", "", "");
    let newuser_newnet = "0x50000000";
    let unshare = format!("unshare={newuser_newnet}");
    let ops = [
        unshare.as_str(),
        "clone=0x10000000",
        "setns=0x40000000",
        "setns=0",
        "clone3",
        "clone=0",
    ];
    let r = ran(&sb.run(&p, &[], &ops), 6);
    assert_eq!(r[0], errno(FILTERED), "unshare(CLONE_NEWUSER|CLONE_NEWNET)");
    assert_eq!(r[1], errno(FILTERED), "clone(CLONE_NEWUSER)");
    assert_eq!(r[2], errno(FILTERED), "setns(net)");
    assert_eq!(r[3], errno(FILTERED), "setns(any type)");
    assert_eq!(r[4], errno(libc::ENOSYS), "clone3: flags behind a pointer");
    assert_eq!(r[5], "ok 0", "a plain fork still works");
    if is_root() {
        assert_eq!(
            run_unconfined(&[&format!("unshare={newuser_newnet}")]),
            ["ok 0"]
        );
    }
    let p = profile(
        &sb,
        "userns",
        "",
        "[process]\nnamespaces = [\"user\", \"net\"]\n",
    );
    let r = ran(
        &sb.run(
            &p,
            &[],
            &[
                &format!("unshare={newuser_newnet}"),
                "setns=0x40000000",
                "unshare=0x20000",
            ],
        ),
        3,
    );
    assert_eq!(r[0], "ok 0", "granted");
    assert_eq!(r[1], "ok 0");
    assert_eq!(r[2], errno(FILTERED), "mnt is still not granted");
}

#[test]
fn tcp_rules_have_no_way_around_them() {
    let sb = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = profile(&sb, "tcp", "bind_tcp = [8089]\nconnect_tcp = []\n", "");
    let ops = [
        "socket=2,1,262".to_string(), // MPTCP (connect/bind through another protocol)
        "socket=10,1,262".to_string(), // MPTCP over IPv6
        "socket=2,1,132".to_string(), // SCTP stream
        "socket=2,3,1".to_string(),   // raw ICMP
        "socket=2,2,1".to_string(),   // ICMP datagram (ping socket)
        format!("fastopen={port}"),   // data to a server without connect()
        "udp".to_string(),            // UDP goes anywhere
        "socket=2,1,6".to_string(),   // plain TCP is fine
    ];
    let refs: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = ran(&sb.run(&p, &[], &refs), 8);
    for (op, res) in ops.iter().zip(&r).take(7) {
        assert_eq!(res, &errno(FILTERED), "{op}");
    }
    assert_eq!(r[7], "ok 0");
    // the control: unconfined, fast open delivers data to the plain TCP server
    assert_eq!(run_unconfined(&[&format!("fastopen={port}")]), ["ok 1"]);
    let p = profile(
        &sb,
        "tcpudp",
        "bind_tcp = [8089]\nconnect_tcp = []\n",
        "[network]\nudp = true\n",
    );
    let r = ran(&sb.run(&p, &[], &["udp", "socket=2,2,1"]), 2);
    assert_eq!(r[0], "ok 0", "UDP granted");
    assert_eq!(r[1], errno(FILTERED), "ICMP is not UDP");
    drop(listener);
}

#[test]
fn other_processes_limits_and_priority_are_out_of_reach() {
    let sb = Sandbox::new();
    let mut victim = std::process::Command::new("/usr/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let v = victim.id().to_string();
    let p = profile(&sb, "others", "", "");
    let r = ran(
        &sb.run(
            &p,
            &[],
            &[
                &format!("prlimit={v}"),
                &format!("setpriority={v}"),
                "prlimit=0",
                "setpriority=0",
            ],
        ),
        4,
    );
    assert_eq!(r[0], errno(FILTERED), "prlimit64 on another process");
    assert_eq!(r[1], errno(FILTERED), "setpriority on another process");
    assert_eq!(r[2], "ok 0", "its own limits");
    assert_eq!(r[3], "ok 0", "its own priority");
    if is_root() {
        assert_eq!(
            run_unconfined(&[&format!("prlimit={v}")]),
            ["ok 0"],
            "root could"
        );
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn io_uring_is_denied_by_base() {
    let sb = Sandbox::new();
    let p = profile(&sb, "uring", "", "");
    assert_eq!(
        ran(&sb.run(&p, &[], &["io_uring_setup"]), 1)[0],
        errno(FILTERED)
    );
    let p = profile(&sb, "uring-lifted", "", "override_deny = [\"@io-uring\"]\n");
    let r = ran(&sb.run(&p, &[], &["io_uring_setup"]), 1);
    assert!(r[0].starts_with("ok "), "lifted: {r:?}");
}

#[test]
fn code_from_memory_cannot_be_run() {
    let sb = Sandbox::new();
    let p = profile(&sb, "memfd", "read = [\"/usr/bin/true\"]\n", "");
    let r = ran(&sb.run(&p, &[], &["memfd", "execveat-fd=/usr/bin/true"]), 2);
    assert_eq!(r[0], errno(FILTERED), "memfd_create");
    assert_eq!(r[1], errno(FILTERED), "execveat(AT_EMPTY_PATH)");
    assert_eq!(run_unconfined(&["memfd"]), ["ok 0"]);
}

#[test]
fn terminals_cannot_be_typed_into() {
    let sb = Sandbox::new();
    let p = profile(&sb, "tty", "write = [\"/dev/ptmx\", \"/dev/pts\"]\n", "");
    assert_eq!(ran(&sb.run(&p, &[], &["tiocsti"]), 1)[0], errno(FILTERED));
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .map(|s| s.trim() == "1")
        .unwrap_or(true);
    if is_root() && legacy {
        assert_eq!(run_unconfined(&["tiocsti"]), ["ok 0"], "root could");
    }
    // lifted, and with the capability the kernel wants for a tty that is not the caller's
    // controlling terminal
    let p = profile(
        &sb,
        "tty-lifted",
        "write = [\"/dev/ptmx\", \"/dev/pts\"]\n",
        "override_deny = [\"@tty-inject\"]\n[process]\ncapabilities = [\"CAP_SYS_ADMIN\"]\n",
    );
    if is_root() && legacy {
        assert_eq!(ran(&sb.run(&p, &[], &["tiocsti"]), 1)[0], "ok 0");
    }
}

#[test]
fn the_execution_domain_stays_linux() {
    let sb = Sandbox::new();
    let p = profile(&sb, "pers", "", "");
    let r = ran(
        &sb.run(
            &p,
            &[],
            &["personality=0x0400000", "personality=0xffffffff"],
        ),
        2,
    );
    assert_eq!(r[0], errno(FILTERED), "READ_IMPLIES_EXEC");
    assert_eq!(r[1], "ok 0", "the query answers PER_LINUX");
    let p = profile(
        &sb,
        "pers-lifted",
        "",
        "override_deny = [\"@personality\"]\n",
    );
    let r = ran(&sb.run(&p, &[], &["personality=0x0400000"]), 1);
    assert_eq!(r[0], "ok 0");
}

#[test]
fn the_wrappers_own_calls_are_refused_to_the_service() {
    let sb = Sandbox::new();
    let p = profile(&sb, "wrapperonly", "", "");
    let ops = [
        "landlock",
        "seccomp",
        "prctl=53,65535",     // PR_SET_SPECULATION_CTRL
        "prctl=0x59616d61,0", // PR_SET_PTRACER
        "prctl=22,0",         // PR_SET_SECCOMP
        "prctl=15,0",         // PR_SET_NAME: fine
    ];
    let r = ran(&sb.run(&p, &[], &ops), 6);
    for (op, res) in ops.iter().zip(&r).take(5) {
        assert_eq!(res, &errno(FILTERED), "{op}");
    }
    assert_ne!(r[5], errno(FILTERED), "PR_SET_NAME is not a relaxation");
    let u = run_unconfined(&["landlock", "seccomp"]);
    assert!(u[0].starts_with("ok "), "{u:?}");
    assert_eq!(u[1], "ok 0");
}

#[test]
fn x32_syscalls_kill_the_process() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let sb = Sandbox::new();
    let p = profile(&sb, "x32", "", "");
    let out = sb.run(&p, &[], &["uname", "x32-getpid", "uname"]);
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
    assert_eq!(results(&out), ["ok 0"], "killed at the x32 call");
}
