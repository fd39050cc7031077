//! Syscall names, numbers and group expansion for the architectures we build filters for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Serialize;

use super::groups;

/// Architectures hardend builds seccomp filters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this binary runs on, if it is one we support.
    pub fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// Every syscall of this architecture, sorted by name (built once per process: the
    /// `syscalls` crate's `from_str` compares names one by one, and a filter looks up about
    /// a thousand).
    pub fn table(self) -> &'static [(&'static str, i64)] {
        static X86_64: OnceLock<Vec<(&'static str, i64)>> = OnceLock::new();
        static AARCH64: OnceLock<Vec<(&'static str, i64)>> = OnceLock::new();
        let cell = match self {
            Arch::X86_64 => &X86_64,
            Arch::Aarch64 => &AARCH64,
        };
        cell.get_or_init(|| {
            let mut v = self.all();
            v.sort_unstable();
            v
        })
    }

    /// The table entry of `name`: its static name and number.
    pub fn lookup(self, name: &str) -> Option<(&'static str, i64)> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i])
    }

    /// The syscall number of `name` on this architecture.
    pub fn number(self, name: &str) -> Option<i64> {
        self.lookup(name).map(|(_, nr)| nr)
    }

    /// Every syscall of this architecture, by name.
    pub fn all(self) -> Vec<(&'static str, i64)> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::iter()
                .map(|s| (s.name(), i64::from(s.id())))
                .collect(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::iter()
                .map(|s| (s.name(), i64::from(s.id())))
                .collect(),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        })
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => Err(format!(
                "unknown architecture {other:?} (x86_64 or aarch64)"
            )),
        }
    }
}

/// Whether `name` is a syscall on any Linux architecture (so it is a real name, not a typo,
/// even when the architecture we build for does not have it).
pub fn is_known_anywhere(name: &str) -> bool {
    macro_rules! any_arch {
        ($($arch:ident),*) => {
            false $(|| syscalls::$arch::Sysno::from_str(name).is_ok())*
        };
    }
    any_arch!(
        x86_64,
        x86,
        aarch64,
        arm,
        riscv64,
        riscv32,
        loongarch64,
        mips,
        mips64,
        powerpc,
        powerpc64,
        s390x,
        sparc,
        sparc64
    ) || matches!(
        // Names systemd's tables carry that no architecture table above lists (removed or
        // never-wired syscalls); they are harmless to name.
        name,
        "_sysctl"
            | "break"
            | "ftime"
            | "gtty"
            | "lock"
            | "mpx"
            | "prof"
            | "profil"
            | "stty"
            | "ulimit"
            | "rtas"
            | "sys_debug_setcontext"
            | "subpage_prot"
            | "switch_endian"
            | "swapcontext"
            | "set_tls"
            | "cacheflush"
            | "oldolduname"
    )
}

/// The result of expanding names and groups for one architecture.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Expanded {
    /// Syscall name → number, for every name that exists on the architecture.
    pub syscalls: BTreeMap<&'static str, i64>,
    /// Explicitly named syscalls (not group members) that do not exist on the architecture.
    pub skipped: BTreeSet<String>,
}

/// An entry that is neither a known group nor a syscall of any architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownName {
    Group(String),
    Syscall(String),
}

/// Checks that a name written in a profile is a known group or syscall.
pub fn check_name(name: &str) -> Result<(), UnknownName> {
    if name.starts_with('@') {
        if groups::find(name).is_some() {
            Ok(())
        } else {
            Err(UnknownName::Group(name.to_string()))
        }
    } else if is_known_anywhere(name) {
        Ok(())
    } else {
        Err(UnknownName::Syscall(name.to_string()))
    }
}

/// Expands names and `@groups` into syscall numbers for `arch`.
pub fn expand<'a>(
    names: impl IntoIterator<Item = &'a str>,
    arch: Arch,
) -> Result<Expanded, UnknownName> {
    let mut out = Expanded::default();
    for name in names {
        expand_one(name, arch, true, &mut out, 0)?;
    }
    Ok(out)
}

fn expand_one(
    name: &str,
    arch: Arch,
    explicit: bool,
    out: &mut Expanded,
    depth: usize,
) -> Result<(), UnknownName> {
    if let Some(group_name) = name.strip_prefix('@').map(|_| name) {
        let group = groups::find(group_name).ok_or_else(|| UnknownName::Group(name.to_string()))?;
        if group.name == "@known" {
            out.syscalls.extend(arch.table().iter().copied());
            return Ok(());
        }
        // The table is static data; a depth bound turns an accidental cycle into an error
        // instead of a stack overflow.
        if depth > 8 {
            return Err(UnknownName::Group(name.to_string()));
        }
        for member in group.members {
            expand_one(member, arch, false, out, depth + 1)?;
        }
        return Ok(());
    }
    match arch.lookup(name) {
        Some((n, nr)) => {
            out.syscalls.insert(n, nr);
        }
        // a group member that this architecture lacks (`*_time64`, arm's cacheflush, ...):
        // the table is checked by a test, so no lookup in every other architecture here
        None if !explicit => {}
        None if is_known_anywhere(name) => {
            out.skipped.insert(name.to_string());
        }
        None => return Err(UnknownName::Syscall(name.to_string())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_member_is_a_real_syscall_or_group() {
        for g in groups::GROUPS {
            for m in g.members {
                assert!(check_name(m).is_ok(), "{}: unknown member {m}", g.name);
            }
        }
    }

    #[test]
    fn every_group_expands_on_both_arches() {
        for g in groups::GROUPS {
            for arch in [Arch::X86_64, Arch::Aarch64] {
                let e = expand([g.name], arch).unwrap();
                if !matches!(
                    g.name,
                    "@cpu-emulation"
                        | "@raw-io"
                        | "@obsolete"
                        | "@debug"
                        | "@personality"
                        | "@tty-inject"
                        | "@unsafe-prctl"
                ) {
                    assert!(!e.syscalls.is_empty(), "{} empty on {arch}", g.name);
                }
            }
        }
    }

    #[test]
    fn system_service_contains_basics_but_not_privileged_calls() {
        let e = expand(["@system-service"], Arch::X86_64).unwrap();
        for s in ["read", "openat", "execve", "socket", "io_uring_setup"] {
            assert!(e.syscalls.contains_key(s), "{s} missing");
        }
        for s in [
            "mount",
            "reboot",
            "bpf",
            "ptrace",
            "init_module",
            "kexec_load",
        ] {
            assert!(
                !e.syscalls.contains_key(s),
                "{s} must not be in @system-service"
            );
        }
    }

    #[test]
    fn names_missing_on_one_arch_are_skipped_not_errors() {
        // `open` does not exist on aarch64; `_llseek` exists on neither 64-bit arch.
        let e = expand(["open", "openat"], Arch::Aarch64).unwrap();
        assert!(e.syscalls.contains_key("openat"));
        assert!(e.skipped.contains("open"));
        let e = expand(["open"], Arch::X86_64).unwrap();
        assert_eq!(e.syscalls.get("open"), Some(&2));
    }

    #[test]
    fn typos_are_errors() {
        assert_eq!(
            expand(["opne"], Arch::X86_64),
            Err(UnknownName::Syscall("opne".into()))
        );
        assert_eq!(
            expand(["@netwrok-io"], Arch::X86_64),
            Err(UnknownName::Group("@netwrok-io".into()))
        );
    }

    #[test]
    fn known_is_the_whole_table() {
        let e = expand(["@known"], Arch::X86_64).unwrap();
        assert!(e.syscalls.len() > 300);
        assert!(e.syscalls.contains_key("reboot"));
    }
}
