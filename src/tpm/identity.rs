//! The identity key: create once, load per use, sign, export the public key.

use std::fs;
use std::path::{Path, PathBuf};

use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tss_esapi::attributes::{ObjectAttributes, ObjectAttributesBuilder};
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{CapabilityType, PropertyTag};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::RsaSchemeAlgorithm;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    CapabilityData, Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, Private, Public,
    PublicBuilder, PublicEccParametersBuilder, PublicKeyRsa, PublicRsaParametersBuilder,
    RsaExponent, RsaScheme, Signature, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{Context, utils};

use super::{TpmError, tcti};
use crate::fsutil;

/// Default place for the key blobs (root only).
pub const DEFAULT_IDENTITY_DIR: &str = "/var/lib/hardend/identity";

/// What the identity key signs before a caller's data (`Sign`, `hardenctl identity sign`):
/// 28 bytes, NUL-terminated, documented in docs/attestation.md.
pub const SIGN_CONTEXT: &[u8] = b"hardend device statement v1\0";

/// Which key a store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Unrestricted signing: CSRs, challenge signatures.
    Identity,
    /// Restricted signing: signs only TPM-generated structures (quotes), so a quote cannot
    /// be forged by having the key sign arbitrary bytes.
    Attestation,
    /// A restricted RSA-2048 RSASSA-SHA256 signing key: the attestation key registered with
    /// Keylime, whose verifier (7.14) authenticates agents only with RSASSA signatures.
    AttestationRsa,
    /// The next identity during a rotation: made by `rotate`, becomes the identity at
    /// `rotate --commit`, discarded by `rotate --abort`.
    Pending,
}

impl KeyKind {
    fn files(self) -> (&'static str, &'static str) {
        match self {
            KeyKind::Identity => ("identity.pub", "identity.priv"),
            KeyKind::Attestation => ("ak.pub", "ak.priv"),
            KeyKind::AttestationRsa => ("ak-rsa.pub", "ak-rsa.priv"),
            KeyKind::Pending => ("identity.next.pub", "identity.next.priv"),
        }
    }
}

pub(crate) fn tpm_err(what: &'static str) -> impl Fn(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Tpm { what, source }
}

/// What the TPM says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TpmInfo {
    pub tcti: String,
    pub manufacturer: String,
    pub vendor: String,
    pub firmware_version: String,
    /// A software TPM (swtpm, simulators) protects nothing on a real device.
    pub software: bool,
    /// Endorsement-key certificates the manufacturer stored in NV (TCG EK Credential
    /// Profile indices), e.g. `ecc-p256 (0x01c0000a)`; empty when there are none.
    pub ek_certificates: Vec<String>,
}

/// TCG EK Credential Profile 2.x: where manufacturers store EK certificates (the low range
/// of 1.x and the high range of 2.x).
const EK_CERT_INDICES: [(u32, &str); 9] = [
    (0x01c0_0002, "rsa2048"),
    (0x01c0_000a, "ecc-p256"),
    (0x01c0_0012, "rsa2048"),
    (0x01c0_0014, "ecc-p256"),
    (0x01c0_0016, "ecc-p384"),
    (0x01c0_0018, "ecc-p521"),
    (0x01c0_001a, "ecc-sm2"),
    (0x01c0_001c, "rsa3072"),
    (0x01c0_001e, "rsa4096"),
];

/// One TPM connection. Callers that share it keep it behind a lock: a TPM context is not
/// reentrant, and without a resource manager (swtpm over TCP) only one client may talk.
pub struct Tpm {
    pub(crate) ctx: Context,
    tcti: String,
}

impl Tpm {
    /// Connects through `tcti` (validated first).
    pub fn connect(tcti_str: &str) -> Result<Tpm, TpmError> {
        let conf = tcti::parse(tcti_str)?;
        // a missing device node surfaces from the TSS library as "response code not
        // recognized": say what it is instead
        if let Some(dev) = tcti::device_path(tcti_str) {
            if !dev.exists() {
                return Err(TpmError::NoDevice { path: dev });
            }
        }
        let ctx = Context::new(conf).map_err(|source| TpmError::Unreachable {
            tcti: tcti_str.to_string(),
            source,
        })?;
        Ok(Tpm {
            ctx,
            tcti: tcti_str.to_string(),
        })
    }

