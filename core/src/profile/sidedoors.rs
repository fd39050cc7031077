//! Side doors: ways around a restriction that are not one plain syscall of a systemd group.
//! Each is a hardend group. A side door is never granted through a broader group
//! (`@system-service`, `@known`, ...): a profile gets it only by naming it in
//! `seccomp.allow`, or — when an include (`base`) denies it — by lifting that deny with
//! `seccomp.override_deny`. Otherwise the wrapper removes its syscalls from the filter or
//! narrows them by argument.

use std::collections::BTreeSet;

use super::{ArgCondition, CmpOp, Profile, ProfileError, SeccompPolicy};

/// What not granting a side door does to one syscall.
#[derive(Clone, Copy, Debug)]
pub enum Narrow {
    /// Allowed only when `(arg & mask) == 0`.
    BitsClear {
        syscall: &'static str,
        arg: u8,
        mask: u64,
    },
    /// Allowed only when the low 32 bits of `arg` are none of `values`.
    NotIn {
        syscall: &'static str,
        arg: u8,
        values: &'static [u64],
    },
    /// Allowed only when the low 32 bits of `arg` are one of `values`.
    In {
        syscall: &'static str,
        arg: u8,
        values: &'static [u64],
    },
}

impl Narrow {
    pub fn syscall(&self) -> &'static str {
        match self {
            Narrow::BitsClear { syscall, .. }
            | Narrow::NotIn { syscall, .. }
            | Narrow::In { syscall, .. } => syscall,
        }
    }

    /// The condition as alternatives of conjunctions (what the syscall must satisfy).
    pub fn dnf(&self) -> Vec<Vec<ArgCondition>> {
        let cond = |arg, op, value, mask, width| ArgCondition {
            arg,
            op,
            value,
            mask,
            width,
        };
        match *self {
            Narrow::BitsClear { arg, mask, .. } => {
                vec![vec![cond(arg, CmpOp::MaskedEq, 0, Some(mask), 64)]]
            }
            Narrow::NotIn { arg, values, .. } => vec![
                values
                    .iter()
                    .map(|v| cond(arg, CmpOp::Ne, *v, None, 32))
                    .collect(),
            ],
            Narrow::In { arg, values, .. } => values
                .iter()
                .map(|v| vec![cond(arg, CmpOp::Eq, *v, None, 32)])
                .collect(),
        }
    }
}

/// One side door.
#[derive(Debug)]
pub struct SideDoor {
    pub name: &'static str,
    pub description: &'static str,
    /// Removed from the filter unless granted.
    pub syscalls: &'static [&'static str],
    /// Applied unless granted.
    pub narrow: &'static [Narrow],
}

const AT_EMPTY_PATH: u64 = 0x1000;
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541c;
const PER_LINUX: u64 = 0;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
const PR_SET_SECCOMP: u64 = 22;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_MM: u64 = 35;
const PR_SET_SPECULATION_CTRL: u64 = 53;
const PR_SET_PTRACER: u64 = 0x5961_6d61;

