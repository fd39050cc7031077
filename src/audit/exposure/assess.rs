//! systemd's exposure formula: each assessor gives a badness between 0 and its range (or
//! "not applicable"); `badness_sum += ceil(badness × weight / range)`, `weight_sum +=
//! weight` over the applicable ones; the exposure is `ceil(badness_sum × 100 / weight_sum)`
//! in tenths (shown as 0.0–10.0), named by systemd's levels.

use serde::Serialize;

use super::SecurityInfo;
use super::policy::{Assessor, BoolField, Check, Policy};

/// systemd's names for exposure levels (lowest tenths of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Perfect,
    Safe,
    Ok,
    Medium,
    Exposed,
    Unsafe,
    Dangerous,
}

impl Level {
    pub fn of(tenths: u64) -> Level {
        match tenths {
            100.. => Level::Dangerous,
            90.. => Level::Unsafe,
            75.. => Level::Exposed,
            50.. => Level::Medium,
            10.. => Level::Ok,
            1.. => Level::Safe,
            0 => Level::Perfect,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Perfect => "PERFECT",
            Level::Safe => "SAFE",
            Level::Ok => "OK",
            Level::Medium => "MEDIUM",
            Level::Exposed => "EXPOSED",
            Level::Unsafe => "UNSAFE",
            Level::Dangerous => "DANGEROUS",
        }
    }
}

/// One assessor's verdict on one unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub id: String,
    pub json_field: String,
    pub weight: u64,
    pub range: u64,
    /// `None`: not applicable to this unit.
    pub badness: Option<u64>,
    /// This row's share of the exposure, in tenths (systemd's per-row column).
    pub exposure: u64,
    /// For syscall filter rows: an allowed syscall of the group ("" otherwise).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub example: String,
}

/// A unit's exposure under one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    pub rows: Vec<Row>,
    /// In tenths: 0..=100.
    pub tenths: u64,
}

impl Exposure {
    pub fn level(&self) -> Level {
        Level::of(self.tenths)
    }

    /// As systemd prints it: "9.6".
    pub fn text(&self) -> String {
        tenths_text(self.tenths)
    }
}

pub fn tenths_text(t: u64) -> String {
    format!("{}.{}", t / 10, t % 10)
}

/// The value as a JSON number with one decimal (96 → 9.6).
pub fn tenths_number(t: u64) -> f64 {
    t as f64 / 10.0
}

/// systemd's `parse_boolean`.
fn parse_boolean(v: Option<&str>) -> Option<bool> {
    let v = v?.to_ascii_lowercase();
    match v.as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

fn bool_field(i: &SecurityInfo, f: BoolField) -> bool {
    match f {
        BoolField::PrivateDevices => i.private_devices,
        BoolField::PrivateMounts => i.private_mounts,
        BoolField::PrivateNetwork => i.private_network,
        BoolField::PrivateTmp => i.private_tmp,
        BoolField::PrivateUsers => i.private_users,
        BoolField::ProtectControlGroups => i.protect_control_groups,
        BoolField::ProtectKernelModules => i.protect_kernel_modules,
        BoolField::ProtectKernelTunables => i.protect_kernel_tunables,
        BoolField::ProtectKernelLogs => i.protect_kernel_logs,
        BoolField::ProtectClock => i.protect_clock,
        BoolField::ProtectHostname => i.protect_hostname,
        BoolField::LockPersonality => i.lock_personality,
        BoolField::MemoryDenyWriteExecute => i.memory_deny_write_execute,
        BoolField::NoNewPrivileges => i.no_new_privileges,
        BoolField::Delegate => i.delegate,
        BoolField::RestrictRealtime => i.restrict_realtime,
        BoolField::RestrictSuidSgid => i.restrict_suid_sgid,
        BoolField::AfInet => i.af_inet,
        BoolField::AfUnix => i.af_unix,
        BoolField::AfNetlink => i.af_netlink,
        BoolField::AfPacket => i.af_packet,
        BoolField::AfOther => i.af_other,
    }
}

fn is_root(user: Option<&str>) -> bool {
    matches!(user, Some("0" | "root"))
}

/// The first syscall of `group` that exists here and the filter lets through.
fn filter_offender<'a>(
    i: &SecurityInfo,
    group: &'a [String],
    exists: &dyn Fn(&str) -> bool,
) -> Option<&'a str> {
    group
        .iter()
        .filter(|s| exists(s))
        .find(|s| i.syscall_filter.contains(s.as_str()) == i.syscall_filter_allow_list)
        .map(String::as_str)
}

