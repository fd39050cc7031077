//! Structures exchanged over the bus (D-Bus structs; signatures in docs/dbus.md).

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

/// One confined (or assigned) unit: `(sssssuussss)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ServiceInfo {
    pub unit: String,
    pub profile: String,
    /// enforced | partial | not-enforced | stale | inactive | failed
    pub state: String,
    /// Why, in one sentence.
    pub detail: String,
    /// Where the assignment comes from: config | dropin | runtime-dropin | record
    pub source: String,
    /// MainPID (0: not running).
    pub pid: u32,
    /// Landlock ABI used for this process (0: unknown or none).
    pub landlock_abi: u32,
    /// full | partial | none | "" (unknown)
    pub landlock: String,
    /// enforce | complain | none | "" (unknown)
    pub seccomp: String,
    /// The profile hash the process runs with ("" when unknown).
    pub profile_hash: String,
    /// When the process was confined (RFC 3339), "" when unknown.
    pub since: String,
}

/// Overall daemon state: `(sssuuuuubas)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct StatusInfo {
    pub version: String,
    /// ok | degraded
    pub state: String,
    /// Human summary of what is degraded ("" when ok).
    pub detail: String,
    pub kernel_landlock_abi: u32,
    pub services: u32,
    pub enforced: u32,
    /// Services in a bad state (not-enforced, stale, failed).
    pub problems: u32,
    /// Seconds between verification passes.
    pub verify_interval: u32,
    /// Whether systemd is reachable on the daemon's bus.
    pub systemd: bool,
    pub profile_path: Vec<String>,
}

/// A profile on the daemon's profile path: `(ssss)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ProfileInfo {
    pub name: String,
    pub path: String,
    pub description: String,
    /// "" when the profile is valid.
    pub error: String,
}

/// The runtime dm-verity check: `(sssssss)`.
pub use crate::verity::runtime::VerityCheck as VerityInfo;

/// The device identity: `(ssssssbas)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct IdentityInfo {
    /// ok | none | lost | no-tpm | disabled | error | unknown
    pub state: String,
    /// Why, in one sentence ("" when ok).
    pub detail: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex ("" when there is no key).
    pub fingerprint: String,
    pub public_key_pem: String,
    /// The next identity's fingerprint while a rotation is pending, else "".
    pub pending_fingerprint: String,
    /// Manufacturer, vendor, firmware and TCTI.
    pub tpm: String,
    /// A software TPM protects nothing on a real device.
    pub software_tpm: bool,
    /// EK certificates present in NV, e.g. `ecc-p256 (0x01c0000a)`.
    pub ek_certificates: Vec<String>,
}
