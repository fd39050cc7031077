//! Security events: a D-Bus signal and a journal entry with a stable MESSAGE_ID each.
//! The IDs are part of the interface (docs/dbus.md); never change them.

use zbus::object_server::SignalEmitter;

use super::state::Change;
use crate::dbus::manager::Manager;

/// A service's enforcement state changed.
pub const MSG_ENFORCEMENT_CHANGED: &str = "6e0c3f1d9b2a4c57a8f0e4d2b7c19a35";
/// A service runs without the confinement assigned to it (not-enforced, stale, failed).
pub const MSG_NOT_ENFORCED: &str = "b4a7d2e9f13c4e6b9d05a8c7e2f1b360";
/// The kernel reported dm-verity corruption on the checked device.
pub const MSG_VERITY_CORRUPTION: &str = "e3c5a1f7092b4d6e8c4f1a2b3d5e6f70";
/// The device identity changed state (lost, TPM gone, created, rotated).
pub const MSG_IDENTITY_CHANGED: &str = "9a41c6e2d8f04b7a93e15c0b2f6d7e84";
/// A watched file differs from the integrity baseline.
pub const MSG_INTEGRITY_VIOLATION: &str = "5b8e2f4a1c7d4e09a3f6b1d2c8e7a940";
/// The integrity baseline itself was changed outside hardend or cannot be read.
pub const MSG_INTEGRITY_TAMPERED: &str = "c1d9e8f7a6b54c3d8e2f1a0b9c8d7e61";
/// A watch set is rescanned because real-time events were lost (queue overflow, no watches).
pub const MSG_INTEGRITY_RESCAN: &str = "7f3a9c2e4b1d4a8f9e6c5b0a1d2e3f47";
/// The daemon started and owns its bus name.
pub const MSG_DAEMON_READY: &str = "2d9f6a1c7e3b4f08b5c2a9d4e6f7180c";

/// Emits `ServiceEnforcementChanged` and logs the change.
pub async fn enforcement_changed(emitter: &SignalEmitter<'_>, c: &Change) {
    let i = &c.info;
    let bad = matches!(i.state.as_str(), "not-enforced" | "stale" | "failed");
    if bad {
        tracing::warn!(
            message_id = MSG_NOT_ENFORCED,
            unit = %i.unit,
            profile = %i.profile,
            old_state = %c.old,
            new_state = %i.state,
            "{} is {} (profile {}): {}",
            i.unit, i.state, i.profile, i.detail
        );
    } else {
        tracing::info!(
            message_id = MSG_ENFORCEMENT_CHANGED,
            unit = %i.unit,
            profile = %i.profile,
            old_state = %c.old,
            new_state = %i.state,
            "{} is {} (profile {}): {}",
            i.unit, i.state, i.profile, i.detail
        );
    }
    if let Err(e) = Manager::service_enforcement_changed(
        emitter, &i.unit, &i.profile, &c.old, &i.state, &i.detail,
    )
    .await
    {
        tracing::warn!("cannot emit ServiceEnforcementChanged: {e}");
    }
}

/// Emits `VerityCorruption` and logs it (critical: the read-only root changed).
pub async fn verity_corruption(
    emitter: &SignalEmitter<'_>,
    c: &crate::verity::runtime::VerityCheck,
) {
    tracing::error!(
        message_id = MSG_VERITY_CORRUPTION,
        device = %c.device,
        root_hash = %c.root_hash,
        "dm-verity corruption on {} ({}): {}",
        c.device, c.mountpoint, c.detail
    );
    if let Err(e) =
        crate::dbus::verity::Verity::verity_corruption(emitter, &c.device, &c.root_hash, &c.detail)
            .await
    {
        tracing::warn!("cannot emit VerityCorruption: {e}");
    }
}

/// Emits `StateChanged` on org.hardend1.Identity and logs it; losing the identity is an
/// error (the device can no longer prove who it is), anything else a notice.
pub async fn identity_changed(
    emitter: &SignalEmitter<'_>,
    c: &crate::daemon::identity::IdentityChange,
) {
    let i = &c.info;
    if matches!(i.state.as_str(), "lost" | "no-tpm" | "error") {
        tracing::error!(
            message_id = MSG_IDENTITY_CHANGED,
            old_state = %c.old,
            new_state = %i.state,
            fingerprint = %i.fingerprint,
            "device identity {} (was {}): {}",
            i.state, c.old, i.detail
        );
    } else {
        tracing::info!(
            message_id = MSG_IDENTITY_CHANGED,
            old_state = %c.old,
            new_state = %i.state,
            fingerprint = %i.fingerprint,
            "device identity {} (was {})",
            i.state, c.old
        );
    }
    if let Err(e) =
        crate::dbus::identity::Identity::state_changed(emitter, &c.old, &i.state, &i.detail).await
    {
        tracing::warn!("cannot emit StateChanged: {e}");
    }
}
