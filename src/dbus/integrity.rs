//! `org.hardend1.Integrity`: the integrity monitor. State, violations and the event log are
//! readable by everyone; Init, Scan and Accept change or cost, so they are root only.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::Type;
use zbus::{Connection, fdo, interface, message::Header};

use super::auth;
use crate::daemon::integrity::IntegrityInfo;
use crate::daemon::state::Daemon;
use crate::integrity::IntegrityError;

pub struct Integrity {
    pub daemon: Arc<Daemon>,
}

/// One violation: `(sssssst)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ViolationInfo {
    pub path: String,
    /// modified | added | removed | metadata | type-changed
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub set: String,
    pub severity: String,
    pub time: u64,
}

/// One logged event: `(tsssssss)`.
pub use crate::integrity::log::Event as EventInfo;

fn failed(e: IntegrityError) -> fdo::Error {
    match e {
        IntegrityError::NoBaseline(_) | IntegrityError::Invalid(_) => {
            fdo::Error::InvalidArgs(e.to_string())
        }
        e => fdo::Error::Failed(e.to_string()),
    }
}

#[interface(
    name = "org.hardend1.Integrity",
    proxy(
        default_service = "org.hardend1",
        default_path = "/org/hardend1",
        gen_blocking = false
    )
)]
impl Integrity {
    /// ok | violations | no-baseline | tampered | error | disabled | starting
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.daemon.integrity().info().state
    }

    /// Paths that differ from the baseline now.
    #[zbus(property(emits_changed_signal = "false"))]
    fn violations(&self) -> u32 {
        self.daemon.integrity().info().violations
    }

    /// Everything about the monitor in one structure (also scan progress).
    fn status(&self) -> (IntegrityInfo,) {
        (self.daemon.integrity().info(),)
    }

    fn list_violations(&self) -> Vec<ViolationInfo> {
        self.daemon
            .integrity()
            .violations()
            .into_iter()
            .map(|v| ViolationInfo {
                path: v.path,
                kind: v.kind.as_str().into(),
                expected: v.expected,
                actual: v.actual,
                set: v.set,
                severity: v.severity.as_str().into(),
                time: v.time,
            })
            .collect()
    }

    /// The last `count` events of the persistent log, oldest first.
    fn events(&self, count: u32) -> Vec<EventInfo> {
        self.daemon.integrity().events(count as usize)
    }

    /// A new baseline from a full scan (the old one is kept as baseline.db.prev).
    async fn init(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(IntegrityInfo,)> {
        auth::require_root(conn, &hdr, "Init").await?;
        self.daemon.integrity().init().await.map_err(failed)?;
        Ok((self.daemon.integrity().info(),))
    }

    /// A full scan now; returns when it is done.
    async fn scan(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(IntegrityInfo,)> {
        auth::require_root(conn, &hdr, "Scan").await?;
        self.daemon.integrity().scan().await.map_err(failed)?;
        Ok((self.daemon.integrity().info(),))
    }

    /// Takes the current state of `paths` into the baseline; returns how many.
    async fn accept(
        &self,
        paths: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u32> {
        auth::require_root(conn, &hdr, "Accept").await?;
        if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
            return Err(fdo::Error::InvalidArgs(
                "give one or more absolute paths".into(),
            ));
        }
        self.daemon
            .integrity()
            .accept(paths.into_iter().map(PathBuf::from).collect())
            .await
            .map_err(failed)
    }

    /// dpkg is about to change files (its pre-invoke hook): violations are still recorded,
    /// but their alerts wait for AcceptFromDpkg (at most an hour), so that what dpkg vouches
    /// for raises none.
    async fn dpkg_hold(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<()> {
        auth::require_root(conn, &hdr, "DpkgHold").await?;
        self.daemon.integrity().dpkg_hold();
        Ok(())
    }

    /// Accepts the violations whose content matches dpkg's md5sums (`admin_dir` "" =
    /// /var/lib/dpkg). Returns the accepted paths and the refused ones with the reason.
    async fn accept_from_dpkg(
        &self,
        admin_dir: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(Vec<String>, Vec<(String, String)>)> {
        auth::require_root(conn, &hdr, "AcceptFromDpkg").await?;
        let admin = (!admin_dir.is_empty()).then(|| PathBuf::from(admin_dir));
        self.daemon
            .integrity()
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
