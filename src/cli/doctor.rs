//! `hardenctl doctor`: is this device set up so that hardend's guarantees can hold? Each
//! check says what it found and, when something is wrong, what to do. `--root DIR` checks an
//! image (a mounted root file system) instead of this system: the live checks (the daemon,
//! the kernel command line) are then skipped.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::client::Client;
use super::{CliError, Exit, Output, columns, safe};
use crate::config::Config;

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckState {
    Ok,
    Problem,
    /// Not applicable here (deliberately off, or not checkable with `--root`).
    Skipped,
}

impl CheckState {
    fn as_str(self) -> &'static str {
        match self {
            CheckState::Ok => "ok",
            CheckState::Problem => "problem",
            CheckState::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub state: CheckState,
    pub detail: String,
    /// What to do about a problem ("" otherwise).
    pub remedy: String,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        state: CheckState::Ok,
        detail: super::tidy(&detail.into()),
        remedy: String::new(),
    }
}

fn skipped(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        state: CheckState::Skipped,
        detail: super::tidy(&detail.into()),
        remedy: String::new(),
    }
}

fn problem(name: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
    Check {
        name,
        state: CheckState::Problem,
        detail: super::tidy(&detail.into()),
        remedy: remedy.into(),
    }
}

/// What doctor looks at.
pub struct Target<'a> {
    /// The image's root, or `/`.
    pub root: &'a Path,
    /// Whether `root` is this running system (the live checks apply).
    pub live: bool,
    /// hardend.toml, as the daemon would read it (relative to `root`).
    pub config: &'a Path,
    pub bus: &'a str,
}

impl Target<'_> {
    /// `p` (absolute on the device) inside the checked root.
    fn path(&self, p: &Path) -> PathBuf {
        match p.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(p),
        }
    }
}

fn config_check(t: &Target) -> (Check, Config) {
    let file = t.path(t.config);
    if !file.exists() {
        return (
            ok(
                "config",
                format!("{} absent: the defaults apply", t.config.display()),
            ),
            Config::default(),
        );
    }
    match Config::load(&file) {
        Ok(c) => (ok("config", format!("{} is valid", t.config.display())), c),
        Err(e) => (
            problem(
                "config",
                e.to_string(),
                "fix the file (the daemon refuses to start, or keeps its previous configuration on reload)",
            ),
            Config::default(),
        ),
    }
}

fn daemon_check(t: &Target) -> Check {
    if !t.live {
        return skipped("daemon", "not checked in an image (--root)");
    }
    let answer = Client::connect(t.bus).and_then(|c| {
        let m = c.manager()?;
        c.block_on(m.status())
            .map_err(|e| super::client::bus_error(t.bus, e))
    });
    match answer {
        Ok((s,)) => ok(
            "daemon",
            format!("hardend {} answers on the bus ({})", s.version, s.state),
        ),
        Err(e) => problem(
            "daemon",
            e.to_string(),
            "systemctl start hardend; journalctl -u hardend says why it is not running",
        ),
    }
}