/// Every side door. Documented in docs/profiles.md ("Side doors").
pub static SIDE_DOORS: &[SideDoor] = &[
    SideDoor {
        name: "@io-uring",
        description: "io_uring: its operations (open, connect, socket, ...) bypass the syscall filter and its argument rules",
        syscalls: &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        narrow: &[],
    },
    SideDoor {
        name: "@memfd",
        description: "running code from memory: memfd files are invisible to Landlock, so memfd_create + exec runs code not under read_exec",
        syscalls: &["memfd_create", "memfd_secret"],
        narrow: &[Narrow::BitsClear {
            syscall: "execveat",
            arg: 4,
            mask: AT_EMPTY_PATH,
        }],
    },
    SideDoor {
        name: "@tty-inject",
        description: "typing into the controlling terminal (TIOCSTI) and console tricks (TIOCLINUX)",
        syscalls: &[],
        narrow: &[Narrow::NotIn {
            syscall: "ioctl",
            arg: 1,
            values: &[TIOCSTI, TIOCLINUX],
        }],
    },
    SideDoor {
        name: "@personality",
        description: "execution domains other than PER_LINUX (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, ...); the query 0xffffffff stays allowed",
        syscalls: &[],
        narrow: &[Narrow::In {
            syscall: "personality",
            arg: 0,
            values: &[PER_LINUX, PERSONALITY_QUERY],
        }],
    },
    SideDoor {
        name: "@sandbox",
        description: "the wrapper's own calls: new Landlock rulesets and seccomp filters (systemd >= 254 has a group of this name)",
        syscalls: &[
            "landlock_create_ruleset",
            "landlock_add_rule",
            "landlock_restrict_self",
            "seccomp",
        ],
        narrow: &[],
    },
    SideDoor {
        name: "@unsafe-prctl",
        description: "prctl options that relax a protection: PR_SET_SECCOMP, PR_SET_SECUREBITS, PR_SET_MM, PR_SET_SPECULATION_CTRL, PR_SET_PTRACER",
        syscalls: &[],
        narrow: &[Narrow::NotIn {
            syscall: "prctl",
            arg: 0,
            values: &[
                PR_SET_SECCOMP,
                PR_SET_SECUREBITS,
                PR_SET_MM,
                PR_SET_SPECULATION_CTRL,
                PR_SET_PTRACER,
            ],
        }],
    },
    SideDoor {
        name: "userfaultfd",
        description: "userfaultfd: a classic way to win kernel races",
        syscalls: &["userfaultfd"],
        narrow: &[],
    },
    SideDoor {
        name: "perf_event_open",
        description: "performance counters: kernel attack surface and side channels",
        syscalls: &["perf_event_open"],
        narrow: &[],
    },
    SideDoor {
        name: "bpf",
        description: "eBPF programs and maps",
        syscalls: &["bpf"],
        narrow: &[],
    },
];

/// The side door named `name` (a group like `@memfd` or a syscall like `bpf`).
pub fn find(name: &str) -> Option<&'static SideDoor> {
    SIDE_DOORS.iter().find(|d| d.name == name)
}

/// Whether the side door is granted: named in `allow` or lifted by `override_deny`, and
/// not denied.
pub fn granted(policy: Option<&SeccompPolicy>, door: &SideDoor) -> bool {
    let Some(p) = policy else {
        return false;
    };
    let named = p.allow.contains(door.name) || p.granted.contains(door.name);
    named && !p.deny.contains(door.name)
}

/// Every side-door syscall (removed from group expansions unless its door is granted).
pub fn all_syscalls() -> BTreeSet<&'static str> {
    SIDE_DOORS
        .iter()
        .flat_map(|d| d.syscalls.iter().copied())
        .collect()
}

/// A profile that grants io_uring cannot rely on argument rules: the ring's operations
/// never pass the filter.
pub fn check_rules_not_bypassed(profile: &Profile) -> Result<(), ProfileError> {
    let Some(s) = &profile.seccomp else {
        return Ok(());
    };
    let Some(door) = find("@io-uring") else {
        return Ok(());
    };
    if granted(Some(s), door) && !s.rules.is_empty() {
        let rules: Vec<&str> = s.rules.iter().map(|r| r.syscall.as_str()).collect();
        return Err(ProfileError::invalid(
            &profile.source,
            1,
            "seccomp.override_deny",
            format!(
                "the profile grants @io-uring and has argument rules ({}): io_uring operations bypass argument rules; drop one of the two",
                rules.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_door_syscall_is_a_real_syscall() {
        for d in SIDE_DOORS {
            for s in d.syscalls {
                assert!(crate::profile::syscalls::is_known_anywhere(s), "{s}");
            }
            for n in d.narrow {
                assert!(
                    crate::profile::syscalls::is_known_anywhere(n.syscall()),
                    "{}",
                    n.syscall()
                );
            }
        }
    }

    #[test]
    fn narrowings_as_alternatives() {
        let p = find("@personality").unwrap().narrow[0].dnf();
        assert_eq!(p.len(), 2, "PER_LINUX or the query");
        let t = find("@tty-inject").unwrap().narrow[0].dnf();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].len(), 2, "neither TIOCSTI nor TIOCLINUX");
        assert!(t[0].iter().all(|c| c.width == 32), "ioctl's cmd is 32-bit");
    }
}
