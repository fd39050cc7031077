//! The verified-root pillar: the runtime dm-verity check of the root file system.

use std::sync::Mutex;
use std::time::Duration;

use crate::api::{VerityInfo, VerityState};
use crate::config::VerityConfig;
use crate::daemon::lock;
use crate::daemon::workers::Workers;

struct State {
    cfg: VerityConfig,
    last: VerityInfo,
}

/// The daemon's view of the root file system's dm-verity state.
pub struct VerityService {
    state: Mutex<State>,
    /// The check reads /proc and asks device-mapper: off the event loop, one at a time.
    worker: Workers,
}

impl VerityService {
    pub fn new(cfg: VerityConfig) -> Self {
        VerityService {
            state: Mutex::new(State {
                cfg,
                last: VerityInfo::default(),
            }),
            worker: Workers::new(
                "verity check",
                1,
                Duration::from_secs(10),
                Duration::from_secs(10),
            ),
        }
    }

    pub fn configure(&self, cfg: VerityConfig) {
        lock(&self.state).cfg = cfg;
    }

    /// The last check.
    pub fn info(&self) -> VerityInfo {
        lock(&self.state).last.clone()
    }

    /// Checks again; returns the check when it just became bad — corrupted, the wrong root
    /// hash, unverified or misconfigured — for the signal and the journal.
    pub async fn refresh(&self) -> Option<VerityInfo> {
        let cfg = lock(&self.state).cfg.clone();
        let checked = self
            .worker
            .run("the dm-verity check", move || {
                let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
                VerityInfo::from(crate::verity::runtime::check(
                    &cfg.mountpoint,
                    &cmdline,
                    cfg.root_hash.as_deref(),
                ))
            })
            .await;
        let c = match checked {
            Ok(c) => c,
            Err(e) => VerityInfo {
                state: VerityState::Unknown,
                detail: e.to_string(),
                ..lock(&self.state).last.clone()
            },
        };
        let mut st = lock(&self.state);
        let newly_bad = c.state.is_bad() && st.last.state != c.state;
        st.last = c.clone();
        newly_bad.then_some(c)
    }
}
