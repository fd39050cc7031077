//! `hardenctl audit`: how exposed each service is, and how well the device is kept.
//!
//! * [`exposure`] — systemd's own exposure score, recomputed exactly (policy as data);
//! * [`layers`] — what hardend's confinement adds, proven by the kernel, as credits on the
//!   same table (the combined score);
//! * [`sockets`] — listening sockets by process, from `/proc/net` and the unit's cgroup;
//! * [`device`] — device hygiene checks (SSH, accounts, file modes, setuid inventory,
//!   sysctls, boot and platform state);
//! * [`syscalls`] — whether a syscall name exists here, asked of libseccomp as systemd asks.

pub mod device;
pub mod exposure;
pub mod layers;
pub mod sockets;
pub mod syscalls;

use exposure::{Exposure, Policy, SecurityInfo, assess};
use layers::{Credit, Evidence};

/// One unit scored: systemd's exposure, the combined one, and what was credited.
pub struct Scored {
    pub systemd: Exposure,
    pub combined: Exposure,
    pub credits: Vec<Credit>,
}

/// Scores `info`; with a profile, its layers are credited on `evidence` (what is proven
/// about the running process, or a projection).
pub fn score(
    policy: &Policy,
    info: &SecurityInfo,
    confinement: Option<(&crate::profile::Profile, &Evidence)>,
    exists: &dyn Fn(&str) -> bool,
) -> Scored {
    let systemd = assess(policy, info, exists);
    let Some((profile, evidence)) = confinement else {
        return Scored {
            combined: systemd.clone(),
            systemd,
            credits: Vec::new(),
        };
    };
    let (effective, applied) = layers::apply(info, profile, evidence);
    let combined = assess(policy, &effective, exists);
    let credits = layers::credits(&systemd, &combined, &applied);
    Scored {
        systemd,
        combined,
        credits,
    }
}
