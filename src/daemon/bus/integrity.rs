//! `org.hardend1.Integrity`: the integrity monitor. The `State` and `Violations` properties
//! are open to everyone (monitoring needs them); `Status`, `ListViolations` and `Events` name
//! files — also in directories other users may not list — so they are for root, like Init,
//! Scan and Accept, which change state. The bus policy says the same, and keeps the
//! `IntegrityViolation` signal from other users.

use std::path::PathBuf;
use std::sync::Arc;

use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface, message::Header};

use super::auth;
use crate::api::types::DpkgAcceptance;
use crate::api::{EventInfo, IntegrityInfo, ViolationInfo};
use crate::daemon::Pillars;
use crate::integrity::IntegrityError;

pub struct Integrity {
    pub pillars: Arc<Pillars>,
}

fn failed(e: IntegrityError) -> fdo::Error {
    match e {
        IntegrityError::NoBaseline(_) | IntegrityError::Invalid(_) => {
            fdo::Error::InvalidArgs(e.to_string())
        }
        IntegrityError::Disabled { .. } => fdo::Error::NotSupported(e.to_string()),
        e => fdo::Error::Failed(e.to_string()),
    }
}

#[interface(name = "org.hardend1.Integrity")]
impl Integrity {
    /// ok | violations | no-baseline | tampered | error | disabled | starting
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.pillars.integrity.info().state.as_str().into()
    }

    /// Paths that differ from the baseline now.
    #[zbus(property(emits_changed_signal = "false"))]
    fn violations(&self) -> u32 {
        self.pillars.integrity.info().violations
    }

    /// Everything about the monitor in one structure (also scan progress). Root only.
    async fn status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(IntegrityInfo,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Status").await?;
        Ok((self.pillars.integrity.info(),))
    }

    /// Every path that differs from the baseline now. Root only.
    async fn list_violations(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<Vec<ViolationInfo>> {
        auth::require_root(conn, &hdr, &self.pillars.services, "ListViolations").await?;
        Ok(self
            .pillars
            .integrity
            .violations()
            .into_iter()
            .map(ViolationInfo::from)
            .collect())
    }

    /// The last `count` events of the persistent log, oldest first. Root only.
    async fn events(
        &self,
        count: u32,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<Vec<EventInfo>> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Events").await?;
        // reading the log is file I/O: off the event loop
        let p = self.pillars.clone();
        tokio::task::spawn_blocking(move || p.integrity.events(count as usize))
            .await
            .map(|v| v.into_iter().map(EventInfo::from).collect())
            .map_err(|e| fdo::Error::Failed(e.to_string()))
    }

    /// A new baseline from a full scan (the old one is kept as baseline.db.prev).
    async fn init(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(IntegrityInfo,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Init").await?;
        self.pillars.integrity.init().await.map_err(failed)?;
        Ok((self.pillars.integrity.info(),))
    }

    /// A full scan now; returns when it is done.
    async fn scan(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(IntegrityInfo,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Scan").await?;
        self.pillars.integrity.scan().await.map_err(failed)?;
        Ok((self.pillars.integrity.info(),))
    }

    /// Takes the current state of `paths` into the baseline; returns how many.
    async fn accept(
        &self,
        paths: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u32> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Accept").await?;
        if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
            return Err(fdo::Error::InvalidArgs(
                "give one or more absolute paths".into(),
            ));
        }
        self.pillars
            .integrity
            .accept(
                paths
                    .iter()
                    .map(|p| crate::integrity::pathname::from_wire(p))
                    .collect(),
            )
            .await
            .map_err(failed)
    }

    /// dpkg is about to change files (its pre-invoke hook): violations are still recorded,
    /// but their alerts wait for AcceptFromDpkg (at most an hour from the first call; asking
    /// again does not extend it), so that what dpkg vouches for raises none. Takes the
    /// snapshot of dpkg's database (`admin_dir` "" = /var/lib/dpkg) removals are judged by.
    async fn dpkg_hold(
        &self,
        admin_dir: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<()> {
        auth::require_root(conn, &hdr, &self.pillars.services, "DpkgHold").await?;
        let admin = (!admin_dir.is_empty()).then(|| PathBuf::from(admin_dir));
        self.pillars
            .integrity
            .dpkg_hold(admin)
            .await
            .map_err(failed)
    }

    /// Accepts the violations whose content matches dpkg's md5sums (`admin_dir` "" =
    /// /var/lib/dpkg). Returns the accepted paths and the refused ones with the reason.
    async fn accept_from_dpkg(
        &self,
        admin_dir: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<DpkgAcceptance> {
        auth::require_root(conn, &hdr, &self.pillars.services, "AcceptFromDpkg").await?;
        let admin = (!admin_dir.is_empty()).then(|| PathBuf::from(admin_dir));
        self.pillars
            .integrity
            .accept_from_dpkg(admin)
            .await
            .map_err(failed)
    }

    /// A watched path differs from the baseline (also for the baseline itself, set
    /// `hardend-baseline`, when it was tampered with).
    #[zbus(signal)]
    pub async fn integrity_violation(
        emitter: &SignalEmitter<'_>,
        path: &str,
        kind: &str,
        expected: &str,
        actual: &str,
        set: &str,
        severity: &str,
    ) -> zbus::Result<()>;
}