fn landlock_check(c: &Config, t: &Target) -> Check {
    let abi = crate::confine::landlock::kernel_abi();
    if abi == 0 {
        return problem(
            "landlock",
            "this kernel has no Landlock: no profile can be enforced",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK and landlock in lsm= (Debian's kernels since 12 have it)",
        );
    }
    let loader = crate::profile::ProfileLoader::new(
        c.daemon.profile_path.iter().map(|p| t.path(p)).collect(),
    );
    let mut needs = Vec::new();
    let mut invalid = Vec::new();
    let listed = loader.list();
    for (name, path) in &listed {
        match loader.load_file(path) {
            Ok(p) => {
                let min = p.landlock.as_ref().map(|l| l.min_abi).unwrap_or(0);
                if min > abi {
                    needs.push(format!("{name} (min_abi {min})"));
                }
            }
            Err(e) => invalid.push(format!("{name}: {e}")),
        }
    }
    if !needs.is_empty() {
        return problem(
            "landlock",
            format!(
                "kernel ABI {abi}; these profiles refuse to start their service on it: {}",
                needs.join(", ")
            ),
            "a newer kernel, or a lower landlock.min_abi in those profiles (the service then runs partial)",
        );
    }
    if !invalid.is_empty() {
        return problem(
            "landlock",
            format!("invalid profiles: {}", invalid.join("; ")),
            "hardenctl profile check NAME shows every error",
        );
    }
    ok(
        "landlock",
        format!(
            "kernel ABI {abi}; every profile on the path ({}) can be enforced",
            listed.len()
        ),
    )
}

fn records_check(c: &Config, t: &Target) -> Check {
    let dir = t.path(&c.daemon.records_dir());
    let shown = c.daemon.records_dir().display().to_string();
    match std::fs::symlink_metadata(&dir) {
        Err(_) if !t.live => skipped("records", format!("{shown}: made at boot, not in an image")),
        Err(_) => skipped(
            "records",
            format!("{shown} does not exist yet (the daemon or the first confined start makes it)"),
        ),
        Ok(m) if !m.is_dir() => problem(
            "records",
            format!("{shown} is not a directory"),
            format!("rm {shown}; systemctl restart hardend"),
        ),
        Ok(m) if m.uid() != 0 || m.permissions().mode() & 0o7777 != 0o1733 => problem(
            "records",
            format!(
                "{shown} is mode {:04o} owned by uid {}: records could be read, listed or replaced",
                m.permissions().mode() & 0o7777,
                m.uid()
            ),
            format!("chown root:root {shown} && chmod 1733 {shown}"),
        ),
        Ok(_) => ok("records", format!("{shown}: root, 1733")),
    }
}

const POLICY: &str = "/usr/share/dbus-1/system.d/org.hardend1.conf";
/// The policy this hardend ships, byte for byte.
const SHIPPED_POLICY: &str = include_str!("../../units/org.hardend1.conf");

fn policy_check(t: &Target) -> Check {
    let file = t.path(Path::new(POLICY));
    let reinstall = "apt-get install --reinstall hardend";
    match std::fs::symlink_metadata(&file) {
        Err(e) => problem(
            "dbus-policy",
            format!("{POLICY}: {e}: the bus refuses hardend its name, or lets anyone call it"),
            reinstall,
        ),
        Ok(m) if !m.is_file() || m.uid() != 0 || m.permissions().mode() & 0o022 != 0 => problem(
            "dbus-policy",
            format!(
                "{POLICY} is not a root-owned file that only root may write (mode {:04o}, uid {})",
                m.permissions().mode() & 0o7777,
                m.uid()
            ),
            reinstall,
        ),
        Ok(_) => match std::fs::read_to_string(&file) {
            Ok(text) if text == SHIPPED_POLICY => ok("dbus-policy", format!("{POLICY} as shipped")),
            Ok(_) => problem(
                "dbus-policy",
                format!(
                    "{POLICY} is not the policy this hardend ships (changed, or from an older version)"
                ),
                reinstall,
            ),
            Err(e) => problem("dbus-policy", format!("{POLICY}: {e}"), reinstall),
        },
    }
}

/// The gid of `group` in the root's /etc/group.
fn group_gid(t: &Target, group: &str) -> Option<u32> {
    let text = std::fs::read_to_string(t.path(Path::new("/etc/group"))).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == group).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

fn tpm_check(c: &Config, t: &Target) -> Check {
    let Some(tcti) = &c.identity.tcti else {
        return skipped("tpm", "off ([identity] tcti = \"none\")");
    };
    let Some(dev) = tcti.strip_prefix("device:") else {
        return skipped("tpm", format!("{tcti}: not a TPM device of this system"));
    };
    let dev = dev.split(',').next().unwrap_or(dev);
    let node = t.path(Path::new(dev));
    if t.live || node.exists() {
        match std::fs::metadata(&node) {
            Err(e) => {
                return problem(
                    "tpm",
                    format!("{dev}: {e}: the identity and the sealed integrity key need it"),
                    "enable the TPM in the firmware and load its driver (modprobe tpm_crb or tpm_tis); or set [identity] tcti = \"none\"",
                );
            }
            Ok(m) if !m.file_type().is_char_device() => {
                return problem(
                    "tpm",
                    format!("{dev} is not a character device"),
                    "remove it; the kernel's TPM driver creates the device",
                );
            }
            Ok(_) => {}
        }
    }
    match group_gid(t, "tss") {
        None => problem(
            "tpm",
            "no tss group: udev cannot give the TPM device its group",
            "apt-get install tpm-udev (it creates the tss group and the udev rule)",
        ),
        Some(gid) => match std::fs::metadata(&node) {
            Ok(m) if m.gid() != gid || m.permissions().mode() & 0o006 != 0 => problem(
                "tpm",
                format!(
                    "{dev} is group {} mode {:04o}: expected group tss and no access for others",
                    m.gid(),
                    m.permissions().mode() & 0o777
                ),
                "apt-get install tpm-udev; udevadm trigger",
            ),
            Ok(_) => ok("tpm", format!("{dev}, group tss")),
            Err(_) => skipped("tpm", format!("{dev}: appears at boot, not in an image")),
        },
    }
}

fn initramfs_check(t: &Target) -> Check {
    if !t.live {
        return skipped(
            "initramfs",
            "the kernel command line is that of the running system",
        );
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline
        .split_whitespace()
        .any(|w| w.starts_with("hardend.verity."))
    {
        return skipped(
            "initramfs",
            "no hardend.verity.* on the kernel command line",
        );
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let initrd = format!("/boot/initrd.img-{release}");
    let remedy = format!("update-initramfs -u -k {release}");
    let listing = match std::process::Command::new("lsinitramfs")
        .arg(&initrd)
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            return problem(
                "initramfs",
                format!("{initrd}: {}", String::from_utf8_lossy(&o.stderr).trim()),
                remedy,
            );
        }
        Err(e) => {
            return problem(
                "initramfs",
                format!("lsinitramfs: {e}"),
                "apt-get install initramfs-tools-core",
            );
        }
    };
    let has = |needle: &str| listing.lines().any(|l| l.contains(needle));
    let mut missing = Vec::new();
    if !has("scripts/local-top/hardend") {
        missing.push("hardend's local-top script");
    }
    if !has("dm-verity.ko") {
        missing.push("the dm_verity module");
    }
    if !has("bin/hardenctl") {
        missing.push("hardenctl");
    }
    if missing.is_empty() {
        ok(
            "initramfs",
            format!("{initrd} opens the verified root (hook, dm_verity, hardenctl)"),
        )
    } else {
        problem(
            "initramfs",
            format!(
                "the kernel command line asks for a verified root, but {initrd} lacks {}: the boot stops",
                missing.join(", ")
            ),
            remedy,
        )
    }
}

fn integrity_check(c: &Config, t: &Target) -> Check {
    if !c.integrity.enabled {
        return skipped("integrity", "off ([integrity] enabled = false)");
    }
    let db = c.integrity.dir.join("baseline.db");
    if t.path(&db).is_file() {
        ok("integrity", format!("baseline {}", db.display()))
    } else {
        problem(
            "integrity",
            format!("no baseline at {}: nothing is compared", db.display()),
            "hardenctl integrity init (on a known-good system, e.g. at the factory)",
        )
    }
}

fn dropins_check(c: &Config, t: &Target) -> Check {
    use crate::systemd::dropin::dropin_path;
    let exec = t.path(&c.daemon.exec_path);
    let exec_ok = std::fs::metadata(&exec)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !exec_ok {
        return problem(
            "drop-ins",
            format!(
                "{} is missing or not executable: every confined unit fails to start",
                c.daemon.exec_path.display()
            ),
            "apt-get install --reinstall hardend",
        );
    }
    let mut missing = Vec::new();
    for unit in c.services.keys() {
        let persistent = t.path(&dropin_path(&c.daemon.dropin_dir, unit));
        let runtime = t.path(&dropin_path(&c.daemon.runtime_dropin_dir, unit));
        if !persistent.is_file() && !runtime.is_file() {
            missing.push(unit.clone());
        }
    }
    if missing.is_empty() {
        ok(
            "drop-ins",
            format!(
                "hardend-exec installed; every unit of [services] has its drop-in ({})",
                c.services.len()
            ),
        )
    } else {
        problem(
            "drop-ins",
            format!(
                "[services] assigns {} but there is no drop-in: the unit runs unconfined",
                missing.join(", ")
            ),
            "hardenctl reload (the daemon writes them), then systemctl restart UNIT",
        )
    }
}

/// Runs every check, in the order an admin fixes them.
pub fn checks(t: &Target) -> Vec<Check> {
    let (config, c) = config_check(t);
    vec![
        config,
        daemon_check(t),
        landlock_check(&c, t),
        records_check(&c, t),
        policy_check(t),
        tpm_check(&c, t),
        initramfs_check(t),
        integrity_check(&c, t),
        dropins_check(&c, t),
    ]
}

pub fn run(out: &Output, t: &Target) -> Result<Exit, CliError> {
    let checks = checks(t);
    let good = checks.iter().all(|c| c.state != CheckState::Problem);
    if out.json {
        out.json(&serde_json::json!({ "ok": good, "root": t.root, "checks": checks }));
    } else {
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                let paint = match c.state {
                    CheckState::Ok => Some(true),
                    CheckState::Problem => Some(false),
                    CheckState::Skipped => None,
                };
                vec![
                    c.name.to_string(),
                    out.paint(c.state.as_str(), paint),
                    c.detail.clone(),
                ]
            })
            .collect();
        print!("{}", columns(&rows));
        for c in checks.iter().filter(|c| c.state == CheckState::Problem) {
            println!("{}: {}", c.name, safe(&c.remedy));
        }
    }
    Ok(if good { Exit::Ok } else { Exit::Bad })
}
