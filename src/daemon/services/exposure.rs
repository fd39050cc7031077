//! Each assigned unit's exposure for the metrics: systemd's number and the combined one
//! (hardend's proven layers credited, as `hardenctl audit` computes them), recomputed only
//! when the unit's process, profile or state changes. systemd is asked for the unit's
//! properties (bounded by a timeout); the profile is read on the verification pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::ServiceManager;
use crate::audit::exposure::{Policy, SecurityInfo};
use crate::audit::layers::Evidence;
use crate::audit::syscalls::Resolver;
use crate::daemon::lock;

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// (unit, pid, profile hash, state)
type Key = (String, u32, String, String);

/// What was computed, and the table of the systemd on this device.
#[derive(Default)]
pub struct ExposureCache {
    policy: Option<Policy>,
    resolver: Option<Resolver>,
    /// `None`: systemd did not answer for this key (not asked again until it changes).
    scores: HashMap<Key, Option<(u64, u64)>>,
}

/// Per unit: (systemd's exposure, combined exposure), in tenths.
pub type Exposures = BTreeMap<String, (u64, u64)>;

impl ServiceManager {
    /// Every assigned unit's exposure (units systemd does not answer for are left out).
    pub async fn exposures(&self, cache: &Mutex<ExposureCache>) -> Exposures {
        let Some(sd) = self.systemd.as_ref() else {
            return Exposures::new();
        };
        if lock(cache).policy.is_none() {
            let Ok(Ok(version)) = tokio::time::timeout(ASK_TIMEOUT, sd.version()).await else {
                return Exposures::new();
            };
            let major = version
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let Ok(policy) = Policy::for_version(major) else {
                return Exposures::new();
            };
            let mut c = lock(cache);
            c.policy = Some(policy);
            c.resolver = Some(Resolver::new());
        }
        let loader = Self::loader(&lock(&self.state).cfg);
        let mut out = Exposures::new();
        let mut seen = Vec::new();
        for s in self.services() {
            let key: Key = (
                s.unit.clone(),
                s.pid,
                s.profile_hash.clone(),
                s.state.as_str().to_string(),
            );
            seen.push(key.clone());
            if let Some(v) = lock(cache).scores.get(&key) {
                if let Some(v) = v {
                    out.insert(s.unit.clone(), *v);
                }
                continue;
            }
            let info = match tokio::time::timeout(ASK_TIMEOUT, sd.unit_properties(&s.unit)).await {
                Ok(Ok(props)) => SecurityInfo::from_properties(&props),
                _ => {
                    lock(cache).scores.insert(key, None);
                    continue;
                }
            };
            if !info.loaded() {
                lock(cache).scores.insert(key, None);
                continue;
            }
            let profile = if s.state.is_confined() {
                let (l, name) = (loader.clone(), s.profile.clone());
                self.workers
                    .run("reading a profile for the exposure", move || l.load(&name))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .filter(|p| p.policy_hash() == s.profile_hash)
            } else {
                None
            };
            let evidence = Evidence::Running(s.proven());
            let c = lock(cache);
            let (Some(policy), Some(resolver)) = (c.policy.as_ref(), c.resolver.as_ref()) else {
                continue;
            };
            let exists = |n: &str| resolver.exists(n);
            let scored = crate::audit::score(
                policy,
                &info,
                profile.as_ref().map(|p| (p, &evidence)),
                &exists,
            );
            drop(c);
            let v = (scored.systemd.tenths, scored.combined.tenths);
            lock(cache).scores.insert(key, Some(v));
            out.insert(s.unit.clone(), v);
        }
        lock(cache).scores.retain(|k, _| seen.contains(k));
        out
    }
}
