//! The structures sent on the bus (D-Bus structs; signatures in docs/dbus.md), and how they
//! are made from the domain types they carry. `hardenctl --json` prints these same structs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zbus::zvariant::{Signature, Type};

use super::state::{
    DaemonState, IdentityState, IntegrityState, ServiceState, VerityState, VulnsState,
};
use crate::confine::caps::names_of_mask;
use crate::integrity::log::Event;
use crate::integrity::{ChangeKind, Severity, Violation};
use crate::profile::Profile;
use crate::proof::ProcStatus;
use crate::tpm::quote::QuoteBundle;
use crate::tpm::status::{Examination, KeyState};
use crate::verity::runtime::{RootState, VerityCheck};
use crate::vulns::matching::{Counts, Finding, Verdict};

// The integrity module's own enums travel as their serde strings.
impl Type for ChangeKind {
    const SIGNATURE: &'static Signature = &Signature::Str;
}
impl Type for Severity {
    const SIGNATURE: &'static Signature = &Signature::Str;
}

/// The kernel's view of a confined process, as the bus carries it: `(buuasasasasbbas)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct KernelView {
    pub no_new_privs: bool,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp_mode: u32,
    pub seccomp_filters: u32,
    pub cap_permitted: Vec<String>,
    pub cap_effective: Vec<String>,
    pub cap_bounding: Vec<String>,
    pub cap_ambient: Vec<String>,
    /// Runs in a mount namespace other than its parent's (mount IDs in mountinfo).
    pub own_mount_namespace: bool,
    /// Its `/` is mounted read-only.
    pub root_read_only: bool,
    /// The mount points writable in its view (`/proc/PID/mountinfo`).
    pub writable_mounts: Vec<String>,
}

impl From<&ProcStatus> for KernelView {
    fn from(s: &ProcStatus) -> Self {
        let names = |m: u64| names_of_mask(&format!("{m:x}"));
        KernelView {
            no_new_privs: s.no_new_privs,
            seccomp_mode: s.seccomp,
            seccomp_filters: s.seccomp_filters,
            cap_permitted: names(s.cap_permitted),
            cap_effective: names(s.cap_effective),
            cap_bounding: names(s.cap_bounding),
            cap_ambient: names(s.cap_ambient),
            own_mount_namespace: false,
            root_read_only: false,
            writable_mounts: Vec::new(),
        }
    }
}

impl KernelView {
    /// Adds what `/proc/PID/mountinfo` says.
    pub fn with_mounts(mut self, v: &crate::proof::mounts::MountView) -> Self {
        self.own_mount_namespace = v.own_namespace;
        self.root_read_only = v.root_read_only;
        self.writable_mounts = v.writable.clone();
        self
    }
}

/// The rules of the assigned profile that go beyond Landlock's paths: `(asasasb)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct RulesView {
    /// Capabilities the profile lets the service keep.
    pub capabilities: Vec<String>,
    /// Namespaces it may create or join.
    pub namespaces: Vec<String>,
    /// Socket address families (inet/inet6 are TCP only).
    pub families: Vec<String>,
    pub udp: bool,
}

impl From<&Profile> for RulesView {
    fn from(p: &Profile) -> Self {
        RulesView {
            capabilities: p.process.capabilities.iter().cloned().collect(),
            namespaces: p
                .process
                .namespaces
                .iter()
                .map(|n| n.as_str().to_string())
                .collect(),
            families: p.network.families.iter().cloned().collect(),
            udp: p.network.udp,
        }
    }
}

