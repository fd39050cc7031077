//! seccomp: compile a profile into one BPF filter (with `seccompiler` for the argument
//! comparisons and our own dispatch, `bpf.rs`).
//!
//! Semantics (documented in docs/profiles.md):
//! * allowed = expand(allow) ∪ expand(@default) − expand(deny); deny always wins; without a
//!   `[seccomp]` section every syscall is allowed (the rules below still apply);
//! * side doors (`sidedoors.rs`) never come in through a broader group: their syscalls are
//!   removed and their argument limits applied unless the profile grants them by name;
//! * a syscall with `[[seccomp.rule]]`s is allowed only when one of its rules matches;
//! * the wrapper's own rules (`rules.rs`: address families, socket types, namespaces, other
//!   processes) must hold as well, for every profile;
//! * `clone3` always fails with ENOSYS (its flags are behind a pointer; libc falls back to
//!   `clone`, whose flags the filter can see); `execve` is always allowed (the wrapper execs
//!   the service after installing the filter);
//! * everything else gets the default action (errno / kill / log); `mode = "complain"`
//!   turns that into SECCOMP_RET_LOG;
//! * the filter checks the architecture first: a syscall made through another ABI (32-bit
//!   `int 0x80` on x86-64) kills the process, and so does any x32 syscall number.

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};
use serde::{Deserialize, Serialize};

use super::bpf::Dispatch;
use super::rules::{self, Dnf, FilterContext};
use crate::profile::sidedoors::{self, SIDE_DOORS};
use crate::profile::syscalls::{self, Arch, UnknownName};
use crate::profile::{ArgCondition, CmpOp, DefaultAction, Mode, Profile, SeccompPolicy};

/// Errors while compiling or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: unknown syscall or group {0}")]
    Unknown(String),
    #[error("seccomp: cannot build the filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("seccomp: {0}")]
    Layout(#[from] super::bpf::BpfError),
    #[error("seccomp: the rules for {syscall} need {terms} alternatives (at most {MAX_TERMS})")]
    TooManyAlternatives { syscall: String, terms: usize },
    #[error("seccomp: cannot install the filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// A syscall's rules are combined into at most this many alternatives.
const MAX_TERMS: usize = 128;

/// SECCOMP_RET_ERRNO | ENOSYS.
fn ret_enosys() -> u32 {
    u32::from(SeccompAction::Errno(libc::ENOSYS as u32))
}

/// What the installed filter does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompReport {
    /// `false` when the profile has no `[seccomp]` section (no allow-list; the wrapper's
    /// own rules are still installed).
    pub configured: bool,
    pub arch: String,
    pub mode: Mode,
    /// The action for calls that are not allowed, after `mode` is applied.
    pub default_action: DefaultAction,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errno: Option<String>,
    /// Number of syscalls allowed (unconditionally or by argument rules).
    pub allowed: usize,
    /// Syscalls allowed only when argument rules hold (the profile's or the wrapper's).
    pub conditional: Vec<String>,
    /// Side doors the profile grants (by name or `override_deny`).
    #[serde(default)]
    pub side_doors_granted: Vec<String>,
    pub bpf_instructions: usize,
    /// Things the profile names that do not apply on this architecture, or have no effect.
    pub notes: Vec<String>,
}

/// The allow set for one architecture (name → number), before argument rules: the
/// profile's lists, side doors removed unless granted, `execve` always in.
pub fn allowed_syscalls(
    policy: Option<&SeccompPolicy>,
    arch: Arch,
) -> Result<(BTreeMap<&'static str, i64>, Vec<String>), SeccompError> {
    resolve(policy, arch).map(|r| {
        (
            r.allowed.into_iter().map(|(nr, n)| (n, nr)).collect(),
            r.notes,
        )
    })
}

/// A policy expanded for one architecture (number → name).
struct Resolved {
    allowed: BTreeMap<i64, &'static str>,
    denied: BTreeSet<i64>,
    notes: Vec<String>,
}

