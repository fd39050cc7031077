//! `hardenctl audit`: how exposed each service is, and how well the device is kept.
//!
//! * [`exposure`] — systemd's own exposure score, recomputed exactly (policy as data);
//! * [`layers`] — what hardend's confinement adds, proven by the kernel, as credits on the
//!   same table (the combined score);
//! * [`sockets`] — listening sockets by process, from `/proc/net` and the unit's cgroup;
//! * [`device`] — device hygiene checks (SSH, accounts, file modes, setuid inventory,
//!   sysctls, boot and platform state);
//! * [`syscalls`] — whether a syscall name exists here, asked of libseccomp as systemd asks.

pub mod device;
pub mod exposure;
pub mod layers;
pub mod sockets;
pub mod syscalls;