/// One confined (or assigned) unit: `(sssssuussss(bubasasasasbbas)(asasasb))`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ServiceInfo {
    pub unit: String,
    pub profile: String,
    pub state: ServiceState,
    /// Why, in one sentence.
    pub detail: String,
    /// Where the assignment comes from: config | dropin | runtime-dropin | record
    pub source: String,
    /// MainPID (0: not running).
    pub pid: u32,
    /// Landlock ABI used for this process (0: unknown or none).
    pub landlock_abi: u32,
    /// full | partial | none | "" (unknown)
    pub landlock: String,
    /// enforce | complain | none | "" (unknown)
    pub seccomp: String,
    /// The profile hash the process runs with ("" when unknown).
    pub profile_hash: String,
    /// When the process was confined (RFC 3339), "" when unknown.
    pub since: String,
    /// The kernel's view of the running process (`/proc/PID/status`); empty when not running.
    pub kernel: KernelView,
    /// The assigned profile's capability, namespace and socket rules.
    pub rules: RulesView,
    /// For each confinement layer of the running process: kernel-verified or claimed.
    pub proofs: Vec<LayerProof>,
}

impl ServiceInfo {
    /// What the kernel proved about the running process, for the audit's credits.
    pub fn proven(&self) -> crate::audit::layers::Proven {
        let verified = |l: crate::api::Layer| {
            self.proofs
                .iter()
                .any(|p| p.layer == l && p.proof == crate::api::Proof::KernelVerified)
        };
        let caps = |v: &[String]| crate::audit::layers::cap_mask(v.iter().map(String::as_str));
        let capabilities = verified(crate::api::Layer::Capabilities);
        crate::audit::layers::Proven {
            fully_enforced: self.state == crate::api::ServiceState::Enforced
                && self.landlock == "full",
            no_new_privs: verified(crate::api::Layer::NoNewPrivs) && self.kernel.no_new_privs,
            seccomp: verified(crate::api::Layer::Seccomp),
            cap_bounding: capabilities.then(|| caps(&self.kernel.cap_bounding)),
            cap_ambient: capabilities.then(|| caps(&self.kernel.cap_ambient)),
            own_mount_namespace: verified(crate::api::Layer::ReadOnlyView)
                && self.kernel.own_mount_namespace,
            root_read_only: verified(crate::api::Layer::ReadOnlyView) && self.kernel.root_read_only,
            writable_mounts: self.kernel.writable_mounts.clone(),
        }
    }
}

/// One layer's proof: `(sss)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct LayerProof {
    pub layer: crate::api::Layer,
    pub proof: crate::api::Proof,
    /// What was read, or why it could not be.
    pub detail: String,
}

impl ServiceInfo {
    /// A unit with `state` and nothing known about a process yet.
    pub fn new(
        unit: &str,
        profile: &str,
        source: &str,
        state: ServiceState,
        detail: impl Into<String>,
    ) -> Self {
        ServiceInfo {
            unit: unit.into(),
            profile: profile.into(),
            state,
            detail: detail.into(),
            source: source.into(),
            pid: 0,
            landlock_abi: 0,
            landlock: String::new(),
            seccomp: String::new(),
            profile_hash: String::new(),
            since: String::new(),
            kernel: KernelView::default(),
            rules: RulesView::default(),
            proofs: Vec::new(),
        }
    }
}

/// Overall daemon state: `(sssuuuuubas)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct StatusInfo {
    pub version: String,
    pub state: DaemonState,
    /// Human summary of what is degraded ("" when ok).
    pub detail: String,
    pub kernel_landlock_abi: u32,
    pub services: u32,
    pub enforced: u32,
    /// Services in a bad state (not-enforced, stale, failed).
    pub problems: u32,
    /// Seconds between verification passes.
    pub verify_interval: u32,
    /// Whether systemd is reachable on the daemon's bus.
    pub systemd: bool,
    pub profile_path: Vec<String>,
}

/// A profile on the daemon's profile path: `(ssss)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ProfileInfo {
    pub name: String,
    pub path: String,
    pub description: String,
    /// "" when the profile is valid.
    pub error: String,
}

