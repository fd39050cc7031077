//! The states the bus reports, one enum per thing: on the wire and in JSON each is a
//! kebab-case string (D-Bus signature `s`), and each knows whether it is bad — the one
//! place that decides what makes `hardenctl` exit 3 and the daemon degraded.

use std::fmt;

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

macro_rules! state_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Type)]
        #[zvariant(signature = "s")]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The state spelled `s`, if there is one.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state_enum! {
    /// A unit's enforcement state.
    ServiceState {
        /// Running, confined by the current version of its profile.
        Enforced = "enforced",
        /// Confined, but the kernel lacks rights the profile relies on.
        Partial = "partial",
        /// Running without (proof of) the wrapper: drop-in overridden, record missing, ...
        NotEnforced = "not-enforced",
        /// Confined by an older version of the profile (or another profile).
        Stale = "stale",
        /// Not running.
        Inactive = "inactive",
        /// systemd reports the unit failed.
        Failed = "failed",
        /// The unit lost its assignment (only in `ServiceEnforcementChanged`).
        Released = "released",
    }
}

impl ServiceState {
    /// States an admin must act on.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            ServiceState::NotEnforced | ServiceState::Stale | ServiceState::Failed
        )
    }

    /// Running under its profile (fully or with rights the kernel lacks).
    pub fn is_confined(self) -> bool {
        matches!(self, ServiceState::Enforced | ServiceState::Partial)
    }
}

state_enum! {
    /// The daemon as a whole.
    DaemonState {
        Ok = "ok",
        /// At least one pillar is in a bad state (the detail says which).
        Degraded = "degraded",
    }
}

impl DaemonState {
    pub fn is_bad(self) -> bool {
        self == DaemonState::Degraded
    }
}

state_enum! {
    /// The runtime dm-verity check of the root file system.
    VerityState {
        /// On dm-verity, the kernel reports no corruption, the root hash is the expected one.
        Verified = "verified",
        /// The kernel found a block that does not match the hash tree.
        Corrupted = "corrupted",
        /// On dm-verity, but with another root hash than the expected one.
        HashMismatch = "hash-mismatch",
        /// Not on a dm-verity device (and no root hash is expected).
        NotVerity = "not-verity",
        /// A root hash is expected (configuration or kernel command line), but the mount
        /// point is not on verity or cannot be checked: the boot did not open the verified
        /// root, and what is mounted is not vouched for.
        Unverified = "unverified",
        /// The expected root hash cannot be determined: a `hardend.verity.*` or `roothash=`
        /// parameter is given twice or empty on the kernel command line.
        Misconfigured = "misconfigured",
        /// The check could not be made (no mountinfo entry, no device-mapper access) and no
        /// root hash is expected.
        Unknown = "unknown",
    }
}

impl VerityState {
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            VerityState::Corrupted
                | VerityState::HashMismatch
                | VerityState::Unverified
                | VerityState::Misconfigured
        )
    }
}

state_enum! {
    /// The device identity in the TPM.
    IdentityState {
        Ok = "ok",
        /// No identity key has been created yet.
        None = "none",
        /// The key blobs exist but the TPM no longer loads them (cleared, replaced).
        Lost = "lost",
        /// The configured TPM cannot be reached.
        NoTpm = "no-tpm",
        /// The TPM is not used (`[identity] tcti = "none"`).
        Disabled = "disabled",
        Error = "error",
        /// Not checked yet.
        Unknown = "unknown",
    }
}

impl IdentityState {
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            IdentityState::Lost | IdentityState::NoTpm | IdentityState::Error
        )
    }
}

state_enum! {
    /// The integrity monitor.
    IntegrityState {
        Ok = "ok",
        /// Watched paths differ from the baseline.
        Violations = "violations",
        /// No baseline has been made yet.
        NoBaseline = "no-baseline",
        /// The baseline was changed outside hardend (its MAC does not match).
        Tampered = "tampered",
        Error = "error",
        /// `[integrity] enabled = false`.
        Disabled = "disabled",
        /// The baseline is being loaded.
        Starting = "starting",
    }
}

impl IntegrityState {
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            IntegrityState::Violations
                | IntegrityState::Tampered
                | IntegrityState::Error
                | IntegrityState::NoBaseline
        )
    }
}

state_enum! {
    /// The vulnerability status of the installed packages against the signed feed.
    VulnsState {
        /// The feed verified and matched; nothing installed has a fix waiting.
        Ok = "ok",
        /// Installed packages have CVEs fixed in a version the release has: upgrade.
        FixAvailable = "fix-available",
        /// The latest feed was refused (signature, format, size); the findings are those
        /// of the last feed that verified, if any.
        Refused = "refused",
        /// The key, the dpkg status or the release cannot be read: nothing is matched.
        Error = "error",
        /// `[vulns] feed` is not set.
        Disabled = "disabled",
        /// Configured, not evaluated yet.
        Starting = "starting",
    }
}

impl VulnsState {
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            VulnsState::FixAvailable | VulnsState::Refused | VulnsState::Error
        )
    }
}

state_enum! {
    /// Where the daemon's knowledge of one confinement layer of a process comes from.
    Proof {
        /// Read from the kernel for this process (`/proc`, the installed seccomp program).
        KernelVerified = "kernel-verified",
        /// Only the enforcement record says so: the kernel offers no way to read it back
        /// (Landlock), or reading it back failed (the detail says why).
        Claimed = "claimed",
    }
}

state_enum! {
    /// The confinement layers whose proof a service reports.
    Layer {
        /// no_new_privs (`/proc/PID/status`).
        NoNewPrivs = "no-new-privs",
        /// The seccomp program, compared with the one the profile compiles to.
        Seccomp = "seccomp",
        /// The capability sets (`/proc/PID/status`).
        Capabilities = "capabilities",
        /// The read-only mount view (`/proc/PID/mountinfo`).
        ReadOnlyView = "read-only-view",
        /// Landlock's file-system and network rules.
        Landlock = "landlock",
        /// Pathname UNIX sockets out of reach (mount view or Landlock).
        UnixSockets = "unix-sockets",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{LE, serialized::Context, to_bytes};

    #[test]
    fn states_are_kebab_case_strings_on_the_wire_and_in_json() {
        assert_eq!(
            serde_json::to_string(&ServiceState::NotEnforced).unwrap(),
            "\"not-enforced\""
        );
        assert_eq!(ServiceState::SIGNATURE, "s");
        let bytes = to_bytes(Context::new_dbus(LE, 0), &VerityState::HashMismatch).unwrap();
        let (s, _): (String, _) = bytes.deserialize().unwrap();
        assert_eq!(s, "hash-mismatch");
        for s in IntegrityState::ALL {
            assert_eq!(IntegrityState::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn bad_states() {
        let bad: Vec<_> = ServiceState::ALL.iter().filter(|s| s.is_bad()).collect();
        assert_eq!(
            bad,
            [
                &ServiceState::NotEnforced,
                &ServiceState::Stale,
                &ServiceState::Failed
            ]
        );
        assert!(!IdentityState::Disabled.is_bad());
        assert!(IdentityState::Lost.is_bad());
        assert!(!VerityState::NotVerity.is_bad());
    }
}
