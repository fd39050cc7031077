//! The platform's state on the running system: Secure Boot, a TPM, the root on dm-verity
//! (asked of the kernel: the device under `/` and its device-mapper UUID), hardend's
//! integrity baseline (from the daemon), a firewall ruleset loaded, and services listening
//! on every interface.

use std::path::Path;

use super::{Check, Severity, Status};

const SECURE_BOOT_VAR: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e0c9ab4ea4ae";

pub fn secure_boot(sys_root: &Path) -> Check {
    let efi = sys_root.join("sys/firmware/efi");
    if !efi.is_dir() {
        return Check::new("boot.secure-boot", Severity::Medium, Status::Fail, "not booted through UEFI: no Secure Boot")
            .remedy("boot through UEFI with Secure Boot enabled (shim and a signed kernel), or verify the boot chain otherwise (a verified root, measured boot)");
    }
    let var = sys_root.join(SECURE_BOOT_VAR.trim_start_matches('/'));
    match std::fs::read(&var) {
        // 4 bytes of attributes, then the value
        Ok(b) if b.len() >= 5 && b[4] == 1 => {
            Check::new("boot.secure-boot", Severity::High, Status::Pass, "UEFI Secure Boot is on")
        }
        Ok(_) => Check::new("boot.secure-boot", Severity::High, Status::Fail, "UEFI Secure Boot is off")
            .remedy("enable Secure Boot in the firmware setup (and enrol the keys the kernel is signed with)"),
        Err(e) => Check::new("boot.secure-boot", Severity::High, Status::Unknown, format!("{}: {e}", var.display())),
    }
}

pub fn tpm(sys_root: &Path) -> Check {
    let dir = sys_root.join("sys/class/tpm/tpm0");
    if dir.exists() {
        let v = std::fs::read_to_string(dir.join("tpm_version_major")).unwrap_or_default();
        Check::new(
            "tpm.present",
            Severity::Medium,
            Status::Pass,
            format!("TPM {} present (/dev/tpm0)", v.trim()).replace("TPM  ", "TPM "),
        )
    } else {
        Check::new("tpm.present", Severity::Medium, Status::Fail, "no TPM: no hardware-bound identity, no sealed keys, no measured boot")
            .remedy("use a board with a TPM 2.0 (discrete or firmware) and enable it in the firmware; then `hardenctl identity create`")
    }
}

/// The major:minor of the file system mounted at `/` (from `/proc/self/mountinfo`).
pub fn root_device(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 4 && f[4] == "/").then(|| f[2].to_string())
    })
}

pub fn verity_root(sys_root: &Path, mountinfo: &str) -> Check {
    let Some(dev) = root_device(mountinfo) else {
        return Check::new(
            "verity.root",
            Severity::Medium,
            Status::Unknown,
            "no mount at / in /proc/self/mountinfo",
        );
    };
    let uuid = std::fs::read_to_string(sys_root.join(format!("sys/dev/block/{dev}/dm/uuid")))
        .unwrap_or_default();
    if uuid.trim().starts_with("CRYPT-VERITY-") {
        Check::new(
            "verity.root",
            Severity::Medium,
            Status::Pass,
            format!("/ is on a dm-verity device ({dev})"),
        )
    } else {
        Check::new(
            "verity.root",
            Severity::Medium,
            Status::Fail,
            format!("/ is not on dm-verity (device {dev}): the system files are not authenticated"),
        )
        .remedy(
            "build the root read-only on dm-verity (`hardenctl verity format`, see docs/verity.md)",
        )
    }
}

/// hardend's integrity baseline: the daemon's state and detail (`None`: not reachable).
pub fn integrity(state: Option<(crate::api::IntegrityState, String)>) -> Check {
    use crate::api::IntegrityState as S;
    match state {
        None => Check::new(
            "integrity.baseline",
            Severity::Medium,
            Status::Unknown,
            "hardend is not running: the integrity state is unknown",
        ),
        Some((S::Ok, d)) => Check::new(
            "integrity.baseline",
            Severity::Medium,
            Status::Pass,
            format!("integrity baseline trusted: {d}"),
        ),
        Some((S::NoBaseline, d)) => Check::new(
            "integrity.baseline",
            Severity::Medium,
            Status::Fail,
            format!("no integrity baseline: {d}"),
        )
        .remedy("hardenctl integrity init"),
        Some((s, d)) => Check::new(
            "integrity.baseline",
            Severity::High,
            Status::Fail,
            format!("integrity {s}: {d}"),
        )
        .remedy("hardenctl integrity status (see docs/integrity.md)"),
    }
}

