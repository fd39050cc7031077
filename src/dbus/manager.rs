//! `org.hardend1.Manager`: status, confined services, confine/release, reload, profiles.
//! Read-only methods and properties are open to every local user; Confine, Release and
//! Reload check that the sender is root (and the bus policy says the same).

use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface};

use super::auth::require_root;
use super::types::{ProfileInfo, ServiceInfo, StatusInfo};
use crate::daemon::events;
use crate::daemon::state::Daemon;

/// The Manager object.
pub struct Manager {
    pub daemon: Arc<Daemon>,
}

#[interface(
    name = "org.hardend1.Manager",
    proxy(
        default_service = "org.hardend1",
        default_path = "/org/hardend1",
        gen_blocking = false
    )
)]
impl Manager {
    /// hardend's version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// `ok` or `degraded`.
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.daemon.status().state
    }

    /// Overall state in one structure.
    async fn status(&self) -> (StatusInfo,) {
        (self.daemon.status(),)
    }

    /// Every assigned unit with its verified state.
    async fn list_services(&self) -> Vec<ServiceInfo> {
        self.daemon.services()
    }

    /// One unit (verified again now).
    async fn get_service(
        &self,
        unit: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(ServiceInfo,)> {
        if let Some(change) = self.daemon.verify_unit(unit).await {
            events::enforcement_changed(&emitter, &change).await;
        }
        self.daemon.service(unit).map(|s| (s,)).ok_or_else(|| {
            fdo::Error::InvalidArgs(format!("{unit} has no hardend profile assigned"))
        })
    }

    /// Confines `unit` by `profile`: writes the drop-in (under /run with `runtime`),
    /// reloads systemd, restarts the unit unless `no_restart`, verifies. Root only.
    #[allow(clippy::too_many_arguments)] // the D-Bus signature plus zbus's injected context
    async fn confine(
        &self,
        unit: &str,
        profile: &str,
        runtime: bool,
        no_restart: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(ServiceInfo,)> {
        require_root(conn, &hdr, "Confine").await?;
        tracing::info!(unit, profile, runtime, no_restart, "confine requested");
        let before = self
            .daemon
            .service(unit)
            .map(|s| s.state)
            .unwrap_or_default();
        let info = self
            .daemon
            .confine(unit, profile, runtime, !no_restart)
            .await?;
        if before != info.state {
            let change = crate::daemon::state::Change {
                old: before,
                info: info.clone(),
            };
            events::enforcement_changed(&emitter, &change).await;
        }
        Ok((info,))
    }

    /// Removes hardend's drop-in for `unit`, reloads systemd, restarts the unit unless
    /// `no_restart`. Root only.
    async fn release(
        &self,
        unit: &str,
        no_restart: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<()> {
        require_root(conn, &hdr, "Release").await?;
        tracing::info!(unit, no_restart, "release requested");
        let before = self.daemon.service(unit);
        self.daemon.release(unit, !no_restart).await?;
        if let Some(b) = before {
            let change = crate::daemon::state::Change {
                old: b.state.clone(),
                info: ServiceInfo {
                    state: "released".into(),
                    detail: "hardend's drop-in was removed".into(),
                    ..b
                },
            };
            events::enforcement_changed(&emitter, &change).await;
        }
        Ok(())
    }

    /// Re-reads the configuration and profiles and re-verifies every unit. Root only.
    async fn reload(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<()> {
        require_root(conn, &hdr, "Reload").await?;
        self.daemon.reload().await?;
        for e in self.daemon.apply_config_services().await {
            tracing::warn!("{e}");
        }
        for change in self.daemon.verify_all().await {
            events::enforcement_changed(&emitter, &change).await;
        }
        Ok(())
    }

    /// The profiles on the daemon's profile path, with validation errors.
    async fn list_profiles(&self) -> Vec<ProfileInfo> {
        self.daemon.profiles()
    }

    /// Validates a profile by name or path: (valid, error, notes).
    async fn check_profile(&self, name_or_path: &str) -> (bool, String, Vec<String>) {
        self.daemon.check_profile(name_or_path)
    }

    /// A unit's enforcement state changed (also logged with MESSAGE_ID
    /// `events::MSG_ENFORCEMENT_CHANGED`). `new_state` is `released` when the unit lost
    /// its assignment.
    #[zbus(signal)]
    pub async fn service_enforcement_changed(
        emitter: &SignalEmitter<'_>,
        unit: &str,
        profile: &str,
        old_state: &str,
        new_state: &str,
        detail: &str,
    ) -> zbus::Result<()>;
}
