//! The daemon: configuration, one service per pillar, the bus layer and the main loop.
//!
//! * `config/` — hardend.toml, one module per section;
//! * `services/` — confinement: assignments, verification, confine/release, drop-ins;
//! * `verity.rs`, `identity.rs`, `integrity/`, `vulns.rs` — the other pillars, each owning
//!   its state;
//! * `status.rs` — the overall state from the five;
//! * `bus/` — the `org.hardend1` interfaces (the only `#[interface]` code) and signals;
//! * `run.rs` — startup order and the main loop;
//! * `workers.rs` — bounded blocking workers: no file I/O on the event loop;
//! * `ratelimit.rs` — the token bucket for unprivileged TPM requests;
//! * `metrics.rs` — `hardend.prom` for node_exporter's textfile collector.
//!
//! Nothing outside `src/daemon/` and `src/bin/hardend.rs` imports this module.

pub mod bus;
pub mod identity;
pub mod integrity;
pub mod metrics;
pub mod ratelimit;
pub mod run;
pub mod services;
pub mod status;
pub mod verity;
pub mod vulns;
pub mod workers;

use std::sync::{Mutex, MutexGuard};

use self::identity::IdentityService;
use self::integrity::IntegrityService;
use self::metrics::MetricsService;
use self::services::ServiceManager;
use self::verity::VerityService;
use self::vulns::VulnsService;
use crate::config::{Config, ConfigError};

/// Locks `m`; a panic elsewhere while it was held does not make the state unreadable (every
/// writer leaves it consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The daemon's five pillars, each a service owning its own state; this only holds the
/// handles and the configuration file they came from.
pub struct Pillars {
    /// The configuration file (`None`: built-in defaults).
    pub config_source: Option<std::path::PathBuf>,
    pub services: ServiceManager,
    pub verity: VerityService,
    pub identity: IdentityService,
    pub integrity: IntegrityService,
    pub vulns: VulnsService,
    pub metrics: MetricsService,
    /// The kernel's Landlock ABI (0: none), read once at startup.
    pub kernel_abi: u8,
}

impl Pillars {
    /// Re-reads the configuration file and hands each pillar its section. A bad file keeps
    /// the old configuration everywhere (nothing is half-applied).
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = self.config_source.clone() else {
            return Ok(());
        };
        // file I/O: off the event loop
        let p = path.clone();
        let new = tokio::task::spawn_blocking(move || Config::load(&p))
            .await
            .map_err(|e| ConfigError::Read {
                path,
                source: std::io::Error::other(e.to_string()),
            })??;
        self.services.configure(new.daemon, new.services);
        self.verity.configure(new.verity);
        self.identity.configure(new.identity);
        self.vulns.configure(new.vulns);
        self.metrics.configure(new.metrics);
        self.integrity
            .configure(&new.integrity, self.identity.tpm())
            .await;
        Ok(())
    }
}
