//! Caller authorization: read-only calls are open to everyone; state changes need uid 0 —
//! and a caller that is not part of a service hardend confines, whatever its uid (a
//! confined root service must not be able to loosen its own confinement or sign as the
//! device). The uid and PID come from the bus daemon's view of the *sender* of the message
//! (GetConnectionCredentials), never from the daemon's own process.

use zbus::Connection;
use zbus::fdo::{self, DBusProxy};
use zbus::message::Header;
use zbus::names::BusName;

use crate::daemon::services::ServiceManager;

/// What the bus daemon knows about the connection that sent `hdr`.
async fn credentials(
    conn: &Connection,
    hdr: &Header<'_>,
) -> fdo::Result<zbus::fdo::ConnectionCredentials> {
    let sender = hdr
        .sender()
        .ok_or_else(|| fdo::Error::AccessDenied("message has no sender".into()))?;
    let dbus = DBusProxy::new(conn).await?;
    dbus.get_connection_credentials(BusName::Unique(sender.to_owned()))
        .await
}

fn uid_of(creds: &zbus::fdo::ConnectionCredentials) -> fdo::Result<u32> {
    creds
        .unix_user_id()
        .ok_or_else(|| fdo::Error::AccessDenied("the bus did not report the caller's uid".into()))
}

/// The Unix uid of the connection that sent `hdr`.
pub async fn caller_uid(conn: &Connection, hdr: &Header<'_>) -> fdo::Result<u32> {
    uid_of(&credentials(conn, hdr).await?)
}

/// Fails unless the caller is outside every service hardend confines.
async fn not_confined(
    creds: &zbus::fdo::ConnectionCredentials,
    services: &ServiceManager,
    what: &str,
) -> fdo::Result<()> {
    let Some(pid) = creds.process_id() else {
        return Err(fdo::Error::AccessDenied(format!(
            "{what}: the bus did not report the caller's process"
        )));
    };
    match services.confinement_of(pid).await {
        Ok(None) => Ok(()),
        Ok(Some(unit)) => Err(fdo::Error::AccessDenied(format!(
            "{what} is refused to processes of a service hardend confines ({unit}), whatever their uid"
        ))),
        Err(e) => Err(fdo::Error::AccessDenied(format!(
            "{what}: cannot tell whether the caller belongs to a confined service ({e}); refused"
        ))),
    }
}

/// Fails with `org.freedesktop.DBus.Error.AccessDenied` unless the caller is root and not
/// part of a confined service.
pub async fn require_root(
    conn: &Connection,
    hdr: &Header<'_>,
    services: &ServiceManager,
    what: &str,
) -> fdo::Result<()> {
    let creds = credentials(conn, hdr).await?;
    let uid = uid_of(&creds)?;
    if uid != 0 {
        return Err(fdo::Error::AccessDenied(format!(
            "{what} requires root (caller uid {uid})"
        )));
    }
    not_confined(&creds, services, what).await
}

/// Fails with AccessDenied unless the caller is root or, when `group` is not empty, has
/// `group` among its groups as the bus daemon reports them (`UnixGroupIDs`). A bus that
/// does not report groups, or a group that does not exist, denies (fail closed).
pub async fn require_root_or_group(
    conn: &Connection,
    hdr: &Header<'_>,
    services: &ServiceManager,
    group: &str,
    what: &str,
) -> fdo::Result<()> {
    let creds = credentials(conn, hdr).await?;
    let uid = uid_of(&creds)?;
    if uid == 0 {
        return not_confined(&creds, services, what).await;
    }
    let deny = |why: String| {
        Err(fdo::Error::AccessDenied(format!(
            "{what} requires root{} (caller uid {uid}){why}",
            if group.is_empty() {
                String::new()
            } else {
                format!(" or group {group}")
            }
        )))
    };
    if group.is_empty() {
        return deny(String::new());
    }
    let Some(gid) = uzers::get_group_by_name(group).map(|g| g.gid()) else {
        return deny(format!(": group {group} does not exist"));
    };
    match creds.unix_group_ids() {
        // only callers allowed by uid or group cost the daemon a look at their process
        Some(gids) if gids.contains(&gid) => not_confined(&creds, services, what).await,
        Some(_) => deny(String::new()),
        None => deny(": the bus did not report the caller's groups".into()),
    }
}

/// How much a read-only request may ask of the daemon: root outside every confined service
/// gets its answers about any path; everyone else — a confined root service included, which
/// must not read through the daemon what its sandbox denies it — the restricted view.
pub async fn caller_kind(
    conn: &Connection,
    hdr: &Header<'_>,
    services: &ServiceManager,
) -> crate::daemon::services::profiles::Caller {
    use crate::daemon::services::profiles::Caller;
    let Ok(creds) = credentials(conn, hdr).await else {
        return Caller::Unprivileged;
    };
    match uid_of(&creds) {
        Ok(0) if not_confined(&creds, services, "").await.is_ok() => Caller::Root,
        _ => Caller::Unprivileged,
    }
}
