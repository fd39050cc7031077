//! TPM2_Certify of a key by itself: the proof of possession a Keylime verifier asks of an
//! agent before it accepts its evidence (a session). The TPM signs, with the restricted
//! attestation key, a TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY naming that key and
//! carrying the verifier's challenge — only the TPM that holds the key can make it.

use tss_esapi::handles::ObjectHandle;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Data, SignatureScheme};
use tss_esapi::traits::Marshall;

use super::TpmError;
use super::identity::{IdentityStore, Tpm, tpm_err};

/// The marshalled TPMS_ATTEST and TPMT_SIGNATURE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certified {
    pub attest: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Certifies `ak` with itself over `challenge` (1-64 bytes). Creates the key on first use.
pub fn certify_self(
    ak: &IdentityStore,
    tpm: &mut Tpm,
    challenge: &[u8],
) -> Result<Certified, TpmError> {
    if challenge.is_empty() || challenge.len() > 64 {
        return Err(TpmError::Format(
            "the challenge must be 1 to 64 bytes".into(),
        ));
    }
    if !ak.exists() {
        ak.create_key(tpm)?;
    }
    let data = Data::try_from(challenge.to_vec())
        .map_err(|e| TpmError::Format(format!("the challenge: {e}")))?;
    let (attest, sig) = ak.with_key(tpm, |tpm, key| {
        tpm.ctx
            .execute_with_sessions(
                (
                    Some(AuthSession::Password),
                    Some(AuthSession::Password),
                    None,
                ),
                |c| c.certify(ObjectHandle::from(key), key, data, SignatureScheme::Null),
            )
            .map_err(tpm_err("certify the attestation key"))
    })?;
    Ok(Certified {
        attest: attest
            .marshall()
            .map_err(tpm_err("marshal the certification"))?,
        signature: sig.marshall().map_err(tpm_err("marshal the signature"))?,
    })
}