/// Badness of one assessor (`None`: not applicable) and an example for filter rows.
fn badness(
    a: &Assessor,
    p: &Policy,
    i: &SecurityInfo,
    exists: &dyn Fn(&str) -> bool,
) -> (Option<u64>, String) {
    if a.default_dependencies_only && !i.default_dependencies {
        return (None, String::new());
    }
    let user = i.user.as_deref();
    let b = match &a.check {
        Check::User => {
            if user == Some("nobody") {
                9
            } else if (i.dynamic_user && !is_root(user))
                || (user.is_some() && !is_root(user) && user != Some(""))
            {
                0
            } else {
                10
            }
        }
        Check::SupplementaryGroups => {
            if i.runs_privileged() {
                return (None, String::new());
            }
            u64::from(!i.supplementary_groups.is_empty())
        }
        Check::Bool { field, inverted } => {
            let set = bool_field(i, *field);
            u64::from(if *inverted { set } else { !set })
        }
        Check::ProtectHome => match parse_boolean(i.protect_home.as_deref()) {
            Some(true) => 0,
            Some(false) => 10,
            None => match i.protect_home.as_deref() {
                Some("read-only") => 5,
                Some("tmpfs") => 1,
                _ => 10,
            },
        },
        Check::ProtectSystem => match parse_boolean(i.protect_system.as_deref()) {
            Some(true) => 5,
            Some(false) => 10,
            None => match i.protect_system.as_deref() {
                Some("full") => 3,
                Some("strict") => 0,
                _ => 10,
            },
        },
        Check::RootDirectory => {
            let unset = |v: &Option<String>| v.as_deref().is_none_or(|s| s == "/");
            u64::from(unset(&i.root_directory) && unset(&i.root_image))
        }
        Check::Capabilities(mask) => u64::from(i.capability_bounding_set & mask != 0),
        Check::Umask => {
            let m = i.umask;
            if m & 0o002 == 0 {
                10
            } else if m & 0o004 == 0 {
                5
            } else if m & 0o020 == 0 {
                2
            } else if m & 0o040 == 0 {
                1
            } else {
                0
            }
        }
        Check::KeyringMode => u64::from(i.keyring_mode.as_deref() != Some("private")),
        Check::ProtectProc => match i.protect_proc.as_deref() {
            Some("noaccess") => 1,
            Some("invisible" | "ptraceable") => 0,
            _ => 3,
        },
        Check::ProcSubset => u64::from(i.proc_subset.as_deref() != Some("pid")),
        Check::NotifyAccess => u64::from(i.notify_access.as_deref() == Some("all")),
        Check::RemoveIpc => {
            if i.runs_privileged() {
                return (None, String::new());
            }
            u64::from(!i.remove_ipc)
        }
        Check::Namespaces(flag) => u64::from(i.restrict_namespaces & flag != 0),
        Check::SyscallArchitectures => {
            let a = &i.syscall_architectures;
            if a.is_empty() {
                10
            } else if a.len() == 1 && a.contains("native") {
                0
            } else {
                8
            }
        }
        Check::SyscallFilter { group } => {
            if !i.syscall_filter_allow_list && i.syscall_filter.is_empty() {
                10
            } else {
                let offender = filter_offender(i, p.group(group), exists);
                let b = match (i.syscall_filter_allow_list, offender.is_some()) {
                    (true, true) => 9,
                    (false, true) => 10,
                    (_, false) => 0,
                };
                return (Some(b), offender.unwrap_or_default().to_string());
            }
        }
        Check::IpAddress => {
            if i.ip_filters_custom_ingress || i.ip_filters_custom_egress {
                0
            } else if !i.ip_address_deny_all {
                10
            } else if i.ip_address_allow_other {
                5
            } else if i.ip_address_allow_localhost {
                2
            } else {
                0
            }
        }
        Check::DeviceAllow => match i.device_policy.as_deref() {
            Some("strict" | "closed") if i.device_allow.is_empty() => 0,
            Some("strict" | "closed") => 5,
            _ => 10,
        },
        Check::AmbientCapabilities => u64::from(i.ambient_capabilities != 0),
    };
    (Some(b.min(a.range)), String::new())
}

