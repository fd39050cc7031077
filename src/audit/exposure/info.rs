//! What systemd's assessment looks at for one unit, read from the unit's D-Bus properties
//! the way `systemd-analyze security` reads them (empty strings are "unset", a property the
//! unit does not have keeps systemd's default), plus the settings systemd implies (a
//! sandboxing option implies a private mount namespace, `ProtectClock=` drops CAP_SYS_TIME…).

use std::collections::{BTreeSet, HashMap};

use zbus::zvariant::OwnedValue;

/// One unit's security-relevant settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityInfo {
    pub id: String,
    pub load_state: Option<String>,
    pub service_type: Option<String>,
    pub fragment_path: Option<String>,
    pub control_group: Option<String>,
    pub main_pid: u32,
    pub default_dependencies: bool,
    pub ambient_capabilities: u64,
    pub capability_bounding_set: u64,
    pub user: Option<String>,
    pub supplementary_groups: Vec<String>,
    pub dynamic_user: bool,
    pub ip_address_deny_all: bool,
    pub ip_address_allow_localhost: bool,
    pub ip_address_allow_other: bool,
    pub ip_filters_custom_ingress: bool,
    pub ip_filters_custom_egress: bool,
    pub keyring_mode: Option<String>,
    pub protect_proc: Option<String>,
    pub proc_subset: Option<String>,
    pub lock_personality: bool,
    pub memory_deny_write_execute: bool,
    pub no_new_privileges: bool,
    pub notify_access: Option<String>,
    pub protect_hostname: bool,
    pub private_devices: bool,
    pub private_mounts: bool,
    pub private_network: bool,
    pub private_tmp: bool,
    pub private_users: bool,
    pub protect_control_groups: bool,
    pub protect_kernel_modules: bool,
    pub protect_kernel_tunables: bool,
    pub protect_kernel_logs: bool,
    pub protect_clock: bool,
    pub protect_home: Option<String>,
    pub protect_system: Option<String>,
    pub remove_ipc: bool,
    /// `RestrictAddressFamilies=`: true = the family is denied.
    pub af_inet: bool,
    pub af_unix: bool,
    pub af_netlink: bool,
    pub af_packet: bool,
    pub af_other: bool,
    /// `CLONE_NEW*` flags the unit may use (all bits: unrestricted).
    pub restrict_namespaces: u64,
    pub restrict_realtime: bool,
    pub restrict_suid_sgid: bool,
    pub root_directory: Option<String>,
    pub root_image: Option<String>,
    pub delegate: bool,
    pub device_policy: Option<String>,
    pub device_allow: Vec<String>,
    pub syscall_architectures: BTreeSet<String>,
    pub syscall_filter_allow_list: bool,
    pub syscall_filter: BTreeSet<String>,
    pub umask: u32,
}

impl Default for SecurityInfo {
    /// systemd's defaults for a property the unit does not have.
    fn default() -> Self {
        SecurityInfo {
            id: String::new(),
            load_state: None,
            service_type: None,
            fragment_path: None,
            control_group: None,
            main_pid: 0,
            default_dependencies: true,
            ambient_capabilities: 0,
            capability_bounding_set: u64::MAX,
            user: None,
            supplementary_groups: Vec::new(),
            dynamic_user: false,
            ip_address_deny_all: false,
            ip_address_allow_localhost: false,
            ip_address_allow_other: false,
            ip_filters_custom_ingress: false,
            ip_filters_custom_egress: false,
            keyring_mode: None,
            protect_proc: None,
            proc_subset: None,
            lock_personality: false,
            memory_deny_write_execute: false,
            no_new_privileges: false,
            notify_access: None,
            protect_hostname: false,
            private_devices: false,
            private_mounts: false,
            private_network: false,
            private_tmp: false,
            private_users: false,
            protect_control_groups: false,
            protect_kernel_modules: false,
            protect_kernel_tunables: false,
            protect_kernel_logs: false,
            protect_clock: false,
            protect_home: None,
            protect_system: None,
            remove_ipc: false,
            af_inet: false,
            af_unix: false,
            af_netlink: false,
            af_packet: false,
            af_other: false,
            restrict_namespaces: u64::MAX,
            restrict_realtime: false,
            restrict_suid_sgid: false,
            root_directory: None,
            root_image: None,
            delegate: false,
            device_policy: None,
            device_allow: Vec::new(),
            syscall_architectures: BTreeSet::new(),
            syscall_filter_allow_list: false,
            syscall_filter: BTreeSet::new(),
            umask: 0o002,
        }
    }
}

const CAP_SYS_MODULE: u64 = 1 << 16;
const CAP_SYSLOG: u64 = 1 << 34;
const CAP_SYS_TIME: u64 = 1 << 25;
const CAP_WAKE_ALARM: u64 = 1 << 35;
const CAP_MKNOD: u64 = 1 << 27;
const CAP_SYS_RAWIO: u64 = 1 << 17;

/// The properties of one unit (all interfaces: `GetAll` with an empty interface name).
pub type Properties = HashMap<String, OwnedValue>;

