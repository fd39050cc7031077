//! hardend: hardening for Debian devices.
//!
//! The library holds all logic; the binaries in `src/bin/` only parse arguments and call it.
//! Layout follows the architecture in DESIGN.md:
//!
//! * [`profile`] — the profile model, layered loading, validation, syscall groups;
//! * [`confine`] — applying a profile to the current process (Landlock, seccomp) and the
//!   enforcement record that proves it;
//! * [`fsutil`] — small filesystem helpers shared by the modules (atomic writes).

pub mod cli;
pub mod confine;
pub mod daemon;
pub mod dbus;
pub mod fsutil;
pub mod integrity;
pub mod profile;
pub mod systemd;
pub mod tomlpos;
pub mod tpm;
pub mod verity;