fn resolve(policy: Option<&SeccompPolicy>, arch: Arch) -> Result<Resolved, SeccompError> {
    let unknown = |e: UnknownName| {
        SeccompError::Unknown(match e {
            UnknownName::Group(g) | UnknownName::Syscall(g) => g,
        })
    };
    let mut notes = Vec::new();
    let mut denied = BTreeSet::new();
    let mut allowed = match policy {
        None => {
            syscalls::expand(["@known"], arch)
                .map_err(unknown)?
                .syscalls
        }
        Some(p) => {
            let allow = syscalls::expand(
                p.allow
                    .iter()
                    .map(String::as_str)
                    .chain(std::iter::once("@default")),
                arch,
            )
            .map_err(unknown)?;
            let deny =
                syscalls::expand(p.deny.iter().map(String::as_str), arch).map_err(unknown)?;
            notes.extend(
                allow
                    .skipped
                    .iter()
                    .chain(deny.skipped.iter())
                    .map(|s| format!("{s}: not a syscall on {arch}, skipped")),
            );
            let mut a = allow.syscalls;
            a.retain(|nr, _| !deny.syscalls.contains_key(nr));
            denied = deny.syscalls.into_keys().collect();
            a
        }
    };
    // side doors only by name
    for door in SIDE_DOORS {
        if sidedoors::granted(policy, door) {
            continue;
        }
        for s in door.syscalls {
            let named = policy.is_some_and(|p| p.allow.contains(*s) && !p.deny.contains(*s));
            if !named && let Some(nr) = arch.number(s) {
                allowed.remove(&nr);
            }
        }
    }
    // execve must stay reachable: hardend-exec execs the service after installing the filter.
    if let Some((n, nr)) = arch.lookup("execve") {
        allowed.insert(nr, n);
    }
    notes.sort();
    notes.dedup();
    Ok(Resolved {
        allowed,
        denied,
        notes,
    })
}

