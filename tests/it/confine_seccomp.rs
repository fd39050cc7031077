//! seccomp enforcement on this host's kernel: forbidden syscalls get the configured errno,
//! the kill action kills with SIGSYS, and complain mode lets the call through. Run as root
//! (as CI does), so for mount/ptrace/bpf/reboot only the filter can explain an EPERM; the
//! probe passes arguments the kernel would reject, so nothing harmful happens either way.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::process::ExitStatusExt;

use crate::common::*;

#[test]
fn a_syscall_outside_the_allow_list_gets_the_configured_errno() {
    let sb = Sandbox::new();
    let p = sb.probe_profile(
        "etxtbsy",
        "",
        "[seccomp]\nerrno = \"ETXTBSY\"\nallow = [\"@system-service\"]",
    );
    // reboot is not in @system-service; uname is.
    let r = ran(&sb.run(&p, &[], &["reboot", "uname"]), 2);
    assert_eq!(r[0], errno(libc::ETXTBSY));
    assert_eq!(r[1], "ok 0");
    assert_eq!(run_unconfined(&["reboot"]), [errno(libc::EINVAL)]);
}

#[test]
fn kill_action_kills_the_process_with_sigsys() {
    let sb = Sandbox::new();
    let p = sb.probe_profile(
        "kill",
        "",
        "[seccomp]\ndefault_action = \"kill\"\nallow = [\"@system-service\"]",
    );
    let out = sb.run(&p, &[], &["uname", "reboot", "uname"]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "status {:?}",
        out.status
    );
    // the first call ran, the process died at the second
    assert_eq!(results(&out), ["ok 0"]);
}

#[test]
fn io_uring_comes_only_by_name_never_through_a_broad_group() {
    let sb = Sandbox::new();
    // @system-service contains @aio, which contains io_uring: not enough
    let p = sb.probe_profile("uring", "", "[seccomp]\nallow = [\"@system-service\"]");
    assert_eq!(
        ran(&sb.run(&p, &[], &["io_uring_setup"]), 1)[0],
        errno(libc::EPERM)
    );
    // named, but base denies it: deny wins
    let named = sb.probe_profile("uring-named", "", "[seccomp]\nallow = [\"@io-uring\"]");
    assert_eq!(
        ran(&sb.run(&named, &[], &["io_uring_setup"]), 1)[0],
        errno(libc::EPERM)
    );
    // lifted from base by name: granted
    let lifted = sb.probe_profile(
        "uring-lifted",
        "",
        "[seccomp]\noverride_deny = [\"@io-uring\"]",
    );
    let r = ran(&sb.run(&lifted, &[], &["io_uring_setup"]), 1);
    assert!(r[0].starts_with("ok"), "lifted: {r:?}");
}

#[test]
fn privileged_groups_denied_even_for_root_even_when_everything_is_allowed() {
    let sb = Sandbox::new();
    let p = sb.probe_profile(
        "nopriv",
        "",
        "[seccomp]\nallow = [\"@known\"]\ndeny = [\"@mount\", \"@debug\", \"@privileged\", \"@reboot\"]",
    );
    let ops = ["mount", "ptrace", "bpf", "reboot", "uname"];
    let r = ran(&sb.run(&p, &[], &ops), ops.len());
    assert_eq!(&r[..4], vec![errno(libc::EPERM); 4]);
    assert_eq!(r[4], "ok 0");
    if is_root() {
        // unconfined root gets the kernel's own answer to the bad arguments instead
        assert_eq!(
            run_unconfined(&ops[..4]),
            [
                errno(libc::ENOENT),
                errno(libc::ESRCH),
                errno(libc::EINVAL),
                errno(libc::EINVAL)
            ]
        );
    }
}

#[test]
fn complain_mode_lets_denied_syscalls_through() {
    let sb = Sandbox::new();
    let seccomp = "[seccomp]\nallow = [\"@system-service\"]\ndeny = [\"getppid\"]";
    let enforce = sb.probe_profile("enf", "", seccomp);
    let complain = sb.profile(
        "compl",
        &format!(
            "include = [\"base\"]\nmode = \"complain\"\n[landlock]\nread_exec = [\"{{probe}}\"]\n{seccomp}\n"
        ),
    );
    assert_eq!(
        ran(&sb.run(&enforce, &[], &["getppid"]), 1)[0],
        errno(libc::EPERM)
    );
    let r = ran(&sb.run(&complain, &[], &["getppid"]), 1);
    assert!(r[0].starts_with("ok "), "complain mode: {r:?}");
    assert_ne!(r[0], "ok 0");
}

#[test]
fn argument_rules_allow_only_matching_calls() {
    let sb = Sandbox::new();
    // socket() only for AF_UNIX (1): TCP sockets fail, abstract UNIX connects get past the
    // filter (and fail only because nobody listens).
    let p = sb.probe_profile(
        "argrule",
        "",
        "[seccomp]\nallow = [\"@system-service\"]\n[[seccomp.rule]]\nsyscall = \"socket\"\nallow_if = [{ arg = 0, op = \"eq\", value = 1, width = 32 }]",
    );
    let r = ran(
        &sb.run(&p, &[], &["bind=0", "abstract-connect=hardend-nobody"]),
        2,
    );
    assert_eq!(r[0], errno(libc::EPERM));
    assert_eq!(r[1], errno(libc::ECONNREFUSED));
}
