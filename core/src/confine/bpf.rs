//! BPF layout of the syscall filter: a binary search over syscall-number ranges.
//!
//! `seccompiler` compiles each argument rule (the error-prone 32/64-bit comparisons) and
//! installs the program; we lay out the dispatch on the syscall number ourselves, because
//! seccompiler 0.5 emits a linear chain of four instructions per syscall. For a
//! `@system-service` profile that is ~1,500 instructions, and the kernel emulates the whole
//! filter for every syscall number when it builds its constant-action cache at install time:
//! measured 1.4 ms per `seccomp()` call here, most of hardend-exec's start overhead. The
//! tree below has ~150 instructions with a depth of ~8 comparisons, only uses instructions
//! the kernel's cache emulator understands (LD of nr/arch, JGE/JEQ/JA, RET), and keeps every
//! syscall without argument rules cacheable (O(1) at run time).

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{BpfProgram, SeccompAction, SeccompRule, sock_filter};

/// BPF_LD | BPF_W | BPF_ABS (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// The kernel refuses longer programs.
pub const BPF_MAX_LEN: usize = 4096;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// What happens to the syscalls in one range.
#[derive(Clone, Debug)]
enum Leaf {
    Allow,
    Default,
    Rules(Vec<SeccompRule>),
    /// A fixed answer for this syscall (e.g. ENOSYS for clone3), whatever the default.
    Return(u32),
}

/// What the filter does, by syscall number.
#[derive(Clone, Debug, Default)]
pub struct Dispatch {
    /// Allowed unconditionally.
    pub allowed: BTreeSet<i64>,
    /// Allowed when one of the rules matches.
    pub rules: BTreeMap<i64, Vec<SeccompRule>>,
    /// A fixed action (SECCOMP_RET_* value) for these.
    pub fixed: BTreeMap<i64, u32>,
    /// Numbers at or above this are killed before the search (x86-64: the x32 ABI, whose
    /// numbers carry bit 30 under the same AUDIT_ARCH).
    pub kill_from: Option<u32>,
}

/// Errors in laying out the filter.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("the filter needs {0} BPF instructions; the kernel allows {BPF_MAX_LEN}")]
    TooLarge(usize),
    #[error("syscall number {0} is out of range")]
    BadNumber(i64),
}

/// Builds the program: architecture check, the x32 kill, then the range search. Syscalls
/// not in `d` get `default`.
pub fn build(audit_arch: u32, d: Dispatch, default: SeccompAction) -> Result<BpfProgram, BpfError> {
    let Dispatch {
        allowed,
        mut rules,
        fixed,
        kill_from,
    } = d;
    // Ranges as (first syscall number, leaf), sorted, covering 0..=u32::MAX.
    let mut segments: Vec<(u32, Leaf)> = vec![(0, Leaf::Default)];
    let mut numbers: BTreeSet<i64> = allowed.clone();
    numbers.extend(rules.keys().copied());
    numbers.extend(fixed.keys().copied());
    for nr in numbers {
        let n = u32::try_from(nr).map_err(|_| BpfError::BadNumber(nr))?;
        let leaf = match (fixed.get(&nr), rules.remove(&nr)) {
            (Some(k), _) => Leaf::Return(*k),
            (None, Some(r)) => Leaf::Rules(r),
            (None, None) => Leaf::Allow,
        };
        // The last segment is always a Default gap starting at or before n.
        let gap_starts_here = matches!(segments.last(), Some((s, Leaf::Default)) if *s == n);
        if gap_starts_here {
            segments.pop();
        }
        // n directly follows an allowed number: the allowed range grows over it.
        let grows = gap_starts_here
            && matches!(leaf, Leaf::Allow)
            && matches!(segments.last(), Some((_, Leaf::Allow)));
        if !grows {
            segments.push((n, leaf));
        }
        // The range after this number returns to the default until the next number.
        if let Some(next) = n.checked_add(1) {
            segments.push((next, Leaf::Default));
        }
    }
    let default_k = u32::from(default.clone());
    let kill = u32::from(SeccompAction::KillProcess);
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, ARCH_OFFSET),
        jump(BPF_JMP_JEQ_K, audit_arch, 1, 0),
        stmt(BPF_RET_K, kill),
        stmt(BPF_LD_W_ABS, NR_OFFSET),
    ];
    if let Some(from) = kill_from {
        // nr >= from: kill (the next instruction); else skip it
        prog.push(jump(BPF_JMP_JGE_K, from, 0, 1));
        prog.push(stmt(BPF_RET_K, kill));
    }
    prog.extend(tree(&segments, default_k));
    if prog.len() > BPF_MAX_LEN {
        return Err(BpfError::TooLarge(prog.len()));
    }
    Ok(prog)
}

