//! Building and verifying the hash tree. Level 0 (one digest per data block, nearly all of
//! the work) is computed in parallel over contiguous ranges with large positioned reads;
//! the levels above are small and computed in memory.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::superblock::{self, SUPERBLOCK_SIZE};
use super::{Corruption, HashAlg, VerityError, VerityParams};

/// Where every level lives in the hash file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub digest: usize,
    /// Bytes per entry: the digest rounded up to a power of two (format 1) or the digest
    /// itself (format 0).
    pub slot: usize,
    pub per_bits: u32,
    pub levels: usize,
    /// First hash block (index in hash-block units from the start of the file) per level,
    /// level 0 = bottom.
    pub level_start: Vec<u64>,
    pub level_blocks: Vec<u64>,
    /// First tree block.
    pub hash_start: u64,
    /// One past the last hash block.
    pub end_block: u64,
    /// Bytes per hash block.
    pub hash_block: u64,
}

impl Layout {
    /// `None` when the parameters cannot describe a tree (too many levels, tiny blocks).
    pub fn new(p: &VerityParams) -> Option<Layout> {
        let digest = p.hash_alg.digest_size();
        let hbs = u64::from(p.hash_block_size);
        let per_bits = (p.hash_block_size as usize / digest).checked_ilog2()?;
        if per_bits == 0 {
            return None;
        }
        let n = p.data_blocks;
        if n == 0 {
            return None;
        }
        let mut levels = 0usize;
        while per_bits as usize * levels < 64 && (n - 1) >> (per_bits as usize * levels) != 0 {
            levels += 1;
        }
        if levels > 63 {
            return None;
        }
        let hash_start = if p.superblock {
            p.hash_offset
                .checked_add(SUPERBLOCK_SIZE as u64)?
                .div_ceil(hbs)
        } else {
            p.hash_offset / hbs
        };
        let mut level_start = vec![0; levels];
        let mut level_blocks = vec![0; levels];
        let mut pos = hash_start;
        for i in (0..levels).rev() {
            let shift = (i as u32 + 1) * per_bits;
            let s = ((u128::from(n) + (1u128 << shift) - 1) >> shift) as u64;
            level_start[i] = pos;
            level_blocks[i] = s;
            pos = pos.checked_add(s)?;
        }
        let slot = if p.hash_type == 1 {
            digest.next_power_of_two()
        } else {
            digest
        };
        Some(Layout {
            digest,
            slot,
            per_bits,
            levels,
            level_start,
            level_blocks,
            hash_start,
            end_block: pos,
            hash_block: hbs,
        })
    }

    pub fn per(&self) -> usize {
        1 << self.per_bits
    }

    /// One past the last byte of the hash area; `None` when it does not fit in an `i64`.
    pub fn hash_bytes(&self) -> Option<u64> {
        self.end_block
            .checked_mul(self.hash_block_size())
            .filter(|n| i64::try_from(*n).is_ok())
    }

    /// The bytes the tree's levels take in memory (what `verify` and `format` hold).
    pub fn tree_bytes(&self) -> u64 {
        (self.end_block - self.hash_start).saturating_mul(self.hash_block_size())
    }

    fn hash_block_size(&self) -> u64 {
        self.hash_block
    }
}

/// The size of a regular file or a block device (whose metadata says 0).
pub fn size_of(f: &File, path: &Path) -> Result<u64, VerityError> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::End(0)).map_err(io_err(path))
}

/// `bytes` of tree must fit in memory: a hostile or simply huge parameter set is an error,
/// never an allocation that aborts the process.
fn fits_in_memory(bytes: u64) -> Result<(), VerityError> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(u64::MAX);
    if bytes > available / 2 || usize::try_from(bytes).is_err() {
        return Err(VerityError::Params(format!(
            "the hash tree takes {} MiB, more than half of the {} MiB of memory available",
            bytes >> 20,
            available >> 20
        )));
    }
    Ok(())
}

