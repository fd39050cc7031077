//! A connection to the daemon: the bus, the check that `org.hardend1` has an owner, and the
//! five proxies (from `api`), with bus errors turned into `CliError`s.

use super::CliError;
use crate::api::{
    BUS_NAME, CallError, IdentityProxy, IntegrityProxy, ManagerProxy, VerityProxy, VulnsProxy,
    connect,
};

/// A connected client. Calls block on a private single-threaded runtime.
pub struct Client {
    conn: zbus::Connection,
    rt: tokio::runtime::Runtime,
}

/// A failed call on `bus`, as the user should read it.
pub(crate) fn bus_error(bus: &str, e: impl Into<CallError>) -> CliError {
    match e.into() {
        CallError::AccessDenied(m) => CliError::AccessDenied(m),
        CallError::NotRunning(_) => CliError::NotRunning(not_running(bus)),
        CallError::InvalidArgs(m) | CallError::NotSupported(m) | CallError::Failed(m) => {
            CliError::Daemon(m)
        }
        CallError::Bus(m) => CliError::Daemon(m),
    }
}

fn not_running(bus: &str) -> String {
    format!("hardend is not running ({BUS_NAME} has no owner on the {bus} bus)")
}

impl Client {
    /// Connects to `bus` ("system" or an address) and checks that hardend is there.
    pub fn connect(bus: &str) -> Result<Client, CliError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Daemon(format!("cannot start the runtime: {e}")))?;
        let conn = rt.block_on(async {
            let conn = connect(bus).await.map_err(|e| {
                CliError::NotRunning(format!("cannot connect to the {bus} bus: {e}"))
            })?;
            let dbus = zbus::fdo::DBusProxy::new(&conn)
                .await
                .map_err(|e| bus_error(bus, e))?;
            let name = zbus::names::BusName::try_from(BUS_NAME)
                .map_err(|e| CliError::Daemon(e.to_string()))?;
            if !dbus
                .name_has_owner(name)
                .await
                .map_err(|e| bus_error(bus, e))?
            {
                return Err(CliError::NotRunning(not_running(bus)));
            }
            Ok(conn)
        })?;
        Ok(Client { conn, rt })
    }

    /// The bus connection.
    pub fn connection(&self) -> &zbus::Connection {
        &self.conn
    }

    /// Runs a call on the client's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn manager(&self) -> Result<ManagerProxy<'static>, CliError> {
        self.block_on(ManagerProxy::new(&self.conn))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    pub fn verity(&self) -> Result<VerityProxy<'static>, CliError> {
        self.block_on(VerityProxy::new(&self.conn))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    pub fn identity(&self) -> Result<IdentityProxy<'static>, CliError> {
        self.block_on(IdentityProxy::new(&self.conn))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    pub fn integrity(&self) -> Result<IntegrityProxy<'static>, CliError> {
        self.block_on(IntegrityProxy::new(&self.conn))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    pub fn vulns(&self) -> Result<VulnsProxy<'static>, CliError> {
        self.block_on(VulnsProxy::new(&self.conn))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }
}
