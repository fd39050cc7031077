//! The baseline's MAC key (HMAC-SHA256, 32 random bytes).
//!
//! With a TPM the key is sealed to it (`mac-key.sealed.pub/.priv`): a copy of the disk is not
//! enough to forge a baseline. Without one it is a root-only file (`mac-key`, 0600), which
//! protects against everyone but root. Once a sealed key exists, hardend never falls back to
//! a key file: if the TPM cannot unseal it, the baseline is not trusted (fail closed).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::IntegrityError;
use crate::fsutil;
use crate::tpm::identity::Tpm;

/// Where the key lives (also byte 10 of the baseline header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeySource {
    File = 1,
    Tpm = 2,
}

impl KeySource {
    pub fn from_byte(b: u8) -> Option<KeySource> {
        match b {
            1 => Some(KeySource::File),
            2 => Some(KeySource::Tpm),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            KeySource::File => "root-only key file",
            KeySource::Tpm => "TPM-sealed key",
        }
    }
}

/// The MAC key.
pub struct MacKey {
    pub source: KeySource,
    bytes: [u8; 32],
}

const FILE: &str = "mac-key";
const SEALED_PUB: &str = "mac-key.sealed.pub";
const SEALED_PRIV: &str = "mac-key.sealed.priv";

fn io(path: &Path) -> impl Fn(std::io::Error) -> IntegrityError + '_ {
    move |source| IntegrityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn random32() -> Result<[u8; 32], IntegrityError> {
    let p = Path::new("/dev/urandom");
    let mut b = [0u8; 32];
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io(p))?;
    Ok(b)
}

impl MacKey {
    #[cfg(test)]
    pub fn for_tests(bytes: [u8; 32]) -> MacKey {
        MacKey {
            source: KeySource::File,
            bytes,
        }
    }

    /// Whether `dir` holds a sealed key (then only the TPM may open it).
    pub fn sealed_exists(dir: &Path) -> bool {
        dir.join(SEALED_PUB).exists() || dir.join(SEALED_PRIV).exists()
    }

    /// Whether both halves of a sealed key are in `dir`.
    pub fn sealed_complete(dir: &Path) -> bool {
        dir.join(SEALED_PUB).exists() && dir.join(SEALED_PRIV).exists()
    }

    /// The root-only file key in `dir`, created when there is none. Refused when a sealed key
    /// exists (no downgrade from the TPM to a file).
    pub fn file(dir: &Path) -> Result<MacKey, IntegrityError> {
        if Self::sealed_exists(dir) {
            return Err(IntegrityError::KeyMismatch {
                path: dir.join(SEALED_PRIV),
                wanted: KeySource::Tpm.name(),
                have: "the TPM is not available".into(),
            });
        }
        let p: PathBuf = dir.join(FILE);
        match fs::read(&p) {
            Ok(b) if b.len() == 32 => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&b);
                Ok(MacKey {
                    source: KeySource::File,
                    bytes,
                })
            }
            Ok(b) => Err(IntegrityError::Format {
                path: p,
                what: format!("a {}-byte key (32 expected)", b.len()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random32()?;
                fsutil::create_dir_all_mode(dir, 0o700).map_err(io(dir))?;
                fsutil::write_atomic(&p, &bytes, 0o600).map_err(io(&p))?;
                Ok(MacKey {
                    source: KeySource::File,
                    bytes,
                })
            }
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// The key sealed to `tpm` in `dir`, created (and sealed) when there is none.
    pub fn sealed(tpm: &mut Tpm, dir: &Path) -> Result<MacKey, IntegrityError> {
        let (pp, sp) = (dir.join(SEALED_PUB), dir.join(SEALED_PRIV));
        if pp.exists() && sp.exists() {
            let pb = fs::read(&pp).map_err(io(&pp))?;
            let sb = fs::read(&sp).map_err(io(&sp))?;
            let public = Public::unmarshall(&pb).map_err(|e| IntegrityError::Format {
                path: pp.clone(),
                what: e.to_string(),
            })?;
            let private = Private::try_from(sb).map_err(|e| IntegrityError::Format {
                path: sp.clone(),
                what: e.to_string(),
            })?;
            let secret = crate::tpm::seal::unseal(tpm, public, private)?;
            let bytes: [u8; 32] = secret.try_into().map_err(|_| IntegrityError::Format {
                path: sp.clone(),
                what: "the sealed key is not 32 bytes".into(),
            })?;
            return Ok(MacKey {
                source: KeySource::Tpm,
                bytes,
            });
        }
        let bytes = random32()?;
        let (public, private) = crate::tpm::seal::seal(tpm, &bytes)?;
        let pb = public
            .marshall()
            .map_err(|e| IntegrityError::Invalid(format!("cannot marshal the sealed key: {e}")))?;
        fsutil::create_dir_all_mode(dir, 0o700).map_err(io(dir))?;
        fsutil::write_atomic(&pp, &pb, 0o600).map_err(io(&pp))?;
        fsutil::write_atomic(&sp, private.value(), 0o600).map_err(io(&sp))?;
        Ok(MacKey {
            source: KeySource::Tpm,
            bytes,
        })
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; 32 bytes never fails
        <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// A secret derived from the key for `label` (the TPM counter's authValue): only who
    /// holds the key knows it.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        self.mac(label)
    }

    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` over `data`.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut m = self.hmac();
        m.update(data);
        m.verify_slice(tag).is_ok()
    }
}
