//! hardend: hardening for Debian devices. The library holds all logic; the binaries in
//! `src/bin/` only parse their command line (defined in [`cmdline`]) and call it. The layout
//! follows DESIGN.md:
//!
//! * [`profile`], [`confine`], [`source`], [`fsutil`] — from `hardend-core` (the crate the
//!   confinement wrapper links alone);
//! * [`systemd`], [`verity`], [`tpm`], [`integrity`] — the domain modules; they import
//!   nothing above them;
//! * [`config`] — `/etc/hardend/hardend.toml` (read by the daemon and by `hardenctl doctor`);
//! * [`api`] — the wire contract of `org.hardend1`;
//! * [`cli`] — `hardenctl`'s commands and rendering (uses `api` and the domain modules);
//! * [`daemon`] — the daemon (imported only by `src/bin/hardend.rs`);
//! * [`cmdline`] — the command-line definitions of `hardend` and `hardenctl` (also read by
//!   the man page generator).

pub use hardend_core::{confine, fsutil, profile, source};

pub mod api;
pub mod audit;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod daemon;
pub mod integrity;
pub mod keylime;
pub mod proof;
pub mod report;
pub mod sbom;
pub mod systemd;
pub mod tpm;
pub mod verity;
pub mod vulns;
