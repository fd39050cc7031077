//! `org.hardend1.Verity`: is the root file system on dm-verity with the expected root hash,
//! and has the kernel seen corruption? Readable by everyone.

use std::sync::Arc;

use zbus::interface;
use zbus::object_server::SignalEmitter;

use super::types::VerityInfo;
use crate::daemon::state::Daemon;

pub struct Verity {
    pub daemon: Arc<Daemon>,
}

#[interface(
    name = "org.hardend1.Verity",
    proxy(
        default_service = "org.hardend1",
        default_path = "/org/hardend1",
        gen_blocking = false
    )
)]
impl Verity {
    /// verified | corrupted | hash-mismatch | not-verity | unknown
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.daemon.verity().state
    }

    /// The root hash in the kernel's table.
    #[zbus(property(emits_changed_signal = "false"))]
    fn root_hash(&self) -> String {
        self.daemon.verity().root_hash
    }

    /// The expected root hash (config, `hardend.verity.roothash=`, `roothash=`).
    #[zbus(property(emits_changed_signal = "false"))]
    fn expected_root_hash(&self) -> String {
        self.daemon.verity().expected_root_hash
    }

    /// The device under the checked mount point.
    #[zbus(property(emits_changed_signal = "false"))]
    fn device(&self) -> String {
        self.daemon.verity().device
    }

    /// Checks again now and returns everything in one structure.
    async fn check(&self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> (VerityInfo,) {
        if let Some(c) = self.daemon.refresh_verity() {
            crate::daemon::events::verity_corruption(&emitter, &c).await;
        }
        (self.daemon.verity(),)
    }

    /// The kernel reported corruption (status `C`) on the checked device.
    #[zbus(signal)]
    pub async fn verity_corruption(
        emitter: &SignalEmitter<'_>,
        device: &str,
        root_hash: &str,
        detail: &str,
    ) -> zbus::Result<()>;
}
