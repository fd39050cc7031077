//! The runtime check: is `/` (or another mount point) on a dm-verity device with the root
//! hash we expect, and has the kernel seen corruption? Parsing is pure and unit-tested; the
//! kernel path (device-mapper status) runs in the VM tests.

use super::dm::{Control, VerityStatus, parse_status};

/// What the check found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootState {
    /// On dm-verity, no corruption seen, the root hash is the expected one (if any).
    Verified,
    /// The kernel reports a block that fails verification.
    Corrupted,
    /// On dm-verity with another root hash than the expected one.
    HashMismatch,
    /// Not on a dm-verity device.
    NotVerity,
    /// A root hash is expected, but the mount point is not on verity or cannot be checked.
    Unverified,
    /// The kernel command line names the expected root hash twice, or empty.
    Misconfigured,
    /// The check could not be made.
    #[default]
    Unknown,
}

/// The verdict for one mount point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerityCheck {
    pub state: RootState,
    pub mountpoint: String,
    /// The block device (`/dev/mapper/NAME` or the plain device).
    pub device: String,
    /// The root hash in the kernel's table ("" when not verity).
    pub root_hash: String,
    /// The expected root hash ("" when none is configured).
    pub expected_root_hash: String,
    /// Where the expected hash came from: config, hardend.verity.roothash=, roothash=.
    pub expected_source: String,
    pub detail: String,
}

/// The kernel command line's `hardend.verity.*` and `roothash=` parameters cannot be
/// trusted to mean one thing (the initramfs script refuses to boot on the same rule).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("{0} is given more than once on the kernel command line")]
    Repeated(String),
    #[error("{0} is empty on the kernel command line")]
    Empty(String),
}

/// The expected root hash: the configuration wins, then `hardend.verity.roothash=` and
/// systemd's `roothash=` on the kernel command line (before `--`). A `hardend.verity.*` or
/// `roothash=` parameter given twice or empty is an error, whatever the configuration says:
/// the initramfs halts the boot on it, and a device that boots anyway is not what it seems.
pub fn expected_root_hash(
    cmdline: &str,
    configured: Option<&str>,
) -> Result<Option<(String, String)>, CmdlineError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut found: Vec<(&str, &str)> = Vec::new();
    for w in cmdline.split_whitespace().take_while(|w| *w != "--") {
        let (key, value) = w.split_once('=').unwrap_or((w, ""));
        if !(key.starts_with("hardend.verity.") || key == "roothash") {
            continue;
        }
        if seen.contains(&key) {
            return Err(CmdlineError::Repeated(key.to_string()));
        }
        seen.push(key);
        if value.is_empty() {
            return Err(CmdlineError::Empty(key.to_string()));
        }
        found.push((key, value));
    }
    if let Some(c) = configured.filter(|c| !c.is_empty()) {
        return Ok(Some((c.to_ascii_lowercase(), "config".into())));
    }
    for key in ["hardend.verity.roothash", "roothash"] {
        if let Some((_, v)) = found.iter().find(|(k, _)| *k == key) {
            return Ok(Some((v.to_ascii_lowercase(), key.to_string())));
        }
    }
    Ok(None)
}

/// `(major, minor, source)` of the filesystem mounted at `mountpoint` (the last, i.e. top,
/// mount there), from `/proc/self/mountinfo`.
pub fn mount_device(mountinfo: &str, mountpoint: &str) -> Option<(u32, u32, String)> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(4) != Some(&mountpoint) {
            return None;
        }
        let (maj, min) = f.get(2)?.split_once(':')?;
        let sep = f.iter().position(|x| *x == "-")?;
        let source = f.get(sep + 2).copied().unwrap_or("").to_string();
        Some((maj.parse().ok()?, min.parse().ok()?, source))
    })
}

/// Checks `mountpoint` against `expected`.
pub fn check(mountpoint: &str, cmdline: &str, configured: Option<&str>) -> VerityCheck {
    let mut c = VerityCheck {
        mountpoint: mountpoint.to_string(),
        ..Default::default()
    };
    match expected_root_hash(cmdline, configured) {
        Ok(Some((h, src))) => {
            c.expected_root_hash = h;
            c.expected_source = src;
        }
        Ok(None) => {}
        Err(e) => {
            c.state = RootState::Misconfigured;
            c.detail =
                format!("{e}: the expected root hash is not known, the root is not vouched for");
            return c;
        }
    }
    let c = examine(c, mountpoint);
    // a root hash is expected: anything but verity is the boot not having opened the
    // verified root
    match c.state {
        RootState::NotVerity | RootState::Unknown if !c.expected_root_hash.is_empty() => {
            VerityCheck {
                state: RootState::Unverified,
                detail: format!(
                    "a root hash is expected ({}), but {}",
                    c.expected_source, c.detail
                ),
                ..c
            }
        }
        _ => c,
    }
}

