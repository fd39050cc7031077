//! The `org.hardend1` interfaces served by the daemon: the only `#[interface]` code. Each
//! object holds the pillar it speaks for; state changes are authorized from the sender of
//! the message (`auth.rs`); signals and journal entries come from `events.rs`.

pub mod auth;
pub mod events;
mod identity;
mod integrity;
mod manager;
mod verity;
mod vulns;

use std::sync::Arc;

use zbus::Connection;
use zbus::object_server::SignalEmitter;

use super::Pillars;
use crate::api::OBJECT_PATH;

pub use self::identity::Identity;
pub use self::integrity::Integrity;
pub use self::manager::Manager;
pub use self::verity::Verity;
pub use self::vulns::Vulns;

/// Serves the five interfaces on `conn` (before the name is requested, so that the first
/// caller finds them) and returns the emitter for the daemon's own signals.
pub async fn serve(
    conn: &Connection,
    pillars: &Arc<Pillars>,
) -> zbus::Result<SignalEmitter<'static>> {
    let server = conn.object_server();
    server
        .at(
            OBJECT_PATH,
            Manager {
                pillars: pillars.clone(),
            },
        )
        .await?;
    server
        .at(
            OBJECT_PATH,
            Verity {
                pillars: pillars.clone(),
            },
        )
        .await?;
    server
        .at(
            OBJECT_PATH,
            Identity {
                pillars: pillars.clone(),
            },
        )
        .await?;
    server
        .at(
            OBJECT_PATH,
            Integrity {
                pillars: pillars.clone(),
            },
        )
        .await?;
    server
        .at(
            OBJECT_PATH,
            Vulns {
                pillars: pillars.clone(),
            },
        )
        .await?;
    let iface = server.interface::<_, Manager>(OBJECT_PATH).await?;
    Ok(iface.signal_emitter().clone())
}