/// The runtime dm-verity check: `(sssssss)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VerityInfo {
    pub state: VerityState,
    pub mountpoint: String,
    /// The block device (`/dev/mapper/NAME` or the plain device).
    pub device: String,
    /// The root hash in the kernel's table ("" when not verity).
    pub root_hash: String,
    /// The expected root hash ("" when none is configured).
    pub expected_root_hash: String,
    /// Where the expected hash came from: config, hardend.verity.roothash=, roothash=.
    pub expected_source: String,
    pub detail: String,
}

impl From<VerityCheck> for VerityInfo {
    fn from(c: VerityCheck) -> Self {
        VerityInfo {
            state: match c.state {
                RootState::Verified => VerityState::Verified,
                RootState::Corrupted => VerityState::Corrupted,
                RootState::HashMismatch => VerityState::HashMismatch,
                RootState::NotVerity => VerityState::NotVerity,
                RootState::Unverified => VerityState::Unverified,
                RootState::Misconfigured => VerityState::Misconfigured,
                RootState::Unknown => VerityState::Unknown,
            },
            mountpoint: c.mountpoint,
            device: c.device,
            root_hash: c.root_hash,
            expected_root_hash: c.expected_root_hash,
            expected_source: c.expected_source,
            detail: c.detail,
        }
    }
}

impl Default for VerityInfo {
    fn default() -> Self {
        VerityCheck::default().into()
    }
}

/// The device identity: `(ssssssbas)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct IdentityInfo {
    pub state: IdentityState,
    /// Why, in one sentence ("" when ok).
    pub detail: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex ("" when there is no key).
    pub fingerprint: String,
    pub public_key_pem: String,
    /// The next identity's fingerprint while a rotation is pending, else "".
    pub pending_fingerprint: String,
    /// Manufacturer, vendor, firmware and TCTI.
    pub tpm: String,
    /// A software TPM protects nothing on a real device.
    pub software_tpm: bool,
    /// EK certificates present in NV, e.g. `ecc-p256 (0x01c0000a)`.
    pub ek_certificates: Vec<String>,
}

impl IdentityInfo {
    /// A state with nothing else known.
    pub fn bare(state: IdentityState, detail: impl Into<String>) -> Self {
        IdentityInfo {
            state,
            detail: detail.into(),
            fingerprint: String::new(),
            public_key_pem: String::new(),
            pending_fingerprint: String::new(),
            tpm: String::new(),
            software_tpm: false,
            ek_certificates: Vec::new(),
        }
    }

    /// The TPM at `tcti` cannot be reached.
    pub fn no_tpm(tcti: &str, why: impl Into<String>) -> Self {
        IdentityInfo {
            tpm: tcti.into(),
            ..IdentityInfo::bare(IdentityState::NoTpm, why)
        }
    }

    /// What an examination of the TPM found; `dir` is named in the hint for a missing key.
    pub fn from_examination(e: Examination, dir: &std::path::Path) -> Self {
        let t = &e.tpm;
        let mut info = IdentityInfo::bare(IdentityState::Unknown, "");
        info.tpm = format!(
            "{} {} firmware {} via {}",
            t.manufacturer, t.vendor, t.firmware_version, t.tcti
        );
        info.software_tpm = t.software;
        info.ek_certificates = e.tpm.ek_certificates.clone();
        if let Some(p) = e.pending {
            info.pending_fingerprint = p.fingerprint;
        }
        match e.key {
            KeyState::Ok(id) => {
                info.state = IdentityState::Ok;
                info.fingerprint = id.fingerprint;
                info.public_key_pem = id.public_key_pem;
            }
            KeyState::None => {
                info.state = IdentityState::None;
                info.detail = format!(
                    "no identity in {}: `hardenctl identity create`",
                    dir.display()
                );
            }
            KeyState::Lost { public, why } => {
                info.state = IdentityState::Lost;
                info.detail = why;
                if let Some(id) = public {
                    info.fingerprint = id.fingerprint;
                    info.public_key_pem = id.public_key_pem;
                }
            }
            KeyState::Error(why) => {
                info.state = IdentityState::Error;
                info.detail = why;
            }
        }
        info
    }
}

