//! systemd's exposure policy as data: the assessors (id, JSON field, weight, range, which
//! check) and the syscall groups the filter checks compare with, one file per systemd
//! version (`systemd-252.policy`, `systemd-257.policy`, each with its source line), parsed
//! here. A policy for a version not shipped is the newest one not newer than it.

use std::collections::BTreeMap;

use thiserror::Error;

/// One file of policy data, with the systemd version it was taken from.
struct Source {
    version: u32,
    text: &'static str,
}

const SOURCES: &[Source] = &[
    Source {
        version: 252,
        text: include_str!("systemd-252.policy"),
    },
    Source {
        version: 257,
        text: include_str!("systemd-257.policy"),
    },
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("systemd-{version}.policy line {line}: {why}")]
    Line {
        version: u32,
        line: usize,
        why: String,
    },
}

/// What an assessor looks at: systemd's assessment functions, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    User,
    SupplementaryGroups,
    /// A boolean setting (good when set; `inverted`: good when not set).
    Bool {
        field: BoolField,
        inverted: bool,
    },
    ProtectHome,
    ProtectSystem,
    RootDirectory,
    /// Bad when any of these capability bits is in the bounding set.
    Capabilities(u64),
    Umask,
    KeyringMode,
    ProtectProc,
    ProcSubset,
    NotifyAccess,
    RemoveIpc,
    /// Bad when this `CLONE_NEW*` flag is allowed.
    Namespaces(u64),
    SyscallArchitectures,
    /// The group's syscalls (nested groups expanded).
    SyscallFilter {
        group: String,
    },
    IpAddress,
    DeviceAllow,
    AmbientCapabilities,
}

/// The boolean fields of [`super::SecurityInfo`] an assessor can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolField {
    PrivateDevices,
    PrivateMounts,
    PrivateNetwork,
    PrivateTmp,
    PrivateUsers,
    ProtectControlGroups,
    ProtectKernelModules,
    ProtectKernelTunables,
    ProtectKernelLogs,
    ProtectClock,
    ProtectHostname,
    LockPersonality,
    MemoryDenyWriteExecute,
    NoNewPrivileges,
    Delegate,
    RestrictRealtime,
    RestrictSuidSgid,
    AfInet,
    AfUnix,
    AfNetlink,
    AfPacket,
    AfOther,
}

impl BoolField {
    fn parse(s: &str) -> Option<BoolField> {
        Some(match s {
            "private-devices" => BoolField::PrivateDevices,
            "private-mounts" => BoolField::PrivateMounts,
            "private-network" => BoolField::PrivateNetwork,
            "private-tmp" => BoolField::PrivateTmp,
            "private-users" => BoolField::PrivateUsers,
            "protect-control-groups" => BoolField::ProtectControlGroups,
            "protect-kernel-modules" => BoolField::ProtectKernelModules,
            "protect-kernel-tunables" => BoolField::ProtectKernelTunables,
            "protect-kernel-logs" => BoolField::ProtectKernelLogs,
            "protect-clock" => BoolField::ProtectClock,
            "protect-hostname" => BoolField::ProtectHostname,
            "lock-personality" => BoolField::LockPersonality,
            "memory-deny-write-execute" => BoolField::MemoryDenyWriteExecute,
            "no-new-privileges" => BoolField::NoNewPrivileges,
            "delegate" => BoolField::Delegate,
            "restrict-realtime" => BoolField::RestrictRealtime,
            "restrict-suid-sgid" => BoolField::RestrictSuidSgid,
            "af-inet" => BoolField::AfInet,
            "af-unix" => BoolField::AfUnix,
            "af-netlink" => BoolField::AfNetlink,
            "af-packet" => BoolField::AfPacket,
            "af-other" => BoolField::AfOther,
            _ => return None,
        })
    }
}

/// One row of systemd's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessor {
    pub id: String,
    pub json_field: String,
    pub weight: u64,
    pub range: u64,
    pub check: Check,
    /// Not applicable to units with `DefaultDependencies=no` (early-boot services).
    pub default_dependencies_only: bool,
}

