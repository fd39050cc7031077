//! `org.hardend1.Identity`: the device key in the TPM. State and public key are readable by
//! everyone; a signature made by the device key speaks for the device, so Sign, Quote and
//! Csr are for root and the configured signers group; Create and rotation are root only.

use std::sync::Arc;

use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo, interface, message::Header};

use super::{auth, events};
use crate::api::{IdentityInfo, QuoteInfo};
use crate::daemon::Pillars;
use crate::tpm::TpmError;
use crate::tpm::enroll::Enrollment;

pub struct Identity {
    pub pillars: Arc<Pillars>,
}

fn failed(e: TpmError) -> fdo::Error {
    match e {
        TpmError::NoIdentity(_)
        | TpmError::Exists(_)
        | TpmError::RotationPending(_)
        | TpmError::NoRotation(_)
        | TpmError::Format(_) => fdo::Error::InvalidArgs(e.to_string()),
        e => fdo::Error::Failed(e.to_string()),
    }
}

impl Identity {
    async fn may_sign(&self, conn: &Connection, hdr: &Header<'_>, what: &str) -> fdo::Result<()> {
        let group = self.pillars.identity.signers_group();
        auth::require_root_or_group(conn, hdr, &self.pillars.services, &group, what).await
    }

    /// Re-checks after a state-changing call and signals a change.
    async fn after_change(&self, emitter: &SignalEmitter<'_>) {
        if let Some(c) = self.pillars.identity.refresh().await {
            events::identity_changed(emitter, &c).await;
        }
    }
}

#[interface(name = "org.hardend1.Identity")]
impl Identity {
    /// ok | none | lost | no-tpm | disabled | error | unknown
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.pillars.identity.info().state.as_str().into()
    }

    /// SubjectPublicKeyInfo, PEM ("" when there is no identity).
    #[zbus(property(emits_changed_signal = "false"))]
    fn public_key(&self) -> String {
        self.pillars.identity.info().public_key_pem
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, hex.
    #[zbus(property(emits_changed_signal = "false"))]
    fn fingerprint(&self) -> String {
        self.pillars.identity.info().fingerprint
    }

    /// Checks the TPM and the key again now; everything in one structure. For callers who
    /// are not root rate-limited (LimitsExceeded) and queued behind privileged TPM work.
    async fn check(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(IdentityInfo,)> {
        let identity = &self.pillars.identity;
        let change = if auth::caller_uid(conn, &hdr).await.ok() == Some(0) {
            identity.refresh().await
        } else {
            identity
                .refresh_unprivileged()
                .await
                .map_err(|e| fdo::Error::LimitsExceeded(e.to_string()))?
        };
        if let Some(c) = change {
            events::identity_changed(&emitter, &c).await;
        }
        Ok((identity.info(),))
    }

    /// DER ECDSA-SHA256 signature by the identity key over "hardend device statement v1\0"
    /// followed by `nonce` (1-1024 bytes); data beginning with ff544347 is refused.
    async fn sign(
        &self,
        nonce: Vec<u8>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<Vec<u8>> {
        self.may_sign(conn, &hdr, "Sign").await?;
        self.pillars.identity.sign(nonce).await.map_err(failed)
    }

    /// A PCR quote by the attestation key over sha256 `pcrs` (empty: 0-7) with `nonce`.
    async fn quote(
        &self,
        nonce: Vec<u8>,
        pcrs: Vec<u8>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(QuoteInfo,)> {
        self.may_sign(conn, &hdr, "Quote").await?;
        let q = self.pillars.identity.quote(nonce, pcrs).await;
        q.map(|q| (q,)).map_err(failed)
    }

    /// A PKCS#10 request, PEM, signed inside the TPM. `subject` "" = the configured one;
    /// `next`: for the pending identity of a rotation, to enrol it before committing.
    async fn csr(
        &self,
        subject: String,
        next: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.may_sign(conn, &hdr, "Csr").await?;
        let root = auth::caller_uid(conn, &hdr).await.ok() == Some(0);
        self.pillars
            .identity
            .csr(subject, next, root)
            .await
            .map_err(failed)
    }

    /// Enrolment material for a fleet CA (root): EK public area and certificate, the
    /// attestation key's TPM2B_PUBLIC and name, an identity CSR. `ek`: rsa2048 | ecc-p256.
    async fn enroll(
        &self,
        ek: String,
        subject: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<(Enrollment,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Enroll").await?;
        let r = self.pillars.identity.enroll(ek, subject).await;
        r.map(|e| (e,)).map_err(failed)
    }

    /// ActivateCredential (root): the secret of a fleet's MakeCredential challenge for this
    /// TPM's EK and the attestation key's name (TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET
    /// contents, without their size fields).
    async fn activate_credential(
        &self,
        ek: String,
        credential_blob: Vec<u8>,
        secret: Vec<u8>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<Vec<u8>> {
        auth::require_root(conn, &hdr, &self.pillars.services, "ActivateCredential").await?;
        self.pillars
            .identity
            .activate(ek, credential_blob, secret)
            .await
            .map_err(failed)
    }

    /// Creates the identity key; refused when one exists (also when it is lost).
    async fn create(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<(IdentityInfo,)> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Create").await?;
        let r = self.pillars.identity.create().await;
        self.after_change(&emitter).await;
        r.map_err(failed)?;
        Ok((self.pillars.identity.info(),))
    }

    /// Creates the next identity beside the current one (which stays in use); returns its
    /// fingerprint. Also the explicit way to replace a lost identity.
    async fn rotate(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<String> {
        auth::require_root(conn, &hdr, &self.pillars.services, "Rotate").await?;
        let r = self.pillars.identity.rotate().await;
        self.after_change(&emitter).await;
        r.map_err(failed)
    }

    /// Makes the pending identity current; the old key is deleted. Returns the fingerprint.
    async fn commit_rotation(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<String> {
        auth::require_root(conn, &hdr, &self.pillars.services, "CommitRotation").await?;
        let r = self.pillars.identity.commit_rotation().await;
        self.after_change(&emitter).await;
        r.map_err(failed)
    }

    /// Discards the pending identity.
    async fn abort_rotation(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<()> {
        auth::require_root(conn, &hdr, &self.pillars.services, "AbortRotation").await?;
        let r = self.pillars.identity.abort_rotation().await;
        self.after_change(&emitter).await;
        r.map_err(failed)
    }

    /// The identity state changed (e.g. `ok` → `lost` after a TPM clear).
    #[zbus(signal)]
    pub async fn state_changed(
        emitter: &SignalEmitter<'_>,
        old_state: &str,
        new_state: &str,
        detail: &str,
    ) -> zbus::Result<()>;
}
