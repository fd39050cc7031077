//! What protects the baseline against an offline attacker (the disk edited while the device
//! is off): its MAC key and its generation.
//!
//! * With a TPM configured the key is sealed in it, always: a TPM that cannot seal is an
//!   error, never a key file, and a key file found beside a configured TPM is not trusted.
//! * The TPM's monotonic counter ([`nv::BASELINE_COUNTER`]) is the baseline's generation:
//!   a baseline older than the counter was put back (rollback), one without a counter was
//!   never this TPM's. The counter's existence also pins the key kind where a disk edit
//!   cannot reach: a TPM that holds it with no TPM configured, or with the sealed key gone,
//!   is `tampered`.
//! * Without a TPM the generation only counts (shown in the status): root, or whoever edits
//!   the disk, can put an older baseline and its key file back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Inner, IntegrityService};
use crate::integrity::IntegrityError;
use crate::integrity::db::Baseline;
use crate::integrity::key::{KeySource, MacKey};
use crate::tpm::identity::Tpm;
use crate::tpm::nv::{self, BASELINE_COUNTER, Counter};

/// The label the counter's authValue is derived from the MAC key with.
const COUNTER_AUTH: &[u8] = b"hardend baseline counter v1";
/// Where a TPM is looked for when none is configured (the kernel's resource manager).
const PROBE_DEVICE: &str = "/dev/tpmrm0";

fn sealed_path(dir: &Path) -> PathBuf {
    dir.join("mac-key.sealed.priv")
}

fn counter_secret(key: &MacKey) -> [u8; 32] {
    key.derive(COUNTER_AUTH)
}

impl IntegrityService {
    /// The key protecting the baseline. With `create`, a missing key is made — sealed in
    /// the TPM when one is configured (failing when it cannot be), a root-only file when
    /// none is. A sealed key is never bypassed and never replaced while the TPM still
    /// holds its counter.
    pub(super) async fn key(&self, create: bool) -> Result<Arc<MacKey>, IntegrityError> {
        let (dir, tpm) = {
            let s = self.inner.state();
            (s.cfg.dir.clone(), s.tpm.clone())
        };
        let sealed = MacKey::sealed_exists(&dir);
        let k = match (&tpm, sealed) {
            (Some(_), false) if !create => {
                return Err(IntegrityError::KeyMismatch {
                    path: sealed_path(&dir),
                    wanted: KeySource::Tpm.name(),
                    have: "a TPM is configured and there is no sealed key (with a TPM, a key file is never used): `hardenctl integrity init` seals a new one".into(),
                });
            }
            (Some(w), _) => {
                let d = dir.clone();
                if sealed && !MacKey::sealed_complete(&dir) {
                    return Err(IntegrityError::KeyMismatch {
                        path: sealed_path(&dir),
                        wanted: KeySource::Tpm.name(),
                        have: "one of mac-key.sealed.pub and mac-key.sealed.priv is missing (never re-sealed over the other): restore it, or move both away and run init".into(),
                    });
                }
                w.run(move |tpm| {
                    if !MacKey::sealed_exists(&d) {
                        let have = match nv::index(tpm, BASELINE_COUNTER)? {
                            nv::Index::Absent => None,
                            nv::Index::Hardends => Some(format!("the sealed key is gone while the TPM still holds hardend's baseline counter (NV 0x{BASELINE_COUNTER:08x}): someone deleted it. If that was you, remove the counter (`tpm2_nvundefine 0x{BASELINE_COUNTER:08x}`, owner authorization) and run init again")),
                            nv::Index::Foreign => Some(format!("NV index 0x{BASELINE_COUNTER:08x}, where hardend keeps its baseline counter, holds something else (defined by another user of the owner hierarchy: set an owner password). Remove it (`tpm2_nvundefine 0x{BASELINE_COUNTER:08x}`) and run init again")),
                        };
                        if let Some(have) = have {
                            return Ok(Err(IntegrityError::KeyMismatch {
                                path: sealed_path(&d),
                                wanted: KeySource::Tpm.name(),
                                have,
                            }));
                        }
                    }
                    Ok(MacKey::sealed(tpm, &d))
                })
                .await??
            }
            (None, true) => {
                return Err(IntegrityError::KeyMismatch {
                    path: sealed_path(&dir),
                    wanted: KeySource::Tpm.name(),
                    have: "no TPM is configured".into(),
                });
            }
            (None, false) => {
                if let Some(have) = probe_counter().await {
                    return Err(IntegrityError::KeyMismatch {
                        path: sealed_path(&dir),
                        wanted: KeySource::Tpm.name(),
                        have,
                    });
                }
                MacKey::file(&dir)?
            }
        };
        let k = Arc::new(k);
        let mut s = self.inner.state();
        s.key = Some(k.clone());
        s.info.key = match k.source {
            KeySource::Tpm => "tpm",
            KeySource::File => "file",
        }
        .into();
        Ok(k)
    }
}

impl IntegrityService {
    /// With no baseline on disk: whether one was made here before (then it was deleted):
    /// its key is there, or the TPM holds hardend's counter.
    pub(super) async fn baseline_was_made(&self) -> Option<String> {
        let (dir, tpm) = {
            let s = self.inner.state();
            (s.cfg.dir.clone(), s.tpm.clone())
        };
        if MacKey::sealed_exists(&dir) || dir.join("mac-key").exists() {
            return Some(format!("its key in {} is not", dir.display()));
        }
        match tpm {
            Some(w) => match w.run(|tpm| nv::exists(tpm, BASELINE_COUNTER)).await {
                Ok(true) => Some(format!(
                    "the TPM holds hardend's baseline counter (NV 0x{BASELINE_COUNTER:08x})"
                )),
                Ok(false) => None,
                Err(e) => {
                    tracing::warn!("integrity: cannot ask the TPM for hardend's counter: {e}");
                    None
                }
            },
            None => probe_counter().await,
        }
    }
}

