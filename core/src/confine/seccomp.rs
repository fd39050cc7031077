//! seccomp: compile a profile's `[seccomp]` section into a BPF filter with `seccompiler`.
//!
//! Semantics (documented in docs/profiles.md):
//! * allowed = expand(allow) ∪ expand(@default) − expand(deny); deny always wins;
//! * a syscall with `[[seccomp.rule]]`s is allowed only when one of its rules matches;
//! * everything else gets the default action (errno / kill / log); `mode = "complain"`
//!   turns that into SECCOMP_RET_LOG;
//! * the filter checks the architecture first: a syscall made through another ABI
//!   (e.g. 32-bit `int 0x80` on x86-64) kills the process.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};
use serde::{Deserialize, Serialize};

use crate::profile::syscalls::{self, Arch, UnknownName};
use crate::profile::{ArgCondition, CmpOp, DefaultAction, Mode, SeccompPolicy};

/// Errors while compiling or installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: unknown syscall or group {0}")]
    Unknown(String),
    #[error("seccomp: cannot build the filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("seccomp: {0}")]
    Layout(#[from] super::bpf::BpfError),
    #[error("seccomp: cannot install the filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// What the installed filter does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompReport {
    /// `false` when the profile has no `[seccomp]` section.
    pub configured: bool,
    pub arch: String,
    pub mode: Mode,
    /// The action for calls that are not allowed, after `mode` is applied.
    pub default_action: DefaultAction,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errno: Option<String>,
    /// Number of syscalls allowed (unconditionally or by argument rules).
    pub allowed: usize,
    /// Syscalls allowed only when an argument rule matches.
    pub conditional: Vec<String>,
    pub bpf_instructions: usize,
    /// Things the profile names that do not apply on this architecture, or have no effect.
    pub notes: Vec<String>,
}

impl SeccompReport {
    pub fn not_configured(arch: Arch) -> Self {
        SeccompReport {
            configured: false,
            arch: arch.to_string(),
            mode: Mode::Enforce,
            default_action: DefaultAction::Errno,
            errno: None,
            allowed: 0,
            conditional: Vec::new(),
            bpf_instructions: 0,
            notes: Vec::new(),
        }
    }
}

/// The allow set of a policy for one architecture: name → number.
pub fn allowed_syscalls(
    policy: &SeccompPolicy,
    arch: Arch,
) -> Result<(BTreeMap<String, i64>, Vec<String>), SeccompError> {
    let unknown = |e: UnknownName| {
        SeccompError::Unknown(match e {
            UnknownName::Group(g) | UnknownName::Syscall(g) => g,
        })
    };
    let allow = syscalls::expand(
        policy
            .allow
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("@default")),
        arch,
    )
    .map_err(unknown)?;
    let deny = syscalls::expand(policy.deny.iter().map(String::as_str), arch).map_err(unknown)?;
    let mut notes: Vec<String> = allow
        .skipped
        .iter()
        .chain(deny.skipped.iter())
        .map(|s| format!("{s}: not a syscall on {arch}, skipped"))
        .collect();
    let mut allowed = allow.syscalls;
    allowed.retain(|name, _| !deny.syscalls.contains_key(name));
    // execve must stay reachable: hardend-exec execs the service after installing the filter.
    if let Some(nr) = arch.number("execve") {
        allowed.insert("execve".into(), nr);
    }
    notes.sort();
    notes.dedup();
    Ok((allowed, notes))
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

