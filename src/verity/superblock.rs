//! The 512-byte verity superblock as `veritysetup format` writes it (little-endian, at the
//! hash area's offset). The kernel never reads it; it records how the tree was built.

use super::{HashAlg, VerityError, VerityParams};

pub const SUPERBLOCK_SIZE: usize = 512;
const MAGIC: &[u8; 8] = b"verity\0\0";
pub const MAX_SALT: usize = 256;

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Encodes the superblock for `p`.
pub fn encode(p: &VerityParams) -> [u8; SUPERBLOCK_SIZE] {
    let mut b = [0u8; SUPERBLOCK_SIZE];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[12..16].copy_from_slice(&p.hash_type.to_le_bytes());
    b[16..32].copy_from_slice(&p.uuid);
    let name = p.hash_alg.name().as_bytes();
    b[32..32 + name.len()].copy_from_slice(name);
    b[64..68].copy_from_slice(&p.data_block_size.to_le_bytes());
    b[68..72].copy_from_slice(&p.hash_block_size.to_le_bytes());
    b[72..80].copy_from_slice(&p.data_blocks.to_le_bytes());
    b[80..82].copy_from_slice(&(p.salt.len() as u16).to_le_bytes());
    b[88..88 + p.salt.len()].copy_from_slice(&p.salt);
    b
}

/// Decodes and validates a superblock. `hash_offset` is recorded in the result (the
/// superblock does not store it).
pub fn decode(b: &[u8], hash_offset: u64) -> Result<VerityParams, VerityError> {
    let bad = |what: String| Err(VerityError::BadSuperblock(what));
    if b.len() < SUPERBLOCK_SIZE {
        return bad(format!("truncated: {} of {SUPERBLOCK_SIZE} bytes", b.len()));
    }
    if &b[0..8] != MAGIC {
        return bad("bad magic (not a verity superblock)".into());
    }
    let version = le_u32(b, 8);
    if version != 1 {
        return bad(format!("unsupported version {version}"));
    }
    let hash_type = le_u32(b, 12);
    if hash_type > 1 {
        return bad(format!("unsupported hash type {hash_type}"));
    }
    let alg_raw = &b[32..64];
    let end = alg_raw
        .iter()
        .position(|c| *c == 0)
        .unwrap_or(alg_raw.len());
    let alg_name = String::from_utf8_lossy(&alg_raw[..end]).to_string();
    let Some(hash_alg) = HashAlg::from_name(&alg_name) else {
        return bad(format!("unsupported hash algorithm {alg_name:?}"));
    };
    let data_block_size = le_u32(b, 64);
    let hash_block_size = le_u32(b, 68);
    let data_blocks = u64::from_le_bytes(
        b[72..80]
            .try_into()
            .map_err(|_| VerityError::BadSuperblock("size".into()))?,
    );
    let salt_size = usize::from(u16::from_le_bytes([b[80], b[81]]));
    if salt_size > MAX_SALT {
        return bad(format!("salt size {salt_size} exceeds {MAX_SALT}"));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[16..32]);
    let p = VerityParams {
        hash_type,
        hash_alg,
        data_block_size,
        hash_block_size,
        data_blocks,
        salt: b[88..88 + salt_size].to_vec(),
        uuid,
        hash_offset,
        superblock: true,
    };
    p.validate()?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> VerityParams {
        VerityParams {
            hash_type: 1,
            hash_alg: HashAlg::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 1000,
            salt: vec![1, 2, 3],
            uuid: [7; 16],
            hash_offset: 0,
            superblock: true,
        }
    }

    fn err(b: &[u8]) -> String {
        decode(b, 0).unwrap_err().to_string()
    }

    #[test]
    fn malformed_superblocks_give_clear_errors() {
        let good = encode(&sample());
        assert_eq!(decode(&good, 0).unwrap(), sample());
        let mut b = good;
        b[0] = b'X';
        assert_eq!(err(&b), "superblock: bad magic (not a verity superblock)");
        let mut b = good;
        b[8] = 2;
        assert_eq!(err(&b), "superblock: unsupported version 2");
        let mut b = good;
        b[64..68].copy_from_slice(&3000u32.to_le_bytes());
        assert!(err(&b).contains("data block size 3000 must be a power of two"));
        let mut b = good;
        b[80..82].copy_from_slice(&300u16.to_le_bytes());
        assert_eq!(err(&b), "superblock: salt size 300 exceeds 256");
        assert_eq!(err(&good[..100]), "superblock: truncated: 100 of 512 bytes");
        let mut b = good;
        b[32..38].copy_from_slice(b"md5\0\0\0");
        assert_eq!(err(&b), "superblock: unsupported hash algorithm \"md5\"");
        let mut b = good;
        b[72..80].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(err(&b), "no data blocks");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, .. ProptestConfig::default() })]

        /// The parser never panics on arbitrary bytes.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes, 0);
        }

        /// Arbitrary bytes behind a valid magic and version exercise the field checks.
        #[test]
        fn decode_never_panics_past_the_magic(mut bytes in proptest::collection::vec(any::<u8>(), 512..=512)) {
            bytes[0..8].copy_from_slice(MAGIC);
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
            let _ = decode(&bytes, 0);
        }

        /// Every valid parameter set survives encode/decode.
        #[test]
        fn round_trip(
            hash_type in 0u32..=1,
            alg in 0usize..3,
            dbs_bits in 9u32..=19,
            hbs_bits in 9u32..=19,
            data_blocks in 1u64..u64::from(u32::MAX),
            salt in proptest::collection::vec(any::<u8>(), 0..=256),
            uuid in any::<[u8; 16]>(),
        ) {
            let p = VerityParams {
                hash_type,
                hash_alg: [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512][alg],
                data_block_size: 1 << dbs_bits,
                hash_block_size: 1 << hbs_bits,
                data_blocks,
                salt,
                uuid,
                hash_offset: 0,
                superblock: true,
            };
            prop_assert_eq!(decode(&encode(&p), 0).unwrap(), p);
        }
    }
}
