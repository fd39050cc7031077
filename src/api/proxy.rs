//! Client proxies for the five interfaces (zbus generates the code). A method that answers
//! with one structure returns a 1-tuple: the structure is the reply's single argument. The daemon's
//! `#[interface]` implementations in `daemon/bus/` serve exactly these; the checked-in
//! `org.hardend1.xml` and the introspection test keep the two and third-party clients in step.

use zbus::proxy;

use super::types::{
    DpkgAcceptance, EventInfo, IdentityInfo, IntegrityInfo, ProfileCheck, ProfileInfo, QuoteInfo,
    ServiceInfo, StatusInfo, VerityInfo, ViolationInfo, VulnFinding, VulnsInfo,
};
use crate::tpm::enroll::Enrollment;

/// `org.hardend1.Manager`: status, confined services, confine/release, reload, profiles.
#[proxy(
    interface = "org.hardend1.Manager",
    default_service = "org.hardend1",
    default_path = "/org/hardend1",
    gen_blocking = false
)]
pub trait Manager {
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> zbus::Result<String>;
    fn status(&self) -> zbus::Result<(StatusInfo,)>;
    fn list_services(&self) -> zbus::Result<Vec<ServiceInfo>>;
    fn get_service(&self, unit: &str) -> zbus::Result<(ServiceInfo,)>;
    fn confine(
        &self,
        unit: &str,
        profile: &str,
        runtime: bool,
        no_restart: bool,
    ) -> zbus::Result<(ServiceInfo,)>;
    fn release(&self, unit: &str, no_restart: bool) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    fn list_profiles(&self) -> zbus::Result<Vec<ProfileInfo>>;
    fn check_profile(&self, name_or_path: &str) -> zbus::Result<ProfileCheck>;
    fn check_profile_document(&self, document: &str, label: &str) -> zbus::Result<ProfileCheck>;
    #[zbus(signal)]
    fn service_enforcement_changed(
        &self,
        unit: &str,
        profile: &str,
        old_state: &str,
        new_state: &str,
        detail: &str,
    ) -> zbus::Result<()>;
}

/// `org.hardend1.Verity`: the root file system's dm-verity state.
#[proxy(
    interface = "org.hardend1.Verity",
    default_service = "org.hardend1",
    default_path = "/org/hardend1",
    gen_blocking = false
)]
pub trait Verity {
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn root_hash(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn expected_root_hash(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn device(&self) -> zbus::Result<String>;
    fn check(&self) -> zbus::Result<(VerityInfo,)>;
    #[zbus(signal)]
    fn verity_corruption(&self, device: &str, root_hash: &str, detail: &str) -> zbus::Result<()>;
}

/// `org.hardend1.Identity`: the device key in the TPM.
#[proxy(
    interface = "org.hardend1.Identity",
    default_service = "org.hardend1",
    default_path = "/org/hardend1",
    gen_blocking = false
)]
pub trait Identity {
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn public_key(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn fingerprint(&self) -> zbus::Result<String>;
    fn check(&self) -> zbus::Result<(IdentityInfo,)>;
    fn sign(&self, nonce: Vec<u8>) -> zbus::Result<Vec<u8>>;
    fn quote(&self, nonce: Vec<u8>, pcrs: Vec<u8>) -> zbus::Result<(QuoteInfo,)>;
    fn csr(&self, subject: String, next: bool) -> zbus::Result<String>;
    fn enroll(&self, ek: String, subject: String) -> zbus::Result<(Enrollment,)>;
    fn activate_credential(
        &self,
        ek: String,
        credential_blob: Vec<u8>,
        secret: Vec<u8>,
    ) -> zbus::Result<Vec<u8>>;
    fn create(&self) -> zbus::Result<(IdentityInfo,)>;
    fn rotate(&self) -> zbus::Result<String>;
    fn commit_rotation(&self) -> zbus::Result<String>;
    fn abort_rotation(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn state_changed(&self, old_state: &str, new_state: &str, detail: &str) -> zbus::Result<()>;
}

/// `org.hardend1.Integrity`: the integrity monitor.
#[proxy(
    interface = "org.hardend1.Integrity",
    default_service = "org.hardend1",
    default_path = "/org/hardend1",
    gen_blocking = false
)]
pub trait Integrity {
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn violations(&self) -> zbus::Result<u32>;
    fn status(&self) -> zbus::Result<(IntegrityInfo,)>;
    fn list_violations(&self) -> zbus::Result<Vec<ViolationInfo>>;
    fn events(&self, count: u32) -> zbus::Result<Vec<EventInfo>>;
    fn init(&self) -> zbus::Result<(IntegrityInfo,)>;
    fn scan(&self) -> zbus::Result<(IntegrityInfo,)>;
    fn accept(&self, paths: Vec<String>) -> zbus::Result<u32>;
    fn dpkg_hold(&self, admin_dir: String) -> zbus::Result<()>;
    fn accept_from_dpkg(&self, admin_dir: String) -> zbus::Result<DpkgAcceptance>;
    #[zbus(signal)]
    fn integrity_violation(
        &self,
        path: &str,
        kind: &str,
        expected: &str,
        actual: &str,
        set: &str,
        severity: &str,
    ) -> zbus::Result<()>;
}

/// `org.hardend1.Vulns`: the installed packages against the signed vulnerability feed.
#[proxy(
    interface = "org.hardend1.Vulns",
    default_service = "org.hardend1",
    default_path = "/org/hardend1",
    gen_blocking = false
)]
pub trait Vulns {
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn fix_available(&self) -> zbus::Result<u32>;
    fn status(&self) -> zbus::Result<(VulnsInfo,)>;
    fn list_findings(&self) -> zbus::Result<Vec<VulnFinding>>;
    fn evaluate(&self) -> zbus::Result<(VulnsInfo,)>;
    #[zbus(signal)]
    fn vulnerabilities_found(&self, findings: Vec<VulnFinding>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn feed_refused(&self, feed: &str, reason: &str) -> zbus::Result<()>;
}