    /// The TCTI this connection uses.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    pub fn info(&mut self) -> Result<TpmInfo, TpmError> {
        let word = |v: Option<u32>| {
            v.map(|v| {
                v.to_be_bytes()
                    .iter()
                    .filter(|b| **b != 0)
                    .map(|b| char::from(*b))
                    .collect::<String>()
                    .trim()
                    .to_string()
            })
            .unwrap_or_default()
        };
        let manufacturer = word(
            self.ctx
                .get_tpm_property(PropertyTag::Manufacturer)
                .map_err(tpm_err("read the manufacturer"))?,
        );
        let vendor = utils::get_tpm_vendor(&mut self.ctx)
            .map_err(tpm_err("read the vendor string"))?
            .trim()
            .to_string();
        let fw1 = self
            .ctx
            .get_tpm_property(PropertyTag::FirmwareVersion1)
            .map_err(tpm_err("read the firmware version"))?
            .unwrap_or(0);
        let fw2 = self
            .ctx
            .get_tpm_property(PropertyTag::FirmwareVersion2)
            .map_err(tpm_err("read the firmware version"))?
            .unwrap_or(0);
        let software = vendor.contains("SW") || vendor.to_ascii_lowercase().contains("swtpm");
        let ek_certificates = self.ek_certificates()?;
        Ok(TpmInfo {
            tcti: self.tcti.clone(),
            manufacturer,
            vendor,
            firmware_version: format!(
                "{}.{}.{}.{}",
                fw1 >> 16,
                fw1 & 0xffff,
                fw2 >> 16,
                fw2 & 0xffff
            ),
            software,
            ek_certificates,
        })
    }

    /// The NV indices defined in the EK certificate range.
    fn ek_range_indices(&mut self) -> Result<Vec<u32>, TpmError> {
        let (data, _) = self
            .ctx
            .get_capability(CapabilityType::Handles, 0x01c0_0000, 64)
            .map_err(tpm_err("list NV indices"))?;
        let CapabilityData::Handles(handles) = data else {
            return Ok(Vec::new());
        };
        Ok(handles.into_inner().into_iter().map(u32::from).collect())
    }

    /// Whether NV index `index` (in the EK certificate range) is defined.
    pub(crate) fn nv_defined(&mut self, index: u32) -> Result<bool, TpmError> {
        Ok(self.ek_range_indices()?.contains(&index))
    }

    /// Which EK certificate NV indices are defined.
    fn ek_certificates(&mut self) -> Result<Vec<String>, TpmError> {
        let defined = self.ek_range_indices()?;
        Ok(EK_CERT_INDICES
            .iter()
            .filter(|(i, _)| defined.contains(i))
            .map(|(i, name)| format!("{name} (0x{i:08x})"))
            .collect())
    }

    /// The standard ECC P-256 storage key, re-derived (same template, same key every time
    /// on the same TPM until it is cleared). The caller flushes it.
    pub(crate) fn srk(&mut self) -> Result<KeyHandle, TpmError> {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_no_da(true)
            .with_restricted(true)
            .with_decrypt(true)
            .build()
            .map_err(tpm_err("build the SRK template"))?;
        let template = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()
                .map_err(tpm_err("build the SRK template"))?,
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .map_err(tpm_err("build the SRK template"))?;
        let r = self
            .ctx
            .execute_with_nullauth_session(|c| {
                c.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map_err(tpm_err("derive the storage key"))?;
        Ok(r.key_handle)
    }

    pub(crate) fn flush(&mut self, h: KeyHandle) {
        let _ = self.ctx.flush_context(h.into());
    }
}

fn restricted_attributes(
    e: &impl Fn(tss_esapi::Error) -> TpmError,
) -> Result<ObjectAttributes, TpmError> {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_sign_encrypt(true)
        .build()
        .map_err(e)
}

fn rsa_attestation_template() -> Result<Public, TpmError> {
    let e = tpm_err("build the RSA attestation key template");
    let scheme = RsaScheme::create(RsaSchemeAlgorithm::RsaSsa, Some(HashingAlgorithm::Sha256))
        .map_err(&e)?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Rsa)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(restricted_attributes(&e)?)
        .with_rsa_parameters(
            PublicRsaParametersBuilder::new()
                .with_scheme(scheme)
                .with_key_bits(RsaKeyBits::Rsa2048)
                .with_exponent(RsaExponent::default())
                .with_is_signing_key(true)
                .with_is_decryption_key(false)
                .with_restricted(true)
                .build()
                .map_err(&e)?,
        )
        .with_rsa_unique_identifier(PublicKeyRsa::default())
        .build()
        .map_err(&e)
}