/// A PCR quote, everything hex-encoded: `(sa{ys}ssss)`. The JSON bundle `hardenctl
/// identity quote` prints adds `format` and `pcr_bank`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct QuoteInfo {
    pub nonce: String,
    /// sha256 PCR index → value.
    pub pcrs: BTreeMap<u8, String>,
    /// The marshalled TPMS_ATTEST the TPM signed.
    pub attest: String,
    /// The marshalled TPMT_SIGNATURE over `attest`.
    pub signature: String,
    /// The attestation key's TPM2B_PUBLIC.
    pub ak_public: String,
    /// The attestation key's name.
    pub ak_name: String,
}

impl From<QuoteBundle> for QuoteInfo {
    fn from(q: QuoteBundle) -> Self {
        QuoteInfo {
            nonce: q.nonce,
            pcrs: q.pcrs,
            attest: q.attest,
            signature: q.signature,
            ak_public: q.ak_public,
            ak_name: q.ak_name,
        }
    }
}

impl From<QuoteInfo> for QuoteBundle {
    fn from(q: QuoteInfo) -> Self {
        QuoteBundle {
            format: crate::tpm::quote::FORMAT.into(),
            nonce: q.nonce,
            pcr_bank: "sha256".into(),
            pcrs: q.pcrs,
            attest: q.attest,
            signature: q.signature,
            ak_public: q.ak_public,
            ak_name: q.ak_name,
        }
    }
}

/// The integrity monitor: `(ssuuttsuttbtttt)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct IntegrityInfo {
    pub state: IntegrityState,
    pub detail: String,
    pub violations: u32,
    /// Paths in the baseline.
    pub entries: u32,
    /// When the baseline was made (seconds since the epoch; 0: none).
    pub baseline_created: u64,
    /// When the last full scan finished (0: none yet).
    pub last_scan: u64,
    /// tpm | file | "" (which key protects the baseline)
    pub key: String,
    /// inotify watches in use.
    pub watches: u32,
    /// Directories and files that could not be watched (budget, kernel limit).
    pub unwatched: u64,
    /// Rescans forced by queue overflows or missing watches.
    pub rescans: u64,
    pub scanning: bool,
    pub scan_files: u64,
    pub scan_total: u64,
    pub scan_bytes: u64,
    /// The baseline's generation (every baseline written counts one); with key `tpm` it
    /// equals the TPM's monotonic counter, so an older one put back is `tampered`.
    pub generation: u64,
}

impl IntegrityInfo {
    pub fn new(state: IntegrityState) -> Self {
        IntegrityInfo {
            state,
            detail: String::new(),
            violations: 0,
            entries: 0,
            baseline_created: 0,
            last_scan: 0,
            key: String::new(),
            watches: 0,
            unwatched: 0,
            rescans: 0,
            scanning: false,
            scan_files: 0,
            scan_total: 0,
            scan_bytes: 0,
            generation: 0,
        }
    }
}

/// One violation: `(sssssst)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct ViolationInfo {
    pub path: String,
    pub kind: ChangeKind,
    pub expected: String,
    pub actual: String,
    pub set: String,
    pub severity: Severity,
    pub time: u64,
}

impl From<Violation> for ViolationInfo {
    fn from(v: Violation) -> Self {
        ViolationInfo {
            path: v.path,
            kind: v.kind,
            expected: v.expected,
            actual: v.actual,
            set: v.set,
            severity: v.severity,
            time: v.time,
        }
    }
}

/// One logged integrity event: `(tsssssss)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct EventInfo {
    pub time: u64,
    /// violation | cleared | accepted | rescan | baseline | tampered | folded
    pub event: String,
    pub path: String,
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub set: String,
    pub severity: String,
}

