//! The endorsement key: the TPM's own identity, certified by its manufacturer. Re-derived
//! from the TCG default templates (EK Credential Profile 2.x, low range: RSA 2048 and
//! ECC P-256, policy A = PolicySecret(TPM_RH_ENDORSEMENT)) as a transient primary for every
//! use, never persisted; its certificate read from NV when the manufacturer stored one.

use tss_esapi::abstraction::AsymmetricAlgorithmSelection;
use tss_esapi::abstraction::ek;
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::Public;

use super::TpmError;
use super::identity::{Tpm, tpm_err};

/// The EK templates hardend derives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EkAlgorithm {
    /// TCG template L-1, certificate at NV 0x01c00002 (what most TPMs and Keylime use).
    #[default]
    Rsa2048,
    /// TCG template L-2, certificate at NV 0x01c0000a.
    EccP256,
}

impl EkAlgorithm {
    pub const ALL: [EkAlgorithm; 2] = [EkAlgorithm::Rsa2048, EkAlgorithm::EccP256];

    pub fn as_str(self) -> &'static str {
        match self {
            EkAlgorithm::Rsa2048 => "rsa2048",
            EkAlgorithm::EccP256 => "ecc-p256",
        }
    }

    /// Where the manufacturer stores this EK's certificate.
    pub fn certificate_index(self) -> u32 {
        match self {
            EkAlgorithm::Rsa2048 => 0x01c0_0002,
            EkAlgorithm::EccP256 => 0x01c0_000a,
        }
    }

    fn selection(self) -> AsymmetricAlgorithmSelection {
        match self {
            EkAlgorithm::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            EkAlgorithm::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        }
    }
}

impl std::str::FromStr for EkAlgorithm {
    type Err = TpmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EkAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                TpmError::Format(format!(
                    "EK algorithm {s:?} is not one of rsa2048, ecc-p256"
                ))
            })
    }
}

/// The EK's public area and, when the manufacturer stored one, its certificate (DER).
#[derive(Clone, Debug)]
pub struct Ek {
    pub algorithm: EkAlgorithm,
    pub public: Public,
    pub certificate: Option<Vec<u8>>,
}

/// Derives the EK, runs `f` with its handle, flushes it.
pub fn with_ek<T>(
    tpm: &mut Tpm,
    alg: EkAlgorithm,
    f: impl FnOnce(&mut Tpm, KeyHandle) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let handle = ek::create_ek_object_2(&mut tpm.ctx, alg.selection(), None)
        .map_err(tpm_err("derive the endorsement key"))?;
    let r = f(tpm, handle);
    tpm.flush(handle);
    r
}

/// Reads the EK's public area and its certificate.
pub fn read(tpm: &mut Tpm, alg: EkAlgorithm) -> Result<Ek, TpmError> {
    let public = with_ek(tpm, alg, |tpm, h| {
        let (public, _, _) = tpm
            .ctx
            .read_public(h)
            .map_err(tpm_err("read the endorsement key"))?;
        Ok(public)
    })?;
    let certificate = if tpm.nv_defined(alg.certificate_index())? {
        Some(
            ek::retrieve_ek_pubcert(&mut tpm.ctx, alg.selection())
                .map_err(tpm_err("read the EK certificate from NV"))?,
        )
    } else {
        None
    };
    Ok(Ek {
        algorithm: alg,
        public,
        certificate,
    })
}
