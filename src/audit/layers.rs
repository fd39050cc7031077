//! What hardend's confinement adds to a unit, as systemd's table would count it: the same
//! assessors, credited where a hardend layer does what the systemd setting does (or more),
//! and only where that layer is proven on the running process — by the kernel (seccomp
//! program read back, no_new_privs, capability sets, the read-only mount view) or, for
//! Landlock, which the kernel cannot show, by the enforcement record of a fully enforced
//! unit. The result is scored with systemd's own formula: the combined score.
//!
//! For an unconfined unit with a shipped profile the same credits are *projected* from the
//! profile (what `hardenctl confine` would give), marked as such.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::exposure::SecurityInfo;
use crate::profile::process::Namespace;
use crate::profile::{DefaultAction, Mode, Profile};

/// The hardend layer a credit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    NoNewPrivs,
    Seccomp,
    Capabilities,
    Namespaces,
    Sockets,
    ReadOnlyView,
    Landlock,
}

/// Why the credit is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Read from the kernel for the running process.
    Kernel,
    /// The enforcement record of a fully enforced unit (Landlock: the kernel cannot show it).
    Record,
    /// Not running confined: what the profile would enforce.
    Projected,
}

/// One credited row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credit {
    pub id: String,
    pub layer: Layer,
    pub basis: Basis,
}

/// What is proven about the running, confined process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proven {
    /// Enforced with every right the profile asks for (Landlock credits need it).
    pub fully_enforced: bool,
    pub no_new_privs: bool,
    /// The installed seccomp program equals the profile's (so are its namespace and
    /// socket rules, which are part of it).
    pub seccomp: bool,
    /// Capability sets read from `/proc/PID/status` (`None`: not proven).
    pub cap_bounding: Option<u64>,
    pub cap_ambient: Option<u64>,
    pub own_mount_namespace: bool,
    pub root_read_only: bool,
    /// Mount points writable in the process's view (`/proc/PID/mountinfo`).
    pub writable_mounts: Vec<String>,
}

/// A layer applied: which layer, on what basis, and the settings (systemd's names) it covers.
pub type Applied = (Layer, Basis, &'static [&'static str]);

/// Whose facts the credits rest on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    Running(Proven),
    Projected,
}

/// Capability bits by name (unknown names: none).
pub fn cap_mask<'a>(names: impl IntoIterator<Item = &'a str>) -> u64 {
    names
        .into_iter()
        .filter_map(crate::profile::process::capability)
        .fold(0, |m, c| m | c.bitmask())
}

fn under(p: &Path, dir: &str) -> bool {
    p.starts_with(dir) || Path::new(dir).starts_with(p)
}

/// Pseudo-devices systemd's `PrivateDevices=` leaves a service.
const PSEUDO_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/pts",
    "/dev/ptmx",
    "/dev/shm",
    "/dev/mqueue",
    "/dev/hugepages",
    "/dev/log",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/fd",
];

/// The syscalls the profile's filter lets through (with or without argument rules), when
/// it is an allow-list that denies the rest; `None` otherwise.
pub fn allowed_syscalls(profile: &Profile) -> Option<BTreeSet<String>> {
    let sc = profile.seccomp.as_ref()?;
    if sc.default_action == DefaultAction::Log {
        return None;
    }
    let arch = crate::profile::syscalls::Arch::native()?;
    let (allowed, _) = crate::confine::seccomp::allowed_syscalls(Some(sc), arch).ok()?;
    let mut out: BTreeSet<String> = allowed.keys().map(|s| s.to_string()).collect();
    out.extend(sc.rules.iter().map(|r| r.syscall.clone()));
    Some(out)
}

