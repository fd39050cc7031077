//! PKCS#10 certificate signing requests for the fleet CA, signed inside the TPM: rcgen
//! builds the request and calls back into the TPM for the signature.

use std::sync::Mutex;

use rcgen::{CertificateParams, DistinguishedName, DnType, PublicKeyData, SigningKey};

use super::TpmError;
use super::identity::{IdentityStore, Tpm};

/// Parses `CN=gw-0042,O=Acme,OU=Gateways,C=DE,ST=Bavaria,L=Munich` (commas separate
/// attributes; a value cannot contain a comma).
pub fn parse_subject(s: &str) -> Result<DistinguishedName, TpmError> {
    let mut dn = DistinguishedName::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| TpmError::Format(format!("subject part {part:?} is not KEY=VALUE")))?;
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(TpmError::Format(format!(
                    "subject attribute {other:?} is not one of CN, O, OU, C, ST, L"
                )));
            }
        };
        let v = v.trim();
        if v.is_empty() {
            return Err(TpmError::Format(format!("subject attribute {k} is empty")));
        }
        dn.push(ty, v);
    }
    if dn.iter().next().is_none() {
        return Err(TpmError::Format(
            "the subject is empty (e.g. CN=device-name)".into(),
        ));
    }
    Ok(dn)
}

/// The identity key as rcgen sees it: the public point, and signatures from the TPM.
struct TpmSigner<'a> {
    store: &'a IdentityStore,
    tpm: Mutex<&'a mut Tpm>,
    sec1: Vec<u8>,
    error: Mutex<Option<TpmError>>,
}

impl PublicKeyData for TpmSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.sec1
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for TpmSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut tpm = self.tpm.lock().unwrap_or_else(|e| e.into_inner());
        self.store.sign_raw(&mut tpm, msg).map_err(|e| {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A PEM CSR for `subject`, carrying the identity's public key, signed by it in the TPM.
pub fn csr(store: &IdentityStore, tpm: &mut Tpm, subject: &str) -> Result<String, TpmError> {
    let dn = parse_subject(subject)?;
    let id = store.public()?;
    let key: p256::PublicKey = p256::pkcs8::DecodePublicKey::from_public_key_der(&id.spki_der)
        .map_err(|e| TpmError::Format(e.to_string()))?;
    // uncompressed SEC1 point: what rcgen writes into the SubjectPublicKeyInfo
    let sec1 = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false)
        .as_bytes()
        .to_vec();
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| TpmError::Format(e.to_string()))?;
    params.distinguished_name = dn;
    let signer = TpmSigner {
        store,
        tpm: Mutex::new(tpm),
        sec1,
        error: Mutex::new(None),
    };
    match params.serialize_request(&signer) {
        Ok(req) => req.pem().map_err(|e| TpmError::Format(e.to_string())),
        Err(e) => Err(signer
            .error
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(|| TpmError::Format(format!("CSR: {e}")))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_subject;

    #[test]
    fn subjects() {
        assert!(parse_subject("CN=gw-0042, O=Acme,C=DE").is_ok());
        assert!(parse_subject("").is_err());
        assert!(parse_subject("CN=").is_err());
        assert!(parse_subject("EMAIL=x@y").is_err());
        assert!(parse_subject("gw-0042").is_err());
    }
}