/// A data area and a hash area on the same file or device must not overlap (veritysetup:
/// "Data area overlaps with hash area"): the tree would overwrite the data it describes.
fn check_overlap(
    p: &VerityParams,
    data: &File,
    data_path: &Path,
    hash_path: &Path,
) -> Result<(), VerityError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(h) = std::fs::metadata(hash_path) else {
        return Ok(()); // created by format: another file
    };
    let d = data.metadata().map_err(io_err(data_path))?;
    let same = (d.dev(), d.ino()) == (h.dev(), h.ino())
        || (d.file_type().is_block_device()
            && h.file_type().is_block_device()
            && d.rdev() == h.rdev());
    let data_end = p.data_bytes().unwrap_or(u64::MAX);
    if same && p.hash_offset < data_end {
        return Err(VerityError::Params(format!(
            "{} and {} are the same, and the hash area at byte {} overlaps the data area ({} bytes): give --hash-offset {data_end} or more",
            data_path.display(),
            hash_path.display(),
            p.hash_offset,
            data_end
        )));
    }
    Ok(())
}

/// The salted block hash: format 1 `H(salt ‖ block)`, format 0 `H(block ‖ salt)`.
#[derive(Clone)]
enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

struct BlockHasher {
    /// State after absorbing the salt (format 1) or fresh (format 0).
    start: Hasher,
    salt: Vec<u8>,
    salt_first: bool,
}

