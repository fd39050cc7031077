//! What the TPM and the stored identity look like right now: read-only, never creates
//! anything. Used by the daemon's state checks and by `hardenctl identity show --direct`.

use std::path::Path;

use super::TpmError;
use super::identity::{Identity, IdentityStore, Tpm, TpmInfo};

/// The stored identity key, as far as this TPM is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// The key loads: the identity can sign.
    Ok(Identity),
    /// No key blobs in the directory.
    None,
    /// Blobs exist but this TPM no longer loads them; the public part is still known.
    Lost {
        public: Option<Identity>,
        why: String,
    },
    /// Something else failed.
    Error(String),
}

/// One examination of the TPM and the identity directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Examination {
    pub tpm: TpmInfo,
    pub key: KeyState,
    /// The next identity's public part while a rotation is pending.
    pub pending: Option<Identity>,
}

/// Reads the TPM and checks that the stored key still loads. `Err` only when the TPM
/// itself cannot be asked.
pub fn examine(tpm: &mut Tpm, dir: &Path) -> Result<Examination, TpmError> {
    let info = tpm.info()?;
    let store = IdentityStore::new(dir);
    let pending = store.pending_public();
    let key = match store.check(tpm) {
        Ok(id) => KeyState::Ok(id),
        Err(TpmError::NoIdentity(_)) => KeyState::None,
        Err(e @ TpmError::Lost { .. }) => KeyState::Lost {
            public: store.public().ok(),
            why: e.to_string(),
        },
        Err(e) => KeyState::Error(e.to_string()),
    };
    Ok(Examination {
        tpm: info,
        key,
        pending,
    })
}
