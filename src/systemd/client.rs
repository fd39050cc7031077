//! A small client for org.freedesktop.systemd1: unit facts for drop-in rendering, MainPID
//! and state for verification, Reload and RestartUnit (waiting for the job to finish).

use std::time::Duration;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;
use zbus::{Connection, proxy};

use super::dropin::{ExecCommand, UnitFacts};

pub const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";

/// Errors talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("systemd is not on this bus (org.freedesktop.systemd1 has no owner)")]
    Unavailable,
    #[error("unit {unit} is not loaded (LoadState={state})")]
    NotLoaded { unit: String, state: String },
    #[error("systemd: {0}")]
    Bus(#[from] zbus::Error),
    #[error("{unit}: job {job} ended with {result}")]
    JobFailed {
        unit: String,
        job: String,
        result: String,
    },
    #[error("{unit}: no answer from systemd's job within {0:?}", .timeout)]
    Timeout { unit: String, timeout: Duration },
}

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait SystemdManager {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn subscribe(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait SystemdUnit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
}

/// `ExecStartEx`: path, argv, flags, four timestamps, pid, code, status.
type ExecStartEx = Vec<(
    String,
    Vec<String>,
    Vec<String>,
    u64,
    u64,
    u64,
    u64,
    u32,
    i32,
    i32,
)>;

#[proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
trait SystemdService {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "ExecStartEx")]
    fn exec_start_ex(&self) -> zbus::Result<ExecStartEx>;
    #[zbus(property, name = "Type")]
    fn service_type(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn system_call_filter(&self) -> zbus::Result<(bool, Vec<String>)>;
    #[zbus(property)]
    fn protect_system(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn dynamic_user(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn read_only_paths(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn inaccessible_paths(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "IgnoreSIGPIPE")]
    fn ignore_sigpipe(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
}

/// How a service's start went, after its start job: a Type=simple unit's job is done at
/// fork, so a wrapper or program that fails a moment later shows only here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartOutcome {
    pub active_state: String,
    pub main_pid: u32,
    /// `success`, or why the service last failed (`exit-code`, `signal`, `core-dump`, ...).
    pub result: String,
    /// Automatic restarts since the last start (Restart=on-failure hides a failure).
    pub n_restarts: u32,
    pub exec_main_status: i32,
}

impl StartOutcome {
    /// The service failed since its (re)start: failed now, a failure result, or restarted
    /// by systemd after a failure.
    pub fn failed(&self) -> bool {
        self.active_state == "failed" || self.result != "success" || self.n_restarts > 0
    }

    /// In words, for an error message.
    pub fn describe(&self) -> String {
        format!(
            "{} (result {}, exit status {}, {} automatic restarts)",
            self.active_state, self.result, self.exec_main_status, self.n_restarts
        )
    }
}

/// The live state of a service unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitStatus {
    pub load_state: String,
    pub active_state: String,
    pub main_pid: u32,
}

/// systemd on one bus connection.
#[derive(Clone, Debug)]
pub struct Systemd {
    conn: Connection,
}

impl Systemd {
    /// Connects if systemd owns its name on `conn`'s bus.
    pub async fn on(conn: &Connection) -> Result<Systemd, SystemdError> {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let name = zbus::names::BusName::try_from(SYSTEMD_NAME).map_err(zbus::Error::from)?;
        if !dbus.name_has_owner(name).await.map_err(zbus::Error::from)? {
            return Err(SystemdError::Unavailable);
        }
        Ok(Systemd { conn: conn.clone() })
    }

    async fn manager(&self) -> Result<SystemdManagerProxy<'static>, SystemdError> {
        Ok(SystemdManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?)
    }

    async fn unit_path(&self, unit: &str) -> Result<OwnedObjectPath, SystemdError> {
        Ok(self.manager().await?.load_unit(unit).await?)
    }

    async fn unit_proxy(
        &self,
        path: &OwnedObjectPath,
    ) -> Result<SystemdUnitProxy<'static>, SystemdError> {
        Ok(SystemdUnitProxy::builder(&self.conn)
            .path(path.clone())?
            .cache_properties(CacheProperties::No)
            .build()
            .await?)
    }

    async fn service_proxy(
        &self,
        path: &OwnedObjectPath,
    ) -> Result<SystemdServiceProxy<'static>, SystemdError> {
        Ok(SystemdServiceProxy::builder(&self.conn)
            .path(path.clone())?
            .cache_properties(CacheProperties::No)
            .build()
            .await?)
    }

    /// systemd's version string ("252.39-1~deb12u2").
    pub async fn version(&self) -> Result<String, SystemdError> {
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD_NAME),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Manager", "Version"),
            )
            .await?;
        let v: zbus::zvariant::OwnedValue = reply.body().deserialize()?;
        String::try_from(v).map_err(|e| SystemdError::Bus(zbus::Error::from(e)))
    }

    /// Every property of `unit` on every interface (what `systemd-analyze security` reads).
    pub async fn unit_properties(
        &self,
        unit: &str,
    ) -> Result<std::collections::HashMap<String, zbus::zvariant::OwnedValue>, SystemdError> {
        let path = self.unit_path(unit).await?;
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD_NAME),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &("",),
            )
            .await?;
        Ok(reply.body().deserialize()?)
    }

    /// Facts about `unit` for rendering its drop-in, and whether it ignores SIGPIPE.
    pub async fn unit_facts(&self, unit: &str) -> Result<(UnitFacts, bool), SystemdError> {
        let path = self.unit_path(unit).await?;
        let load_state = self.unit_proxy(&path).await?.load_state().await?;
        if load_state != "loaded" {
            return Err(SystemdError::NotLoaded {
                unit: unit.to_string(),
                state: load_state,
            });
        }
        let svc = self.service_proxy(&path).await?;
        let exec_start = svc
            .exec_start_ex()
            .await?
            .into_iter()
            .map(|(path, argv, flags, ..)| ExecCommand { path, argv, flags })
            .collect();
        let filter = svc.system_call_filter().await?;
        let restricts_run = svc.protect_system().await? == "strict"
            || svc.dynamic_user().await?
            || !svc.read_only_paths().await?.is_empty()
            || !svc.inaccessible_paths().await?.is_empty();
        let facts = UnitFacts {
            unit: unit.to_string(),
            service_type: svc.service_type().await?,
            exec_start,
            syscall_filter: (!filter.1.is_empty() || filter.0).then_some(filter),
            restricts_run,
        };
        Ok((facts, svc.ignore_sigpipe().await?))
    }

    /// LoadState, ActiveState and MainPID of `unit`.
    pub async fn status(&self, unit: &str) -> Result<UnitStatus, SystemdError> {
        let path = self.unit_path(unit).await?;
        let u = self.unit_proxy(&path).await?;
        let load_state = u.load_state().await?;
        let active_state = u.active_state().await?;
        let main_pid = if load_state == "loaded" {
            self.service_proxy(&path)
                .await?
                .main_pid()
                .await
                .unwrap_or(0)
        } else {
            0
        };
        Ok(UnitStatus {
            load_state,
            active_state,
            main_pid,
        })
    }

    /// How `unit`'s last start went (see [`StartOutcome`]).
    pub async fn start_outcome(&self, unit: &str) -> Result<StartOutcome, SystemdError> {
        let path = self.unit_path(unit).await?;
        let u = self.unit_proxy(&path).await?;
        let s = self.service_proxy(&path).await?;
        Ok(StartOutcome {
            active_state: u.active_state().await?,
            main_pid: s.main_pid().await.unwrap_or(0),
            result: s.result().await?,
            n_restarts: s.n_restarts().await.unwrap_or(0),
            exec_main_status: s.exec_main_status().await.unwrap_or(0),
        })
    }

    /// `systemctl daemon-reload`.
    pub async fn reload(&self) -> Result<(), SystemdError> {
        Ok(self.manager().await?.reload().await?)
    }

    /// `systemctl restart UNIT`, waiting until systemd's job for it has finished.
    pub async fn restart(&self, unit: &str, timeout: Duration) -> Result<(), SystemdError> {
        let mgr = self.manager().await?;
        subscribe(&mgr).await?;
        let mut removed = mgr.receive_job_removed().await?;
        let job = mgr.restart_unit(unit, "replace").await?;
        let wait = async {
            while let Some(sig) = removed.next().await {
                let args = sig.args()?;
                if args.job == job {
                    return if args.result == "done" {
                        Ok(())
                    } else {
                        Err(SystemdError::JobFailed {
                            unit: unit.to_string(),
                            job: job.to_string(),
                            result: args.result.clone(),
                        })
                    };
                }
            }
            Err(SystemdError::Unavailable)
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| SystemdError::Timeout {
                unit: unit.to_string(),
                timeout,
            })?
    }

    /// A stream of (unit, result) for every finished systemd job, to re-verify units that
    /// were (re)started by anyone.
    pub async fn job_events(
        &self,
    ) -> Result<impl futures_util::Stream<Item = String> + use<>, SystemdError> {
        let mgr = self.manager().await?;
        subscribe(&mgr).await?;
        let stream = mgr.receive_job_removed().await?;
        Ok(stream.filter_map(|sig| async move { sig.args().ok().map(|a| a.unit.clone()) }))
    }
}

/// Asks systemd for job signals. Subscriptions are per bus connection: a second Subscribe
/// on the same connection (the daemon's event stream is already subscribed when Confine
/// restarts a unit) answers `AlreadySubscribed`, which means what we wanted.
async fn subscribe(mgr: &SystemdManagerProxy<'_>) -> zbus::Result<()> {
    match mgr.subscribe().await {
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" =>
        {
            Ok(())
        }
        r => r,
    }
}