fn div_round_up(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// The unit's exposure under `policy`; `exists` says whether a syscall name exists on this
/// machine (systemd skips group members libseccomp cannot resolve).
pub fn assess(policy: &Policy, info: &SecurityInfo, exists: &dyn Fn(&str) -> bool) -> Exposure {
    let mut rows = Vec::with_capacity(policy.assessors.len());
    let (mut badness_sum, mut weight_sum) = (0u64, 0u64);
    for a in &policy.assessors {
        let (b, example) = badness(a, policy, info, exists);
        if let Some(b) = b {
            badness_sum += div_round_up(b * a.weight, a.range);
            weight_sum += a.weight;
        }
        rows.push(Row {
            id: a.id.clone(),
            json_field: a.json_field.clone(),
            weight: a.weight,
            range: a.range,
            badness: b,
            exposure: 0,
            example,
        });
    }
    let weight_sum = weight_sum.max(1);
    for r in &mut rows {
        if let Some(b @ 1..) = r.badness {
            r.exposure = div_round_up(div_round_up(b * r.weight * 100, r.range), weight_sum);
        }
    }
    Exposure {
        rows,
        tenths: div_round_up(badness_sum * 100, weight_sum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &str) -> bool {
        true
    }

    fn bare() -> SecurityInfo {
        SecurityInfo {
            id: "x.service".into(),
            load_state: Some("loaded".into()),
            protect_home: Some("no".into()),
            protect_system: Some("no".into()),
            // what systemd reports for a system service that sets nothing
            keyring_mode: Some("private".into()),
            notify_access: Some("none".into()),
            protect_proc: Some("default".into()),
            umask: 0o022,
            ..SecurityInfo::default()
        }
    }

    #[test]
    fn an_unhardened_root_service_is_unsafe_like_systemd_says() {
        // what systemd 252 prints for a unit with no sandboxing at all (e.g. a plain
        // `ExecStart=` service running as root): 9.6 UNSAFE
        let p = Policy::for_version(252).unwrap();
        let e = assess(&p, &bare(), &all);
        assert_eq!((e.text(), e.level()), ("9.6".to_string(), Level::Unsafe));
        // the rows of a unit running as root: SupplementaryGroups= and RemoveIPC= n/a
        let na: Vec<&str> = e
            .rows
            .iter()
            .filter(|r| r.badness.is_none())
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(na, ["SupplementaryGroups=", "RemoveIPC="]);
    }

    fn row<'a>(e: &'a Exposure, id: &str) -> &'a Row {
        e.rows.iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn allow_list_rows_name_an_offender_and_unknown_syscalls_do_not_count() {
        let p = Policy::for_version(252).unwrap();
        let mut i = bare();
        i.syscall_filter_allow_list = true;
        i.syscall_filter = ["read", "write", "swapon"].map(String::from).into();
        let e = assess(&p, &i, &all);
        let swap = row(&e, "SystemCallFilter=~@swap");
        assert_eq!((swap.badness, swap.example.as_str()), (Some(9), "swapon"));
        // swapon does not exist on this pretend machine: the group is clean
        let e = assess(&p, &i, &|s| s != "swapon");
        let swap = row(&e, "SystemCallFilter=~@swap");
        assert_eq!(swap.badness, Some(0));
        // a deny list that misses one syscall of the group is bad
        i.syscall_filter_allow_list = false;
        i.syscall_filter = ["swapon"].map(String::from).into();
        let e = assess(&p, &i, &all);
        let swap = row(&e, "SystemCallFilter=~@swap");
        assert_eq!((swap.badness, swap.example.as_str()), (Some(10), "swapoff"));
    }

    #[test]
    fn a_fully_sandboxed_unit_scores_low() {
        let p = Policy::for_version(257).unwrap();
        let mut i = bare();
        i.user = Some("svc".into());
        i.private_devices = true;
        i.private_network = true;
        i.private_tmp = true;
        i.private_users = true;
        i.private_mounts = true;
        i.protect_home = Some("yes".into());
        i.protect_system = Some("strict".into());
        i.no_new_privileges = true;
        i.capability_bounding_set = 0;
        i.restrict_namespaces = 0;
        i.af_inet = true;
        i.af_packet = true;
        i.af_other = true;
        i.af_netlink = true;
        i.syscall_architectures = ["native".to_string()].into();
        i.syscall_filter_allow_list = true;
        i.syscall_filter = ["read".to_string()].into();
        let e = assess(&p, &i, &all);
        assert!(e.tenths < 35, "{}", e.text());
        assert!(e.rows.iter().all(|r| r.exposure <= 10));
        // DefaultDependencies=no: the file system rows are not applicable
        i.default_dependencies = false;
        let na = assess(&p, &i, &all)
            .rows
            .iter()
            .filter(|r| r.badness.is_none())
            .count();
        assert_eq!(
            na, 4,
            "PrivateTmp, ProtectHome, ProtectSystem, RootDirectory"
        );
    }

    #[test]
    fn levels_follow_systemds_thresholds() {
        assert_eq!(Level::of(100), Level::Dangerous);
        assert_eq!(Level::of(96), Level::Unsafe);
        assert_eq!(Level::of(75), Level::Exposed);
        assert_eq!(Level::of(49), Level::Ok);
        assert_eq!(Level::of(1), Level::Safe);
        assert_eq!(Level::of(0), Level::Perfect);
    }
}