/// Compiles `policy` for `arch`.
pub fn compile(
    policy: &SeccompPolicy,
    mode: Mode,
    arch: Arch,
) -> Result<(BpfProgram, SeccompReport), SeccompError> {
    let (mut allowed, mut notes) = allowed_syscalls(policy, arch)?;
    let denied = syscalls::expand(policy.deny.iter().map(String::as_str), arch)
        .map_err(|_| SeccompError::Unknown("deny".into()))?
        .syscalls;

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut conditional = Vec::new();
    for rule in &policy.rules {
        if denied.contains_key(&rule.syscall) {
            notes.push(format!(
                "rule for {}: ignored, the syscall is denied",
                rule.syscall
            ));
            continue;
        }
        let Some(nr) = arch.number(&rule.syscall) else {
            notes.push(format!(
                "rule for {}: not a syscall on {arch}, skipped",
                rule.syscall
            ));
            continue;
        };
        let conds = rule
            .allow_if
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        // A rule narrows an unconditional allow of the same syscall.
        allowed.remove(&rule.syscall);
        if !conditional.contains(&rule.syscall) {
            conditional.push(rule.syscall.clone());
        }
        rules.entry(nr).or_default().push(SeccompRule::new(conds)?);
    }

    let effective_default = match (mode, policy.default_action) {
        (Mode::Complain, _) => DefaultAction::Log,
        (Mode::Enforce, a) => a,
    };
    let mismatch = match effective_default {
        DefaultAction::Errno => SeccompAction::Errno(policy.errno_value() as u32),
        DefaultAction::Kill => SeccompAction::KillProcess,
        DefaultAction::Log => SeccompAction::Log,
    };
    let audit_arch = match arch {
        Arch::X86_64 => super::bpf::AUDIT_ARCH_X86_64,
        Arch::Aarch64 => super::bpf::AUDIT_ARCH_AARCH64,
    };
    let unconditional = allowed.values().copied().collect();
    let bpf = super::bpf::build(audit_arch, &unconditional, rules, mismatch)?;
    let report = SeccompReport {
        configured: true,
        arch: arch.to_string(),
        mode,
        default_action: effective_default,
        errno: (effective_default == DefaultAction::Errno).then(|| policy.errno.clone()),
        allowed: allowed.len()
            + conditional
                .iter()
                .filter(|c| !allowed.contains_key(*c))
                .count(),
        conditional,
        bpf_instructions: bpf.len(),
        notes,
    };
    Ok((bpf, report))
}

/// Installs `bpf` on the calling thread (sets no_new_privs first).
pub fn install(bpf: &BpfProgram) -> Result<(), SeccompError> {
    seccompiler::apply_filter(bpf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ArgRule;
    fn policy(allow: &[&str], deny: &[&str]) -> SeccompPolicy {
        SeccompPolicy {
            default_action: DefaultAction::Errno,
            errno: "EPERM".into(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            rules: Vec::new(),
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let (a, _) =
            allowed_syscalls(&policy(&["@known"], &["@mount", "ptrace"]), Arch::X86_64).unwrap();
        assert!(!a.contains_key("mount"));
        assert!(!a.contains_key("ptrace"));
        assert!(a.contains_key("read"));
    }

    #[test]
    fn default_group_and_execve_are_implicit() {
        let (a, _) = allowed_syscalls(&policy(&["read"], &[]), Arch::X86_64).unwrap();
        assert!(a.contains_key("execve"));
        assert!(a.contains_key("exit_group"));
        assert!(!a.contains_key("socket"));
    }

    #[test]
    fn arch_specific_names_become_notes() {
        let (_, notes) = allowed_syscalls(&policy(&["open"], &[]), Arch::Aarch64).unwrap();
        assert_eq!(notes, ["open: not a syscall on aarch64, skipped"]);
    }

    #[test]
    fn complain_mode_logs_instead_of_failing() {
        let (_, r) = compile(
            &policy(&["@system-service"], &[]),
            Mode::Complain,
            Arch::X86_64,
        )
        .unwrap();
        assert_eq!(r.default_action, DefaultAction::Log);
        assert_eq!(r.errno, None);
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
        for (arch, audit) in [
            (Arch::X86_64, super::super::bpf::AUDIT_ARCH_X86_64),
            (Arch::Aarch64, super::super::bpf::AUDIT_ARCH_AARCH64),
        ] {
            let (bpf, r) = compile(&p, Mode::Enforce, arch).unwrap();
            assert_eq!(r.conditional, ["socket"]);
            let nr = |n: &str| arch.number(n).unwrap() as u32;
            let run =
                |n: &str, a0: u64| super::super::bpf::run(&bpf, audit, nr(n), [a0, 0, 0, 0, 0, 0]);
            assert_eq!(run("socket", 1), 0x7fff_0000, "AF_UNIX allowed on {arch}");
            assert_eq!(run("socket", 2), 0x0005_0001, "AF_INET denied on {arch}");
            assert_eq!(run("read", 0), 0x7fff_0000);
            assert_eq!(run("mount", 0), 0x0005_0001);
            assert_eq!(run("execve", 0), 0x7fff_0000);
        }
    }
}
