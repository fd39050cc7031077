//! Enrolment with a fleet: what its CA needs to trust this device's keys (the EK and its
//! certificate, the attestation key's public area and name, a CSR for the identity), and the
//! answer to its credential challenge. The fleet runs MakeCredential with the EK's public key
//! and the AK's name (tpm2_makecredential, Keylime's registrar); only the TPM that holds both
//! that EK and a key of that name can ActivateCredential and return the secret, which proves
//! the AK lives in the same TPM as the certified EK.

use serde::{Deserialize, Serialize};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{EncryptedSecret, IdObject, SymmetricDefinition};

use super::TpmError;
use super::ek::{self, EkAlgorithm};
use super::identity::{IdentityStore, Tpm, tpm_err};
use super::public;

/// What `hardenctl identity enroll` hands to a fleet CA (hex = TPM wire bytes); on the bus
/// `(sssssssss)`, with "" for an absent certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, zbus::zvariant::Type)]
pub struct Enrollment {
    pub ek_algorithm: String,
    /// TPM2B_PUBLIC of the EK.
    pub ek_public: String,
    /// The manufacturer's EK certificate from NV, PEM; "" when the TPM has none.
    pub ek_certificate_pem: String,
    /// TPM2B_PUBLIC of the attestation key.
    pub ak_public: String,
    /// Its name: what MakeCredential binds the challenge to.
    pub ak_name: String,
    /// Its qualified name (under this TPM's storage key): what its quotes' qualifiedSigner holds.
    pub ak_qualified_name: String,
    pub identity_fingerprint: String,
    pub identity_public_key_pem: String,
    pub csr_pem: String,
}

fn pem(der: &[u8]) -> Result<String, TpmError> {
    let cert = openssl::x509::X509::from_der(der)
        .map_err(|e| TpmError::Format(format!("the EK certificate in NV is not DER X.509: {e}")))?;
    let pem = cert
        .to_pem()
        .map_err(|e| TpmError::Format(format!("the EK certificate: {e}")))?;
    Ok(String::from_utf8_lossy(&pem).into_owned())
}

/// Gathers the enrolment material; creates the attestation key on first use.
pub fn enroll(
    dir: &std::path::Path,
    tpm: &mut Tpm,
    alg: EkAlgorithm,
    subject: &str,
) -> Result<Enrollment, TpmError> {
    let identity = IdentityStore::new(dir);
    let id = identity.public()?;
    let ak = IdentityStore::attestation(dir);
    if !ak.exists() {
        ak.create_key(tpm)?;
    }
    let ak_public = ak.tpm_public()?;
    // the AK must load into this TPM, else its name belongs to a key it cannot use
    ak.check(tpm)?;
    let ek = ek::read(tpm, alg)?;
    let srk = tpm.srk()?;
    let srk_public = tpm.ctx.read_public(srk);
    tpm.flush(srk);
    let (srk_public, _, _) = srk_public.map_err(tpm_err("read the storage key"))?;
    let srk_qn = public::qualified_name(&public::OWNER_HIERARCHY, &public::name(&srk_public)?);
    let ak_name = public::name(&ak_public)?;
    let csr_pem = super::csr::csr(&identity, tpm, subject)?;
    Ok(Enrollment {
        ek_algorithm: alg.as_str().into(),
        ek_public: hex::encode(public::to_tpm2b(&ek.public)?),
        ek_certificate_pem: ek
            .certificate
            .as_deref()
            .map(pem)
            .transpose()?
            .unwrap_or_default(),
        ak_public: hex::encode(public::to_tpm2b(&ak_public)?),
        ak_qualified_name: hex::encode(public::qualified_name(&srk_qn, &ak_name)),
        ak_name: hex::encode(ak_name),
        identity_fingerprint: id.fingerprint,
        identity_public_key_pem: id.public_key_pem,
        csr_pem,
    })
}

/// A credential challenge: TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub credential_blob: Vec<u8>,
    pub secret: Vec<u8>,
}

fn take_tpm2b<'a>(b: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), TpmError> {
    let bad = || TpmError::Format(format!("the credential file is cut short in {what}"));
    let (len, rest) = b.split_at_checked(2).ok_or_else(bad)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    rest.split_at_checked(len).ok_or_else(bad)
}

