//! The vulnerability feed: the Debian security tracker's JSON
//! (`source package → CVE → release → {status, fixed_version, urgency, nodsa}`), used only
//! after its detached Ed25519 signature verified against the configured public key. The
//! fleet signs what it ships with standard tooling:
//!
//! ```text
//! openssl genpkey -algorithm ed25519 -out feed-key.pem
//! openssl pkey -in feed-key.pem -pubout -out feed-key.pub.pem       # on the device
//! openssl pkeyutl -sign -rawin -inkey feed-key.pem -in feed.json -out feed.json.sig
//! ```
//!
//! (OpenSSL through the `openssl` crate, already linked for EK certificates: Ed25519 is a
//! single fixed algorithm with no parameters to get wrong, and its signature covers the
//! file's bytes exactly — a byte changed anywhere is refused.)

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors of the feed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Key { path: PathBuf, what: String },
    #[error(
        "{}: the signature {} does not verify with the key {}: the feed was changed or signed by another key; not used",
        feed.display(), sig.display(), key.display()
    )]
    BadSignature {
        feed: PathBuf,
        sig: PathBuf,
        key: PathBuf,
    },
    #[error("{}: not the security tracker's JSON: {what}", path.display())]
    Format { path: PathBuf, what: String },
}

/// At most this much feed is read (the tracker's full JSON is about 70 MB).
const MAX_FEED: u64 = 1 << 30;

/// One CVE's state in one release.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Release {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub fixed_version: Option<String>,
    #[serde(default)]
    pub urgency: String,
    #[serde(default)]
    pub nodsa: Option<String>,
}

/// One CVE of one source package: only what matching needs, for the release asked for
/// (descriptions and other releases are skipped while parsing, never held in memory).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Cve {
    #[serde(default, rename = "releases", deserialize_with = "wanted_release")]
    pub release: Option<Release>,
}

/// source package → CVE id → what the tracker says for the release.
pub type Feed = HashMap<String, HashMap<String, Cve>>;

thread_local! {
    /// The release [`parse`] keeps (set for the duration of one parse on this thread).
    static WANTED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn wanted_release<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Release>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Release>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of releases")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                if WANTED.with(|w| *w.borrow() == k) {
                    found = Some(m.next_value::<Release>()?);
                } else {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    d.deserialize_map(V)
}

/// Parses tracker JSON keeping `release` only.
pub fn parse(data: &[u8], release: &str) -> Result<Feed, serde_json::Error> {
    WANTED.with(|w| *w.borrow_mut() = release.to_string());
    let r = serde_json::from_slice::<Feed>(data);
    WANTED.with(|w| w.borrow_mut().clear());
    let mut feed = r?;
    // CVEs that do not concern the release are dropped
    for cves in feed.values_mut() {
        cves.retain(|_, c| c.release.is_some());
    }
    feed.retain(|_, cves| !cves.is_empty());
    Ok(feed)
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, FeedError> {
    let io = |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    f.take(cap + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > cap {
        return Err(FeedError::Format {
            path: path.to_path_buf(),
            what: format!("larger than {cap} bytes"),
        });
    }
    Ok(out)
}

/// Reads the feed at `feed`, verifies `sig` over its bytes with the Ed25519 public key
/// (PEM) at `key`, and only then parses it.
pub fn load_verified(
    feed: &Path,
    sig: &Path,
    key: &Path,
    release: &str,
) -> Result<Feed, FeedError> {
    let pem = read_capped(key, 64 << 10)?;
    let bad_key = |what: String| FeedError::Key {
        path: key.to_path_buf(),
        what,
    };
    let pkey = openssl::pkey::PKey::public_key_from_pem(&pem)
        .map_err(|e| bad_key(format!("not a PEM public key: {e}")))?;
    if pkey.id() != openssl::pkey::Id::ED25519 {
        return Err(bad_key("not an Ed25519 key".into()));
    }
    let signature = read_capped(sig, 1024)?;
    let data = read_capped(feed, MAX_FEED)?;
    let ok = openssl::sign::Verifier::new_without_digest(&pkey)
        .and_then(|mut v| v.verify_oneshot(&signature, &data))
        .unwrap_or(false);
    if !ok {
        return Err(FeedError::BadSignature {
            feed: feed.to_path_buf(),
            sig: sig.to_path_buf(),
            key: key.to_path_buf(),
        });
    }
    parse(&data, release).map_err(|e| FeedError::Format {
        path: feed.to_path_buf(),
        what: e.to_string(),
    })
}
