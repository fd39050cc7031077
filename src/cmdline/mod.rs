//! The command lines of `hardend` and `hardenctl`: definitions only (clap derive), so that
//! the binaries parse them and `cargo xtask docs` renders man pages and completions from the
//! same source. `hardend-exec` keeps its own in its crate.

pub mod hardenctl;
pub mod hardend;
