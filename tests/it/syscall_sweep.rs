//! Every syscall group denied on this host's kernel: for each group hardend knows, its own
//! members are put in a profile's `deny` list and the probe calls each of them, numbered by
//! libseccomp's table (not hardend's), with arguments the kernel would reject. Each must fail
//! with the profile's errno (ECANCELED: no call returns it for such arguments) and, in a control
//! run without the deny, reach the kernel (its own errno), so a wrong
//! number in hardend's table, a wrong architecture check or a member left out of the filter
//! shows as the kernel's own errno. The VM guests run the same sweep on their kernels and
//! architectures (vm-tests/guest/sweep.sh); this is the host's x86_64 side.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use hardend_core::profile::groups::GROUPS;
use hardend_core::profile::syscalls::{Arch, expand};

use crate::common::*;

/// What the loader and the probe need to start and print: allowed in every run here.
const ESSENTIAL: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "newfstatat",
    "fstat",
    "lstat",
    "stat",
    "statx",
    "pread64",
    "access",
    "faccessat",
    "faccessat2",
    "poll",
    "ppoll",
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "arch_prctl",
    "readlink",
    "readlinkat",
    "fcntl",
    "lseek",
    "mremap",
    "madvise",
];

/// The guest sweep (vm-tests/guest/sweep.sh) leaves out the same calls: one list, checked here.
#[test]
fn the_guest_sweep_spares_the_same_calls() {
    let script = include_str!("../../vm-tests/guest/sweep.sh");
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("essential=\""))
        .expect("an essential= line in sweep.sh");
    let theirs: BTreeSet<&str> = line.trim_end_matches('"').split_whitespace().collect();
    let ours: BTreeSet<&str> = ESSENTIAL.iter().copied().collect();
    assert_eq!(ours, theirs);
}

fn names(spec: &str, arch: Arch) -> BTreeSet<&'static str> {
    expand([spec], arch)
        .unwrap()
        .syscalls
        .into_values()
        .collect()
}

#[test]
fn every_group_denied_makes_each_member_fail_with_the_profiles_errno() {
    let Some(arch) = Arch::native() else {
        eprintln!("skipped: no hardend syscall table for this architecture");
        return;
    };
    // libseccomp numbers the calls (every Debian has libseccomp2: systemd and apt link it)
    assert!(
        hardend::audit::syscalls::Libseccomp::load().is_some(),
        "libseccomp.so.2 is not installed"
    );
    let default = names("@default", arch);
    let sb = Sandbox::new();
    // the control: the same calls under the same filter without the deny must reach the
    // kernel (its own errno), or the run proves nothing about them: hardend's own rules (side
    // doors, argument rules on PIDs, namespace flags, socket families) answer -1 arguments
    // with the profile's errno too. Calls that would really fork the probe or wait forever
    // are not made there.
    let control = sb.profile(
        "control",
        "[seccomp]\nallow = [\"@known\"]\nerrno = \"ECANCELED\"\n",
    );
    const UNSAFE_IN_CONTROL: &[&str] = &["fork", "vfork", "pause", "msgget", "sync"];
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut proven_total = 0;
    for g in GROUPS {
        if g.name == "@default" || g.name == "@known" {
            continue;
        }
        let denied: Vec<&str> = names(g.name, arch)
            .difference(&default)
            .filter(|s| !ESSENTIAL.contains(s))
            .copied()
            .collect();
        if denied.is_empty() {
            continue;
        }
        let list = denied
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let name = format!("deny-{}", &g.name[1..]);
        let p = sb.profile(
            &name,
            &format!("[seccomp]\nallow = [\"@known\"]\nerrno = \"ECANCELED\"\ndeny = [{list}]\n"),
        );
        let mut ops = vec!["sys=getppid".to_string()];
        ops.extend(denied.iter().map(|s| format!("sys={s}")));
        let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
        let out = sb.run(&p, &[], &ops);
        assert!(out.status.success(), "{}: {:?}", g.name, out);
        let text = String::from_utf8_lossy(&out.stdout);
        let ctl_ops: Vec<&str> = ops[1..]
            .iter()
            .copied()
            .filter(|o| !UNSAFE_IN_CONTROL.contains(&&o[4..]))
            .collect();
        let ctl_out = sb.run(&control, &[], &ctl_ops);
        let ctl_text = String::from_utf8_lossy(&ctl_out.stdout);
        let reaches_kernel = |op: &str| {
            ctl_text.lines().any(|l| {
                l.strip_prefix(op)
                    .and_then(|r| r.strip_prefix(" -> "))
                    .is_some_and(|a| a != "errno 125" && a != "unresolved")
            })
        };
        assert!(
            text.lines()
                .next()
                .unwrap_or("")
                .starts_with("sys=getppid -> ok"),
            "{}: the control call failed: {text}{}",
            g.name,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines().skip(1) {
            // newer than libseccomp's table: cannot be numbered independently; clone3 is
            // ENOSYS under every hardend filter (glibc then uses clone(2), whose flags the
            // filter sees)
            let fine = line.ends_with("-> errno 125")
                || line.ends_with("-> unresolved")
                || line == "sys=clone3 -> errno 38";
            if !fine {
                problems.push(format!("{}: {line}", g.name));
            } else if let Some((op, _)) = line.split_once(" -> ")
                && line.ends_with("-> errno 125")
                && reaches_kernel(op)
            {
                proven_total += 1;
            }
        }
        assert_eq!(text.lines().count(), ops.len(), "{}: {text}", g.name);
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} groups checked");
    assert!(
        problems.is_empty(),
        "not denied by their group: {problems:#?}"
    );
    // most denials are the deny's own doing (on x86_64 more than 400 of the member calls)
    assert!(
        proven_total >= 300,
        "only {proven_total} calls distinguished"
    );

    // the control: without the deny the same calls reach the kernel, which answers for itself
    let p = sb.profile(
        "control",
        "[seccomp]\nallow = [\"@known\"]\nerrno = \"ECANCELED\"\n",
    );
    let r = ran(
        &sb.run(&p, &[], &["sys=mount", "sys=swapoff", "sys=delete_module"]),
        3,
    );
    // (mount: EFAULT; swapoff: EPERM, no capability; delete_module: EFAULT, or ENOSYS
    // on a kernel without modules)
    assert_eq!(r[0], errno(libc::EFAULT), "{r:?}");
    assert!(
        r.iter()
            .all(|x| x.starts_with("errno ") && *x != errno(libc::ECANCELED)),
        "{r:?}"
    );
}
