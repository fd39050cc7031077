//! The daemon: configuration, state, verification, and the startup/run loop.

pub mod config;
pub mod events;
pub mod identity;
pub mod integrity;
pub mod run;
pub mod state;
pub mod verify;
