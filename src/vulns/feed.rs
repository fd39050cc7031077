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
    #[error("{}: not a feed in the format given: {what}", path.display())]
    Format { path: PathBuf, what: String },
}

impl FeedError {
    /// The file the error is about (for a bad signature: the feed).
    pub fn path(&self) -> &Path {
        match self {
            FeedError::Io { path, .. }
            | FeedError::Key { path, .. }
            | FeedError::Format { path, .. } => path,
            FeedError::BadSignature { feed, .. } => feed,
        }
    }
}

/// At most this much feed is read (the tracker's full JSON is about 70 MB, growing); a
/// larger file is refused by its size, before a byte of it is read.
pub const MAX_FEED: u64 = 256 << 20;

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
    /// The first affected version (OSV `introduced`; the tracker has none: every version
    /// before the fix).
    #[serde(default)]
    pub introduced: Option<String>,
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

/// Reads at most `cap` bytes of the regular file `path`. A FIFO or device put in its place
/// is refused without blocking (opened non-blocking, checked before any read).
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, FeedError> {
    let io = |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = crate::fsutil::open_regular(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    let too_large = || FeedError::Format {
        path: path.to_path_buf(),
        what: format!("larger than {cap} bytes"),
    };
    // a sparse file costs no disk but would cost its whole size in memory
    if meta.len() > cap {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(cap + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(out)
}

/// Which format a feed is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The Debian security tracker's JSON.
    Tracker,
    /// A JSON array of OSV records (osv.dev's Debian ecosystem, `Debian:12`).
    Osv,
}

impl Format {
    /// The name in hardend.toml and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tracker => "tracker",
            Format::Osv => "osv",
        }
    }
}

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    affected: Vec<OsvAffected>,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: OsvPackage,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<HashMap<String, String>>,
}

/// OSV records (a JSON array) → the same per-release [`Feed`]: the package is the source
/// package (osv.dev's Debian records name sources), `Debian:<debian_version>` selects the
/// release, an ECOSYSTEM range's `fixed` is the fixed version (none: open) and `introduced`
/// (other than 0) the first affected version.
pub fn parse_osv(data: &[u8], debian_version: &str) -> Result<Feed, serde_json::Error> {
    let records: Vec<OsvRecord> = serde_json::from_slice(data)?;
    let ecosystem = format!("Debian:{debian_version}");
    let mut feed = Feed::new();
    for r in records {
        for a in r
            .affected
            .iter()
            .filter(|a| a.package.ecosystem == ecosystem)
        {
            let events = a
                .ranges
                .iter()
                .filter(|g| g.kind == "ECOSYSTEM")
                .flat_map(|g| g.events.iter());
            let (mut introduced, mut fixed) = (None, None);
            for e in events {
                if let Some(v) = e.get("introduced").filter(|v| v.as_str() != "0") {
                    introduced = Some(v.clone());
                }
                if let Some(v) = e.get("fixed") {
                    fixed = Some(v.clone());
                }
            }
            let urgency = a
                .ecosystem_specific
                .as_ref()
                .and_then(|v| v.get("urgency"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let release = Release {
                status: if fixed.is_some() { "resolved" } else { "open" }.into(),
                fixed_version: fixed,
                urgency,
                nodsa: None,
                introduced,
            };
            feed.entry(a.package.name.clone()).or_default().insert(
                r.id.clone(),
                Cve {
                    release: Some(release),
                },
            );
        }
    }
    Ok(feed)
}

/// The feed's bytes, read once from `feed`, after `sig` verified over exactly these bytes
/// with the Ed25519 public key (PEM) at `key`.
pub fn verified_bytes(feed: &Path, sig: &Path, key: &Path) -> Result<Vec<u8>, FeedError> {
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
    Ok(data)
}

/// Parses verified feed bytes (`path` names them in errors). `release` is the codename for
/// the tracker, the version number (`12`) for OSV.
pub fn parse_as(
    data: &[u8],
    path: &Path,
    format: Format,
    release: &str,
) -> Result<Feed, FeedError> {
    let parsed = match format {
        Format::Tracker => parse(data, release),
        Format::Osv => parse_osv(data, release),
    };
    parsed.map_err(|e| FeedError::Format {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

/// Reads the feed at `feed`, verifies `sig` over its bytes with the key at `key`, and only
/// then parses it (see [`verified_bytes`], [`parse_as`]).
pub fn load_verified(
    feed: &Path,
    sig: &Path,
    key: &Path,
    format: Format,
    release: &str,
) -> Result<Feed, FeedError> {
    let data = verified_bytes(feed, sig, key)?;
    parse_as(&data, feed, format, release)
}
