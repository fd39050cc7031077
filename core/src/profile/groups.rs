//! Syscall groups, named and defined as systemd's `SystemCallFilter=` sets so that admins can
//! reuse what they know (systemd.exec(5), "System Call Filter Sets"). The members follow
//! systemd's tables (v252, with the later additions for new kernels noted below), plus our
//! `@io-uring`. Members may name syscalls that exist only on some architectures (the `*32`,
//! `*_time64` and old-ABI variants); those are skipped where they do not exist.
//! Where our table differs from systemd's, the entry says "hardend addition" and why.
//!
//! A member starting with `@` includes another group. `@known` is special: every syscall the
//! target architecture has (resolved in `syscalls.rs`).

include!("groups_table.rs");

/// One way a group of ours differs from systemd's group of the same name, on the systemd
/// versions listed: `added` (hardend has the member, systemd does not) or an omission.
/// `tests/it/groups.rs` fails on any difference with the machine's systemd not listed here.
pub struct SystemdDifference {
    pub group: &'static str,
    pub member: &'static str,
    pub added: bool,
    pub systemd: &'static [u32],
    pub why: &'static str,
}

/// The documented differences (docs/profiles.md lists them too).
pub static SYSTEMD_DIFFERENCES: &[SystemdDifference] = &[
    SystemdDifference {
        group: "@file-system",
        member: "getxattrat",
        added: true,
        systemd: &[252],
        why: "Linux 6.13 xattr calls by directory fd: the same operations as the *xattr calls already in the group (later systemd versions add them)",
    },
    SystemdDifference {
        group: "@file-system",
        member: "listxattrat",
        added: true,
        systemd: &[252],
        why: "Linux 6.13 xattr calls by directory fd: the same operations as the *xattr calls already in the group (later systemd versions add them)",
    },
    SystemdDifference {
        group: "@file-system",
        member: "removexattrat",
        added: true,
        systemd: &[252],
        why: "Linux 6.13 xattr calls by directory fd: the same operations as the *xattr calls already in the group (later systemd versions add them)",
    },
    SystemdDifference {
        group: "@file-system",
        member: "setxattrat",
        added: true,
        systemd: &[252],
        why: "Linux 6.13 xattr calls by directory fd: the same operations as the *xattr calls already in the group (later systemd versions add them)",
    },
    SystemdDifference {
        group: "@mount",
        member: "open_tree_attr",
        added: true,
        systemd: &[252],
        why: "Linux 6.15: open_tree with mount attributes, a mount operation like open_tree (later systemd versions add it)",
    },
];

/// Looks up a group by its name (with the leading `@`).
pub fn find(name: &str) -> Option<&'static SyscallGroup> {
    GROUPS.iter().find(|g| g.name == name)
}