/// The unit as systemd's table sees it with hardend's layers, and what was credited.
pub fn apply(
    systemd: &SecurityInfo,
    profile: &Profile,
    evidence: &Evidence,
) -> (SecurityInfo, Vec<Applied>) {
    let mut e = systemd.clone();
    let mut applied: Vec<Applied> = Vec::new();
    if profile.mode != Mode::Enforce {
        return (e, applied);
    }
    let projected = matches!(evidence, Evidence::Projected);
    let proven = match evidence {
        Evidence::Running(p) => p.clone(),
        Evidence::Projected => Proven::default(),
    };
    let kernel = if projected {
        Basis::Projected
    } else {
        Basis::Kernel
    };
    let record = if projected {
        Basis::Projected
    } else {
        Basis::Record
    };

    // no_new_privs: hardend-exec always sets it
    if projected || proven.no_new_privs {
        e.no_new_privileges = true;
        applied.push((Layer::NoNewPrivs, kernel, &["NoNewPrivileges="]));
    }

    // capabilities: the process's bounding and ambient sets
    let (bset, amb) = if projected {
        let keep = cap_mask(profile.process.capabilities.iter().map(String::as_str));
        (Some(keep), Some(keep & systemd.ambient_capabilities))
    } else {
        (proven.cap_bounding, proven.cap_ambient)
    };
    if let Some(b) = bset {
        e.capability_bounding_set &= b;
        applied.push((
            Layer::Capabilities,
            kernel,
            &["CapabilityBoundingSet=", "AmbientCapabilities="],
        ));
    }
    if let Some(a) = amb {
        e.ambient_capabilities &= a;
    }

    // seccomp: the filter, and hardend's namespace and socket rules compiled into it
    let seccomp = projected || proven.seccomp;
    if seccomp {
        let mut allowed_ns = 0u64;
        for ns in &profile.process.namespaces {
            allowed_ns |= ns.clone_flag();
        }
        // time namespaces are not in systemd's table
        e.restrict_namespaces &= allowed_ns | (!Namespace::all_flags());
        applied.push((Layer::Namespaces, kernel, &["RestrictNamespaces="]));
        // the profile's families, by their canonical names (`local` is `unix`)
        let fam: BTreeSet<&str> = profile
            .network
            .families
            .iter()
            .filter_map(|f| crate::profile::families::canonical(f))
            .collect();
        e.af_inet |= !(fam.contains("inet") || fam.contains("inet6"));
        e.af_unix |= !fam.contains("unix");
        e.af_netlink |= !fam.contains("netlink");
        e.af_packet |= !fam.contains("packet");
        e.af_other |= !fam
            .iter()
            .any(|f| !matches!(*f, "inet" | "inet6" | "unix" | "netlink" | "packet"));
        applied.push((Layer::Sockets, kernel, &["RestrictAddressFamilies="]));
        if let Some(allowed) = allowed_syscalls(profile) {
            let denied = |s: &str| !allowed.contains(s);
            // an allow-list of the profile's syscalls (intersected with systemd's own, if any)
            if e.syscall_filter_allow_list {
                e.syscall_filter.retain(|s| allowed.contains(s));
            } else if e.syscall_filter.is_empty() {
                e.syscall_filter_allow_list = true;
                e.syscall_filter = allowed.clone();
            } else {
                let deny = std::mem::take(&mut e.syscall_filter);
                e.syscall_filter_allow_list = true;
                e.syscall_filter = allowed
                    .iter()
                    .filter(|s| !deny.contains(*s))
                    .cloned()
                    .collect();
            }
            // hardend's filter kills every foreign architecture and the x32 ABI
            e.syscall_architectures = ["native".to_string()].into();
            let none = |list: &[&str]| list.iter().all(|s| denied(s));
            if none(&["init_module", "finit_module", "delete_module"]) {
                e.protect_kernel_modules = true;
            }
            if none(&["clock_settime", "clock_adjtime", "settimeofday", "adjtimex"]) {
                e.protect_clock = true;
            }
            if none(&["sethostname", "setdomainname"]) {
                e.protect_hostname = true;
            }
            if none(&["personality"]) {
                e.lock_personality = true;
            }
            if none(&["sched_setscheduler", "sched_setattr", "sched_setparam"]) {
                e.restrict_realtime = true;
            }
            let kmsg_unreadable = profile.landlock.as_ref().is_some_and(|l| {
                !l.read
                    .iter()
                    .chain(&l.read_exec)
                    .chain(&l.write)
                    .any(|p| under(p, "/dev/kmsg") || under(p, "/proc/kmsg"))
            });
            if none(&["syslog"]) && kmsg_unreadable && (projected || proven.fully_enforced) {
                e.protect_kernel_logs = true;
            }
            applied.push((
                Layer::Seccomp,
                kernel,
                &[
                    "SystemCallFilter=",
                    "SystemCallArchitectures=",
                    "ProtectKernelModules=",
                    "ProtectClock=",
                    "ProtectHostname=",
                    "LockPersonality=",
                    "RestrictRealtime=",
                    "ProtectKernelLogs=",
                ],
            ));
        }
    }

    // the read-only mount view (root services: the wrapper's own mount namespace)
    let os_writable = proven.writable_mounts.iter().any(|m| {
        ["/usr", "/etc", "/boot", "/efi", "/bin", "/sbin", "/lib"]
            .iter()
            .any(|d| under(Path::new(m), d) && m != "/")
    });
    let view = if projected {
        systemd.runs_privileged()
    } else {
        proven.root_read_only && proven.own_mount_namespace && !os_writable
    };
    if view {
        e.private_mounts = true;
        e.protect_system = Some("strict".into());
        applied.push((
            Layer::ReadOnlyView,
            kernel,
            &["PrivateMounts=", "ProtectSystem="],
        ));
    }

    // Landlock: what the file system rules keep out of reach
    if let Some(l) = &profile.landlock
        && (projected || proven.fully_enforced)
    {
        let any = |set: &BTreeSet<std::path::PathBuf>, dirs: &[&str]| {
            set.iter().any(|p| dirs.iter().any(|d| under(p, d)))
        };
        let reads: BTreeSet<std::path::PathBuf> =
            l.read.iter().chain(&l.read_exec).cloned().collect();
        let os = [
            "/usr", "/boot", "/efi", "/etc", "/bin", "/sbin", "/lib", "/lib64",
        ];
        if !any(&l.write, &os) {
            e.protect_system = Some("strict".into());
        } else if !any(&l.write, &["/usr", "/boot", "/efi"])
            && e.protect_system.as_deref() != Some("strict")
        {
            e.protect_system = Some("full".into());
        }
        let homes = ["/home", "/root", "/run/user"];
        if !any(&l.write, &homes) {
            e.protect_home = Some(
                if any(&reads, &homes) {
                    "read-only"
                } else {
                    "yes"
                }
                .into(),
            );
        }
        if !any(&l.write, &["/proc/sys", "/sys"]) {
            e.protect_kernel_tunables = true;
        }
        if !any(&l.write, &["/sys/fs/cgroup"]) {
            e.protect_control_groups = true;
        }
        let devices = l
            .read
            .iter()
            .chain(&l.read_exec)
            .chain(&l.write)
            .filter(|p| p.starts_with("/dev"))
            .all(|p| PSEUDO_DEVICES.iter().any(|d| p.starts_with(d)))
            && !reads
                .iter()
                .chain(&l.write)
                .any(|p| p == Path::new("/dev") || p == Path::new("/"));
        if devices {
            e.private_devices = true;
        }
        applied.push((
            Layer::Landlock,
            record,
            &[
                "ProtectSystem=",
                "ProtectHome=",
                "ProtectKernelTunables=",
                "ProtectControlGroups=",
                "PrivateDevices=",
            ],
        ));
    }
    (e, applied)
}

