//! TPM public areas as verifiers exchange them: TPM2B_PUBLIC bytes, the object's name, and
//! the attribute checks that make a key an attestation key a verifier may trust.

use sha2::{Digest as _, Sha256};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{EccScheme, Public, RsaScheme};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::TpmError;

fn fmt_err(m: impl std::fmt::Display) -> TpmError {
    TpmError::Format(m.to_string())
}

/// TPM2B_PUBLIC: a big-endian u16 size, then the marshalled TPMT_PUBLIC.
pub fn to_tpm2b(public: &Public) -> Result<Vec<u8>, TpmError> {
    let t = public.marshall().map_err(fmt_err)?;
    let len = u16::try_from(t.len()).map_err(fmt_err)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&t);
    Ok(out)
}

/// Parses TPM2B_PUBLIC (what tpm2-tools, Keylime and `enroll` exchange) or a bare
/// TPMT_PUBLIC (hardend's own key blobs). Trailing bytes are refused.
pub fn from_bytes(bytes: &[u8]) -> Result<Public, TpmError> {
    let body = match bytes {
        [hi, lo, rest @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == rest.len() => rest,
        _ => bytes,
    };
    let public = Public::unmarshall(body)
        .map_err(|e| fmt_err(format!("not a TPM public area (TPM2B_PUBLIC): {e}")))?;
    // re-marshalling gives the same bytes only when nothing trailed the structure
    if public.marshall().map_err(fmt_err)? != body {
        return Err(fmt_err(
            "not a TPM public area (TPM2B_PUBLIC): bytes trail the structure",
        ));
    }
    Ok(public)
}

/// The object's name: nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC). Only sha256 names are made.
pub fn name(public: &Public) -> Result<Vec<u8>, TpmError> {
    if public.name_hashing_algorithm() != HashingAlgorithm::Sha256 {
        return Err(fmt_err(format!(
            "the key's name algorithm is {:?}; only sha256 names are supported",
            public.name_hashing_algorithm()
        )));
    }
    let mut out = 0x000b_u16.to_be_bytes().to_vec();
    out.extend_from_slice(&Sha256::digest(public.marshall().map_err(fmt_err)?));
    Ok(out)
}

/// A qualified name: nameAlg ‖ H(parent's qualified name ‖ name). A hierarchy's qualified
/// name is its handle (TPM_RH_OWNER = 0x40000001).
pub fn qualified_name(parent_qn: &[u8], name: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(parent_qn);
    h.update(name);
    let mut out = 0x000b_u16.to_be_bytes().to_vec();
    out.extend_from_slice(&h.finalize());
    out
}

/// TPM_RH_OWNER, the storage hierarchy's handle: the root of hardend's keys' qualified names.
pub const OWNER_HIERARCHY: [u8; 4] = [0x40, 0x00, 0x00, 0x01];

/// What a verifier requires of an attestation key before it believes a quote signed by it:
/// it signs only what the TPM itself generated (restricted, sign, not decrypt), it cannot
/// leave this TPM or move to another parent (fixedTPM, fixedParent), and the TPM made its
/// secret (sensitiveDataOrigin). Only ECDSA-SHA256 on P-256 keys: what hardend creates.
pub fn check_attestation_key(public: &Public) -> Result<(), TpmError> {
    check_restricted_signing(public)?;
    let Public::Ecc { parameters, .. } = public else {
        return Err(fmt_err(
            "the attestation key is not an ECC key (only ECDSA P-256 keys are supported)",
        ));
    };
    if parameters.ecc_curve() != EccCurve::NistP256 {
        return Err(fmt_err("the attestation key is not on P-256"));
    }
    match parameters.ecc_scheme() {
        EccScheme::EcDsa(h) if h.hashing_algorithm() == HashingAlgorithm::Sha256 => Ok(()),
        other => Err(fmt_err(format!(
            "the attestation key's scheme is {other:?}, not ECDSA-SHA256"
        ))),
    }
}

/// The same for the RSA attestation key registered with Keylime: restricted signing,
/// RSA-2048, RSASSA-SHA256. Keylime's registrar and verifier check only the key's name and
/// signatures, so a planted unrestricted key (one that signs any bytes, so "quotes" of any
/// PCR values) would be accepted by them: the device refuses to use one.
pub fn check_rsa_attestation_key(public: &Public) -> Result<(), TpmError> {
    check_restricted_signing(public)?;
    let Public::Rsa { parameters, .. } = public else {
        return Err(fmt_err("the Keylime attestation key is not an RSA key"));
    };
    if parameters.key_bits() != RsaKeyBits::Rsa2048 {
        return Err(fmt_err("the Keylime attestation key is not RSA-2048"));
    }
    match parameters.rsa_scheme() {
        RsaScheme::RsaSsa(h) if h.hashing_algorithm() == HashingAlgorithm::Sha256 => Ok(()),
        other => Err(fmt_err(format!(
            "the Keylime attestation key's scheme is {other:?}, not RSASSA-SHA256"
        ))),
    }
}

fn check_restricted_signing(public: &Public) -> Result<(), TpmError> {
    let a = public.object_attributes();
    let missing: Vec<&str> = [
        (a.restricted(), "restricted"),
        (a.sign_encrypt(), "sign"),
        (a.fixed_tpm(), "fixedTPM"),
        (a.fixed_parent(), "fixedParent"),
        (a.sensitive_data_origin(), "sensitiveDataOrigin"),
    ]
    .into_iter()
    .filter(|(set, _)| !set)
    .map(|(_, n)| n)
    .collect();
    if !missing.is_empty() {
        return Err(fmt_err(format!(
            "the key is not an attestation key: attribute{} {} not set",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    if a.decrypt() {
        return Err(fmt_err(
            "the key is not an attestation key: it may also decrypt",
        ));
    }
    Ok(())
}

/// The P-256 verifying key inside an ECC public area.
pub fn p256_key(public: &Public) -> Result<p256::ecdsa::VerifyingKey, TpmError> {
    let Public::Ecc { unique, .. } = public else {
        return Err(fmt_err("not an ECC key"));
    };
    let pad = |v: &[u8]| -> Result<[u8; 32], TpmError> {
        if v.len() > 32 {
            return Err(fmt_err(format!("{}-byte P-256 coordinate", v.len())));
        }
        let mut o = [0u8; 32];
        o[32 - v.len()..].copy_from_slice(v);
        Ok(o)
    };
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&pad(unique.x().value())?);
    sec1.extend_from_slice(&pad(unique.y().value())?);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|e| fmt_err(format!("not a valid P-256 point: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tss_esapi::interface_types::algorithm::RsaSchemeAlgorithm;
    use tss_esapi::structures::RsaExponent;

    #[test]
    fn an_unrestricted_rsa_key_is_no_keylime_attestation_key() {
        let scheme = RsaScheme::create(RsaSchemeAlgorithm::RsaSsa, Some(HashingAlgorithm::Sha256))
            .expect("scheme");
        let k = tss_esapi::utils::create_unrestricted_signing_rsa_public(
            scheme,
            RsaKeyBits::Rsa2048,
            RsaExponent::default(),
        )
        .expect("template");
        let e = check_rsa_attestation_key(&k)
            .expect_err("unrestricted")
            .to_string();
        assert!(e.contains("restricted"), "{e}");
        let ecc = tss_esapi::utils::create_unrestricted_signing_ecc_public(
            EccScheme::EcDsa(tss_esapi::structures::HashScheme::new(
                HashingAlgorithm::Sha256,
            )),
            EccCurve::NistP256,
        )
        .expect("template");
        assert!(check_rsa_attestation_key(&ecc).is_err());
    }
}
