//! dm-verity: hash trees byte-compatible with `veritysetup format`, userspace verification.
//!
//! Layout (cryptsetup's `lib/verity/verity_hash.c`, checked against veritysetup 2.6.1 by
//! the tests): an optional 512-byte superblock at `hash_offset`, then the tree levels,
//! **top level first**, starting at the first hash block after the superblock. Level 0
//! holds one digest per data block; each level above one per block of the level below.
//! `per` = 2^floor(log2(hash_block / digest)) entries per block for both formats; format 1
//! stores each digest in a power-of-two slot and hashes `salt ‖ block`, format 0 packs
//! digests and hashes `block ‖ salt`. The root hash is the digest of the top block (or of
//! the only data block when there is one).

pub mod dm;
pub mod runtime;
pub mod superblock;
pub mod tree;
pub mod uevent;

use std::path::PathBuf;

use serde::Serialize;

/// Errors from verity parameters, files and verification.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error("{0}")]
    Params(String),
    #[error("superblock: {0}")]
    BadSuperblock(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Corrupt(Corruption),
}

/// The first inconsistency `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Corruption {
    /// The root hash does not match the top of the tree (or the only data block).
    RootHash { expected: String, actual: String },
    /// A hash block does not match its digest one level up.
    HashBlock {
        level: usize,
        index: u64,
        offset: u64,
    },
    /// A data block does not match its digest in level 0.
    DataBlock { index: u64, offset: u64 },
    /// Non-zero bytes where the format has padding.
    Padding {
        level: usize,
        index: u64,
        offset: u64,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::RootHash { expected, actual } => {
                write!(
                    f,
                    "root hash mismatch: expected {expected}, the tree gives {actual}"
                )
            }
            Corruption::HashBlock {
                level,
                index,
                offset,
            } => write!(
                f,
                "hash block {index} of level {level} (hash device offset {offset}) is corrupted"
            ),
            Corruption::DataBlock { index, offset } => {
                write!(f, "data block {index} (offset {offset}) is corrupted")
            }
            Corruption::Padding {
                level,
                index,
                offset,
            } => write!(
                f,
                "hash block {index} of level {level} (offset {offset}) has non-zero padding"
            ),
        }
    }
}

/// Hash algorithms the kernel's dm-verity and veritysetup both support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    pub fn from_name(n: &str) -> Option<HashAlg> {
        match n {
            "sha1" => Some(HashAlg::Sha1),
            "sha256" => Some(HashAlg::Sha256),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    pub fn digest_size(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha512 => 64,
        }
    }
}

/// Everything that determines a verity hash tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerityParams {
    /// 0 (ChromeOS) or 1 (normal).
    pub hash_type: u32,
    pub hash_alg: HashAlg,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    #[serde(serialize_with = "hex_or_null")]
    pub salt: Vec<u8>,
    #[serde(serialize_with = "uuid_string")]
    pub uuid: [u8; 16],
    /// Byte offset of the hash area (superblock or tree) in the hash file.
    pub hash_offset: u64,
    pub superblock: bool,
}

/// In documents an empty salt is `null` (veritysetup's `-` is command-line notation).
fn hex_or_null<S: serde::Serializer>(salt: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if salt.is_empty() {
        return s.serialize_none();
    }
    s.serialize_str(&hex::encode(salt))
}

fn uuid_string<S: serde::Serializer>(u: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_uuid(u))
}

/// `-` for an empty salt, hex otherwise (veritysetup's notation).
pub fn salt_string(salt: &[u8]) -> String {
    if salt.is_empty() {
        "-".into()
    } else {
        hex::encode(salt)
    }
}

/// Parses `-` or hex.
pub fn parse_salt(s: &str) -> Result<Vec<u8>, VerityError> {
    if s == "-" {
        return Ok(Vec::new());
    }
    let salt = hex::decode(s).map_err(|e| VerityError::Params(format!("salt {s:?}: {e}")))?;
    if salt.len() > superblock::MAX_SALT {
        return Err(VerityError::Params(format!(
            "salt is {} bytes, at most {} are allowed",
            salt.len(),
            superblock::MAX_SALT
        )));
    }
    Ok(salt)
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn parse_uuid(s: &str) -> Result<[u8; 16], VerityError> {
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(&hexs).map_err(|e| VerityError::Params(format!("uuid {s:?}: {e}")))?;
    v.try_into()
        .map_err(|_| VerityError::Params(format!("uuid {s:?} is not 16 bytes")))
}

fn power_of_two_in(v: u32, min: u32, max: u32) -> bool {
    v.is_power_of_two() && (min..=max).contains(&v)
}

impl VerityParams {
    /// The parameter rules veritysetup and the kernel apply.
    pub fn validate(&self) -> Result<(), VerityError> {
        let e = |m: String| Err(VerityError::Params(m));
        if self.hash_type > 1 {
            return e(format!("hash type {} is not 0 or 1", self.hash_type));
        }
        for (name, v) in [
            ("data", self.data_block_size),
            ("hash", self.hash_block_size),
        ] {
            if !power_of_two_in(v, 512, 512 * 1024) {
                return e(format!(
                    "{name} block size {v} must be a power of two from 512 to 524288"
                ));
            }
        }
        if (self.hash_block_size as usize) < 2 * self.hash_alg.digest_size() {
            return e(format!(
                "hash block size {} must hold at least two {} digests",
                self.hash_block_size,
                self.hash_alg.name()
            ));
        }
        if self.salt.len() > superblock::MAX_SALT {
            return e(format!(
                "salt is {} bytes, at most {} are allowed",
                self.salt.len(),
                superblock::MAX_SALT
            ));
        }
        if self.data_blocks == 0 {
            return e("no data blocks".into());
        }
        if self.hash_offset % 512 != 0 {
            return e(format!(
                "hash offset {} must be a multiple of 512",
                self.hash_offset
            ));
        }
        if self.data_bytes().is_none() {
            return e(format!(
                "{} data blocks of {} bytes do not fit in a 63-bit size",
                self.data_blocks, self.data_block_size
            ));
        }
        match tree::Layout::new(self) {
            None => {
                return e(
                    "the tree would need more than 63 levels, or does not fit in a 63-bit size"
                        .into(),
                );
            }
            Some(l) if l.hash_bytes().is_none() => {
                return e("the hash area does not fit in a 63-bit size".into());
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The data area's size in bytes; `None` when it does not fit in an `i64` (a file
    /// offset): hostile superblocks say 2^40 blocks, and the product must never wrap.
    pub fn data_bytes(&self) -> Option<u64> {
        self.data_blocks
            .checked_mul(u64::from(self.data_block_size))
            .filter(|n| i64::try_from(*n).is_ok())
    }
}