/// The device under `mountpoint` and its verity state, against `c.expected_root_hash`.
fn examine(mut c: VerityCheck, mountpoint: &str) -> VerityCheck {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some((maj, min, source)) = mount_device(&mountinfo, mountpoint) else {
        c.state = RootState::Unknown;
        c.detail = format!("{mountpoint} is not in /proc/self/mountinfo");
        return c;
    };
    c.device = source;
    let dm_name = std::fs::read_to_string(format!("/sys/dev/block/{maj}:{min}/dm/name"))
        .map(|s| s.trim().to_string())
        .ok();
    let Some(name) = dm_name else {
        c.state = RootState::NotVerity;
        c.detail = format!(
            "{mountpoint} is on {} ({maj}:{min}), not a device-mapper device",
            c.device
        );
        return c;
    };
    c.device = format!("/dev/mapper/{name}");
    let ctl = match Control::open() {
        Ok(ctl) => ctl,
        Err(e) => {
            c.state = RootState::Unknown;
            c.detail = e.to_string();
            return c;
        }
    };
    let (table, status) = match (
        ctl.table_status(&name, true),
        ctl.table_status(&name, false),
    ) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(e), _) | (_, Err(e)) => {
            c.state = RootState::Unknown;
            c.detail = e.to_string();
            return c;
        }
    };
    let Some(t) = table.first().filter(|t| t.target_type == "verity") else {
        c.state = RootState::NotVerity;
        c.detail = format!("{} is a device-mapper device, but not verity", c.device);
        return c;
    };
    c.root_hash = t
        .params
        .split_whitespace()
        .nth(8)
        .unwrap_or("")
        .to_ascii_lowercase();
    let st = status.first().map(|s| parse_status(&s.params));
    c.state = match st {
        Some(VerityStatus::Corrupted) => RootState::Corrupted,
        _ if !c.expected_root_hash.is_empty() && c.expected_root_hash != c.root_hash => {
            RootState::HashMismatch
        }
        Some(VerityStatus::Verified) => RootState::Verified,
        _ => RootState::Unknown,
    };
    c.detail = match c.state {
        RootState::Corrupted => "the kernel found a block that fails verification".into(),
        RootState::HashMismatch => format!(
            "root hash {} differs from the expected {} ({})",
            c.root_hash, c.expected_root_hash, c.expected_source
        ),
        RootState::Verified if c.expected_root_hash.is_empty() => {
            "verified, but no expected root hash is configured: the tree is not anchored".into()
        }
        RootState::Verified => format!("root hash matches {}", c.expected_source),
        _ => format!("unrecognised status {st:?}"),
    };
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_hash_sources_in_order() {
        let cmd = "quiet roothash=AAAA hardend.verity.roothash=bbbb root=/dev/dm-0";
        assert_eq!(
            expected_root_hash(cmd, Some("CCCC")),
            Ok(Some(("cccc".into(), "config".into())))
        );
        assert_eq!(
            expected_root_hash(cmd, None),
            Ok(Some(("bbbb".into(), "hardend.verity.roothash".into())))
        );
        assert_eq!(
            expected_root_hash("roothash=aa", None),
            Ok(Some(("aa".into(), "roothash".into())))
        );
        assert_eq!(
            expected_root_hash("ro -- roothash=aa", None),
            Ok(None),
            "after -- is for init"
        );
        assert_eq!(expected_root_hash("ro", None), Ok(None));
    }

    #[test]
    fn a_repeated_or_empty_parameter_is_an_error_whatever_the_configuration() {
        // the initramfs takes no occurrence as the right one: neither does the daemon
        for (cmd, e) in [
            (
                "hardend.verity.roothash=aa hardend.verity.roothash=",
                CmdlineError::Repeated("hardend.verity.roothash".into()),
            ),
            (
                "hardend.verity.roothash=",
                CmdlineError::Empty("hardend.verity.roothash".into()),
            ),
            (
                "hardend.verity.roothash=aa hardend.verity.data=/dev/a hardend.verity.data=/dev/b",
                CmdlineError::Repeated("hardend.verity.data".into()),
            ),
            (
                "roothash=aa roothash=bb",
                CmdlineError::Repeated("roothash".into()),
            ),
            (
                "hardend.verity.data",
                CmdlineError::Empty("hardend.verity.data".into()),
            ),
        ] {
            assert_eq!(expected_root_hash(cmd, None), Err(e.clone()), "{cmd}");
            assert_eq!(
                expected_root_hash(cmd, Some("cc")),
                Err(e),
                "{cmd} with config"
            );
        }
    }

    #[test]
    fn not_on_verity_while_a_root_hash_is_expected_is_unverified() {
        // this test machine's / is not on verity
        let c = check("/", "hardend.verity.roothash=abcd", None);
        assert_eq!(c.state, RootState::Unverified, "{c:?}");
        assert!(
            c.detail
                .starts_with("a root hash is expected (hardend.verity.roothash)"),
            "{}",
            c.detail
        );
        let c = check("/", "ro", Some("abcd"));
        assert_eq!(c.state, RootState::Unverified, "{c:?}");
        let c = check("/", "ro", None);
        assert_eq!(c.state, RootState::NotVerity, "nothing expected: not bad");
        let c = check("/", "roothash=aa roothash=aa", None);
        assert_eq!(c.state, RootState::Misconfigured, "{c:?}");
    }

    #[test]
    fn mount_device_takes_the_top_mount() {
        let mi = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                  22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                  40 27 253:0 / / ro,relatime shared:1 - ext4 /dev/mapper/root ro\n";
        assert_eq!(
            mount_device(mi, "/"),
            Some((253, 0, "/dev/mapper/root".into()))
        );
        assert_eq!(mount_device(mi, "/proc"), Some((0, 21, "proc".into())));
        assert_eq!(mount_device(mi, "/usr"), None);
    }

    #[test]
    fn this_hosts_root_is_reported_honestly() {
        // whatever the machine: a state from the documented set, never a panic
        let c = check("/", "", None);
        assert!(!c.detail.is_empty(), "{c:?}");
    }
}
