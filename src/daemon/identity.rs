//! The daemon's side of the device identity: its state (checked at startup, on every
//! verification tick and on demand) and the operations behind org.hardend1.Identity, all
//! run on the TPM thread. A lost identity is reported, never silently replaced.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::daemon::config::Config;
use crate::dbus::types::IdentityInfo;
use crate::tpm::TpmError;
use crate::tpm::identity::IdentityStore;
use crate::tpm::quote::QuoteBundle;
use crate::tpm::worker::TpmWorker;

/// What the identity operations need from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    tcti: Option<String>,
    dir: PathBuf,
    subject: String,
}

/// The identity as the daemon sees it.
pub struct IdentityService {
    settings: Mutex<(Settings, Option<TpmWorker>)>,
    info: Mutex<IdentityInfo>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A state change, for the signal and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityChange {
    pub old: String,
    pub info: IdentityInfo,
}

impl IdentityService {
    pub fn new(cfg: &Config) -> IdentityService {
        let s = IdentityService {
            settings: Mutex::new((
                Settings {
                    tcti: None,
                    dir: PathBuf::new(),
                    subject: String::new(),
                },
                None,
            )),
            info: Mutex::new(IdentityInfo {
                state: "unknown".into(),
                ..Default::default()
            }),
        };
        s.configure(cfg);
        s
    }

    /// Applies the `[identity]` settings (startup and reload); a new TCTI gets a new thread.
    pub fn configure(&self, cfg: &Config) {
        let want = Settings {
            tcti: cfg.identity_tcti.clone(),
            dir: cfg.identity_dir.clone(),
            subject: cfg.identity_subject.clone(),
        };
        let mut cur = lock(&self.settings);
        if cur.0 == want && (cur.1.is_some() || want.tcti.is_none()) {
            return;
        }
        let worker = match &want.tcti {
            None => None,
            Some(t) => match TpmWorker::spawn(t) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!("cannot start the TPM thread: {e}");
                    None
                }
            },
        };
        *cur = (want, worker);
    }

    fn current(&self) -> (Settings, Option<TpmWorker>) {
        lock(&self.settings).clone()
    }

    fn worker(&self) -> Result<(Settings, TpmWorker), TpmError> {
        match self.current() {
            (s, Some(w)) => Ok((s, w)),
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
        lock(&self.info).clone()
    }

    /// Checks the TPM and the key again; returns the change when the state changed.
    pub async fn refresh(&self) -> Option<IdentityChange> {
        let (settings, worker) = self.current();
        let info = match worker {
            None => IdentityInfo {
                state: "disabled".into(),
                detail: "the TPM is not used ([identity] tcti = \"none\")".into(),
                ..Default::default()
            },
            Some(w) => {
                let dir = settings.dir.clone();
                let tcti = w.tcti().to_string();
                w.run(move |tpm| Ok(examine(tpm, &dir)))
                    .await
                    .unwrap_or_else(|e| no_tpm(&tcti, &e))
            }
        };
        let mut cur = lock(&self.info);
        let old = std::mem::replace(&mut *cur, info.clone());
        (old.state != info.state).then_some(IdentityChange {
            old: old.state,
            info,
        })
    }

    pub async fn sign(&self, nonce: Vec<u8>) -> Result<Vec<u8>, TpmError> {
        if nonce.is_empty() || nonce.len() > 1024 {
            return Err(TpmError::Format("the nonce must be 1 to 1024 bytes".into()));
        }
        let (s, w) = self.worker()?;
        w.run(move |tpm| IdentityStore::new(&s.dir).sign(tpm, &nonce))
            .await
    }

    pub async fn quote(&self, nonce: Vec<u8>, pcrs: Vec<u8>) -> Result<QuoteBundle, TpmError> {
        let (s, w) = self.worker()?;
        let pcrs = if pcrs.is_empty() {
            (0..8).collect()
        } else {
            pcrs
        };
        w.run(move |tpm| {
            crate::tpm::quote::quote(&IdentityStore::attestation(&s.dir), tpm, &nonce, &pcrs)
        })
        .await
    }

    /// A CSR for the identity, or for the pending next identity when `next`.
    pub async fn csr(&self, subject: String, next: bool) -> Result<String, TpmError> {
        let (s, w) = self.worker()?;
        let subject = if !subject.is_empty() {
            subject
        } else if !s.subject.is_empty() {
            s.subject.clone()
        } else {
            format!("CN={}", hostname())
        };
        crate::tpm::csr::parse_subject(&subject)?;
        w.run(move |tpm| {
            let store = IdentityStore::new(&s.dir);
            let store = if next {
                if store.pending_public().is_none() {
                    return Err(TpmError::NoRotation(s.dir.clone()));
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
        let (s, w) = self.worker()?;
        w.run(move |tpm| IdentityStore::new(&s.dir).create(tpm).map(drop))
            .await
    }

    pub async fn rotate(&self) -> Result<String, TpmError> {
        let (s, w) = self.worker()?;
        w.run(move |tpm| {
            IdentityStore::new(&s.dir)
                .rotate(tpm)
                .map(|i| i.fingerprint)
        })
        .await
    }

    pub async fn commit_rotation(&self) -> Result<String, TpmError> {
        let (s, w) = self.worker()?;
        w.run(move |_| {
            IdentityStore::new(&s.dir)
                .commit_rotation()
                .map(|i| i.fingerprint)
        })
        .await
    }

    pub async fn abort_rotation(&self) -> Result<(), TpmError> {
        let (s, w) = self.worker()?;
        w.run(move |_| IdentityStore::new(&s.dir).abort_rotation())
            .await
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The state when the TPM cannot be reached at all.
fn no_tpm(tcti: &str, e: &TpmError) -> IdentityInfo {
    IdentityInfo {
        state: "no-tpm".into(),
        detail: e.to_string(),
        tpm: tcti.to_string(),
        ..Default::default()
    }
}

/// Reads the TPM and checks that the stored key still loads (never creates anything).
pub fn examine(tpm: &mut crate::tpm::identity::Tpm, dir: &std::path::Path) -> IdentityInfo {
    let mut info = IdentityInfo::default();
    match tpm.info() {
        Ok(t) => {
            info.tpm = format!(
                "{} {} firmware {} via {}",
                t.manufacturer, t.vendor, t.firmware_version, t.tcti
            );
            info.software_tpm = t.software;
            info.ek_certificates = t.ek_certificates;
        }
        Err(e) => return no_tpm(tpm.tcti(), &e),
    }
    let store = IdentityStore::new(dir);
    if let Some(p) = store.pending_public() {
        info.pending_fingerprint = p.fingerprint;
    }
    match store.check(tpm) {
        Ok(id) => {
            info.state = "ok".into();
            info.fingerprint = id.fingerprint;
            info.public_key_pem = id.public_key_pem;
        }
        Err(TpmError::NoIdentity(_)) => {
            info.state = "none".into();
            info.detail = format!(
                "no identity in {}: `hardenctl identity create`",
                dir.display()
            );
        }
        Err(e @ TpmError::Lost { .. }) => {
            info.state = "lost".into();
            info.detail = e.to_string();
            if let Ok(id) = store.public() {
                info.fingerprint = id.fingerprint;
                info.public_key_pem = id.public_key_pem;
            }
        }
        Err(e) => {
            info.state = "error".into();
            info.detail = e.to_string();
        }
    }
    info
}
