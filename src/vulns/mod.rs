//! Known vulnerabilities of the installed packages (the matching half of the CRA's
//! vulnerability handling).
//!
//! * `version.rs` — Debian version comparison, as dpkg and libapt do it;
//! * `feed.rs` — the security tracker's JSON, used only with a valid detached signature;
//! * `matching.rs` — installed source packages against the feed, outcomes kept apart;
//! * `release.rs` — which release the installed system is.

pub mod feed;
pub mod matching;
pub mod release;
pub mod version;
