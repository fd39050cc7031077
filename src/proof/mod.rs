//! Proof of confinement from the kernel: what `/proc` says about another process — the
//! facts the daemon's verification trusts, as opposed to an enforcement record, which is
//! only a claim. A domain module: it imports nothing above it.
//!
//! * `status.rs` — `/proc/PID/status` (no_new_privs, seccomp mode and filter count, the
//!   capability sets, the uid);
//! * `mounts.rs` — `/proc/PID/mountinfo` (the read-only view, its own mount namespace);
//! * `seccomp.rs` — the installed seccomp programs, read back and compared.

pub mod mounts;
pub mod seccomp;
pub mod status;

pub use status::ProcStatus;