impl BlockHasher {
    fn new(p: &VerityParams) -> Self {
        let mut start = match p.hash_alg {
            HashAlg::Sha1 => Hasher::Sha1(Sha1::new()),
            HashAlg::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlg::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        let salt_first = p.hash_type == 1;
        if salt_first {
            match &mut start {
                Hasher::Sha1(h) => h.update(&p.salt),
                Hasher::Sha256(h) => h.update(&p.salt),
                Hasher::Sha512(h) => h.update(&p.salt),
            }
        }
        BlockHasher {
            start,
            salt: p.salt.clone(),
            salt_first,
        }
    }

    fn hash(&self, block: &[u8], out: &mut [u8]) {
        fn fin<D: Digest>(mut h: D, block: &[u8], salt: Option<&[u8]>, out: &mut [u8]) {
            h.update(block);
            if let Some(s) = salt {
                h.update(s);
            }
            out.copy_from_slice(&h.finalize());
        }
        let salt = (!self.salt_first).then_some(self.salt.as_slice());
        match self.start.clone() {
            Hasher::Sha1(h) => fin(h, block, salt, out),
            Hasher::Sha256(h) => fin(h, block, salt, out),
            Hasher::Sha512(h) => fin(h, block, salt, out),
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> VerityError + '_ {
    move |source| VerityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes each thread reads at a time (a whole number of blocks).
const READ_CHUNK: usize = 1 << 20;

/// Digests of all data blocks of `data`, in parallel: each thread reads its range with
/// `pread` into its own buffer. Not mmap: the data is often a regular image file, and a file
/// truncated (or a device removed) under a mapping raises SIGBUS in the middle of the
/// daemon or CLI; a read returns an error or a short count, which is reported instead.
fn data_digests(
    p: &VerityParams,
    data: &File,
    data_path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, VerityError> {
    use std::os::unix::fs::FileExt;
    let n = p.data_blocks;
    let dbs = p.data_block_size as usize;
    let digest = p.hash_alg.digest_size();
    let hasher = BlockHasher::new(p);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 16) as u64;
    let chunk = n.div_ceil(threads).max(1);
    let mut out = vec![
        0u8;
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_mul(digest)
    ];
    let per_read = (READ_CHUNK / dbs).max(1);
    let results: Vec<Result<(), std::io::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = out
            .chunks_mut(chunk as usize * digest)
            .enumerate()
            .map(|(t, slice)| {
                let hasher = &hasher;
                let first = t as u64 * chunk;
                s.spawn(move || -> Result<(), std::io::Error> {
                    let mut buf = vec![0u8; per_read * dbs];
                    let blocks = (slice.len() / digest) as u64;
                    let mut done = 0u64;
                    while done < blocks {
                        let count = (blocks - done).min(per_read as u64) as usize;
                        let bytes = &mut buf[..count * dbs];
                        data.read_exact_at(bytes, (first + done) * dbs as u64)?;
                        for (i, block) in bytes.chunks(dbs).enumerate() {
                            let at = (done as usize + i) * digest;
                            hasher.hash(block, &mut slice[at..at + digest]);
                        }
                        done += count as u64;
                        progress(count as u64);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")))
            })
            .collect()
    });
    for r in results {
        r.map_err(io_err(data_path))?;
    }
    Ok(out)
}

/// Packs digests into hash blocks (slots, zero padding).
fn pack(l: &Layout, hbs: usize, digests: &[u8], blocks: u64) -> Vec<u8> {
    let mut out = vec![0u8; blocks as usize * hbs];
    let per = l.per();
    for (i, d) in digests.chunks(l.digest).enumerate() {
        let (blk, slot) = (i / per, i % per);
        let at = blk * hbs + slot * l.slot;
        out[at..at + l.digest].copy_from_slice(d);
    }
    out
}

/// The result of `format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formatted {
    pub root_hash: Vec<u8>,
    pub hash_blocks: u64,
    pub hash_device_size: u64,
}

fn open_data(data_path: &Path, p: &VerityParams) -> Result<File, VerityError> {
    let data = File::open(data_path).map_err(io_err(data_path))?;
    let len = size_of(&data, data_path)?;
    let need = p
        .data_bytes()
        .ok_or_else(|| VerityError::Params("the data area does not fit in a 63-bit size".into()))?;
    if len < need {
        return Err(VerityError::Params(format!(
            "{} has {len} bytes, fewer than {} data blocks of {} bytes",
            data_path.display(),
            p.data_blocks,
            p.data_block_size
        )));
    }
    Ok(data)
}

/// Builds every level in memory; returns (levels bottom-first, root).
fn build_levels(p: &VerityParams, l: &Layout, level0: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let hbs = p.hash_block_size as usize;
    let hasher = BlockHasher::new(p);
    let mut levels = Vec::with_capacity(l.levels);
    let mut digests = level0.to_vec();
    for i in 0..l.levels {
        let blocks = pack(l, hbs, &digests, l.level_blocks[i]);
        digests = vec![0u8; l.level_blocks[i] as usize * l.digest];
        for (b, d) in blocks.chunks(hbs).zip(digests.chunks_mut(l.digest)) {
            hasher.hash(b, d);
        }
        levels.push(blocks);
    }
    // With levels, the top level has one block whose digest is the root; without, the
    // single data block's digest is.
    let root = digests[..l.digest].to_vec();
    (levels, root)
}

/// `veritysetup format`: computes the tree for `data_path` and writes superblock and tree
/// into `hash_path` (created 0600 if missing; never truncated, so it may be the data file).
pub fn format(
    p: &VerityParams,
    data_path: &Path,
    hash_path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Formatted, VerityError> {
    p.validate()?;
    let l = Layout::new(p).ok_or_else(|| VerityError::Params("invalid tree layout".into()))?;
    let hbs = p.hash_block_size as usize;
    let data = open_data(data_path, p)?;
    check_overlap(p, &data, data_path, hash_path)?;
    fits_in_memory(
        l.tree_bytes()
            .saturating_add(p.data_blocks.saturating_mul(l.digest as u64)),
    )?;
    let level0 = data_digests(p, &data, data_path, progress)?;
    let (levels, root) = build_levels(p, &l, &level0);

    let hash = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(hash_path)
        .map_err(io_err(hash_path))?;
    if p.superblock {
        // the superblock, then zeros up to the first tree block
        let mut head = vec![0u8; (l.hash_start * hbs as u64 - p.hash_offset) as usize];
        head[..SUPERBLOCK_SIZE].copy_from_slice(&superblock::encode(p));
        hash.write_all_at(&head, p.hash_offset)
            .map_err(io_err(hash_path))?;
    }
    for (i, blocks) in levels.iter().enumerate() {
        hash.write_all_at(blocks, l.level_start[i] * hbs as u64)
            .map_err(io_err(hash_path))?;
    }
    let size = l.end_block * hbs as u64;
    if hash.metadata().map_err(io_err(hash_path))?.len() < size {
        hash.set_len(size).map_err(io_err(hash_path))?;
    }
    hash.sync_all().map_err(io_err(hash_path))?;
    Ok(Formatted {
        root_hash: root,
        hash_blocks: l.end_block - l.hash_start,
        hash_device_size: size,
    })
}

/// Reads the superblock at `hash_offset` of `hash_path`.
pub fn read_superblock(hash_path: &Path, hash_offset: u64) -> Result<VerityParams, VerityError> {
    let f = File::open(hash_path).map_err(io_err(hash_path))?;
    let mut b = vec![0u8; SUPERBLOCK_SIZE];
    let n = f.read_at(&mut b, hash_offset).map_err(io_err(hash_path))?;
    superblock::decode(&b[..n], hash_offset)
}

/// Recomputes everything and compares: the root against the top block, every hash block
/// against its digest one level up (top down, so the first report is the real culprit),
/// padding, then every data block against level 0.
pub fn verify(
    p: &VerityParams,
    data_path: &Path,
    hash_path: &Path,
    root: &[u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), VerityError> {
    p.validate()?;
    let l = Layout::new(p).ok_or_else(|| VerityError::Params("invalid tree layout".into()))?;
    let hbs = p.hash_block_size as usize;
    let hasher = BlockHasher::new(p);
    // every size is checked against the files before anything is allocated: a superblock
    // is input, and a hostile one names 2^40 blocks
    let data = open_data(data_path, p)?;
    let hash = File::open(hash_path).map_err(io_err(hash_path))?;
    let need = l
        .hash_bytes()
        .ok_or_else(|| VerityError::Params("the hash area does not fit in a 63-bit size".into()))?;
    let have = size_of(&hash, hash_path)?;
    if have < need {
        return Err(VerityError::Params(format!(
            "{} has {have} bytes, but the tree these parameters describe ends at byte {need}",
            hash_path.display()
        )));
    }
    fits_in_memory(l.tree_bytes())?;
    let mut levels = Vec::new();
    for i in 0..l.levels {
        let mut b = vec![0u8; l.level_blocks[i] as usize * hbs];
        hash.read_exact_at(&mut b, l.level_start[i] * hbs as u64)
            .map_err(io_err(hash_path))?;
        levels.push(b);
    }
    let corrupt = |c| Err(VerityError::Corrupt(c));
    let mut d = vec![0u8; l.digest];
    if l.levels == 0 {
        let mut block = vec![0u8; p.data_block_size as usize];
        data.read_exact_at(&mut block, 0)
            .map_err(io_err(data_path))?;
        hasher.hash(&block, &mut d);
        if d != root {
            return corrupt(Corruption::RootHash {
                expected: hex::encode(root),
                actual: hex::encode(&d),
            });
        }
        return Ok(());
    }
    hasher.hash(&levels[l.levels - 1][..hbs], &mut d);
    if d != root {
        return corrupt(Corruption::RootHash {
            expected: hex::encode(root),
            actual: hex::encode(&d),
        });
    }
    let per = l.per();
    // entries expected in level i: data blocks for level 0, blocks of level i-1 above
    let entries = |i: usize| {
        if i == 0 {
            p.data_blocks
        } else {
            l.level_blocks[i - 1]
        }
    };
    for i in (0..l.levels).rev() {
        // padding: slot tails (format 1) and everything after the last entry
        let used = entries(i) as usize;
        for (j, block) in levels[i].chunks(hbs).enumerate() {
            let first = j * per;
            let n_here = used.saturating_sub(first).min(per);
            let mut pad_ok = block[n_here * l.slot..].iter().all(|b| *b == 0);
            for s in 0..n_here {
                pad_ok &= block[s * l.slot + l.digest..(s + 1) * l.slot]
                    .iter()
                    .all(|b| *b == 0);
            }
            if !pad_ok {
                return corrupt(Corruption::Padding {
                    level: i,
                    index: j as u64,
                    offset: (l.level_start[i] + j as u64) * hbs as u64,
                });
            }
        }
        if i == 0 {
            break;
        }
        // every block of level i-1 against its entry in level i
        for (j, block) in levels[i - 1].chunks(hbs).enumerate() {
            hasher.hash(block, &mut d);
            let (b, s) = (j / per, j % per);
            let at = b * hbs + s * l.slot;
            if levels[i][at..at + l.digest] != d[..] {
                return corrupt(Corruption::HashBlock {
                    level: i - 1,
                    index: j as u64,
                    offset: (l.level_start[i - 1] + j as u64) * hbs as u64,
                });
            }
        }
    }
    let level0 = data_digests(p, &data, data_path, progress)?;
    for (j, got) in level0.chunks(l.digest).enumerate() {
        let (b, s) = (j / per, j % per);
        let at = b * hbs + s * l.slot;
        if levels[0][at..at + l.digest] != *got {
            return corrupt(Corruption::DataBlock {
                index: j as u64,
                offset: j as u64 * u64::from(p.data_block_size),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: u64, hbs: u32, alg: HashAlg, sb: bool) -> VerityParams {
        VerityParams {
            hash_type: 1,
            hash_alg: alg,
            data_block_size: 4096,
            hash_block_size: hbs,
            data_blocks: n,
            salt: vec![],
            uuid: [0; 16],
            hash_offset: 0,
            superblock: sb,
        }
    }

    #[test]
    fn layout_matches_veritysetups_example() {
        // 1000 x 4 KiB blocks, sha256: 8 + 1 hash blocks after the superblock = 40960 bytes
        let l = Layout::new(&params(1000, 4096, HashAlg::Sha256, true)).unwrap();
        assert_eq!(l.levels, 2);
        assert_eq!(l.level_blocks, [8, 1]);
        assert_eq!(l.level_start, [2, 1], "top level first");
        assert_eq!(l.end_block * 4096, 40960);
        // sha1 with 4 KiB blocks: 128 entries per block, not 204
        let l = Layout::new(&params(129, 4096, HashAlg::Sha1, false)).unwrap();
        assert_eq!(l.per(), 128);
        assert_eq!(l.slot, 32);
        assert_eq!(l.level_blocks, [2, 1]);
        // a single block has no hash levels at all
        assert_eq!(
            Layout::new(&params(1, 4096, HashAlg::Sha256, false))
                .unwrap()
                .levels,
            0
        );
    }

    proptest::proptest! {
        /// Any sizes a superblock or a command line can state: validation and the layout
        /// never panic or wrap, and what validates has sizes that fit a file offset.
        #[test]
        fn hostile_sizes_never_panic_or_wrap(
            data_blocks in proptest::prelude::any::<u64>(),
            dbs_bits in 0u32..=31,
            hbs_bits in 0u32..=31,
            hash_offset in proptest::prelude::any::<u64>(),
            alg in 0usize..3,
            hash_type in 0u32..=2,
            superblock in proptest::prelude::any::<bool>(),
        ) {
            let p = VerityParams {
                hash_type,
                hash_alg: [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512][alg],
                data_block_size: 1u32 << dbs_bits,
                hash_block_size: 1u32 << hbs_bits,
                data_blocks,
                salt: vec![],
                uuid: [0; 16],
                hash_offset: hash_offset & !511,
                superblock,
            };
            let _ = Layout::new(&p);
            let _ = Layout::new(&VerityParams { data_blocks: 0, ..p.clone() });
            if p.validate().is_ok() {
                let l = Layout::new(&p).unwrap();
                proptest::prop_assert!(p.data_bytes().is_some());
                proptest::prop_assert!(l.hash_bytes().is_some());
                proptest::prop_assert!(l.end_block >= l.hash_start);
            }
        }
    }
}