/// The policy of one systemd version.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The systemd version whose table this is.
    pub version: u32,
    pub assessors: Vec<Assessor>,
    /// Syscall groups, nested groups expanded, in systemd's order.
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Policy {
    /// The policy for systemd `version`: the newest table not newer than it, or the oldest
    /// when it is older than every table (the caller says so).
    pub fn for_version(version: u32) -> Result<Policy, PolicyError> {
        let src = SOURCES
            .iter()
            .rev()
            .find(|s| s.version <= version)
            .unwrap_or(&SOURCES[0]);
        parse(src.version, src.text)
    }

    /// The versions tables exist for.
    pub fn versions() -> Vec<u32> {
        SOURCES.iter().map(|s| s.version).collect()
    }

    pub fn group(&self, name: &str) -> &[String] {
        self.groups.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn parse(version: u32, text: &str) -> Result<Policy, PolicyError> {
    let mut assessors = Vec::new();
    let mut groups = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |why: String| PolicyError::Line {
            version,
            line: i + 1,
            why,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[0] == "group" {
            let name = f.get(1).ok_or_else(|| err("group without a name".into()))?;
            groups.insert(
                (*name).to_string(),
                f[2..].iter().map(|s| s.to_string()).collect(),
            );
            continue;
        }
        if f.len() < 5 {
            return Err(err(format!("{} columns, at least 5 expected", f.len())));
        }
        let num = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| err(format!("{what} {s:?} is not a number")))
        };
        let (weight, range) = (num(f[2], "weight")?, num(f[3], "range")?);
        if range == 0 {
            return Err(err("range 0".into()));
        }
        let mut rest = f[5..].to_vec();
        let default_dependencies_only = rest.last() == Some(&"default-dependencies");
        if default_dependencies_only {
            rest.pop();
        }
        let param = rest.first().copied();
        let need = || param.ok_or_else(|| err(format!("check {} needs a parameter", f[4])));
        let check = match f[4] {
            "user" => Check::User,
            "supplementary-groups" => Check::SupplementaryGroups,
            "bool" | "bool-inverted" => Check::Bool {
                field: BoolField::parse(need()?)
                    .ok_or_else(|| err(format!("unknown field {:?}", param)))?,
                inverted: f[4] == "bool-inverted",
            },
            "protect-home" => Check::ProtectHome,
            "protect-system" => Check::ProtectSystem,
            "root-directory" => Check::RootDirectory,
            "capabilities" => {
                let mut mask = 0u64;
                for name in need()?.split(',') {
                    let cap = crate::profile::process::capability(name)
                        .ok_or_else(|| err(format!("unknown capability {name}")))?;
                    mask |= cap.bitmask();
                }
                Check::Capabilities(mask)
            }
            "umask" => Check::Umask,
            "keyring-mode" => Check::KeyringMode,
            "protect-proc" => Check::ProtectProc,
            "proc-subset" => Check::ProcSubset,
            "notify-access" => Check::NotifyAccess,
            "remove-ipc" => Check::RemoveIpc,
            "namespaces" => {
                let ns = crate::profile::process::Namespace::parse(need()?)
                    .ok_or_else(|| err(format!("unknown namespace {:?}", param)))?;
                Check::Namespaces(ns.clone_flag())
            }
            "syscall-architectures" => Check::SyscallArchitectures,
            "syscall-filter" => Check::SyscallFilter {
                group: need()?.to_string(),
            },
            "ip-address" => Check::IpAddress,
            "device-allow" => Check::DeviceAllow,
            "ambient-capabilities" => Check::AmbientCapabilities,
            other => return Err(err(format!("unknown check {other:?}"))),
        };
        assessors.push(Assessor {
            id: f[0].to_string(),
            json_field: f[1].to_string(),
            weight,
            range,
            check,
            default_dependencies_only,
        });
    }
    for a in &assessors {
        if let Check::SyscallFilter { group } = &a.check
            && !groups.contains_key(group)
        {
            return Err(PolicyError::Line {
                version,
                line: 0,
                why: format!("{} names group {group}, which has no 'group' line", a.id),
            });
        }
    }
    Ok(Policy {
        version,
        assessors,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_parse_with_systemds_row_count() {
        for v in Policy::versions() {
            let p = Policy::for_version(v).unwrap();
            assert_eq!(p.version, v);
            // systemd 252 and 257 both have 81 assessors (diffed against their sources)
            assert_eq!(p.assessors.len(), 81, "systemd {v}");
            assert_eq!(p.assessors[0].id, "User=/DynamicUser=");
            assert_eq!(p.assessors[0].weight, 2000);
            assert!(p.group("@privileged").contains(&"reboot".to_string()));
            let total: u64 = p.assessors.iter().map(|a| a.weight).sum();
            assert_eq!(total, 56460, "systemd {v}: the sum of weights");
        }
    }

    #[test]
    fn versions_pick_the_newest_table_not_newer() {
        assert_eq!(Policy::for_version(252).unwrap().version, 252);
        assert_eq!(Policy::for_version(255).unwrap().version, 252);
        assert_eq!(Policy::for_version(257).unwrap().version, 257);
        assert_eq!(Policy::for_version(259).unwrap().version, 257);
        assert_eq!(Policy::for_version(247).unwrap().version, 252);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse(1, "# c\nX= X 10 0 user\n").unwrap_err();
        assert_eq!(e.to_string(), "systemd-1.policy line 2: range 0");
        let e = parse(1, "X= X 10 1 capabilities CAP_NOPE\n").unwrap_err();
        assert!(e.to_string().contains("unknown capability CAP_NOPE"), "{e}");
        let e = parse(1, "X= X 10 1 syscall-filter @nope\n").unwrap_err();
        assert!(e.to_string().contains("no 'group' line"), "{e}");
    }
}