/// A firewall that filters what comes in: an nftables chain on the input hook that drops
/// by default or has a drop/reject rule. Legacy iptables tables are seen in /proc, their
/// policy is not: `unknown`.
pub fn firewall(nft_ruleset: Option<Result<String, String>>, ip_tables: &str) -> Check {
    let id = "firewall.ruleset";
    let remedy = "apt install nftables; write /etc/nftables.conf (an input chain with policy drop, accepting what the device serves); systemctl enable --now nftables";
    let legacy = "legacy iptables tables are loaded; their policy cannot be read from /proc (iptables -S shows it)";
    let none =
        "no firewall ruleset is loaded: every listening socket is reachable from every network";
    match nft_ruleset {
        Some(Ok(r)) => {
            let input = r.contains("hook input");
            let drops = r.contains("policy drop")
                || r.lines().any(|l| {
                    let l = l.trim();
                    !l.starts_with('#')
                        && (l.ends_with(" drop")
                            || l.ends_with(" reject")
                            || l.contains(" reject with "))
                });
            if input && drops {
                let tables = r
                    .lines()
                    .filter(|l| l.trim_start().starts_with("table "))
                    .count();
                Check::new(
                    id,
                    Severity::Medium,
                    Status::Pass,
                    format!("nftables: an input chain that drops ({tables} table(s))"),
                )
            } else if !ip_tables.trim().is_empty() {
                Check::new(id, Severity::Medium, Status::Unknown, legacy)
            } else if r.trim().is_empty() {
                Check::new(id, Severity::Medium, Status::Fail, none).remedy(remedy)
            } else {
                Check::new(
                    id,
                    Severity::Medium,
                    Status::Fail,
                    "an nftables ruleset is loaded, but no input chain drops anything",
                )
                .remedy(remedy)
            }
        }
        Some(Err(e)) => Check::new(
            id,
            Severity::Medium,
            Status::Unknown,
            format!("nft list ruleset: {e}"),
        ),
        None if !ip_tables.trim().is_empty() => {
            Check::new(id, Severity::Medium, Status::Unknown, legacy)
        }
        None => Check::new(id, Severity::Medium, Status::Fail, none).remedy(remedy),
    }
}

/// Services listening on every interface: (socket, who holds it).
pub fn listening_all(listeners: &[(String, String)]) -> Check {
    let items: Vec<String> = listeners
        .iter()
        .map(|(s, who)| format!("{s} ({who})"))
        .collect();
    Check::new(
        "net.listen-all",
        Severity::Medium,
        if items.is_empty() { Status::Pass } else { Status::Fail },
        if items.is_empty() {
            "no service listens on every interface".to_string()
        } else {
            format!("{} socket(s) listen on every interface", items.len())
        },
    )
    .remedy("bind each service to the interface it serves (its configuration: listen/bind address), or filter the port in the firewall")
    .items(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_device_comes_from_mountinfo() {
        let mi = "22 1 252:0 / / ro,relatime shared:1 - ext4 /dev/mapper/root ro\n23 22 0:5 / /dev rw - devtmpfs udev rw\n";
        assert_eq!(root_device(mi).as_deref(), Some("252:0"));
        let c = verity_root(Path::new("/nonexistent"), mi);
        assert_eq!(c.status, Status::Fail);
        assert!(c.finding.contains("252:0"));
    }

    #[test]
    fn a_firewall_must_drop_on_input() {
        assert_eq!(firewall(Some(Ok(String::new())), "").status, Status::Fail);
        // a table that accepts everything is no firewall
        let open = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n";
        assert_eq!(firewall(Some(Ok(open.into())), "").status, Status::Fail);
        let closed = open.replace("policy accept", "policy drop");
        assert_eq!(firewall(Some(Ok(closed)), "").status, Status::Pass);
        assert_eq!(firewall(None, "filter\n").status, Status::Unknown);
        assert_eq!(
            firewall(Some(Err("Operation not permitted".into())), "").status,
            Status::Unknown
        );
    }
}
