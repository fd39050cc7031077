//! `org.hardend1.Manager`: status, confined services, confine/release, reload, profiles.
//! Read-only methods and properties are open to every local user; Confine, Release and
//! Reload check that the sender is root (and the bus policy says the same).

use std::sync::Arc;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface};

use super::auth::{caller_kind, require_root};
use super::events;
use crate::api::types::ProfileCheck;
use crate::api::{ProfileInfo, ServiceInfo, ServiceState, StatusInfo};
use crate::daemon::Pillars;
use crate::daemon::services::{Change, ServiceError};

/// The Manager object.
pub struct Manager {
    pub pillars: Arc<Pillars>,
}

pub(super) fn service_error(e: ServiceError) -> fdo::Error {
    match e {
        ServiceError::InvalidArgs(m) => fdo::Error::InvalidArgs(m),
        ServiceError::NotSupported(m) => fdo::Error::NotSupported(m),
        ServiceError::Failed(m) => fdo::Error::Failed(m),
    }
}

#[interface(name = "org.hardend1.Manager")]
impl Manager {
    /// hardend's version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// `ok` or `degraded`.
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.pillars.status().state.as_str().into()
    }

    /// Overall state in one structure.
    async fn status(&self) -> (StatusInfo,) {
        (self.pillars.status(),)
    }

    /// Every assigned unit with its verified state.
    async fn list_services(&self) -> Vec<ServiceInfo> {
        self.pillars.services.services()
    }

    /// One unit (verified again now).
    async fn get_service(
        &self,
        unit: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(ServiceInfo,)> {
        let services = &self.pillars.services;
        if let Some(change) = services.verify_unit(unit).await {
            events::enforcement_changed(&emitter, &change).await;
        }
        services.service(unit).map(|s| (s,)).ok_or_else(|| {
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
        require_root(conn, &hdr, &self.pillars.services, "Confine").await?;
        tracing::info!(unit, profile, runtime, no_restart, "confine requested");
        let services = &self.pillars.services;
        let before = services.service(unit).map(|s| s.state);
        let info = services
            .confine(unit, profile, runtime, !no_restart)
            .await
            .map_err(service_error)?;
        if before != Some(info.state) {
            let change = Change {
                old: before.map(|s| s.as_str().to_string()).unwrap_or_default(),
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
        require_root(conn, &hdr, &self.pillars.services, "Release").await?;
        tracing::info!(unit, no_restart, "release requested");
        let services = &self.pillars.services;
        let before = services.service(unit);
        services
            .release(unit, !no_restart)
            .await
            .map_err(service_error)?;
        if let Some(b) = before {
            let change = Change {
                old: b.state.as_str().into(),
                info: ServiceInfo {
                    state: ServiceState::Released,
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
        require_root(conn, &hdr, &self.pillars.services, "Reload").await?;
        self.pillars
            .reload()
            .await
            .map_err(|e| fdo::Error::InvalidArgs(e.to_string()))?;
        events::after_reload(&self.pillars, &emitter).await;
        Ok(())
    }

    /// The profiles on the daemon's profile path, with validation errors (for a caller who
    /// is not root: only what every user may read).
    async fn list_profiles(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Vec<ProfileInfo> {
        let services = &self.pillars.services;
        services
            .profiles(caller_kind(conn, &hdr, services).await)
            .await
    }

    /// Validates a profile: (valid, error, notes). Root may give a path; anyone else a name
    /// on the profile path.
    async fn check_profile(
        &self,
        name_or_path: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> ProfileCheck {
        let services = &self.pillars.services;
        let caller = caller_kind(conn, &hdr, services).await;
        services.check_profile(name_or_path, caller).await
    }

    /// Validates a profile given as text (`label` names it in the errors); its includes are
    /// names on the profile path (root: also paths). Open to everyone.
    async fn check_profile_document(
        &self,
        document: &str,
        label: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> ProfileCheck {
        let services = &self.pillars.services;
        let caller = caller_kind(conn, &hdr, services).await;
        services.check_document(document, label, caller).await
    }

    /// A unit's enforcement state changed (also logged with MESSAGE_ID
    /// `ENFORCEMENT_CHANGED`). `new_state` is `released` when the unit lost its assignment.
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
