//! The baseline on disk.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "HDINTDB\0"
//! 8       2     format version (2), little-endian
//! 10      1     key kind: 1 = root-only key file, 2 = key sealed in the TPM
//! 11      1     reserved (0)
//! 12      8     payload length, little-endian
//! 20      n     payload: postcard encoding of `Baseline`
//! 20+n    32    HMAC-SHA256 over bytes 0..20+n
//! ```
//!
//! Written atomically (temporary file, fsync, rename, directory fsync) after the current file
//! is kept as `<name>.prev`, so a crash or SIGKILL at any point leaves a complete baseline,
//! and a damaged one never replaces the last good one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IntegrityError;
use super::entry::Entry;
use super::key::{KeySource, MacKey};

const MAGIC: &[u8; 8] = b"HDINTDB\0";
pub const VERSION: u16 = 2;
const HEADER: usize = 20;
const TAG: usize = 32;

/// The recorded state of every watched path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Seconds since the epoch.
    pub created: u64,
    /// Set names, indexed by the entries.
    pub sets: Vec<String>,
    /// Path bytes → (set index, entry).
    pub entries: BTreeMap<Vec<u8>, (u16, Entry)>,
    /// Counts every baseline written on this device; with a TPM-sealed key it must equal
    /// the TPM's monotonic counter (an older generation put back is a rollback).
    pub generation: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IntegrityError + '_ {
    move |source| IntegrityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `<path>.prev`: the previous generation.
pub fn prev_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".prev");
    PathBuf::from(p)
}

/// Encodes and MACs `b`.
pub fn encode(b: &Baseline, key: &MacKey) -> Result<Vec<u8>, IntegrityError> {
    let payload = postcard::to_stdvec(b)
        .map_err(|e| IntegrityError::Invalid(format!("cannot encode the baseline: {e}")))?;
    let mut out = Vec::with_capacity(HEADER + payload.len() + TAG);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(key.source as u8);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let tag = key.mac(&out);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Checks and decodes a baseline read from `path`.
pub fn decode(path: &Path, bytes: &[u8], key: &MacKey) -> Result<Baseline, IntegrityError> {
    let format = |what: String| IntegrityError::Format {
        path: path.to_path_buf(),
        what,
    };
    let truncated = |expected: u64| IntegrityError::Truncated {
        path: path.to_path_buf(),
        expected,
        got: bytes.len() as u64,
        prev: prev_path(path),
    };
    if bytes.len() < HEADER {
        if MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
            return Err(truncated(HEADER as u64));
        }
        return Err(format("too short for a header".into()));
    }
    if &bytes[..8] != MAGIC {
        return Err(format("bad magic".into()));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        let remedy = if version < VERSION {
            ": written by an older hardend without a generation; make a new one with `hardenctl integrity init`"
        } else {
            ""
        };
        return Err(format(format!(
            "format version {version}; this hardend reads version {VERSION}{remedy}"
        )));
    }
    let kind = KeySource::from_byte(bytes[10])
        .ok_or_else(|| format(format!("unknown key kind {}", bytes[10])))?;
    if kind != key.source {
        return Err(IntegrityError::KeyMismatch {
            path: path.to_path_buf(),
            wanted: kind.name(),
            have: format!("the key available is a {}", key.source.name()),
        });
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len8);
    let total = (HEADER as u64)
        .checked_add(len)
        .and_then(|t| t.checked_add(TAG as u64))
        .ok_or_else(|| format("absurd payload length".into()))?;
    if (bytes.len() as u64) < total {
        return Err(truncated(total));
    }
    if (bytes.len() as u64) > total {
        return Err(format("trailing bytes after the MAC".into()));
    }
    let body = bytes.len() - TAG;
    if !key.verify(&bytes[..body], &bytes[body..]) {
        return Err(IntegrityError::Tampered {
            path: path.to_path_buf(),
        });
    }
    postcard::from_bytes(&bytes[HEADER..body]).map_err(|e| format(format!("payload: {e}")))
}

