//! PCR quotes: the attestation key (restricted, so it signs only TPM-made structures) signs
//! the TPM's own report of PCR values together with a verifier's nonce. `verify` checks a
//! quote offline: the signature over the attest structure, the nonce, and that the PCR
//! digest in it matches the PCR values that come with it.

use std::collections::BTreeMap;

use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tss_esapi::abstraction::pcr;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{
    Attest, AttestInfo, Data, PcrSelectionListBuilder, PcrSlot, Signature, SignatureScheme,
};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::TpmError;
use super::identity::{IdentityStore, Tpm};

/// Everything a verifier needs, hex-encoded (on the bus as `api::QuoteInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteBundle {
    pub nonce: String,
    /// sha256 PCR index → value.
    pub pcrs: BTreeMap<u8, String>,
    /// The marshalled TPMS_ATTEST the TPM signed.
    pub attest: String,
    /// DER ECDSA-SHA256 signature over `attest`.
    pub signature: String,
    /// The attestation key, SubjectPublicKeyInfo PEM.
    pub ak_public_pem: String,
}

fn fmt_err(m: impl std::fmt::Display) -> TpmError {
    TpmError::Format(m.to_string())
}

/// SHA-256 over the PCR values in index order: what TPMS_QUOTE_INFO.pcrDigest holds.
fn pcr_digest(pcrs: &BTreeMap<u8, String>) -> Result<Vec<u8>, TpmError> {
    let mut h = Sha256::new();
    for v in pcrs.values() {
        h.update(hex::decode(v).map_err(fmt_err)?);
    }
    Ok(h.finalize().to_vec())
}

/// Quotes sha256 PCRs `indices` with `nonce`. Creates the attestation key on first use.
/// Retries when a PCR changes between the quote and the read.
pub fn quote(
    ak: &IdentityStore,
    tpm: &mut Tpm,
    nonce: &[u8],
    indices: &[u8],
) -> Result<QuoteBundle, TpmError> {
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(fmt_err("the nonce must be 1 to 64 bytes"));
    }
    let slots = indices
        .iter()
        .map(|i| {
            if *i > 23 {
                return Err(fmt_err(format!("PCR {i} does not exist (0-23)")));
            }
            PcrSlot::try_from(1u32 << i).map_err(fmt_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let selection = || {
        PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(fmt_err)
    };
    if !ak.exists() {
        ak.create(tpm)?;
    }
    let ak_pem = ak.public()?.public_key_pem;
    let tpm_err = |what| move |source| TpmError::Tpm { what, source };
    for _ in 0..3 {
        let data = Data::try_from(nonce.to_vec()).map_err(fmt_err)?;
        let sel = selection()?;
        let (attest, sig) = ak.with_key(tpm, |tpm, key| {
            tpm.ctx
                .execute_with_nullauth_session(|c| c.quote(key, data, SignatureScheme::Null, sel))
                .map_err(tpm_err("quote"))
        })?;
        let values = pcr::read_all(&mut tpm.ctx, selection()?).map_err(tpm_err("read PCRs"))?;
        let bank = values
            .pcr_bank(HashingAlgorithm::Sha256)
            .ok_or_else(|| fmt_err("the TPM has no sha256 PCR bank"))?;
        let mut pcrs = BTreeMap::new();
        for (i, slot) in indices.iter().zip(&slots) {
            let d = bank
                .get_digest(*slot)
                .ok_or_else(|| fmt_err(format!("PCR {i} missing")))?;
            pcrs.insert(*i, hex::encode(d.value()));
        }
        let AttestInfo::Quote { info } = attest.attested() else {
            return Err(fmt_err("the TPM returned something other than a quote"));
        };
        if info.pcr_digest().value() != pcr_digest(&pcrs)?.as_slice() {
            continue; // a PCR was extended in between: quote again
        }
        let Signature::EcDsa(ecc) = sig else {
            return Err(fmt_err("the quote is not signed with ECDSA"));
        };
        let pad = |v: &[u8]| {
            let mut o = [0u8; 32];
            o[32usize.saturating_sub(v.len())..].copy_from_slice(&v[v.len().saturating_sub(32)..]);
            o
        };
        let sig = p256::ecdsa::Signature::from_scalars(
            pad(ecc.signature_r().value()),
            pad(ecc.signature_s().value()),
        )
        .map_err(fmt_err)?;
        return Ok(QuoteBundle {
            nonce: hex::encode(nonce),
            pcrs,
            attest: hex::encode(attest.marshall().map_err(tpm_err("marshal the quote"))?),
            signature: hex::encode(sig.to_der().as_bytes()),
            ak_public_pem: ak_pem,
        });
    }
    Err(fmt_err("PCRs kept changing while quoting; try again"))
}

/// Checks a quote offline. `expected_nonce`: the verifier's own nonce (else the bundle's).
pub fn verify(b: &QuoteBundle, expected_nonce: Option<&[u8]>) -> Result<(), TpmError> {
    let attest_bytes = hex::decode(&b.attest).map_err(fmt_err)?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&b.ak_public_pem).map_err(fmt_err)?;
    let sig = p256::ecdsa::Signature::from_der(&hex::decode(&b.signature).map_err(fmt_err)?)
        .map_err(fmt_err)?;
    key.verify(&attest_bytes, &sig).map_err(|_| {
        fmt_err("the signature does not match the attest structure and the attestation key")
    })?;
    let attest = Attest::unmarshall(&attest_bytes).map_err(fmt_err)?;
    let nonce = match expected_nonce {
        Some(n) => n.to_vec(),
        None => hex::decode(&b.nonce).map_err(fmt_err)?,
    };
    if attest.extra_data().value() != nonce.as_slice() {
        return Err(fmt_err(
            "the quote was made for another nonce (replayed or wrong challenge)",
        ));
    }
    let AttestInfo::Quote { info } = attest.attested() else {
        return Err(fmt_err("the attest structure is not a quote"));
    };
    // the indices must be the ones the TPM quoted, not relabelled values
    let slots = b
        .pcrs
        .keys()
        .map(|i| PcrSlot::try_from(1u32 << i).map_err(fmt_err))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(fmt_err)?;
    if info.pcr_selection() != &expected {
        return Err(fmt_err("the quote covers other PCRs than the bundle lists"));
    }
    if info.pcr_digest().value() != pcr_digest(&b.pcrs)?.as_slice() {
        return Err(fmt_err(
            "the PCR values do not match the digest the TPM signed",
        ));
    }
    Ok(())
}