fn get<T>(p: &Properties, name: &str) -> Option<T>
where
    T: TryFrom<OwnedValue>,
{
    p.get(name)?.try_clone().ok()?.try_into().ok()
}

/// A string property; empty is unset (as sd-bus's property map reads it).
fn string(p: &Properties, name: &str) -> Option<String> {
    get::<String>(p, name).filter(|s| !s.is_empty())
}

impl SecurityInfo {
    /// Reads what systemd's assessment reads from a unit's properties.
    pub fn from_properties(p: &Properties) -> SecurityInfo {
        let d = SecurityInfo::default();
        let flag = |name: &str, default: bool| get::<bool>(p, name).unwrap_or(default);
        let (af_allow, families) =
            get::<(bool, Vec<String>)>(p, "RestrictAddressFamilies").unwrap_or((false, vec![]));
        let (mut af_inet, mut af_unix, mut af_netlink, mut af_packet, mut af_other) =
            (af_allow, af_allow, af_allow, af_allow, af_allow);
        for f in &families {
            match f.as_str() {
                "AF_INET" | "AF_INET6" => af_inet = !af_allow,
                "AF_UNIX" => af_unix = !af_allow,
                "AF_NETLINK" => af_netlink = !af_allow,
                "AF_PACKET" => af_packet = !af_allow,
                _ => af_other = !af_allow,
            }
        }
        let (sc_allow, sc_names) =
            get::<(bool, Vec<String>)>(p, "SystemCallFilter").unwrap_or((false, vec![]));
        type Addrs = Vec<(i32, Vec<u8>, u32)>;
        let allow: Addrs = get(p, "IPAddressAllow").unwrap_or_default();
        let deny: Addrs = get(p, "IPAddressDeny").unwrap_or_default();
        let (mut allow_localhost, mut allow_other) = (false, false);
        for (family, addr, prefix) in &allow {
            let localhost = match (*family, addr.len(), *prefix) {
                (libc::AF_INET, 4, 8) => Some(addr[0] == 127),
                (libc::AF_INET6, 16, 128) => {
                    Some(addr[..15].iter().all(|b| *b == 0) && addr[15] == 1)
                }
                _ => None,
            };
            match localhost {
                Some(true) => allow_localhost = true,
                _ => allow_other = true,
            }
        }
        let deny_all = |fam: i32, len: usize| {
            deny.iter()
                .any(|(f, a, pl)| *f == fam && a.len() == len && *pl == 0)
        };
        let filters = |name: &str| !get::<Vec<String>>(p, name).unwrap_or_default().is_empty();
        let mut info = SecurityInfo {
            id: string(p, "Id").unwrap_or_default(),
            load_state: string(p, "LoadState"),
            service_type: string(p, "Type"),
            fragment_path: string(p, "FragmentPath"),
            control_group: string(p, "ControlGroup"),
            main_pid: get(p, "MainPID").unwrap_or(0),
            default_dependencies: flag("DefaultDependencies", d.default_dependencies),
            ambient_capabilities: get(p, "AmbientCapabilities").unwrap_or(0),
            capability_bounding_set: get(p, "CapabilityBoundingSet")
                .unwrap_or(d.capability_bounding_set),
            user: string(p, "User"),
            supplementary_groups: get(p, "SupplementaryGroups").unwrap_or_default(),
            dynamic_user: flag("DynamicUser", false),
            ip_address_deny_all: deny_all(libc::AF_INET, 4) && deny_all(libc::AF_INET6, 16),
            ip_address_allow_localhost: allow_localhost,
            ip_address_allow_other: allow_other,
            ip_filters_custom_ingress: filters("IPIngressFilterPath"),
            ip_filters_custom_egress: filters("IPEgressFilterPath"),
            keyring_mode: string(p, "KeyringMode"),
            protect_proc: string(p, "ProtectProc"),
            proc_subset: string(p, "ProcSubset"),
            lock_personality: flag("LockPersonality", false),
            memory_deny_write_execute: flag("MemoryDenyWriteExecute", false),
            no_new_privileges: flag("NoNewPrivileges", false),
            notify_access: string(p, "NotifyAccess"),
            protect_hostname: flag("ProtectHostname", false),
            private_devices: flag("PrivateDevices", false),
            private_mounts: flag("PrivateMounts", false),
            private_network: flag("PrivateNetwork", false),
            private_tmp: flag("PrivateTmp", false),
            private_users: flag("PrivateUsers", false),
            protect_control_groups: flag("ProtectControlGroups", false),
            protect_kernel_modules: flag("ProtectKernelModules", false),
            protect_kernel_tunables: flag("ProtectKernelTunables", false),
            protect_kernel_logs: flag("ProtectKernelLogs", false),
            protect_clock: flag("ProtectClock", false),
            protect_home: string(p, "ProtectHome"),
            protect_system: string(p, "ProtectSystem"),
            remove_ipc: flag("RemoveIPC", false),
            af_inet,
            af_unix,
            af_netlink,
            af_packet,
            af_other,
            restrict_namespaces: get(p, "RestrictNamespaces").unwrap_or(d.restrict_namespaces),
            restrict_realtime: flag("RestrictRealtime", false),
            restrict_suid_sgid: flag("RestrictSUIDSGID", false),
            root_directory: string(p, "RootDirectory"),
            root_image: string(p, "RootImage"),
            delegate: flag("Delegate", false),
            device_policy: string(p, "DevicePolicy"),
            device_allow: get::<Vec<(String, String)>>(p, "DeviceAllow")
                .unwrap_or_default()
                .into_iter()
                .map(|(dev, perm)| format!("{dev}:{perm}"))
                .collect(),
            syscall_architectures: get::<Vec<String>>(p, "SystemCallArchitectures")
                .unwrap_or_default()
                .into_iter()
                .collect(),
            syscall_filter_allow_list: sc_allow,
            // "name:errno" entries: the name counts
            syscall_filter: sc_names
                .iter()
                .map(|s| s.split(':').next().unwrap_or(s).to_string())
                .collect(),
            umask: get(p, "UMask").unwrap_or(d.umask),
        };
        info.apply_implications();
        info
    }

