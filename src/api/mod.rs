//! The wire contract of `org.hardend1`, defined once for the daemon and every client: bus
//! names and paths, the structures sent, the state enums with their `is_bad()`, the client
//! proxies, the error names and the journal MESSAGE_IDs. Documented in docs/dbus.md.
//!
//! It depends on nothing of ours but the domain types it carries; `cli` and `daemon` depend
//! on it, it never on them.

pub mod errors;
pub mod message_ids;
pub mod proxy;
pub mod state;
pub mod types;

pub use errors::CallError;
pub use proxy::{IdentityProxy, IntegrityProxy, ManagerProxy, VerityProxy, VulnsProxy};
pub use state::{
    DaemonState, IdentityState, IntegrityState, Layer, Proof, ServiceState, VerityState, VulnsState,
};
pub use types::{
    EventInfo, IdentityInfo, IntegrityInfo, ProfileInfo, QuoteInfo, ServiceInfo, StatusInfo,
    VerityInfo, ViolationInfo, VulnFinding, VulnsInfo,
};

/// Well-known bus name.
pub const BUS_NAME: &str = "org.hardend1";
/// The one object.
pub const OBJECT_PATH: &str = "/org/hardend1";
/// Interface names.
pub const MANAGER_INTERFACE: &str = "org.hardend1.Manager";
pub const VERITY_INTERFACE: &str = "org.hardend1.Verity";
pub const IDENTITY_INTERFACE: &str = "org.hardend1.Identity";
pub const INTEGRITY_INTERFACE: &str = "org.hardend1.Integrity";
pub const VULNS_INTERFACE: &str = "org.hardend1.Vulns";

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