impl From<Event> for EventInfo {
    fn from(e: Event) -> Self {
        EventInfo {
            time: e.time,
            event: e.event,
            path: e.path,
            kind: e.kind,
            expected: e.expected,
            actual: e.actual,
            set: e.set,
            severity: e.severity,
        }
    }
}

/// `CheckProfile`'s answer: `(bsas)`, three out arguments.
pub type ProfileCheck = (bool, String, Vec<String>);

/// `AcceptFromDpkg`'s answer: the accepted paths and the refused ones with the reason.
pub type DpkgAcceptance = (Vec<String>, Vec<(String, String)>);

impl Type for Verdict {
    const SIGNATURE: &'static Signature = &Signature::Str;
}

/// The vulnerability status: `(ssssstuuuuus)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VulnsInfo {
    pub state: VulnsState,
    /// The configured feed ("" when disabled).
    pub feed: String,
    /// SHA-256 of the feed the findings come from ("" before one verified).
    pub feed_sha256: String,
    /// The release matched (a codename for the tracker, a version number for OSV).
    pub release: String,
    /// tracker | osv
    pub format: String,
    /// When the findings were last computed (seconds since the epoch; 0: never).
    pub evaluated: u64,
    pub fix_available: u32,
    pub open: u32,
    pub no_dsa: u32,
    /// CVEs of installed sources fixed in the installed version.
    pub fixed: u32,
    /// CVEs the feed marks as not affecting this release or the installed version.
    pub not_affected: u32,
    /// Why the state is what it is (the refusal, the error).
    pub detail: String,
}

impl VulnsInfo {
    pub fn new(state: VulnsState) -> Self {
        VulnsInfo {
            state,
            feed: String::new(),
            feed_sha256: String::new(),
            release: String::new(),
            format: String::new(),
            evaluated: 0,
            fix_available: 0,
            open: 0,
            no_dsa: 0,
            fixed: 0,
            not_affected: 0,
            detail: String::new(),
        }
    }

    /// A match's counts, and the state they make (`fix-available` when any fix waits).
    pub fn set_counts(&mut self, c: &Counts) {
        let n = |c: usize| u32::try_from(c).unwrap_or(u32::MAX);
        self.fix_available = n(c.fix_available);
        self.open = n(c.open);
        self.no_dsa = n(c.no_dsa);
        self.fixed = n(c.fixed);
        self.not_affected = n(c.not_affected);
        self.state = if c.fix_available > 0 {
            VulnsState::FixAvailable
        } else {
            VulnsState::Ok
        };
    }

    /// The counts as `hardenctl vulns --feed` reports them.
    pub fn counts(&self) -> Counts {
        Counts {
            fix_available: self.fix_available as usize,
            open: self.open as usize,
            no_dsa: self.no_dsa as usize,
            fixed: self.fixed as usize,
            not_affected: self.not_affected as usize,
        }
    }
}

/// One CVE affecting an installed source package: `(ssssssas)` (`fixed_version` "" unless
/// the verdict is fix-available).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VulnFinding {
    pub cve: String,
    pub source: String,
    pub installed: String,
    pub verdict: Verdict,
    pub fixed_version: String,
    pub urgency: String,
    pub packages: Vec<String>,
}

impl From<Finding> for VulnFinding {
    fn from(f: Finding) -> Self {
        VulnFinding {
            cve: f.cve,
            source: f.source,
            installed: f.installed,
            verdict: f.verdict,
            fixed_version: f.fixed_version.unwrap_or_default(),
            urgency: f.urgency,
            packages: f.packages,
        }
    }
}

impl From<VulnFinding> for Finding {
    fn from(f: VulnFinding) -> Self {
        Finding {
            cve: f.cve,
            source: f.source,
            installed: f.installed,
            verdict: f.verdict,
            fixed_version: (!f.fixed_version.is_empty()).then_some(f.fixed_version),
            urgency: f.urgency,
            packages: f.packages,
        }
    }
}
