//! dm-verity hash trees against veritysetup, the reference: byte-identical hash areas and
//! root hashes over a parameter matrix, mutual verification, and corruption found by both.
//! The images are made by the tests; veritysetup runs on plain files, no device-mapper.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hardend::verity::tree::{self, verify};
use hardend::verity::{Corruption, HashAlg, VerityError, VerityParams, parse_uuid};

const UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn have_veritysetup() -> bool {
    Command::new("veritysetup")
        .arg("--version")
        .output()
        .is_ok()
}

/// Deterministic, non-repeating data.
fn make_data(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    fs::write(path, v).unwrap();
}

struct Case {
    blocks: u64,
    bs: u32,
    hash_type: u32,
    alg: HashAlg,
    salt: Vec<u8>,
    superblock: bool,
}

fn salt_arg(s: &[u8]) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        hex::encode(s)
    }
}

fn veritysetup_format(data: &Path, hash: &Path, p: &VerityParams) -> String {
    let mut c = Command::new("veritysetup");
    c.arg("format")
        .arg(data)
        .arg(hash)
        .arg(format!("--hash={}", p.hash_alg.name()))
        .arg(format!("--data-block-size={}", p.data_block_size))
        .arg(format!("--hash-block-size={}", p.hash_block_size))
        .arg(format!("--format={}", p.hash_type))
        .arg(format!("--salt={}", salt_arg(&p.salt)))
        .arg(format!("--data-blocks={}", p.data_blocks))
        .arg(format!("--hash-offset={}", p.hash_offset));
    if p.superblock {
        c.arg(format!("--uuid={UUID}"));
    } else {
        c.arg("--no-superblock");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "veritysetup {:?}: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string()
}

fn params(c: &Case) -> VerityParams {
    VerityParams {
        hash_type: c.hash_type,
        hash_alg: c.alg,
        data_block_size: c.bs,
        hash_block_size: c.bs,
        data_blocks: c.blocks,
        salt: c.salt.clone(),
        uuid: parse_uuid(UUID).unwrap(),
        hash_offset: 0,
        superblock: c.superblock,
    }
}

fn compare(dir: &Path, p: &VerityParams, data_len: usize, seed: u64) {
    let data = dir.join("data");
    make_data(&data, data_len, seed);
    let (theirs, ours) = (dir.join("theirs"), dir.join("ours"));
    let _ = fs::remove_file(&theirs);
    let _ = fs::remove_file(&ours);
    let root_theirs = veritysetup_format(&data, &theirs, p);
    let f = tree::format(p, &data, &ours, &|_| {}).unwrap();
    assert_eq!(
        hex::encode(&f.root_hash),
        root_theirs,
        "root hash for {p:?}"
    );
    assert!(
        fs::read(&theirs).unwrap() == fs::read(&ours).unwrap(),
        "hash files differ for {p:?}"
    );
    assert_eq!(fs::metadata(&ours).unwrap().len(), f.hash_device_size);
}

#[test]
fn byte_identical_to_veritysetup_over_the_matrix() {
    if !have_veritysetup() {
        panic!("veritysetup missing: apt-get install cryptsetup-bin (scripts/install-deps)");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for blocks in [1u64, 127, 128, 129] {
        for bs in [512u32, 1024, 4096] {
            for hash_type in [0u32, 1] {
                for alg in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512] {
                    for salt_len in [0usize, 32, 256] {
                        for superblock in [true, false] {
                            let salt: Vec<u8> = (0..salt_len).map(|i| (i * 7 + 3) as u8).collect();
                            let c = Case {
                                blocks,
                                bs,
                                hash_type,
                                alg,
                                salt,
                                superblock,
                            };
                            let p = params(&c);
                            compare(
                                dir.path(),
                                &p,
                                (blocks * u64::from(bs)) as usize,
                                blocks + u64::from(bs),
                            );
                            n += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(n, 432);
}

#[test]
fn sizes_that_are_not_block_multiples_with_data_blocks() {
    let dir = tempfile::tempdir().unwrap();
    for (bs, blocks, extra) in [(4096u32, 129u64, 1000usize), (512, 1000, 511), (1024, 3, 1)] {
        let mut p = params(&Case {
            blocks,
            bs,
            hash_type: 1,
            alg: HashAlg::Sha256,
            salt: vec![0xab; 32],
            superblock: true,
        });
        compare(dir.path(), &p, blocks as usize * bs as usize + extra, 7);
        // fewer blocks than the file holds
        p.data_blocks = blocks - 1;
        compare(dir.path(), &p, blocks as usize * bs as usize + extra, 8);
    }
}

#[test]
fn hash_area_at_an_offset_in_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    for (superblock, bs) in [(true, 4096u32), (false, 4096), (true, 512), (false, 1024)] {
        let blocks = 300u64;
        let mut p = params(&Case {
            blocks,
            bs,
            hash_type: 1,
            alg: HashAlg::Sha256,
            salt: vec![1, 2, 3],
            superblock,
        });
        p.hash_offset = blocks * u64::from(bs);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        make_data(&a, (blocks * u64::from(bs)) as usize, 3);
        fs::copy(&a, &b).unwrap();
        let root_theirs = veritysetup_format(&a, &a, &p);
        let f = tree::format(&p, &b, &b, &|_| {}).unwrap();
        assert_eq!(hex::encode(&f.root_hash), root_theirs);
        assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap(), "{p:?}");
        // the superblock is found at the offset
        if superblock {
            assert_eq!(tree::read_superblock(&b, p.hash_offset).unwrap(), p);
        }
    }
}

fn veritysetup_verify(data: &Path, hash: &Path, root: &str) -> bool {
    Command::new("veritysetup")
        .arg("verify")
        .arg(data)
        .arg(hash)
        .arg(root)
        .output()
        .unwrap()
        .status
        .success()
}

fn flip_bit(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x10;
    fs::write(path, b).unwrap();
}

fn setup(dir: &Path, blocks: u64) -> (PathBuf, PathBuf, VerityParams, String) {
    let data = dir.join("data");
    let hash = dir.join("hash");
    make_data(&data, blocks as usize * 4096, 11);
    let p = params(&Case {
        blocks,
        bs: 4096,
        hash_type: 1,
        alg: HashAlg::Sha256,
        salt: vec![9; 32],
        superblock: true,
    });
    let root = veritysetup_format(&data, &hash, &p);
    (data, hash, p, root)
}

#[test]
fn each_verifies_the_others_output() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hash, p, root) = setup(dir.path(), 1000);
    verify(&p, &data, &hash, &hex::decode(&root).unwrap(), &|_| {}).unwrap();
    let ours = dir.path().join("ours");
    let f = tree::format(&p, &data, &ours, &|_| {}).unwrap();
    assert!(veritysetup_verify(&data, &ours, &hex::encode(&f.root_hash)));
    // a wrong root hash is refused by both
    let wrong = "00".repeat(32);
    assert!(!veritysetup_verify(&data, &ours, &wrong));
    assert!(matches!(
        verify(&p, &data, &ours, &[0; 32], &|_| {}),
        Err(VerityError::Corrupt(Corruption::RootHash { .. }))
    ));
}

#[test]
fn a_flipped_bit_in_a_data_block_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hash, p, root) = setup(dir.path(), 1000);
    flip_bit(&data, 777 * 4096 + 123);
    assert!(!veritysetup_verify(&data, &hash, &root));
    let e = verify(&p, &data, &hash, &hex::decode(&root).unwrap(), &|_| {}).unwrap_err();
    match e {
        VerityError::Corrupt(Corruption::DataBlock { index, offset }) => {
            assert_eq!(index, 777);
            assert_eq!(offset, 777 * 4096);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_flipped_bit_in_a_hash_block_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hash, p, root) = setup(dir.path(), 1000);
    // layout: superblock block 0, level 1 (top) block 1, level 0 blocks 2..10
    flip_bit(&hash, 5 * 4096 + 40);
    assert!(!veritysetup_verify(&data, &hash, &root));
    let e = verify(&p, &data, &hash, &hex::decode(&root).unwrap(), &|_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "hash block 3 of level 0 (hash device offset 20480) is corrupted"
    );
    // and in the padding after the last entry of the last level-0 block
    let (data, hash, p, root) = setup(dir.path(), 1000);
    flip_bit(&hash, 10 * 4096 - 1);
    assert!(!veritysetup_verify(&data, &hash, &root));
    let e = verify(&p, &data, &hash, &hex::decode(&root).unwrap(), &|_| {}).unwrap_err();
    assert!(
        matches!(
            e,
            VerityError::Corrupt(Corruption::HashBlock {
                level: 0,
                index: 7,
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn hardenctl_verity_cli_round_trip_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hash = dir.path().join("hash");
    make_data(&data, 200 * 4096, 5);
    let ctl = env!("CARGO_BIN_EXE_hardenctl");
    let out = Command::new(ctl)
        .args(["--json", "verity", "format"])
        .arg(&data)
        .arg(&hash)
        .args(["--salt", "aabb", "--uuid", UUID])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = v["root_hash"].as_str().unwrap().to_string();
    assert_eq!(v["salt"], "aabb");
    assert_eq!(v["uuid"], UUID);
    assert!(veritysetup_verify(&data, &hash, &root));
    let verify = |root: &str| {
        Command::new(ctl)
            .args(["verity", "verify"])
            .arg(&data)
            .arg(&hash)
            .arg(root)
            .output()
            .unwrap()
    };
    assert!(verify(&root).status.success());
    let dump = Command::new(ctl)
        .args(["--json", "verity", "dump"])
        .arg(&hash)
        .output()
        .unwrap();
    let d: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(d["data_blocks"], 200);
    flip_bit(&data, 4096 * 150);
    let out = verify(&root);
    assert_eq!(out.status.code(), Some(3), "answered: the data is bad");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("data block 150 (offset 614400) is corrupted")
    );
    // malformed input: clear errors, no panic
    let out = Command::new(ctl)
        .args(["verity", "dump"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("superblock: bad magic"));
    let out = Command::new(ctl)
        .args(["verity", "format"])
        .arg(&data)
        .arg(&hash)
        .args(["--hash-block-size", "3000"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("hash block size 3000 must be a power of two")
    );
    let out = Command::new(ctl)
        .args(["verity", "format"])
        .arg(dir.path().join("missing"))
        .arg(&hash)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing: No such file"));
}

#[test]
fn format_refuses_a_hash_area_over_the_data_like_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    make_data(&img, 64 * 4096, 9);
    let before = fs::read(&img).unwrap();
    let ctl = env!("CARGO_BIN_EXE_hardenctl");
    let out = Command::new(ctl)
        .args(["verity", "format"])
        .arg(&img)
        .arg(&img)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("overlaps the data area") && err.contains("--hash-offset 262144"),
        "{err}"
    );
    assert_eq!(
        fs::read(&img).unwrap(),
        before,
        "not one byte of the data was written"
    );
    // through a second name for the same file: still the same inode
    let link = dir.path().join("link");
    fs::hard_link(&img, &link).unwrap();
    let out = Command::new(ctl)
        .args(["verity", "format", "--hash-offset", "4096"])
        .arg(&img)
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(&img).unwrap(), before);
    // veritysetup agrees that this is an error
    if have_veritysetup() {
        let vs = Command::new("veritysetup")
            .arg("format")
            .arg(&img)
            .arg(&img)
            .output()
            .unwrap();
        assert!(!vs.status.success(), "veritysetup refuses it too");
    }
    // the hash area after the data is fine
    let out = Command::new(ctl)
        .args(["verity", "format", "--hash-offset", "262144"])
        .arg(&img)
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&img).unwrap()[..before.len()], before[..]);
}

#[test]
fn hostile_superblocks_are_refused_without_an_abort() {
    use hardend::verity::superblock::encode;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_data(&data, 8 * 4096, 3);
    let ctl = env!("CARGO_BIN_EXE_hardenctl");
    let zero_root = "00".repeat(32);
    for (blocks, why) in [
        (1u64 << 40, "fewer than"), // the data file is far smaller
        (1u64 << 60, "63-bit"),     // blocks * 4096 wraps a u64
        (u64::MAX, "63-bit"),
    ] {
        let p = VerityParams {
            hash_type: 1,
            hash_alg: HashAlg::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: blocks,
            salt: vec![1, 2, 3],
            uuid: [7; 16],
            hash_offset: 0,
            superblock: true,
        };
        let hash = dir.path().join(format!("hash-{blocks}"));
        let mut sb = encode(&p).to_vec();
        sb.resize(16 * 4096, 0);
        fs::write(&hash, sb).unwrap();
        for args in [
            vec![
                "verity",
                "verify",
                data.to_str().unwrap(),
                hash.to_str().unwrap(),
                &zero_root,
            ],
            vec!["verity", "dump", hash.to_str().unwrap()],
        ] {
            let out = Command::new(ctl).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_some(),
                "killed by a signal: {args:?} {err}"
            );
            if args[1] == "verify" {
                assert_eq!(out.status.code(), Some(1), "{blocks}: {err}");
                assert!(err.contains(why), "{blocks}: {err}");
            }
        }
    }
    // a superblock that claims more tree than the hash file holds: refused before reading
    let p = VerityParams {
        hash_type: 1,
        hash_alg: HashAlg::Sha256,
        data_block_size: 512,
        hash_block_size: 512,
        data_blocks: 8 * 8,
        salt: vec![],
        uuid: [7; 16],
        hash_offset: 0,
        superblock: true,
    };
    let hash = dir.path().join("short");
    fs::write(&hash, encode(&p)).unwrap();
    let e = verify(&p, &data, &hash, &[0; 32], &|_| {}).unwrap_err();
    assert!(
        matches!(&e, VerityError::Params(m) if m.contains("the tree these parameters describe ends at")),
        "{e}"
    );
}