fn key_template(kind: KeyKind) -> Result<Public, TpmError> {
    let scheme = EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256));
    if kind == KeyKind::AttestationRsa {
        return rsa_attestation_template();
    }
    if kind != KeyKind::Attestation {
        return utils::create_unrestricted_signing_ecc_public(scheme, EccCurve::NistP256)
            .map_err(tpm_err("build the identity template"));
    }
    let e = tpm_err("build the attestation key template");
    let attrs = restricted_attributes(&e)?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_ecc_scheme(scheme)
                .with_curve(EccCurve::NistP256)
                .with_key_derivation_function_scheme(
                    tss_esapi::structures::KeyDerivationFunctionScheme::Null,
                )
                .with_is_signing_key(true)
                .with_is_decryption_key(false)
                .with_restricted(true)
                .build()
                .map_err(&e)?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(&e)
}

/// The public half of the identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// SubjectPublicKeyInfo, PEM.
    pub public_key_pem: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex.
    pub fingerprint: String,
    #[serde(skip)]
    pub spki_der: Vec<u8>,
}

fn pad32(v: &[u8]) -> Result<[u8; 32], TpmError> {
    if v.len() > 32 {
        return Err(TpmError::Format(format!("{}-byte P-256 value", v.len())));
    }
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(v);
    Ok(out)
}

fn identity_from_public(public: &Public) -> Result<Identity, TpmError> {
    let Public::Ecc { unique, .. } = public else {
        return Err(TpmError::Format(
            "the identity key is not an ECC key".into(),
        ));
    };
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&pad32(unique.x().value())?);
    sec1.extend_from_slice(&pad32(unique.y().value())?);
    let key = p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|e| TpmError::Format(format!("the TPM returned an invalid P-256 point: {e}")))?;
    let der = key
        .to_public_key_der()
        .map_err(|e| TpmError::Format(e.to_string()))?
        .as_bytes()
        .to_vec();
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| TpmError::Format(e.to_string()))?;
    Ok(Identity {
        public_key_pem: pem,
        fingerprint: hex::encode(Sha256::digest(&der)),
        spki_der: der,
    })
}

/// The key blobs on disk.
#[derive(Clone, Debug)]
pub struct IdentityStore {
    pub dir: PathBuf,
    pub kind: KeyKind,
}