/// With no TPM configured: whether the device's TPM nevertheless holds hardend's counter
/// (then the configuration was changed to get rid of it). A TPM that cannot be asked (no
/// device, no permission) says nothing.
async fn probe_counter() -> Option<String> {
    if !Path::new(PROBE_DEVICE).exists() {
        return None;
    }
    let found = tokio::task::spawn_blocking(|| {
        let mut tpm = Tpm::connect(&format!("device:{PROBE_DEVICE}"))?;
        nv::exists(&mut tpm, BASELINE_COUNTER)
    })
    .await;
    match found {
        Ok(Ok(true)) => Some(format!(
            "no TPM is configured, yet the TPM at {PROBE_DEVICE} holds hardend's baseline counter (NV 0x{BASELINE_COUNTER:08x}): this device's baseline is TPM-protected; configure [identity] tcti again"
        )),
        Ok(Ok(false)) => None,
        Ok(Err(e)) => {
            tracing::debug!("integrity: {PROBE_DEVICE} not asked for hardend's counter: {e}");
            None
        }
        Err(_) => None,
    }
}

impl Inner {
    /// The generation a new baseline gets: the TPM counter plus one with a sealed key (at
    /// `init`, the counter is defined when there is none), the current one plus one without.
    pub(super) fn next_generation(&self, key: &MacKey, init: bool) -> Result<u64, IntegrityError> {
        let (current, tpm, dir) = {
            let s = self.state();
            let g = s.monitor.baseline.as_ref().map_or(0, |b| b.generation);
            (g, s.tpm.clone(), s.cfg.dir.clone())
        };
        match (key.source, tpm) {
            (KeySource::File, _) => Ok(current + 1),
            (KeySource::Tpm, None) => Err(IntegrityError::KeyMismatch {
                path: sealed_path(&dir),
                wanted: KeySource::Tpm.name(),
                have: "no TPM is configured".into(),
            }),
            (KeySource::Tpm, Some(w)) => {
                let secret = counter_secret(key);
                // a counter left behind the baseline in memory (an increment that failed) is
                // moved first, or nothing is written: two baselines never share a generation
                let n = w.run_blocking(move |tpm| {
                    let mut n = match nv::read(tpm, BASELINE_COUNTER, &secret)? {
                        Counter::Value(n) => n,
                        Counter::Absent if init => nv::define(tpm, BASELINE_COUNTER, &secret)?,
                        Counter::Absent => return Ok(None),
                    };
                    while n < current {
                        n = nv::increment(tpm, BASELINE_COUNTER, &secret)?;
                    }
                    Ok(Some(n))
                })?;
                match n {
                    Some(n) => Ok(n + 1),
                    None => Err(IntegrityError::Rollback {
                        path: super::baseline_path(&dir),
                        found: current,
                        counter: 0,
                        why: "the TPM has no counter for it (deleted, or another TPM)",
                    }),
                }
            }
        }
    }

    /// A baseline of generation `g` is on disk: the TPM counter follows it. A failure here
    /// only delays it: the next load finds the baseline one ahead and moves the counter.
    pub(super) fn generation_written(&self, key: &MacKey, g: u64) {
        if key.source != KeySource::Tpm {
            return;
        }
        let Some(w) = self.state().tpm.clone() else {
            return;
        };
        let secret = counter_secret(key);
        let r = w.run_blocking(move |tpm| {
            let mut n = match nv::read(tpm, BASELINE_COUNTER, &secret)? {
                Counter::Value(n) => n,
                Counter::Absent => return Ok(0),
            };
            while n < g {
                n = nv::increment(tpm, BASELINE_COUNTER, &secret)?;
            }
            Ok(n)
        });
        if let Err(e) = r {
            tracing::warn!(
                "integrity: the TPM counter did not follow baseline generation {g}: {e}"
            );
        }
    }

    /// Whether the loaded baseline `b` is the newest this TPM knows: its generation equals
    /// the counter, or is one ahead (a write whose counter step was interrupted: the counter
    /// is moved). Anything else is a rollback or a baseline from elsewhere.
    pub(super) fn check_generation(
        &self,
        path: &Path,
        key: &MacKey,
        b: &Baseline,
    ) -> Result<(), IntegrityError> {
        if key.source != KeySource::Tpm {
            return Ok(());
        }
        let Some(w) = self.state().tpm.clone() else {
            return Ok(());
        };
        let secret = counter_secret(key);
        let counter = w.run_blocking(move |tpm| nv::read(tpm, BASELINE_COUNTER, &secret))?;
        let rollback = |counter, why| IntegrityError::Rollback {
            path: path.to_path_buf(),
            found: b.generation,
            counter,
            why,
        };
        match counter {
            Counter::Absent => Err(rollback(
                0,
                "the TPM has no counter for it (deleted, or another TPM)",
            )),
            Counter::Value(n) if b.generation == n => Ok(()),
            Counter::Value(n) if b.generation == n + 1 => {
                tracing::warn!(
                    "integrity: baseline generation {} is one ahead of the TPM counter ({n}): the last write was interrupted; moving the counter",
                    b.generation
                );
                self.generation_written(key, b.generation);
                Ok(())
            }
            Counter::Value(n) if b.generation < n => {
                Err(rollback(n, "an earlier generation was put back (rollback)"))
            }
            Counter::Value(n) => Err(rollback(
                n,
                "newer than the counter: not written with this TPM",
            )),
        }
    }
}
