//! PCR quotes: the attestation key (restricted, so it signs only TPM-made structures) signs
//! the TPM's own report of PCR values together with a verifier's nonce.
//!
//! A bundle (format `hardend-quote-v2`) carries the raw TPM structures a verifier needs —
//! TPMS_ATTEST, TPMT_SIGNATURE, the AK's TPM2B_PUBLIC — so any verifier can check it, not
//! only this one. `verify` trusts nothing in the bundle it did not pin itself: the key is the
//! one the verifier enrolled (its public area or its name), the nonce is the verifier's own.

use std::collections::BTreeMap;

use p256::ecdsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tss_esapi::abstraction::pcr;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{
    Attest, AttestInfo, Data, PcrSelectionListBuilder, PcrSlot, Public, Signature, SignatureScheme,
};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::TpmError;
use super::identity::{IdentityStore, Tpm};
use super::public;

/// The `format` of bundles this version makes and verifies.
pub const FORMAT: &str = "hardend-quote-v2";
/// TPM_GENERATED_VALUE: the first four bytes of every structure the TPM signs itself.
pub const TPM_GENERATED: [u8; 4] = [0xff, 0x54, 0x43, 0x47];
/// TPM_ST_ATTEST_QUOTE.
const ST_ATTEST_QUOTE: [u8; 2] = [0x80, 0x18];
/// PCRs of a PC-client TPM's bank: 0-23.
pub const PCR_COUNT: u8 = 24;

/// Everything a verifier needs, hex-encoded (on the bus as `api::QuoteInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteBundle {
    /// Always [`FORMAT`].
    pub format: String,
    pub nonce: String,
    /// The bank the PCR values are from: `sha256`.
    pub pcr_bank: String,
    /// PCR index → value.
    pub pcrs: BTreeMap<u8, String>,
    /// The marshalled TPMS_ATTEST the TPM signed.
    pub attest: String,
    /// The marshalled TPMT_SIGNATURE over `attest`.
    pub signature: String,
    /// The attestation key's TPM2B_PUBLIC.
    pub ak_public: String,
    /// The attestation key's name (sha256 name algorithm): what TPMS_ATTEST.qualifiedSigner holds.
    pub ak_name: String,
}

/// What `verify` found in a valid quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub pcrs: usize,
    pub ak_name: String,
    /// TPMS_CLOCK_INFO: the TPM's clock in ms; reset and restart counts, which the TPM
    /// obfuscates for keys outside the endorsement and platform hierarchies (hardend's AK is
    /// under the storage key): a changed value still means a reset or restart, but it is not
    /// a count.
    pub clock_ms: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    pub firmware_version: u64,
    /// Whether qualifiedSigner was compared with a pinned qualified name (the key's place
    /// in the TPM's hierarchy, from `enroll`); a name-only pin cannot check it.
    pub qualified_signer_checked: bool,
}

/// The key a verifier pins: its public area or only its name, and — from `enroll` — its
/// qualified name (what the TPM writes into TPMS_ATTEST.qualifiedSigner).
pub struct PinnedAk {
    pub key: PinnedKey,
    pub qualified_name: Option<Vec<u8>>,
}

pub enum PinnedKey {
    Public(Box<Public>),
    Name(Vec<u8>),
}

fn fmt_err(m: impl std::fmt::Display) -> TpmError {
    TpmError::Format(m.to_string())
}

fn unhex(field: &str, v: &str) -> Result<Vec<u8>, TpmError> {
    hex::decode(v).map_err(|e| fmt_err(format!("{field}: not hex: {e}")))
}

/// Slots for PCR indices; an index outside the bank is an error (never wrapped or masked).
fn slots(indices: impl IntoIterator<Item = u8>) -> Result<Vec<PcrSlot>, TpmError> {
    indices
        .into_iter()
        .map(|i| {
            if i >= PCR_COUNT {
                return Err(fmt_err(format!(
                    "PCR {i} does not exist (0-{})",
                    PCR_COUNT - 1
                )));
            }
            PcrSlot::try_from(1u32 << i).map_err(fmt_err)
        })
        .collect()
}

/// SHA-256 over the PCR values in index order: what TPMS_QUOTE_INFO.pcrDigest holds.
fn pcr_digest(pcrs: &BTreeMap<u8, String>) -> Result<Vec<u8>, TpmError> {
    let mut h = Sha256::new();
    for (i, v) in pcrs {
        let v = unhex(&format!("pcrs.{i}"), v)?;
        if v.len() != 32 {
            return Err(fmt_err(format!(
                "pcrs.{i}: {} bytes, a sha256 PCR has 32",
                v.len()
            )));
        }
        h.update(v);
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
    let slots = slots(indices.iter().copied())?;
    let selection = || {
        PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(fmt_err)
    };
    if !ak.exists() {
        ak.create_key(tpm)?;
    }
    let ak_public = ak.tpm_public()?;
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
        return Ok(QuoteBundle {
            format: FORMAT.into(),
            nonce: hex::encode(nonce),
            pcr_bank: "sha256".into(),
            pcrs,
            attest: hex::encode(attest.marshall().map_err(tpm_err("marshal the quote"))?),
            signature: hex::encode(sig.marshall().map_err(tpm_err("marshal the signature"))?),
            ak_public: hex::encode(public::to_tpm2b(&ak_public)?),
            ak_name: hex::encode(public::name(&ak_public)?),
        });
    }
    Err(fmt_err("PCRs kept changing while quoting; try again"))
}