fn condition(c: &ArgCondition) -> Result<SeccompCondition, SeccompError> {
    let len = if c.width == 32 {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    let op = match c.op {
        CmpOp::Eq => SeccompCmpOp::Eq,
        CmpOp::Ne => SeccompCmpOp::Ne,
        CmpOp::Lt => SeccompCmpOp::Lt,
        CmpOp::Le => SeccompCmpOp::Le,
        CmpOp::Gt => SeccompCmpOp::Gt,
        CmpOp::Ge => SeccompCmpOp::Ge,
        CmpOp::MaskedEq => SeccompCmpOp::MaskedEq(c.mask.unwrap_or(u64::MAX)),
    };
    Ok(SeccompCondition::new(c.arg, len, op, c.value)?)
}

/// The profile's own argument rules for one syscall, as alternatives.
fn profile_rules(policy: Option<&SeccompPolicy>, name: &str) -> Option<Dnf> {
    let p = policy?;
    let dnf: Dnf = p
        .rules
        .iter()
        .filter(|r| r.syscall == name)
        .map(|r| r.allow_if.clone())
        .collect();
    (!dnf.is_empty()).then_some(dnf)
}

/// Compiles `profile` for `arch`, for the process described by `ctx`.
pub fn compile(
    profile: &Profile,
    arch: Arch,
    ctx: &FilterContext,
) -> Result<(BpfProgram, SeccompReport), SeccompError> {
    let policy = profile.seccomp.as_ref();
    let Resolved {
        allowed,
        denied,
        mut notes,
    } = resolve(policy, arch)?;
    let narrowings = rules::narrowings(profile, ctx);

    // every syscall that is allowed in some form, with its number
    let mut names = allowed;
    for r in policy.map(|p| p.rules.as_slice()).unwrap_or(&[]) {
        if arch
            .number(&r.syscall)
            .is_some_and(|nr| denied.contains(&nr))
        {
            notes.push(format!(
                "rule for {}: ignored, the syscall is denied",
                r.syscall
            ));
        } else if let Some((n, nr)) = arch.lookup(&r.syscall) {
            names.insert(nr, n);
        } else {
            notes.push(format!(
                "rule for {}: not a syscall on {arch}, skipped",
                r.syscall
            ));
        }
    }

    let mut dispatch = Dispatch::default();
    let mut conditional = Vec::new();
    for (nr, name) in names {
        // a rule narrows an unconditional allow of the same syscall
        let own = if denied.contains(&nr) {
            None
        } else {
            profile_rules(policy, name)
        };
        let mut dnf: Option<Dnf> = own;
        for n in narrowings.get(name).into_iter().flatten() {
            dnf = Some(match dnf {
                None => n.clone(),
                Some(d) => rules::and(&d, n),
            });
            if dnf.as_ref().is_some_and(|d| d.len() > MAX_TERMS) {
                return Err(SeccompError::TooManyAlternatives {
                    syscall: name.to_string(),
                    terms: dnf.as_ref().map_or(0, Vec::len),
                });
            }
        }
        match dnf {
            None => {
                dispatch.allowed.insert(nr);
            }
            Some(d) => {
                conditional.push(name.to_string());
                let compiled = d
                    .iter()
                    .map(|term| {
                        let conds = term.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
                        Ok::<_, SeccompError>(SeccompRule::new(conds)?)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                dispatch.rules.insert(nr, compiled);
            }
        }
    }
    if let Some(nr) = arch.number("clone3") {
        dispatch.allowed.remove(&nr);
        dispatch.rules.remove(&nr);
        dispatch.fixed.insert(nr, ret_enosys());
    }
    if arch == Arch::X86_64 {
        dispatch.kill_from = Some(super::bpf::X32_SYSCALL_BIT);
    }

    let effective_default = match (profile.mode, policy.map(|p| p.default_action)) {
        (Mode::Complain, _) => DefaultAction::Log,
        (Mode::Enforce, Some(a)) => a,
        (Mode::Enforce, None) => DefaultAction::Errno,
    };
    let errno_value = policy.map_or(libc::EPERM, SeccompPolicy::errno_value);
    let mismatch = match effective_default {
        DefaultAction::Errno => SeccompAction::Errno(errno_value as u32),
        DefaultAction::Kill => SeccompAction::KillProcess,
        DefaultAction::Log => SeccompAction::Log,
    };
    let audit_arch = match arch {
        Arch::X86_64 => super::bpf::AUDIT_ARCH_X86_64,
        Arch::Aarch64 => super::bpf::AUDIT_ARCH_AARCH64,
    };
    let allowed_count = dispatch.allowed.len() + dispatch.rules.len();
    let bpf = super::bpf::build(audit_arch, dispatch, mismatch)?;
    notes.sort();
    notes.dedup();
    let report = SeccompReport {
        configured: policy.is_some(),
        arch: arch.to_string(),
        mode: profile.mode,
        default_action: effective_default,
        errno: (effective_default == DefaultAction::Errno).then(|| {
            policy
                .map(|p| p.errno.clone())
                .unwrap_or_else(|| "EPERM".into())
        }),
        allowed: allowed_count,
        conditional,
        side_doors_granted: SIDE_DOORS
            .iter()
            .filter(|d| sidedoors::granted(policy, d))
            .map(|d| d.name.to_string())
            .collect(),
        bpf_instructions: bpf.len(),
        notes,
    };
    Ok((bpf, report))
}

/// Installs `bpf` on the calling thread (no_new_privs must be set).
pub fn install(bpf: &BpfProgram) -> Result<(), SeccompError> {
    seccompiler::apply_filter(bpf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{self, AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64};
    use super::*;
    use crate::profile::{ArgRule, NetworkPolicy, ProcessPolicy};

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const CTX: FilterContext = FilterContext { pid: 4242 };

    fn policy(allow: &[&str], deny: &[&str]) -> SeccompPolicy {
        SeccompPolicy {
            default_action: DefaultAction::Errno,
            errno: "EPERM".into(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn profile(p: Option<SeccompPolicy>) -> Profile {
        Profile {
            name: "t".into(),
            description: None,
            source: "/t.toml".into(),
            files: vec![],
            mode: Mode::Enforce,
            landlock: None,
            seccomp: p,
            network: NetworkPolicy::default(),
            process: ProcessPolicy::default(),
        }
    }

    fn runner(p: &Profile, arch: Arch) -> impl Fn(&str, [u64; 6]) -> u32 + use<> {
        let (prog, _) = compile(p, arch, &CTX).unwrap();
        let audit = match arch {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        };
        move |name: &str, args| bpf::run(&prog, audit, arch.number(name).unwrap() as u32, args)
    }

    #[test]
    fn deny_wins_over_allow() {
        let (a, _) = allowed_syscalls(
            Some(&policy(&["@known"], &["@mount", "ptrace"])),
            Arch::X86_64,
        )
        .unwrap();
        assert!(!a.contains_key("mount"));
        assert!(!a.contains_key("ptrace"));
        assert!(a.contains_key("read"));
    }

    #[test]
    fn default_group_and_execve_are_implicit() {
        let (a, _) = allowed_syscalls(Some(&policy(&["read"], &[])), Arch::X86_64).unwrap();
        assert!(a.contains_key("execve"));
        assert!(a.contains_key("exit_group"));
        assert!(!a.contains_key("socket"));
    }

    #[test]
    fn side_doors_never_come_through_a_broad_group() {
        let (a, _) = allowed_syscalls(Some(&policy(&["@known"], &[])), Arch::X86_64).unwrap();
        for s in [
            "io_uring_setup",
            "memfd_create",
            "bpf",
            "userfaultfd",
            "seccomp",
        ] {
            assert!(!a.contains_key(s), "{s} came in through @known");
        }
        let (a, _) = allowed_syscalls(None, Arch::X86_64).unwrap();
        assert!(
            !a.contains_key("io_uring_setup"),
            "not even without [seccomp]"
        );
        let (a, _) = allowed_syscalls(
            Some(&policy(&["@known", "@io-uring", "bpf"], &[])),
            Arch::X86_64,
        )
        .unwrap();
        assert!(
            a.contains_key("io_uring_enter") && a.contains_key("bpf"),
            "named: granted"
        );
        let mut lifted = policy(&["@system-service"], &[]);
        lifted.granted.insert("@memfd".into());
        let (a, _) = allowed_syscalls(Some(&lifted), Arch::X86_64).unwrap();
        assert!(a.contains_key("memfd_create"), "override_deny grants");
    }

    #[test]
    fn arch_specific_names_become_notes() {
        let (_, notes) = allowed_syscalls(Some(&policy(&["open"], &[])), Arch::Aarch64).unwrap();
        assert_eq!(notes, ["open: not a syscall on aarch64, skipped"]);
    }

    #[test]
    fn complain_mode_logs_instead_of_failing() {
        let mut p = profile(Some(policy(&["@system-service"], &[])));
        p.mode = Mode::Complain;
        let (_, r) = compile(&p, Arch::X86_64, &CTX).unwrap();
        assert_eq!(r.default_action, DefaultAction::Log);
        assert_eq!(r.errno, None);
    }

    #[test]
    fn clone3_is_enosys_and_x32_is_killed() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let run = runner(
                &profile(Some(policy(&["@system-service", "clone3"], &[]))),
                arch,
            );
            assert_eq!(run("clone3", [0; 6]), ret_enosys(), "{arch}");
        }
        let (prog, _) = compile(&profile(None), Arch::X86_64, &CTX).unwrap();
        let getpid_x32 = 0x4000_0000 | 39;
        assert_eq!(
            bpf::run(&prog, AUDIT_ARCH_X86_64, getpid_x32, [0; 6]),
            0x8000_0000
        );
    }

    #[test]
    fn sockets_are_the_granted_families_and_inet_is_tcp_only() {
        let run = runner(
            &profile(Some(policy(&["@system-service"], &[]))),
            Arch::X86_64,
        );
        let sock = |d: u64, t: u64, p: u64| run("socket", [d, t, p, 0, 0, 0]);
        assert_eq!(sock(1, 1, 0), ALLOW, "unix");
        assert_eq!(sock(2, 1 | 0o4000, 0), ALLOW, "inet stream, nonblocking");
        assert_eq!(sock(10, 1, 6), ALLOW, "inet6 TCP");
        assert_eq!(sock(2, 1, 262), EPERM, "MPTCP");
        assert_eq!(sock(2, 1, 132), EPERM, "SCTP stream");
        assert_eq!(sock(2, 2, 0), EPERM, "UDP not granted");
        assert_eq!(sock(2, 3, 1), EPERM, "raw");
        assert_eq!(sock(17, 3, 0), EPERM, "packet");
        assert_eq!(sock(16, 3, 12), EPERM, "netlink");
        // the high 32 bits of an int argument do not matter to the kernel, nor here
        assert_eq!(sock(1 | (17 << 32), 1, 0), ALLOW);
        assert_eq!(sock(17 | (1 << 32), 1, 0), EPERM);
        let mut p = profile(Some(policy(&["@system-service"], &[])));
        p.network.udp = true;
        p.network.families.insert("netlink".into());
        let run = runner(&p, Arch::Aarch64);
        assert_eq!(run("socket", [2, 2, 17, 0, 0, 0]), ALLOW, "UDP granted");
        assert_eq!(run("socket", [2, 2, 1, 0, 0, 0]), EPERM, "ICMP is not UDP");
        assert_eq!(run("socket", [16, 3, 0, 0, 0, 0]), ALLOW, "netlink granted");
    }

    #[test]
    fn namespaces_only_when_granted() {
        let run = runner(
            &profile(Some(policy(&["@system-service"], &[]))),
            Arch::X86_64,
        );
        let newuser = 0x1000_0000;
        let thread = 0x3d0f00; // what pthread_create passes
        assert_eq!(
            run("unshare", [newuser | 0x4000_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            run("unshare", [0x200, 0, 0, 0, 0, 0]),
            ALLOW,
            "CLONE_FS is no namespace"
        );
        assert_eq!(run("clone", [thread, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run("clone", [thread | newuser, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run("setns", [3, 0, 0, 0, 0, 0]), EPERM);
        let mut p = profile(Some(policy(&["@system-service"], &[])));
        p.process
            .namespaces
            .insert(crate::profile::process::Namespace::Net);
        let run = runner(&p, Arch::X86_64);
        assert_eq!(run("unshare", [0x4000_0000, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            run("unshare", [0x4000_0000 | newuser, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(run("setns", [3, 0x4000_0000, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run("setns", [3, 0, 0, 0, 0, 0]), EPERM, "any type");
    }

    #[test]
    fn other_processes_are_out_of_reach() {
        let run = runner(
            &profile(Some(policy(&["@system-service"], &[]))),
            Arch::X86_64,
        );
        assert_eq!(run("prlimit64", [0, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run("prlimit64", [4242, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run("prlimit64", [1, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run("setpriority", [0, 0, 5, 0, 0, 0]), ALLOW);
        assert_eq!(run("setpriority", [0, 1, 5, 0, 0, 0]), EPERM);
        assert_eq!(run("setpriority", [2, 0, 5, 0, 0, 0]), EPERM, "PRIO_USER");
    }

    #[test]
    fn side_door_arguments_are_narrowed_unless_granted() {
        let run = runner(
            &profile(Some(policy(&["@system-service"], &[]))),
            Arch::X86_64,
        );
        assert_eq!(run("ioctl", [0, 0x5412, 0, 0, 0, 0]), EPERM, "TIOCSTI");
        assert_eq!(run("ioctl", [0, 0x5401, 0, 0, 0, 0]), ALLOW, "TCGETS");
        assert_eq!(
            run("ioctl", [0, 0x1_0000_5412, 0, 0, 0, 0]),
            EPERM,
            "32-bit cmd"
        );
        assert_eq!(run("personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            run("execveat", [3, 0, 0, 0, 0x1000, 0]),
            EPERM,
            "AT_EMPTY_PATH"
        );
        assert_eq!(run("execveat", [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run("prctl", [53, 0, 0, 0, 0, 0]), EPERM, "speculation");
        assert_eq!(run("prctl", [15, 0, 0, 0, 0, 0]), ALLOW, "PR_SET_NAME");
        let run = runner(
            &profile(Some(policy(&["@system-service", "@tty-inject"], &[]))),
            Arch::X86_64,
        );
        assert_eq!(run("ioctl", [0, 0x5412, 0, 0, 0, 0]), ALLOW, "granted");
    }

    #[test]
    fn argument_rules_narrow_and_compile_for_both_arches() {
        let mut p = policy(&["@system-service"], &[]);
        p.rules.push(ArgRule {
            syscall: "socket".into(),
            allow_if: vec![ArgCondition {
                arg: 0,
                op: CmpOp::Eq,
                value: 1,
                mask: None,
                width: 32,
            }],
        });
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let prof = profile(Some(p.clone()));
            let (_, r) = compile(&prof, arch, &CTX).unwrap();
            assert!(r.conditional.contains(&"socket".to_string()));
            let run = runner(&prof, arch);
            assert_eq!(
                run("socket", [1, 1, 0, 0, 0, 0]),
                ALLOW,
                "AF_UNIX allowed on {arch}"
            );
            assert_eq!(
                run("socket", [2, 1, 0, 0, 0, 0]),
                EPERM,
                "AF_INET denied on {arch}"
            );
            assert_eq!(run("read", [0; 6]), ALLOW);
            assert_eq!(run("mount", [0; 6]), EPERM);
            assert_eq!(run("execve", [0; 6]), ALLOW);
        }
    }
}
