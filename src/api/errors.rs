//! The errors the bus returns. hardend answers with the standard
//! `org.freedesktop.DBus.Error.*` names (so generic clients such as busctl understand them);
//! this is the one list of which it uses, and how a client tells them apart.

/// The caller may not do this (not root, not in the signers group, a confined service).
pub const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
/// A bad argument: unknown unit, invalid profile, a path outside every watch set.
pub const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
/// The daemon cannot do this here (no systemd on its bus, TPM not used).
pub const NOT_SUPPORTED: &str = "org.freedesktop.DBus.Error.NotSupported";
/// The operation was tried and failed (systemd refused, the TPM failed, a write failed).
pub const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
/// Nobody owns `org.hardend1`: the daemon is not running.
pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

/// What went wrong with a call, as a client needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    NotRunning(String),
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    Failed(String),
    /// The bus itself: no connection, a broken reply.
    #[error("{0}")]
    Bus(String),
}

fn classify(name: &str, message: String) -> CallError {
    match name {
        ACCESS_DENIED => CallError::AccessDenied(message),
        SERVICE_UNKNOWN | NAME_HAS_NO_OWNER => CallError::NotRunning(message),
        INVALID_ARGS => CallError::InvalidArgs(message),
        NOT_SUPPORTED => CallError::NotSupported(message),
        FAILED => CallError::Failed(message),
        _ => CallError::Failed(message),
    }
}

impl From<zbus::Error> for CallError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, msg, _) => {
                classify(name.as_str(), msg.unwrap_or_default())
            }
            zbus::Error::FDO(e) => CallError::from(*e),
            other => CallError::Bus(other.to_string()),
        }
    }
}

impl From<zbus::fdo::Error> for CallError {
    fn from(e: zbus::fdo::Error) -> Self {
        use zbus::DBusError;
        let name = e.name().to_string();
        let message = e.description().unwrap_or_default().to_string();
        match e {
            zbus::fdo::Error::ZBus(z) => CallError::from(z),
            _ => classify(&name, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdo_errors_keep_their_kind_and_message() {
        let e = CallError::from(zbus::fdo::Error::AccessDenied(
            "Reload requires root".into(),
        ));
        assert_eq!(e, CallError::AccessDenied("Reload requires root".into()));
        let e = CallError::from(zbus::fdo::Error::InvalidArgs("no such unit".into()));
        assert_eq!(e, CallError::InvalidArgs("no such unit".into()));
        let e = CallError::from(zbus::fdo::Error::ServiceUnknown("gone".into()));
        assert!(matches!(e, CallError::NotRunning(_)));
    }
}
