//! The verified-root pillar: the runtime dm-verity check of the root file system.

use std::sync::Mutex;

use crate::api::{VerityInfo, VerityState};
use crate::daemon::config::VerityConfig;
use crate::daemon::lock;

struct State {
    cfg: VerityConfig,
    last: VerityInfo,
}

/// The daemon's view of the root file system's dm-verity state.
pub struct VerityService {
    state: Mutex<State>,
}

impl VerityService {
    pub fn new(cfg: VerityConfig) -> Self {
        VerityService {
            state: Mutex::new(State {
                cfg,
                last: VerityInfo::default(),
            }),
        }
    }

    pub fn configure(&self, cfg: VerityConfig) {
        lock(&self.state).cfg = cfg;
    }

    /// The last check.
    pub fn info(&self) -> VerityInfo {
        lock(&self.state).last.clone()
    }

    /// Checks again; returns the check when it just became `corrupted` (for the signal).
    pub fn refresh(&self) -> Option<VerityInfo> {
        let cfg = lock(&self.state).cfg.clone();
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let c: VerityInfo =
            crate::verity::runtime::check(&cfg.mountpoint, &cmdline, cfg.root_hash.as_deref())
                .into();
        let mut st = lock(&self.state);
        let newly_corrupted =
            c.state == VerityState::Corrupted && st.last.state != VerityState::Corrupted;
        st.last = c.clone();
        newly_corrupted.then_some(c)
    }
}