impl Challenge {
    /// tpm2-tools' credential file (`tpm2_makecredential -o`): magic 0xBADCC0DE, version 1,
    /// TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    pub fn from_tpm2_tools(b: &[u8]) -> Result<Challenge, TpmError> {
        let Some((head, rest)) = b.split_at_checked(8) else {
            return Err(TpmError::Format("the credential file is too short".into()));
        };
        if head[..4] != [0xba, 0xdc, 0xc0, 0xde] || head[4..] != [0, 0, 0, 1] {
            return Err(TpmError::Format(
                "not a tpm2-tools credential file (magic badcc0de, version 1)".into(),
            ));
        }
        let (blob, rest) = take_tpm2b(rest, "the credential blob")?;
        let (secret, rest) = take_tpm2b(rest, "the encrypted secret")?;
        if !rest.is_empty() {
            return Err(TpmError::Format(
                "bytes trail the credential file's encrypted secret".into(),
            ));
        }
        Ok(Challenge {
            credential_blob: blob.to_vec(),
            secret: secret.to_vec(),
        })
    }
}

fn flush_session(tpm: &mut Tpm, s: AuthSession) {
    let h: SessionHandle = s.into();
    let _ = tpm.ctx.flush_context(ObjectHandle::from(h));
}

/// ActivateCredential with the EK and the attestation key: returns the fleet's secret.
/// Fails when the challenge was made for another EK or another key name.
pub fn activate(
    dir: &std::path::Path,
    tpm: &mut Tpm,
    alg: EkAlgorithm,
    c: &Challenge,
) -> Result<Vec<u8>, TpmError> {
    activate_for(&IdentityStore::attestation(dir), tpm, alg, c)
}

/// ActivateCredential with the EK and the attestation key `ak` (hardend's or Keylime's).
pub fn activate_for(
    ak: &IdentityStore,
    tpm: &mut Tpm,
    alg: EkAlgorithm,
    c: &Challenge,
) -> Result<Vec<u8>, TpmError> {
    let blob = IdObject::try_from(c.credential_blob.clone())
        .map_err(|e| TpmError::Format(format!("the credential blob: {e}")))?;
    let secret = EncryptedSecret::try_from(c.secret.clone())
        .map_err(|e| TpmError::Format(format!("the encrypted secret: {e}")))?;
    ak.with_key(tpm, |tpm, ak_handle| {
        ek::with_ek(tpm, alg, |tpm, ek_handle| {
            let e = tpm_err("start a session for ActivateCredential");
            let start = |tpm: &mut Tpm, kind| {
                tpm.ctx
                    .start_auth_session(
                        None,
                        None,
                        None,
                        kind,
                        SymmetricDefinition::AES_128_CFB,
                        HashingAlgorithm::Sha256,
                    )
                    .map_err(&e)?
                    .ok_or_else(|| TpmError::Format("the TPM returned no session".into()))
            };
            let hmac = start(tpm, SessionType::Hmac)?;
            let policy = match start(tpm, SessionType::Policy) {
                Ok(p) => p,
                Err(err) => {
                    flush_session(tpm, hmac);
                    return Err(err);
                }
            };
            let (attrs, mask) = SessionAttributesBuilder::new().build();
            let r = (|| {
                for s in [hmac, policy] {
                    tpm.ctx.tr_sess_set_attributes(s, attrs, mask).map_err(&e)?;
                }
                let policy_session = PolicySession::try_from(policy).map_err(&e)?;
                // the EK's policy A: PolicySecret(TPM_RH_ENDORSEMENT), empty auth
                tpm.ctx
                    .execute_with_session(Some(hmac), |c| {
                        c.policy_secret(
                            policy_session,
                            AuthHandle::Endorsement,
                            Default::default(),
                            Default::default(),
                            Default::default(),
                            None,
                        )
                    })
                    .map_err(tpm_err("satisfy the endorsement key's policy"))?;
                tpm.ctx.set_sessions((Some(hmac), Some(policy), None));
                let out = tpm
                    .ctx
                    .activate_credential(ak_handle, ek_handle, blob, secret);
                tpm.ctx.clear_sessions();
                out.map_err(tpm_err(
                    "ActivateCredential (the challenge was made for another TPM's EK or another key)",
                ))
            })();
            flush_session(tpm, hmac);
            flush_session(tpm, policy);
            r.map(|d| d.value().to_vec())
        })
    })
}
