//! Small secrets sealed to this TPM: a keyed-hash object created under the storage key, its
//! blobs stored on disk; only this TPM can unseal them (the integrity baseline's MAC key).

use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::structures::{
    Digest, KeyedHashScheme, Private, Public, PublicBuilder, PublicKeyedHashParameters,
    SensitiveData,
};

use super::TpmError;
use super::identity::{Tpm, tpm_err};

/// Seals `secret` (up to 128 bytes) under the storage key; returns the public and private
/// blobs. The private blob is encrypted by the TPM and loads only into it.
pub fn seal(tpm: &mut Tpm, secret: &[u8]) -> Result<(Public, Private), TpmError> {
    let e = tpm_err("build the sealed-object template");
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .build()
        .map_err(&e)?;
    let template = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .map_err(&e)?;
    let data = SensitiveData::try_from(secret.to_vec()).map_err(tpm_err("prepare the secret"))?;
    let srk = tpm.srk()?;
    let r = tpm
        .ctx
        .execute_with_nullauth_session(|c| c.create(srk, template, None, Some(data), None, None));
    tpm.flush(srk);
    let r = r.map_err(tpm_err("seal"))?;
    Ok((r.out_public, r.out_private))
}

/// Unseals blobs made by [`seal`] on this TPM.
pub fn unseal(tpm: &mut Tpm, public: Public, private: Private) -> Result<Vec<u8>, TpmError> {
    let srk = tpm.srk()?;
    let loaded = tpm
        .ctx
        .execute_with_nullauth_session(|c| c.load(srk, private, public));
    tpm.flush(srk);
    let obj = loaded.map_err(tpm_err("load the sealed object (was the TPM cleared?)"))?;
    let r = tpm
        .ctx
        .execute_with_nullauth_session(|c| c.unseal(obj.into()));
    tpm.flush(obj);
    Ok(r.map_err(tpm_err("unseal"))?.value().to_vec())
}
