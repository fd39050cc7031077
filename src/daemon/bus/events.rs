//! Security events: a D-Bus signal and a journal entry with a stable MESSAGE_ID each
//! (the IDs are in `api::message_ids`).

use zbus::object_server::SignalEmitter;

use super::{Identity, Integrity, Manager, Verity, Vulns};
use crate::api::message_ids::{
    ENFORCEMENT_CHANGED, IDENTITY_CHANGED, NOT_ENFORCED, VERITY_CORRUPTION, VERITY_UNVERIFIED,
    VULNS_FEED_REFUSED, VULNS_FOUND,
};
use crate::api::{VerityInfo, VerityState};
use crate::daemon::Pillars;
use crate::daemon::identity::IdentityChange;
use crate::daemon::services::Change;
use crate::daemon::vulns::Evaluation;
use crate::integrity::Violation;
use crate::vulns::matching::Verdict;

/// Emits `ServiceEnforcementChanged` and logs the change.
pub async fn enforcement_changed(emitter: &SignalEmitter<'_>, c: &Change) {
    let i = &c.info;
    if i.state.is_bad() {
        tracing::warn!(
            message_id = NOT_ENFORCED,
            unit = %i.unit,
            profile = %i.profile,
            old_state = %c.old,
            new_state = %i.state,
            "{} is {} (profile {}): {}",
            i.unit, i.state, i.profile, i.detail
        );
    } else {
        tracing::info!(
            message_id = ENFORCEMENT_CHANGED,
            unit = %i.unit,
            profile = %i.profile,
            old_state = %c.old,
            new_state = %i.state,
            "{} is {} (profile {}): {}",
            i.unit, i.state, i.profile, i.detail
        );
    }
    if let Err(e) = Manager::service_enforcement_changed(
        emitter,
        &i.unit,
        &i.profile,
        &c.old,
        i.state.as_str(),
        &i.detail,
    )
    .await
    {
        tracing::warn!("cannot emit ServiceEnforcementChanged: {e}");
    }
}

/// Emits every change in `changes`.
pub async fn enforcement_changes(emitter: &SignalEmitter<'_>, changes: &[Change]) {
    for c in changes {
        enforcement_changed(emitter, c).await;
    }
}

/// Emits `VerityCorruption` and logs it: the read-only root changed, or is not the verified
/// root at all (unverified, misconfigured, the wrong root hash).
pub async fn verity_corruption(emitter: &SignalEmitter<'_>, c: &VerityInfo) {
    let (message_id, what) = if c.state == VerityState::Corrupted {
        (
            VERITY_CORRUPTION,
            format!("dm-verity corruption on {}", c.device),
        )
    } else {
        (VERITY_UNVERIFIED, "not the verified root".to_string())
    };
    tracing::error!(
        message_id,
        device = %c.device,
        root_hash = %c.root_hash,
        state = %c.state,
        "{what} ({} {}): {}",
        c.mountpoint, c.state, c.detail
    );
    if let Err(e) = Verity::verity_corruption(emitter, &c.device, &c.root_hash, &c.detail).await {
        tracing::warn!("cannot emit VerityCorruption: {e}");
    }
}

/// Emits `StateChanged` on org.hardend1.Identity and logs it; losing the identity is an
/// error (the device can no longer prove who it is), anything else a notice.
pub async fn identity_changed(emitter: &SignalEmitter<'_>, c: &IdentityChange) {
    let i = &c.info;
    if i.state.is_bad() {
        tracing::error!(
            message_id = IDENTITY_CHANGED,
            old_state = %c.old,
            new_state = %i.state,
            fingerprint = %i.fingerprint,
            "device identity {} (was {}): {}",
            i.state, c.old, i.detail
        );
    } else {
        tracing::info!(
            message_id = IDENTITY_CHANGED,
            old_state = %c.old,
            new_state = %i.state,
            fingerprint = %i.fingerprint,
            "device identity {} (was {})",
            i.state, c.old
        );
    }
    if let Err(e) =
        Identity::state_changed(emitter, c.old.as_str(), i.state.as_str(), &i.detail).await
    {
        tracing::warn!("cannot emit StateChanged: {e}");
    }
}

/// Emits `IntegrityViolation` (the journal entry was written where it was found).
pub async fn integrity_violation(emitter: &SignalEmitter<'_>, v: &Violation) {
    if let Err(e) = Integrity::integrity_violation(
        emitter,
        &v.path,
        v.kind.as_str(),
        &v.expected,
        &v.actual,
        &v.set,
        v.severity.as_str(),
    )
    .await
    {
        tracing::warn!("cannot emit IntegrityViolation: {e}");
    }
}

/// After an evaluation of the vulnerability feed: `VulnerabilitiesFound` with the CVEs that
/// newly affect installed packages, `FeedRefused` for a refused feed, each with its journal
/// entry (one per evaluation, the CVE ids in the `CVES` field).
pub async fn vulns_evaluated(emitter: &SignalEmitter<'_>, ev: &Evaluation) {
    let i = &ev.info;
    if let Some(why) = &ev.refused {
        tracing::error!(
            message_id = VULNS_FEED_REFUSED,
            feed = %i.feed,
            "vulnerability feed refused: {why}"
        );
        if let Err(e) = Vulns::feed_refused(emitter, &i.feed, why).await {
            tracing::warn!("cannot emit FeedRefused: {e}");
        }
    }
    if let Some(why) = &ev.error {
        tracing::error!(feed = %i.feed, "vulnerability status unknown: {why}");
    }
    if ev.new.is_empty() {
        if ev.refused.is_none() && ev.error.is_none() {
            tracing::info!(
                feed = %i.feed,
                feed_sha256 = %i.feed_sha256,
                "vulnerability feed matched ({}): nothing new; {} with a fix available, {} open, {} no-dsa",
                i.release, i.fix_available, i.open, i.no_dsa
            );
        }
        return;
    }
    let fixable = ev
        .new
        .iter()
        .filter(|f| f.verdict == Verdict::FixAvailable)
        .count();
    let ids: Vec<&str> = ev.new.iter().map(|f| f.cve.as_str()).collect();
    let shown = ids.iter().take(10).copied().collect::<Vec<_>>().join(", ");
    let more = if ids.len() > 10 {
        format!(" and {} more", ids.len() - 10)
    } else {
        String::new()
    };
    tracing::warn!(
        message_id = VULNS_FOUND,
        feed = %i.feed,
        feed_sha256 = %i.feed_sha256,
        cves = %ids.join(" "),
        "{} CVEs newly affect installed packages ({fixable} with a fix available): {shown}{more}",
        ids.len()
    );
    if let Err(e) = Vulns::vulnerabilities_found(emitter, ev.new.clone()).await {
        tracing::warn!("cannot emit VulnerabilitiesFound: {e}");
    }
}

/// After a configuration reload: the identity and the verified root re-checked, `[services]`
/// applied, every unit verified, each change signalled.
pub async fn after_reload(p: &Pillars, emitter: &SignalEmitter<'_>) {
    if let Some(c) = p.identity.refresh().await {
        identity_changed(emitter, &c).await;
    }
    if let Some(c) = p.verity.refresh().await {
        verity_corruption(emitter, &c).await;
    }
    for e in p.services.apply_configured().await {
        tracing::warn!("[services]: {e}");
    }
    enforcement_changes(emitter, &p.services.verify_all().await).await;
}
