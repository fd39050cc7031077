//! The overall state: the worst of the five pillars, with a one-line reason for each bad one.

use super::Pillars;
use crate::api::{DaemonState, ServiceInfo, StatusInfo};

impl Pillars {
    pub fn status(&self) -> StatusInfo {
        let cfg = self.services.config();
        let services = self.services.services();
        let bad: Vec<&ServiceInfo> = services.iter().filter(|s| s.state.is_bad()).collect();
        let mut detail = Vec::new();
        if !bad.is_empty() {
            detail.push(format!(
                "not enforced: {}",
                bad.iter()
                    .map(|s| format!("{} ({})", s.unit, s.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let v = self.verity.info();
        if v.state.is_bad() {
            detail.push(format!("dm-verity {}: {}", v.state, v.detail));
        }
        let ig = self.integrity.info();
        if ig.state.is_bad() {
            detail.push(format!("integrity {}: {}", ig.state, ig.detail));
        }
        let id = self.identity.info();
        if id.state.is_bad() {
            detail.push(format!("identity {}: {}", id.state, id.detail));
        }
        let vu = self.vulns.info();
        if vu.state.is_bad() {
            detail.push(if vu.detail.is_empty() {
                format!(
                    "vulnerabilities: {} CVEs with a fix available",
                    vu.fix_available
                )
            } else {
                format!("vulnerabilities {}: {}", vu.state, vu.detail)
            });
        }
        if self.kernel_abi == 0 {
            detail.push(
                "the kernel has no Landlock: profiles with [landlock] refuse to start".into(),
            );
        }
        StatusInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            state: if detail.is_empty() {
                DaemonState::Ok
            } else {
                DaemonState::Degraded
            },
            detail: detail.join("; "),
            kernel_landlock_abi: u32::from(self.kernel_abi),
            services: services.len() as u32,
            enforced: services.iter().filter(|s| s.state.is_confined()).count() as u32,
            problems: bad.len() as u32,
            verify_interval: cfg.verify_interval as u32,
            systemd: self.services.has_systemd(),
            profile_path: cfg
                .profile_path
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }

    /// One line for the journal and systemd's status.
    pub fn status_line(&self) -> String {
        let s = self.status();
        let mut line = format!(
            "{} services, {} enforced, {} problems",
            s.services, s.enforced, s.problems
        );
        if !s.systemd {
            line.push_str(" (no systemd on the bus)");
        }
        line
    }
}
