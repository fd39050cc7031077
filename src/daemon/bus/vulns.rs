//! `org.hardend1.Vulns`: the installed packages against the signed vulnerability feed.
//! The state, the counts and the findings are open to everyone (dpkg's status and the feed
//! are world-readable anyway); Evaluate — a full read and match of the feed — is root's.

use std::sync::Arc;

use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface, message::Header};

use super::{auth, events};
use crate::api::{VulnFinding, VulnsInfo, VulnsState};
use crate::daemon::Pillars;

pub struct Vulns {
    pub pillars: Arc<Pillars>,
}

#[interface(name = "org.hardend1.Vulns")]
impl Vulns {
    /// ok | fix-available | refused | error | disabled | starting
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.pillars.vulns.info().state.as_str().into()
    }

    /// CVEs of installed packages with a fix in the release.
    #[zbus(property(emits_changed_signal = "false"))]
    fn fix_available(&self) -> u32 {
        self.pillars.vulns.info().fix_available
    }

    /// Everything but the findings in one structure.
    fn status(&self) -> (VulnsInfo,) {
        (self.pillars.vulns.info(),)
    }

    /// Every CVE affecting an installed package now (fix-available, open, no-dsa).
    fn list_findings(&self) -> Vec<VulnFinding> {
        self.pillars.vulns.findings()
    }

    /// Reads, verifies and matches the feed now, changed or not; returns when done. Root
    /// only.
    async fn evaluate(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(VulnsInfo,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Evaluate").await?;
        if self.pillars.vulns.info().state == VulnsState::Disabled {
            return Err(fdo::Error::NotSupported(
                "no vulnerability feed is configured ([vulns] feed in hardend.toml)".into(),
            ));
        }
        if let Some(ev) = self.pillars.vulns.check(true).await {
            events::vulns_evaluated(&emitter, &ev).await;
        }
        Ok((self.pillars.vulns.info(),))
    }

    /// CVEs that newly affect installed packages: every affecting one on the daemon's
    /// first evaluation, then those the previous verified evaluation did not list.
    #[zbus(signal)]
    pub async fn vulnerabilities_found(
        emitter: &SignalEmitter<'_>,
        findings: Vec<VulnFinding>,
    ) -> zbus::Result<()>;

    /// A delivered feed did not verify or parse; the last verified one's findings stay.
    #[zbus(signal)]
    pub async fn feed_refused(
        emitter: &SignalEmitter<'_>,
        feed: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}
