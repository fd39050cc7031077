//! `[process]`: capabilities kept and namespaces a service may create or join.

use serde::{Deserialize, Serialize};

/// A namespace type, as in systemd's `RestrictNamespaces=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    User,
    Net,
    Mnt,
    Pid,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl Namespace {
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Net,
        Namespace::Mnt,
        Namespace::Pid,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The `CLONE_NEW*` flag (also `setns`' nstype).
    pub fn clone_flag(self) -> u64 {
        (match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Mnt => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => 0x80, // CLONE_NEWTIME (libc does not export it everywhere)
        }) as u32 as u64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Net => "net",
            Namespace::Mnt => "mnt",
            Namespace::Pid => "pid",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    pub fn parse(s: &str) -> Option<Namespace> {
        Namespace::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// Every `CLONE_NEW*` flag.
    pub fn all_flags() -> u64 {
        Namespace::ALL
            .iter()
            .map(|n| n.clone_flag())
            .fold(0, |a, b| a | b)
    }
}

/// A capability name as the kernel's headers spell it (`CAP_NET_BIND_SERVICE`), checked.
pub fn capability(name: &str) -> Option<caps::Capability> {
    name.parse().ok()
}

/// Every capability name this build knows, for error messages.
pub fn capability_names() -> Vec<String> {
    let mut v: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_flags_are_the_kernels() {
        assert_eq!(Namespace::User.clone_flag(), 0x1000_0000);
        assert_eq!(Namespace::Net.clone_flag(), 0x4000_0000);
        assert_eq!(Namespace::Mnt.clone_flag(), 0x0002_0000);
        assert_eq!(Namespace::Time.clone_flag(), 0x80);
        assert_eq!(Namespace::all_flags().count_ones(), 8);
        assert_eq!(Namespace::parse("cgroup"), Some(Namespace::Cgroup));
    }

    #[test]
    fn capability_names_are_checked() {
        assert_eq!(capability("CAP_SETUID"), Some(caps::Capability::CAP_SETUID));
        assert_eq!(capability("cap_setuid"), None);
        assert_eq!(capability("CAP_NOPE"), None);
        assert!(capability_names().contains(&"CAP_NET_BIND_SERVICE".to_string()));
    }
}
