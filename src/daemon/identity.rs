//! The identity pillar: the device key's state (checked at startup, on every verification
//! tick and on demand) and the operations behind org.hardend1.Identity, all run on the TPM
//! thread. A lost identity is reported, never silently replaced.

use std::sync::Mutex;

use crate::api::{IdentityInfo, IdentityState, QuoteInfo};
use crate::daemon::config::IdentityConfig;
use crate::daemon::lock;
use crate::tpm::TpmError;
use crate::tpm::identity::IdentityStore;
use crate::tpm::worker::TpmWorker;

struct State {
    cfg: IdentityConfig,
    /// The TPM thread, when a TPM is configured.
    worker: Option<TpmWorker>,
    last: IdentityInfo,
}

/// The identity as the daemon sees it.
pub struct IdentityService {
    state: Mutex<State>,
}

/// A state change, for the signal and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityChange {
    pub old: IdentityState,
    pub info: IdentityInfo,
}

impl IdentityService {
    pub fn new(cfg: IdentityConfig) -> IdentityService {
        let worker = spawn(&cfg);
        IdentityService {
            state: Mutex::new(State {
                cfg,
                worker,
                last: IdentityInfo::bare(IdentityState::Unknown, ""),
            }),
        }
    }

    /// Applies the `[identity]` settings (reload); a new TCTI gets a new thread.
    pub fn configure(&self, cfg: IdentityConfig) {
        let mut st = lock(&self.state);
        if st.cfg == cfg && (st.worker.is_some() || cfg.tcti.is_none()) {
            return;
        }
        if st.cfg.tcti != cfg.tcti || st.worker.is_none() {
            st.worker = spawn(&cfg);
        }
        st.cfg = cfg;
    }

    /// The group whose members may sign ("" = root only).
    pub fn signers_group(&self) -> String {
        lock(&self.state).cfg.signers_group.clone()
    }

    fn current(&self) -> (IdentityConfig, Option<TpmWorker>) {
        let st = lock(&self.state);
        (st.cfg.clone(), st.worker.clone())
    }

    fn worker(&self) -> Result<(IdentityConfig, TpmWorker), TpmError> {
        match self.current() {
            (c, Some(w)) => Ok((c, w)),
            (_, None) => Err(TpmError::Format(
                "the TPM is not used: [identity] tcti = \"none\" in the configuration".into(),
            )),
        }
    }

    /// The TPM thread, when a TPM is configured (also used to seal the integrity key).
    pub fn tpm(&self) -> Option<TpmWorker> {
        self.current().1
    }

    /// The last known state.
    pub fn info(&self) -> IdentityInfo {
        lock(&self.state).last.clone()
    }

    /// Checks the TPM and the key again; returns the change when the state changed.
    pub async fn refresh(&self) -> Option<IdentityChange> {
        let (cfg, worker) = self.current();
        let info = match worker {
            None => IdentityInfo::bare(
                IdentityState::Disabled,
                "the TPM is not used ([identity] tcti = \"none\")",
            ),
            Some(w) => {
                let dir = cfg.dir.clone();
                let tcti = w.tcti().to_string();
                w.run(move |tpm| crate::tpm::status::examine(tpm, &dir))
                    .await
                    .map(|e| IdentityInfo::from_examination(e, &cfg.dir))
                    .unwrap_or_else(|e| IdentityInfo::no_tpm(&tcti, e.to_string()))
            }
        };
        let mut st = lock(&self.state);
        let old = std::mem::replace(&mut st.last, info.clone());
        (old.state != info.state).then_some(IdentityChange {
            old: old.state,
            info,
        })
    }

    pub async fn sign(&self, nonce: Vec<u8>) -> Result<Vec<u8>, TpmError> {
        if nonce.is_empty() || nonce.len() > 1024 {
            return Err(TpmError::Format("the nonce must be 1 to 1024 bytes".into()));
        }
        let (c, w) = self.worker()?;
        w.run(move |tpm| IdentityStore::new(&c.dir).sign(tpm, &nonce))
            .await
    }

    pub async fn quote(&self, nonce: Vec<u8>, pcrs: Vec<u8>) -> Result<QuoteInfo, TpmError> {
        let (c, w) = self.worker()?;
        let pcrs = if pcrs.is_empty() {
            (0..8).collect()
        } else {
            pcrs
        };
        w.run(move |tpm| {
            crate::tpm::quote::quote(&IdentityStore::attestation(&c.dir), tpm, &nonce, &pcrs)
        })
        .await
        .map(QuoteInfo::from)
    }

    /// A CSR for the identity, or for the pending next identity when `next`.
    pub async fn csr(&self, subject: String, next: bool) -> Result<String, TpmError> {
        let (c, w) = self.worker()?;
        let subject = if !subject.is_empty() {
            subject
        } else if !c.subject.is_empty() {
            c.subject.clone()
        } else {
            format!("CN={}", hostname())
        };
        crate::tpm::csr::parse_subject(&subject)?;
        w.run(move |tpm| {
            let store = IdentityStore::new(&c.dir);
            let store = if next {
                if store.pending_public().is_none() {
                    return Err(TpmError::NoRotation(c.dir.clone()));
                }
                store.pending()
            } else {
                store
            };
            crate::tpm::csr::csr(&store, tpm, &subject)
        })
        .await
    }

    pub async fn create(&self) -> Result<(), TpmError> {
        let (c, w) = self.worker()?;
        w.run(move |tpm| IdentityStore::new(&c.dir).create(tpm).map(drop))
            .await
    }

    pub async fn rotate(&self) -> Result<String, TpmError> {
        let (c, w) = self.worker()?;
        w.run(move |tpm| {
            IdentityStore::new(&c.dir)
                .rotate(tpm)
                .map(|i| i.fingerprint)
        })
        .await
    }

    pub async fn commit_rotation(&self) -> Result<String, TpmError> {
        let (c, w) = self.worker()?;
        w.run(move |_| {
            IdentityStore::new(&c.dir)
                .commit_rotation()
                .map(|i| i.fingerprint)
        })
        .await
    }

    pub async fn abort_rotation(&self) -> Result<(), TpmError> {
        let (c, w) = self.worker()?;
        w.run(move |_| IdentityStore::new(&c.dir).abort_rotation())
            .await
    }
}

fn spawn(cfg: &IdentityConfig) -> Option<TpmWorker> {
    let t = cfg.tcti.as_ref()?;
    match TpmWorker::spawn(t) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!("cannot start the TPM thread: {e}");
            None
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