fn leaf_code(leaf: &Leaf, default_k: u32) -> Vec<sock_filter> {
    let allow = u32::from(SeccompAction::Allow);
    match leaf {
        Leaf::Allow => vec![stmt(BPF_RET_K, allow)],
        Leaf::Default => vec![stmt(BPF_RET_K, default_k)],
        Leaf::Return(k) => vec![stmt(BPF_RET_K, *k)],
        Leaf::Rules(rules) => {
            // Same shape as seccompiler's own chains: each rule falls through to "allow" when
            // it matches and jumps past that to the next rule when it does not.
            let mut out = Vec::new();
            for r in rules {
                let bpf: BpfProgram = r.clone().into();
                out.extend(bpf);
                out.push(stmt(BPF_RET_K, allow));
            }
            out.push(stmt(BPF_RET_K, default_k));
            out
        }
    }
}

fn tree(segments: &[(u32, Leaf)], default_k: u32) -> Vec<sock_filter> {
    if segments.len() == 1 {
        return leaf_code(&segments[0].1, default_k);
    }
    let mid = segments.len() / 2;
    let left = tree(&segments[..mid], default_k);
    let right = tree(&segments[mid..], default_k);
    // nr >= boundary: fall through to the long jump over the left half (JA takes a 32-bit
    // offset; conditional jumps only 8 bits). nr < boundary: skip the JA into the left half.
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    out.push(jump(BPF_JMP_JGE_K, segments[mid].0, 0, 1));
    out.push(stmt(BPF_JMP_JA, left.len() as u32));
    out.extend(left);
    out.extend(right);
    out
}