/// The credits: rows whose badness went down, each with the first layer that covers it.
pub fn credits(
    before: &super::exposure::Exposure,
    after: &super::exposure::Exposure,
    applied: &[Applied],
) -> Vec<Credit> {
    let mut out = Vec::new();
    for (b, a) in before.rows.iter().zip(&after.rows) {
        let lower = match (b.badness, a.badness) {
            (Some(x), Some(y)) => y < x,
            _ => false,
        };
        if !lower {
            continue;
        }
        // the assessor's setting name: "CapabilityBoundingSet=~CAP_KILL" → "CapabilityBoundingSet="
        let setting = b.id.split_inclusive('=').next().unwrap_or(&b.id);
        // the first layer applied that covers it (kernel-proven layers come before Landlock)
        if let Some((layer, basis, _)) = applied.iter().find(|(_, _, ids)| ids.contains(&setting)) {
            out.push(Credit {
                id: b.id.clone(),
                layer: *layer,
                basis: *basis,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::exposure::{Policy, assess};
    use crate::profile::ProfileLoader;

    fn mosquitto() -> Profile {
        ProfileLoader::new(vec![
            concat!(env!("CARGO_MANIFEST_DIR"), "/profiles").into(),
        ])
        .load("mosquitto")
        .unwrap()
    }

    fn root_service() -> SecurityInfo {
        SecurityInfo {
            id: "mosquitto.service".into(),
            load_state: Some("loaded".into()),
            protect_home: Some("no".into()),
            protect_system: Some("no".into()),
            keyring_mode: Some("private".into()),
            umask: 0o022,
            ..SecurityInfo::default()
        }
    }

    fn score(i: &SecurityInfo) -> u64 {
        assess(&Policy::for_version(252).unwrap(), i, &|_| true).tenths
    }

    #[test]
    fn nothing_proven_means_no_credit() {
        // confined on paper (a record, a state), but the kernel confirmed nothing: the
        // combined score stays systemd's
        let base = root_service();
        let (eff, applied) = apply(&base, &mosquitto(), &Evidence::Running(Proven::default()));
        assert_eq!(score(&eff), score(&base));
        let b = assess(&Policy::for_version(252).unwrap(), &base, &|_| true);
        let a = assess(&Policy::for_version(252).unwrap(), &eff, &|_| true);
        assert!(credits(&b, &a, &applied).is_empty());
    }

    #[test]
    fn proven_layers_are_credited_each_by_its_layer() {
        let base = root_service();
        let p = mosquitto();
        let proven = Proven {
            fully_enforced: false,
            no_new_privs: true,
            seccomp: true,
            cap_bounding: Some(cap_mask(p.process.capabilities.iter().map(String::as_str))),
            cap_ambient: Some(0),
            own_mount_namespace: true,
            root_read_only: true,
            writable_mounts: vec!["/var/lib/mosquitto".into()],
        };
        let (eff, applied) = apply(&base, &p, &Evidence::Running(proven));
        let policy = Policy::for_version(252).unwrap();
        let b = assess(&policy, &base, &|_| true);
        let a = assess(&policy, &eff, &|_| true);
        assert!(a.tenths < b.tenths, "{} → {}", b.text(), a.text());
        let c = credits(&b, &a, &applied);
        let layer = |id: &str| c.iter().find(|c| c.id == id).map(|c| (c.layer, c.basis));
        assert_eq!(
            layer("NoNewPrivileges="),
            Some((Layer::NoNewPrivs, Basis::Kernel))
        );
        assert_eq!(
            layer("SystemCallFilter=~@mount"),
            Some((Layer::Seccomp, Basis::Kernel))
        );
        assert_eq!(
            layer("ProtectSystem="),
            Some((Layer::ReadOnlyView, Basis::Kernel))
        );
        assert_eq!(
            layer("RestrictNamespaces=~user"),
            Some((Layer::Namespaces, Basis::Kernel))
        );
        // Landlock is not credited unless fully enforced
        assert!(c.iter().all(|c| c.layer != Layer::Landlock));
        // mosquitto's profile grants inet: no credit for denying it; packet it does deny
        assert_eq!(layer("RestrictAddressFamilies=~AF_(INET|INET6)"), None);
        assert_eq!(
            layer("RestrictAddressFamilies=~AF_PACKET"),
            Some((Layer::Sockets, Basis::Kernel))
        );
        // and the projection of the same profile is at least as good, marked as projected
        let (proj, applied) = apply(&base, &p, &Evidence::Projected);
        let pa = assess(&policy, &proj, &|_| true);
        assert!(pa.tenths <= a.tenths);
        assert!(
            credits(&b, &pa, &applied)
                .iter()
                .all(|c| c.basis == Basis::Projected)
        );
    }
}
