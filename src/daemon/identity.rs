//! The identity pillar: the device key's state (checked at startup, on every verification
//! tick and on demand) and the operations behind org.hardend1.Identity, all run on the TPM
//! thread. A lost identity is reported, never silently replaced.

use std::sync::Mutex;
use std::time::Duration;

use crate::api::{IdentityInfo, IdentityState, QuoteInfo};
use crate::config::IdentityConfig;
use crate::daemon::lock;
use crate::daemon::ratelimit::TokenBucket;
use crate::tpm::TpmError;
use crate::tpm::ek::EkAlgorithm;
use crate::tpm::enroll::{Challenge, Enrollment};
use crate::tpm::identity::IdentityStore;
use crate::tpm::worker::{Priority, TpmWorker};

/// TPM examinations callers who are not root may ask for (`Check`), all of them together:
/// a burst of this many, then this many per second. One examination is about 20 ms on
/// swtpm (several TPM commands); a discrete TPM is slower, so this keeps the TPM's time for
/// unprivileged callers well below half.
pub const UNPRIVILEGED_BURST: u32 = 5;
pub const UNPRIVILEGED_PER_SECOND: f64 = 2.0;

/// Why an unprivileged check was not made.
#[derive(Debug, thiserror::Error)]
pub enum CheckRefused {
    #[error(
        "rate limit for callers who are not root ({UNPRIVILEGED_BURST} TPM checks at once, {UNPRIVILEGED_PER_SECOND} per second); try again in {} ms",
        .0.as_millis()
    )]
    RateLimited(Duration),
}

struct State {
    cfg: IdentityConfig,
    /// The TPM thread, when a TPM is configured.
    worker: Option<TpmWorker>,
    last: IdentityInfo,
    /// When the TPM last produced a quote (seconds since the epoch; 0: not since the start).
    last_quote: u64,
}

/// The identity as the daemon sees it.
pub struct IdentityService {
    state: Mutex<State>,
    unprivileged: Mutex<TokenBucket>,
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
                last_quote: 0,
            }),
            unprivileged: Mutex::new(TokenBucket::new(
                UNPRIVILEGED_BURST,
                UNPRIVILEGED_PER_SECOND,
            )),
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
        self.refresh_as(Priority::Privileged).await
    }

    /// `Check` by a caller who is not root: rate-limited, behind privileged work, one at a
    /// time. While another such check is on the TPM the answer is the state that one finds.
    pub async fn refresh_unprivileged(&self) -> Result<Option<IdentityChange>, CheckRefused> {
        lock(&self.unprivileged)
            .take()
            .map_err(CheckRefused::RateLimited)?;
        Ok(self.refresh_as(Priority::Unprivileged).await)
    }

    async fn refresh_as(&self, priority: Priority) -> Option<IdentityChange> {
        let (cfg, worker) = self.current();
        let info = match worker {
            None => IdentityInfo::bare(
                IdentityState::Disabled,
                "the TPM is not used ([identity] tcti = \"none\")",
            ),
            Some(w) => {
                let dir = cfg.dir.clone();
                let tcti = w.tcti().to_string();
                match w
                    .run_as(priority, move |tpm| crate::tpm::status::examine(tpm, &dir))
                    .await
                {
                    Ok(e) => IdentityInfo::from_examination(e, &cfg.dir),
                    // another unprivileged check is finding the state: not a TPM failure
                    Err(TpmError::UnprivilegedBusy) => return None,
                    Err(e) => IdentityInfo::no_tpm(&tcti, e.to_string()),
                }
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
        w.run(move |tpm| IdentityStore::new(&c.dir).sign_statement(tpm, &nonce))
            .await
    }

    pub async fn quote(&self, nonce: Vec<u8>, pcrs: Vec<u8>) -> Result<QuoteInfo, TpmError> {
        let (c, w) = self.worker()?;
        let pcrs = if pcrs.is_empty() {
            (0..8).collect()
        } else {
            pcrs
        };
        let q = w
            .run(move |tpm| {
                crate::tpm::quote::quote(&IdentityStore::attestation(&c.dir), tpm, &nonce, &pcrs)
            })
            .await
            .map(QuoteInfo::from)?;
        lock(&self.state).last_quote = crate::integrity::now();
        Ok(q)
    }

    /// When the TPM last produced a quote since the daemon started (0: never).
    pub fn last_quote(&self) -> u64 {
        lock(&self.state).last_quote
    }

    /// The subject a CSR gets: the caller's, else the configured one, else CN=<hostname>.
    /// A caller who is not root gets only the configured (or default) subject: a signers-group
    /// member must not obtain a certificate request in another device's or service's name.
    fn subject(&self, asked: String, privileged: bool) -> Result<String, TpmError> {
        let configured = match lock(&self.state).cfg.subject.clone() {
            s if s.is_empty() => format!("CN={}", hostname()),
            s => s,
        };
        let subject = if asked.is_empty() {
            configured.clone()
        } else {
            asked
        };
        if !privileged && subject != configured {
            return Err(TpmError::Format(format!(
                "only root may ask for a subject other than the configured one ({configured})"
            )));
        }
        crate::tpm::csr::parse_subject(&subject)?;
        Ok(subject)
    }

    /// A CSR for the identity, or for the pending next identity when `next`.
    pub async fn csr(
        &self,
        subject: String,
        next: bool,
        privileged: bool,
    ) -> Result<String, TpmError> {
        let subject = self.subject(subject, privileged)?;
        let (c, w) = self.worker()?;
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

    /// Enrolment material (root): EK, AK public area and name, identity CSR.
    pub async fn enroll(&self, ek: String, subject: String) -> Result<Enrollment, TpmError> {
        let alg: EkAlgorithm = ek.parse()?;
        let subject = self.subject(subject, true)?;
        let (c, w) = self.worker()?;
        w.run(move |tpm| crate::tpm::enroll::enroll(&c.dir, tpm, alg, &subject))
            .await
    }

    /// Answers a credential challenge (root).
    pub async fn activate(
        &self,
        ek: String,
        credential_blob: Vec<u8>,
        secret: Vec<u8>,
    ) -> Result<Vec<u8>, TpmError> {
        let alg: EkAlgorithm = ek.parse()?;
        let (c, w) = self.worker()?;
        let ch = Challenge {
            credential_blob,
            secret,
        };
        w.run(move |tpm| crate::tpm::enroll::activate(&c.dir, tpm, alg, &ch))
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