/// Reads a bundle; the version-1 format (hardend 0.2: a PEM key and a DER signature, no TPM
/// public area) is refused with what to do instead.
pub fn parse_bundle(text: &str) -> Result<QuoteBundle, TpmError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| fmt_err(format!("not JSON: {e}")))?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {
            serde_json::from_value(v).map_err(|e| fmt_err(format!("not a quote bundle: {e}")))
        }
        Some(other) => Err(fmt_err(format!(
            "format {other:?} is not {FORMAT:?}: made by another program or version"
        ))),
        None if v.get("ak_public_pem").is_some() => Err(fmt_err(
            "this is a version-1 quote bundle (an earlier hardend): it carries no TPM public area and its key cannot be pinned, so it is not verified; quote again with this version",
        )),
        None => Err(fmt_err(format!(
            "not a quote bundle: no \"format\": {FORMAT:?}"
        ))),
    }
}

/// Checks a quote offline against the verifier's own nonce and pinned attestation key.
pub fn verify(b: &QuoteBundle, nonce: &[u8], pinned: &PinnedAk) -> Result<Verified, TpmError> {
    if b.format != FORMAT {
        return Err(fmt_err(format!("format {:?} is not {FORMAT:?}", b.format)));
    }
    if b.pcr_bank != "sha256" {
        return Err(fmt_err(format!(
            "PCR bank {:?}: only sha256 quotes are verified",
            b.pcr_bank
        )));
    }
    // the key: the pinned one, never the bundle's word for it
    let bundle_ak = unhex("ak_public", &b.ak_public)?;
    let ak = match &pinned.key {
        PinnedKey::Public(p) => {
            if public::to_tpm2b(p)? != bundle_ak && p.marshall().map_err(fmt_err)? != bundle_ak {
                return Err(fmt_err(
                    "the quote is signed by another attestation key than the pinned one",
                ));
            }
            (**p).clone()
        }
        PinnedKey::Name(name) => {
            let p = public::from_bytes(&bundle_ak)?;
            if public::name(&p)? != *name {
                return Err(fmt_err(
                    "the quote is signed by another attestation key than the pinned one (its name differs)",
                ));
            }
            p
        }
    };
    public::check_attestation_key(&ak)?;
    let ak_name = public::name(&ak)?;
    let key = public::p256_key(&ak)?;

    let attest_bytes = unhex("attest", &b.attest)?;
    if attest_bytes.get(..4) != Some(&TPM_GENERATED[..]) {
        return Err(fmt_err(
            "the attest structure does not begin with TPM_GENERATED_VALUE: the TPM did not make it",
        ));
    }
    if attest_bytes.get(4..6) != Some(&ST_ATTEST_QUOTE[..]) {
        return Err(fmt_err("the attest structure is not a quote"));
    }
    let sig = Signature::unmarshall(&unhex("signature", &b.signature)?)
        .map_err(|e| fmt_err(format!("signature: not a TPMT_SIGNATURE: {e}")))?;
    let Signature::EcDsa(ecc) = sig else {
        return Err(fmt_err("the quote is not signed with ECDSA"));
    };
    if ecc.hashing_algorithm() != HashingAlgorithm::Sha256 {
        return Err(fmt_err("the quote's signature is not over SHA-256"));
    }
    let pad = |v: &[u8]| -> Result<[u8; 32], TpmError> {
        if v.len() > 32 {
            return Err(fmt_err("signature: a scalar longer than 32 bytes"));
        }
        let mut o = [0u8; 32];
        o[32 - v.len()..].copy_from_slice(v);
        Ok(o)
    };
    let sig = p256::ecdsa::Signature::from_scalars(
        pad(ecc.signature_r().value())?,
        pad(ecc.signature_s().value())?,
    )
    .map_err(|e| fmt_err(format!("signature: {e}")))?;
    key.verify(&attest_bytes, &sig).map_err(|_| {
        fmt_err("the signature does not match the attest structure and the pinned attestation key")
    })?;
    let attest = Attest::unmarshall(&attest_bytes).map_err(fmt_err)?;
    if let Some(qn) = &pinned.qualified_name {
        if attest.qualified_signer().value() != qn.as_slice() {
            return Err(fmt_err(
                "qualifiedSigner is not the pinned attestation key's qualified name (another key, or the same key under another parent)",
            ));
        }
    }
    if attest.extra_data().value() != nonce {
        return Err(fmt_err(
            "the quote was made for another nonce (replayed or wrong challenge)",
        ));
    }
    let AttestInfo::Quote { info } = attest.attested() else {
        return Err(fmt_err("the attest structure is not a quote"));
    };
    // the indices must be the ones the TPM quoted, not relabelled values
    let expected = PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots(b.pcrs.keys().copied())?)
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
    let clock = attest.clock_info();
    Ok(Verified {
        pcrs: b.pcrs.len(),
        ak_name: hex::encode(ak_name),
        clock_ms: clock.clock(),
        reset_count: clock.reset_count(),
        restart_count: clock.restart_count(),
        safe: clock.safe(),
        firmware_version: attest.firmware_version(),
        qualified_signer_checked: pinned.qualified_name.is_some(),
    })
}