    /// What systemd implies from other settings before it assesses them.
    fn apply_implications(&mut self) {
        if self.private_devices
            || self.private_tmp
            || self.protect_control_groups
            || self.protect_kernel_tunables
            || self.protect_kernel_modules
            || self.protect_home.as_deref() != Some("no")
            || self.protect_system.as_deref() != Some("no")
            || self.root_image.is_some()
        {
            self.private_mounts = true;
        }
        if self.protect_kernel_modules {
            self.capability_bounding_set &= !CAP_SYS_MODULE;
        }
        if self.protect_kernel_logs {
            self.capability_bounding_set &= !CAP_SYSLOG;
        }
        if self.protect_clock {
            self.capability_bounding_set &= !(CAP_SYS_TIME | CAP_WAKE_ALARM);
        }
        if self.private_devices {
            self.capability_bounding_set &= !(CAP_MKNOD | CAP_SYS_RAWIO);
        }
    }

    /// Runs as root: `User=` root or 0, or no user and not dynamic.
    pub fn runs_privileged(&self) -> bool {
        match self.user.as_deref() {
            Some("0" | "root") => true,
            _ if self.dynamic_user => false,
            None => true,
            Some(_) => false,
        }
    }

    /// Loaded (systemd can say something about it).
    pub fn loaded(&self) -> bool {
        self.load_state.as_deref() == Some("loaded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::Value;

    fn props(list: Vec<(&str, Value<'static>)>) -> Properties {
        list.into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap()))
            .collect()
    }

    #[test]
    fn families_ip_lists_and_syscalls_read_like_systemd() {
        let p = props(vec![
            ("Id", Value::from("x.service")),
            ("ProtectHome", Value::from("no")),
            ("ProtectSystem", Value::from("no")),
            (
                "RestrictAddressFamilies",
                Value::from((true, vec!["AF_UNIX".to_string(), "AF_INET".to_string()])),
            ),
            (
                "SystemCallFilter",
                Value::from((
                    false,
                    vec!["reboot:EPERM".to_string(), "swapon".to_string()],
                )),
            ),
            (
                "IPAddressDeny",
                Value::from(vec![
                    (libc::AF_INET, vec![0u8; 4], 0u32),
                    (libc::AF_INET6, vec![0u8; 16], 0u32),
                ]),
            ),
            (
                "IPAddressAllow",
                Value::from(vec![(libc::AF_INET, vec![127u8, 0, 0, 0], 8u32)]),
            ),
            ("User", Value::from("")),
        ]);
        let i = SecurityInfo::from_properties(&p);
        // allow-list of UNIX and INET: those two are not denied, the rest are
        assert!(!i.af_unix && !i.af_inet && i.af_netlink && i.af_packet && i.af_other);
        assert!(!i.syscall_filter_allow_list);
        assert!(i.syscall_filter.contains("reboot") && i.syscall_filter.contains("swapon"));
        assert!(i.ip_address_deny_all && i.ip_address_allow_localhost && !i.ip_address_allow_other);
        assert_eq!(i.user, None, "empty is unset");
        assert!(i.runs_privileged());
        assert!(!i.private_mounts, "nothing implies a mount namespace");
    }

    #[test]
    fn sandboxing_implies_mounts_and_drops_capabilities() {
        let i = SecurityInfo::from_properties(&props(vec![
            ("ProtectHome", Value::from("no")),
            ("ProtectSystem", Value::from("no")),
            ("ProtectClock", Value::from(true)),
            ("PrivateDevices", Value::from(true)),
        ]));
        assert!(i.private_mounts);
        assert_eq!(i.capability_bounding_set & CAP_SYS_TIME, 0);
        assert_eq!(i.capability_bounding_set & CAP_MKNOD, 0);
        assert_ne!(i.capability_bounding_set & CAP_SYSLOG, 0);
        // a unit without ProtectHome/ProtectSystem properties: systemd's comparison with "no"
        // fails, so it implies a mount namespace too
        assert!(SecurityInfo::from_properties(&props(vec![])).private_mounts);
    }
}