/// Loads the baseline at `path`.
pub fn load(path: &Path, key: &MacKey) -> Result<Baseline, IntegrityError> {
    let bytes = match fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IntegrityError::NoBaseline(path.to_path_buf()));
        }
        r => r.map_err(io(path))?,
    };
    decode(path, &bytes, key)
}

/// Writes the baseline: the current file becomes `.prev`, the new one replaces it atomically.
pub fn store(path: &Path, b: &Baseline, key: &MacKey) -> Result<(), IntegrityError> {
    write_encoded(path, &encode(b, key)?)
}

/// Writes a baseline [`encode`] made: the current file becomes `.prev`, the new one
/// replaces it atomically.
pub fn write_encoded(path: &Path, bytes: &[u8]) -> Result<(), IntegrityError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::fsutil::create_dir_all_mode(dir, 0o700).map_err(io(dir))?;
    let tmp = dir.join(format!(".baseline.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let r = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if path.exists() {
            // keep the current generation: hard link, then rename over the old .prev
            let prev = prev_path(path);
            let prev_tmp = dir.join(format!(".baseline.prev.tmp.{}", std::process::id()));
            let _ = fs::remove_file(&prev_tmp);
            fs::hard_link(path, &prev_tmp)?;
            fs::rename(&prev_tmp, &prev)?;
        }
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::entry::Kind;

    fn sample() -> Baseline {
        let mut b = Baseline {
            created: 1,
            sets: vec!["etc".into()],
            entries: BTreeMap::new(),
            generation: 7,
        };
        b.entries.insert(
            b"/etc/passwd".to_vec(),
            (
                0,
                Entry {
                    kind: Kind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    size: 1234,
                    sha256: Some([7; 32]),
                    target: None,
                    xattrs: vec![],
                    ino: 5,
                    nlink: 1,
                },
            ),
        );
        b
    }

    #[test]
    fn round_trip_and_every_kind_of_damage() {
        let key = MacKey::for_tests([3; 32]);
        let p = Path::new("/var/lib/hardend/integrity/baseline.db");
        let bytes = encode(&sample(), &key).unwrap();
        assert_eq!(decode(p, &bytes, &key).unwrap(), sample());
        // one byte of the payload changed (a hash edited offline)
        let mut t = bytes.clone();
        t[HEADER + 20] ^= 1;
        assert!(matches!(
            decode(p, &t, &key),
            Err(IntegrityError::Tampered { .. })
        ));
        // another key (a re-keyed or forged file)
        assert!(matches!(
            decode(p, &bytes, &MacKey::for_tests([4; 32])),
            Err(IntegrityError::Tampered { .. })
        ));
        for cut in [5, 19, 20, bytes.len() - 1] {
            let e = decode(p, &bytes[..cut], &key).unwrap_err();
            assert!(
                matches!(e, IntegrityError::Truncated { .. }),
                "cut at {cut}: {e}"
            );
            assert!(e.to_string().contains("baseline.db.prev"), "{e}");
        }
        let mut t = bytes.clone();
        t[8] = 9;
        assert!(e_contains(decode(p, &t, &key), "format version 9"));
        let mut t = bytes.clone();
        t[0] = b'X';
        assert!(e_contains(decode(p, &t, &key), "bad magic"));
        let mut t = bytes.clone();
        t[10] = KeySource::Tpm as u8;
        assert!(e_contains(
            decode(p, &t, &key),
            "protected by a TPM-sealed key"
        ));
    }

    fn e_contains(r: Result<Baseline, IntegrityError>, s: &str) -> bool {
        r.err().is_some_and(|e| e.to_string().contains(s))
    }

    #[test]
    fn store_keeps_the_previous_generation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("baseline.db");
        let key = MacKey::for_tests([3; 32]);
        let mut b = sample();
        store(&p, &b, &key).unwrap();
        b.created = 2;
        store(&p, &b, &key).unwrap();
        assert_eq!(load(&p, &key).unwrap().created, 2);
        assert_eq!(load(&prev_path(&p), &key).unwrap().created, 1);
    }
}