/// A userspace interpreter for the instructions our filters use, for tests: returns the
/// action for a syscall with the given number and arguments.
#[cfg(test)]
pub fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = vec![nr, arch, 0, 0];
    for a in args {
        data.push(a as u32);
        data.push((a >> 32) as u32);
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => acc = data[(i.k / 4) as usize],
            BPF_RET_K => return i.k,
            BPF_JMP_JA => pc += i.k as usize,
            0x54 => acc &= i.k, // BPF_ALU | BPF_AND | BPF_K
            c if c & 0x07 == 0x05 => {
                let taken = match c & 0xf0 {
                    0x10 => acc == i.k,
                    0x20 => acc > i.k,
                    0x30 => acc >= i.k,
                    0x40 => acc & i.k != 0,
                    other => panic!("unsupported jump {other:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            other => panic!("unsupported instruction {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;

    #[test]
    fn every_number_gets_its_action() {
        let allowed: BTreeSet<i64> = [0, 1, 2, 3, 7, 8, 100, 200, 201, 449].into();
        let prog = build(
            AUDIT_ARCH_X86_64,
            Dispatch {
                allowed: allowed.clone(),
                fixed: BTreeMap::from([(435, 0x0005_0026)]),
                kill_from: Some(0x4000_0000),
                ..Default::default()
            },
            SeccompAction::Errno(1),
        )
        .unwrap();
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, 435, [0; 6]),
            0x0005_0026,
            "fixed"
        );
        for nr in (0..600u32).filter(|n| *n != 435) {
            let expect = if allowed.contains(&i64::from(nr)) {
                ALLOW
            } else {
                EPERM
            };
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]), expect, "nr {nr}");
        }
        // x32 numbers (bit 30) and anything above are killed
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, 0x4000_0001, [0; 6]),
            0x8000_0000
        );
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), 0x8000_0000);
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 0x3fff_ffff, [0; 6]), EPERM);
        // another architecture is killed
        assert_eq!(run(&prog, 0x4000_0003, 0, [0; 6]), 0x8000_0000);
    }

    #[test]
    fn rules_guard_their_syscall_only() {
        let rule = SeccompRule::new(vec![
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 1).unwrap(),
        ])
        .unwrap();
        let rule2 = SeccompRule::new(vec![
            SeccompCondition::new(1, SeccompCmpArgLen::Qword, SeccompCmpOp::Gt, 1 << 40).unwrap(),
        ])
        .unwrap();
        let allowed: BTreeSet<i64> = (0..50).collect();
        let prog = build(
            AUDIT_ARCH_AARCH64,
            Dispatch {
                allowed,
                rules: BTreeMap::from([(41, vec![rule, rule2]), (60, vec![])]),
                ..Default::default()
            },
            SeccompAction::Errno(1),
        )
        .unwrap();
        let r = |nr, args| run(&prog, AUDIT_ARCH_AARCH64, nr, args);
        assert_eq!(r(41, [1, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(r(41, [2, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(r(41, [2, (1 << 40) + 1, 0, 0, 0, 0]), ALLOW, "second rule");
        assert_eq!(r(40, [2, 0, 0, 0, 0, 0]), ALLOW, "neighbours unaffected");
        assert_eq!(r(42, [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(r(60, [0; 6]), EPERM, "an empty rule list allows nothing");
    }

    #[test]
    fn large_sets_stay_small_and_shallow() {
        let allowed: BTreeSet<i64> = (0..460).filter(|n| n % 3 != 0).collect();
        let prog = build(
            AUDIT_ARCH_X86_64,
            Dispatch {
                allowed: allowed.clone(),
                ..Default::default()
            },
            SeccompAction::Log,
        )
        .unwrap();
        assert!(prog.len() < 2000, "{}", prog.len());
        for nr in 0..470u32 {
            let expect = if allowed.contains(&i64::from(nr)) {
                ALLOW
            } else {
                0x7ffc_0000
            };
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]), expect);
        }
    }
}

/// `leaf_code` relies on the shape of seccompiler's rule chains (pinned `=0.5.0` in the
/// workspace manifest): conditions that fall through on a match and jump just past the chain
/// (to our `RET ALLOW`) on a mismatch. A new seccompiler that lays rules out differently
/// fails here before it can change what a filter allows.
#[cfg(test)]
mod seccompiler_layout {
    use seccompiler::{BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

    #[test]
    fn a_rule_compiles_to_the_chain_bpf_rs_expects() {
        let r = SeccompRule::new(vec![
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 2).unwrap(),
            SeccompCondition::new(1, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(0xf), 1)
                .unwrap(),
        ])
        .unwrap();
        let p: BpfProgram = r.into();
        let got: Vec<(u16, u8, u8, u32)> = p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        let want = [
            (0x0005, 0, 0, 0x1),  // JA +1 (over the next)
            (0x0005, 0, 0, 0xa),  // JA past the chain (unused entry of seccompiler's chaining)
            (0x0020, 0, 0, 0x1c), // LD arg1 high word
            (0x0054, 0, 0, 0x0),  // AND mask high
            (0x0015, 0, 6, 0x0),  // JEQ value high, else past the chain
            (0x0020, 0, 0, 0x18), // LD arg1 low word
            (0x0054, 0, 0, 0xf),  // AND mask low
            (0x0015, 0, 3, 0x1),  // JEQ value low, else past the chain
            (0x0020, 0, 0, 0x10), // LD arg0 low word (Dword: no high word)
            (0x0015, 0, 1, 0x2),  // JEQ 2, else past the chain (and our RET ALLOW)
        ];
        assert_eq!(got, want);
    }
}
