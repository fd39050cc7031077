//! hardend-core: what the confinement wrapper needs and nothing more.
//!
//! * [`profile`] — the profile model, layered loading, validation with file:line errors,
//!   syscall groups;
//! * [`confine`] — applying a profile to the current process (Landlock, seccomp,
//!   no_new_privs) and the enforcement record that describes it;
//! * [`source`] — errors that point into a TOML file (shared with the daemon's configuration);
//! * [`fsutil`] — atomic writes.
//!
//! No async runtime, no D-Bus, no TPM: `hardend-exec` links only this crate.

pub mod confine;
pub mod fsutil;
pub mod profile;
pub mod source;
