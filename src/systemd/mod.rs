//! systemd integration: drop-in rendering (pure) and the org.freedesktop.systemd1 client.

pub mod client;
pub mod dropin;
