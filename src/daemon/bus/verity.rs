//! `org.hardend1.Verity`: is the root file system on dm-verity with the expected root hash,
//! and has the kernel seen corruption? Readable by everyone.

use std::sync::Arc;

use zbus::interface;
use zbus::object_server::SignalEmitter;

use super::events;
use crate::api::VerityInfo;
use crate::daemon::Pillars;

pub struct Verity {
    pub pillars: Arc<Pillars>,
}

#[interface(name = "org.hardend1.Verity")]
impl Verity {
    /// verified | corrupted | hash-mismatch | not-verity | unknown
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.pillars.verity.info().state.as_str().into()
    }

    /// The root hash in the kernel's table.
    #[zbus(property(emits_changed_signal = "false"))]
    fn root_hash(&self) -> String {
        self.pillars.verity.info().root_hash
    }

    /// The expected root hash (config, `hardend.verity.roothash=`, `roothash=`).
    #[zbus(property(emits_changed_signal = "false"))]
    fn expected_root_hash(&self) -> String {
        self.pillars.verity.info().expected_root_hash
    }

    /// The device under the checked mount point.
    #[zbus(property(emits_changed_signal = "false"))]
    fn device(&self) -> String {
        self.pillars.verity.info().device
    }

    /// Checks again now and returns everything in one structure.
    async fn check(&self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> (VerityInfo,) {
        if let Some(c) = self.pillars.verity.refresh().await {
            events::verity_corruption(&emitter, &c).await;
        }
        (self.pillars.verity.info(),)
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
