//! Journal MESSAGE_IDs of hardend's events. Part of the interface (docs/dbus.md): monitoring
//! filters on them (`journalctl MESSAGE_ID=...`); never change one.

/// A service's enforcement state changed.
pub const ENFORCEMENT_CHANGED: &str = "6e0c3f1d9b2a4c57a8f0e4d2b7c19a35";
/// A service runs without the confinement assigned to it (not-enforced, stale, failed).
pub const NOT_ENFORCED: &str = "b4a7d2e9f13c4e6b9d05a8c7e2f1b360";
/// The kernel reported dm-verity corruption on the checked device.
pub const VERITY_CORRUPTION: &str = "e3c5a1f7092b4d6e8c4f1a2b3d5e6f70";
/// A root hash is expected but the checked mount point is not on verity (or the kernel
/// command line's verity parameters are repeated or empty): the boot did not open the
/// verified root.
pub const VERITY_UNVERIFIED: &str = "55230584bac643d6a199fe9b30208513";
/// The device identity changed state (lost, TPM gone, created, rotated).
pub const IDENTITY_CHANGED: &str = "9a41c6e2d8f04b7a93e15c0b2f6d7e84";
/// A watched file differs from the integrity baseline.
pub const INTEGRITY_VIOLATION: &str = "5b8e2f4a1c7d4e09a3f6b1d2c8e7a940";
/// The integrity baseline itself was changed outside hardend or cannot be read.
pub const INTEGRITY_TAMPERED: &str = "c1d9e8f7a6b54c3d8e2f1a0b9c8d7e61";
/// A watch set is rescanned because real-time events were lost (queue overflow, no watches).
pub const INTEGRITY_RESCAN: &str = "7f3a9c2e4b1d4a8f9e6c5b0a1d2e3f47";
/// CVEs newly affect installed packages (a new feed, or the packages changed).
pub const VULNS_FOUND: &str = "8c2e7b4f1a9d4e35b6c0f2a7d9e1b458";
/// A vulnerability feed was refused (signature, format, size): the last verified one stays.
pub const VULNS_FEED_REFUSED: &str = "f04a6d2c9b7e4183a5d1c8e6b2f9a037";
/// The daemon started and owns its bus name.
pub const DAEMON_READY: &str = "2d9f6a1c7e3b4f08b5c2a9d4e6f7180c";

/// Every ID with its name, for the docs test.
pub const ALL: &[(&str, &str)] = &[
    ("ENFORCEMENT_CHANGED", ENFORCEMENT_CHANGED),
    ("NOT_ENFORCED", NOT_ENFORCED),
    ("VERITY_CORRUPTION", VERITY_CORRUPTION),
    ("VERITY_UNVERIFIED", VERITY_UNVERIFIED),
    ("IDENTITY_CHANGED", IDENTITY_CHANGED),
    ("INTEGRITY_VIOLATION", INTEGRITY_VIOLATION),
    ("INTEGRITY_TAMPERED", INTEGRITY_TAMPERED),
    ("INTEGRITY_RESCAN", INTEGRITY_RESCAN),
    ("VULNS_FOUND", VULNS_FOUND),
    ("VULNS_FEED_REFUSED", VULNS_FEED_REFUSED),
    ("DAEMON_READY", DAEMON_READY),
];

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_128_bit_hex() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, id) in super::ALL {
            assert_eq!(id.len(), 32, "{name}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
            assert!(seen.insert(*id), "{name} repeats an ID");
        }
    }
}