impl IdentityStore {
    /// The identity key's store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        IdentityStore {
            dir: dir.into(),
            kind: KeyKind::Identity,
        }
    }

    /// The attestation key's store (same directory, other files).
    pub fn attestation(dir: impl Into<PathBuf>) -> Self {
        IdentityStore {
            dir: dir.into(),
            kind: KeyKind::Attestation,
        }
    }

    /// The RSA attestation key's store (Keylime), same directory.
    pub fn attestation_rsa(dir: impl Into<PathBuf>) -> Self {
        IdentityStore {
            dir: dir.into(),
            kind: KeyKind::AttestationRsa,
        }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> TpmError + '_ {
        let path = path.to_path_buf();
        move |source| TpmError::Io {
            path: path.clone(),
            source,
        }
    }

    pub fn exists(&self) -> bool {
        let (p, s) = self.kind.files();
        self.path(p).exists() || self.path(s).exists()
    }

    fn read_blobs(&self) -> Result<(Public, Private), TpmError> {
        if self.kind == KeyKind::Identity {
            self.finish_interrupted_commit()?;
        }
        if !self.exists() {
            return Err(TpmError::NoIdentity(self.dir.clone()));
        }
        let (pf, sf) = self.kind.files();
        let (pp, sp) = (self.path(pf), self.path(sf));
        let public_bytes = fs::read(&pp).map_err(self.io(&pp))?;
        let private_bytes = fs::read(&sp).map_err(self.io(&sp))?;
        let public = Public::unmarshall(&public_bytes)
            .map_err(|e| TpmError::Format(format!("{}: {e}", pp.display())))?;
        let private = Private::try_from(private_bytes)
            .map_err(|e| TpmError::Format(format!("{}: {e}", sp.display())))?;
        Ok((public, private))
    }

    /// The key's TPM public area from the stored blob (no TPM needed).
    pub fn tpm_public(&self) -> Result<Public, TpmError> {
        Ok(self.read_blobs()?.0)
    }

    /// The public identity from the stored blob (no TPM needed).
    pub fn public(&self) -> Result<Identity, TpmError> {
        identity_from_public(&self.read_blobs()?.0)
    }

    /// Creates the identity key in the TPM and stores its blobs. Refuses when one exists:
    /// replacing a device's identity is an explicit, separate action.
    pub fn create(&self, tpm: &mut Tpm) -> Result<Identity, TpmError> {
        identity_from_public(&self.create_key(tpm)?)
    }

    /// Creates the key and stores its blobs (any kind, also RSA); returns its public area.
    pub fn create_key(&self, tpm: &mut Tpm) -> Result<Public, TpmError> {
        if self.exists() {
            return Err(TpmError::Exists(self.dir.clone()));
        }
        let srk = tpm.srk()?;
        let template = key_template(self.kind)?;
        let created = tpm
            .ctx
            .execute_with_nullauth_session(|c| c.create(srk, template, None, None, None, None));
        tpm.flush(srk);
        let created = created.map_err(tpm_err("create the identity key"))?;
        let public_bytes = created
            .out_public
            .marshall()
            .map_err(tpm_err("marshal the public blob"))?;
        fsutil::create_dir_all_mode(&self.dir, 0o700).map_err(self.io(&self.dir))?;
        let (pf, sf) = self.kind.files();
        let (pp, sp) = (self.path(pf), self.path(sf));
        // public first: a lone pending private blob then always means an interrupted
        // commit (see `finish_interrupted_commit`), never an interrupted rotation
        fsutil::write_atomic(&pp, &public_bytes, 0o600).map_err(self.io(&pp))?;
        fsutil::write_atomic(&sp, created.out_private.value(), 0o600).map_err(self.io(&sp))?;
        Ok(created.out_public)
    }

    /// Loads the key under a freshly derived SRK; runs `f` with it; flushes both.
    pub(crate) fn with_key<T>(
        &self,
        tpm: &mut Tpm,
        f: impl FnOnce(&mut Tpm, KeyHandle) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let (public, private) = self.read_blobs()?;
        let srk = tpm.srk()?;
        let loaded = tpm
            .ctx
            .execute_with_nullauth_session(|c| c.load(srk, private, public));
        tpm.flush(srk);
        let key = loaded.map_err(|source| TpmError::Lost {
            dir: self.dir.clone(),
            source,
        })?;
        let r = f(tpm, key);
        tpm.flush(key);
        r
    }

    /// Checks that the stored key still loads into this TPM (Lost otherwise).
    pub fn check(&self, tpm: &mut Tpm) -> Result<Identity, TpmError> {
        let id = self.public()?;
        self.with_key(tpm, |_, _| Ok(()))?;
        Ok(id)
    }

    /// The pending next identity's store (same directory).
    pub fn pending(&self) -> IdentityStore {
        IdentityStore {
            dir: self.dir.clone(),
            kind: KeyKind::Pending,
        }
    }

    fn complete(&self) -> bool {
        let (p, s) = self.kind.files();
        self.path(p).exists() && self.path(s).exists()
    }

    /// The next identity when a rotation is pending.
    pub fn pending_public(&self) -> Option<Identity> {
        let p = self.pending();
        if p.complete() { p.public().ok() } else { None }
    }

    /// Starts a rotation: creates a new identity key next to the current one, which stays
    /// in use (signatures, CSRs) until [`commit_rotation`](Self::commit_rotation). Also the
    /// explicit way to replace a lost identity.
    pub fn rotate(&self, tpm: &mut Tpm) -> Result<Identity, TpmError> {
        self.finish_interrupted_commit()?;
        if !self.exists() {
            return Err(TpmError::NoIdentity(self.dir.clone()));
        }
        let p = self.pending();
        if p.complete() {
            return Err(TpmError::RotationPending(self.dir.clone()));
        }
        // a rotation that died between its two writes left only the public blob
        let (pf, _) = p.kind.files();
        let _ = fs::remove_file(p.path(pf));
        p.create(tpm)
    }

    /// Makes the pending identity the identity; the old key blobs are gone afterwards.
    pub fn commit_rotation(&self) -> Result<Identity, TpmError> {
        let p = self.pending();
        if !p.complete() {
            return Err(TpmError::NoRotation(self.dir.clone()));
        }
        let (npub, npriv) = p.kind.files();
        let (ipub, ipriv) = self.kind.files();
        let (from, to) = (self.path(npub), self.path(ipub));
        fsutil::rename_durable(&from, &to).map_err(self.io(&from))?;
        let (from, to) = (self.path(npriv), self.path(ipriv));
        fsutil::rename_durable(&from, &to).map_err(self.io(&from))?;
        self.public()
    }

    /// Discards the pending identity.
    pub fn abort_rotation(&self) -> Result<(), TpmError> {
        self.finish_interrupted_commit()?;
        let p = self.pending();
        let (npub, npriv) = p.kind.files();
        if !self.path(npub).exists() && !self.path(npriv).exists() {
            return Err(TpmError::NoRotation(self.dir.clone()));
        }
        for f in [npriv, npub] {
            let path = self.path(f);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(TpmError::Io { path, source: e });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A commit moves the public blob first, then the private one. A pending private blob
    /// without its public blob is therefore a commit that stopped half way: finish it.
    fn finish_interrupted_commit(&self) -> Result<(), TpmError> {
        let (npub, npriv) = KeyKind::Pending.files();
        let (_, ipriv) = KeyKind::Identity.files();
        let (np, ns) = (self.path(npub), self.path(npriv));
        if ns.exists() && !np.exists() {
            fsutil::rename_durable(&ns, &self.path(ipriv)).map_err(self.io(&ns))?;
        }
        Ok(())
    }

    /// A statement by the device: signs [`SIGN_CONTEXT`] ‖ `data`, so no signature made
    /// for a caller can pass as a TPM-generated structure, a CSR or another protocol's
    /// message. Data that itself begins with TPM_GENERATED_VALUE is refused outright.
    pub fn sign_statement(&self, tpm: &mut Tpm, data: &[u8]) -> Result<Vec<u8>, TpmError> {
        if data.starts_with(&super::quote::TPM_GENERATED) {
            return Err(TpmError::Format(
                "the data begins with TPM_GENERATED_VALUE (ff544347): the identity key does not sign what looks like a TPM structure".into(),
            ));
        }
        let mut message = SIGN_CONTEXT.to_vec();
        message.extend_from_slice(data);
        self.sign_raw(tpm, &message)
    }

    /// Signs SHA-256(`message`) inside the TPM; returns a DER ECDSA signature. Only for
    /// structures hardend builds itself (a CSR's TBS); callers' data goes through
    /// [`IdentityStore::sign_statement`].
    pub(crate) fn sign_raw(&self, tpm: &mut Tpm, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let digest = Digest::try_from(Sha256::digest(message).to_vec())
            .map_err(tpm_err("prepare the digest"))?;
        let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        })
        .map_err(tpm_err("prepare the null ticket"))?;
        let sig = self.with_key(tpm, |tpm, key| {
            tpm.ctx
                .execute_with_nullauth_session(|c| {
                    c.sign(key, digest, SignatureScheme::Null, ticket)
                })
                .map_err(tpm_err("sign"))
        })?;
        let Signature::EcDsa(ecc) = sig else {
            return Err(TpmError::Format(
                "the TPM returned a non-ECDSA signature".into(),
            ));
        };
        let r = pad32(ecc.signature_r().value())?;
        let s = pad32(ecc.signature_s().value())?;
        let sig = p256::ecdsa::Signature::from_scalars(r, s)
            .map_err(|e| TpmError::Format(format!("invalid signature scalars: {e}")))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}
