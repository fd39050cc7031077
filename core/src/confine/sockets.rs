//! Pathname UNIX sockets a service could reach: the ones the kernel lists as bound
//! (`/proc/net/unix`), and the directories of the control sockets that must stay out of
//! reach whatever listens there later (also sockets of other network namespaces there,
//! which the kernel's list does not show).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Directories of control sockets: the system bus, systemd's own (its private socket takes
/// `StartTransientUnit`, as root), user sessions' buses and systemd instances, container
/// runtimes and virtualisation daemons. In the mount view each one is covered: hidden
/// whole (an empty read-only tmpfs), or — `/run/systemd` always, the others when a granted
/// path lies inside — filtered: a read-only tmpfs that shows what the directory held at
/// start except the sockets that are not granted. Either way nothing created there after
/// start appears (a systemd re-exec or a bus restart binds a new socket at the same path).
/// Nested ones (`/run/systemd/userdb`) are handled before their parent.
pub const CONTROL_DIRS: &[&str] = &[
    "/run/systemd/userdb",
    "/run/systemd",
    "/run/dbus",
    "/run/user",
    "/run/containerd",
    "/run/docker",
    "/run/podman",
    "/run/crio",
    "/run/libvirt",
    "/run/lxd",
    "/run/snapd",
];

/// Control directories that are filtered even without a grant inside: services need what
/// else they hold (`/run/systemd/system` tells libsystemd that systemd runs,
/// `/run/systemd/resolve` holds resolv.conf with systemd-resolved).
pub const ALWAYS_FILTERED: &[&str] = &["/run/systemd"];

/// Paths of bound pathname sockets in `/proc/net/unix` text: the rest of the line after
/// the seven fixed fields, so a path may hold spaces (abstract sockets start with `@` and
/// are skipped, Landlock's scope handles those; a relative name, bound relative to a
/// directory the list does not show, cannot be found and is a reported gap). The kernel
/// prints a name as it was bound, so a line can be forged by a socket whose name holds a
/// newline: what this returns is only a list of candidates, and the mount view covers a
/// path only after it has checked that it really is a socket.
pub fn parse_proc_net_unix(text: &str) -> BTreeSet<PathBuf> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode Path
            let mut rest = l.trim_start();
            for _ in 0..7 {
                let end = rest.find(' ')?;
                rest = rest[end..].trim_start_matches(' ');
            }
            rest.starts_with('/').then(|| PathBuf::from(rest))
        })
        .collect()
}

/// Every pathname socket bound now in this network namespace (the kernel's list, `/run`
/// and `/tmp` ones included). Sockets of other network namespaces are not in it; the ones
/// that matter (container runtimes, user buses) are in `CONTROL_DIRS`, hidden whole.
pub fn present() -> BTreeSet<PathBuf> {
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| parse_proc_net_unix(&t))
        .unwrap_or_default()
}

/// Whether `path` is granted by `grants` (a grant that is a directory covers what is below).
pub fn is_granted(path: &Path, grants: &BTreeSet<PathBuf>) -> bool {
    grants.iter().any(|g| path == g || path.starts_with(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_list_gives_pathname_sockets_only() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 20418 /run/dbus/system_bus_socket\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 17321 @/org/freedesktop/systemd1/notify\n\
                 0000000000000000: 00000003 00000000 00000000 0001 03 23313\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/systemd/journal/stdout\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01  1234 /tmp/a b.sock\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01  1235 rel.sock\n";
        let s = parse_proc_net_unix(t);
        let v: Vec<_> = s.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            v,
            [
                "/run/dbus/system_bus_socket",
                "/run/systemd/journal/stdout",
                "/tmp/a b.sock"
            ]
        );
    }

    #[test]
    fn grants_cover_their_directories() {
        let g: BTreeSet<PathBuf> = [PathBuf::from("/run/mosquitto"), "/dev/log".into()].into();
        assert!(is_granted(Path::new("/run/mosquitto/x.sock"), &g));
        assert!(is_granted(Path::new("/dev/log"), &g));
        assert!(
            !is_granted(Path::new("/run/mosquittox"), &g),
            "a component, not a prefix"
        );
        assert!(!is_granted(Path::new("/run/dbus/system_bus_socket"), &g));
    }
}
