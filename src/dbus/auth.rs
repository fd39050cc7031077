//! Caller authorization: read-only calls are open to everyone; state changes need uid 0.
//! The uid comes from the bus daemon's view of the *sender* of the message
//! (GetConnectionCredentials), never from the daemon's own process.

use zbus::Connection;
use zbus::fdo::{self, DBusProxy};
use zbus::message::Header;
use zbus::names::BusName;

/// The Unix uid of the connection that sent `hdr`.
pub async fn caller_uid(conn: &Connection, hdr: &Header<'_>) -> fdo::Result<u32> {
    let sender = hdr
        .sender()
        .ok_or_else(|| fdo::Error::AccessDenied("message has no sender".into()))?;
    let dbus = DBusProxy::new(conn).await?;
    let creds = dbus
        .get_connection_credentials(BusName::Unique(sender.to_owned()))
        .await?;
    creds
        .unix_user_id()
        .ok_or_else(|| fdo::Error::AccessDenied("the bus did not report the caller's uid".into()))
}

/// Fails with `org.freedesktop.DBus.Error.AccessDenied` unless the caller is root.
pub async fn require_root(conn: &Connection, hdr: &Header<'_>, what: &str) -> fdo::Result<()> {
    let uid = caller_uid(conn, hdr).await?;
    if uid == 0 {
        Ok(())
    } else {
        Err(fdo::Error::AccessDenied(format!(
            "{what} requires root (caller uid {uid})"
        )))
    }
}
