//! Known vulnerabilities of the installed packages (the matching half of the CRA's
//! vulnerability handling). So far: dpkg's version order.
//!
//! * `version.rs` — Debian version comparison, as dpkg and libapt do it.

pub mod version;
