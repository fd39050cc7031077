//! The org.hardend1 bus API, defined once and used by both the daemon (the `#[interface]`
//! implementations) and hardenctl (the generated proxies). Documented in docs/dbus.md.

pub mod auth;
pub mod identity;
pub mod integrity;
pub mod manager;
pub mod types;
pub mod verity;

/// Well-known bus name.
pub const BUS_NAME: &str = "org.hardend1";
/// The one object.
pub const OBJECT_PATH: &str = "/org/hardend1";

/// Connects to `bus`: `"system"` or a D-Bus address (`unix:path=...`).
pub async fn connect(bus: &str) -> zbus::Result<zbus::Connection> {
    builder(bus)?.build().await
}

/// A connection builder for `bus` (see [`connect`]).
pub fn builder(bus: &str) -> zbus::Result<zbus::connection::Builder<'static>> {
    if bus == "system" {
        zbus::connection::Builder::system()
    } else {
        zbus::connection::Builder::address(bus)
    }
}
