//! `[vulns]`: the signed vulnerability feed the daemon watches, its key, and what it is
//! matched against.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, RawDuration, absolute, absolute_value, duration};
use crate::source::Source;
use crate::vulns::feed::Format;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    feed: Option<Spanned<String>>,
    signature: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    release: Option<Spanned<String>>,
    root: Option<Spanned<String>>,
    check_interval: Option<Spanned<RawDuration>>,
}

/// The public key's default place (the same as `hardenctl vulns --key`).
pub const DEFAULT_KEY: &str = "/etc/hardend/feed-key.pem";

/// `[vulns]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VulnsConfig {
    /// The feed (`None`: not configured, the state is `disabled`).
    pub feed: Option<PathBuf>,
    /// Its detached Ed25519 signature (default: FEED.sig).
    pub signature: PathBuf,
    /// The Ed25519 public key (PEM) the feed must verify with.
    pub key: PathBuf,
    pub format: Format,
    /// The release matched (`None`: from `<root>/etc/os-release`).
    pub release: Option<String>,
    /// The installed system: `<root>/var/lib/dpkg/status` is matched.
    pub root: PathBuf,
    /// How often the feed, signature, key and dpkg status are looked at for a change
    /// (seconds).
    pub check_interval: u64,
}

impl Default for VulnsConfig {
    fn default() -> Self {
        VulnsConfig {
            feed: None,
            signature: PathBuf::new(),
            key: DEFAULT_KEY.into(),
            format: Format::Tracker,
            release: None,
            root: "/".into(),
            check_interval: 5,
        }
    }
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<VulnsConfig, ConfigError> {
    let d = VulnsConfig::default();
    let feed = match &raw.feed {
        None => None,
        Some(f) => Some(absolute_value(src, f, "vulns.feed")?),
    };
    let signature = match (&raw.signature, &feed) {
        (Some(s), _) => absolute_value(src, s, "vulns.signature")?,
        (None, Some(f)) => {
            let mut s = f.as_os_str().to_owned();
            s.push(".sig");
            PathBuf::from(s)
        }
        (None, None) => PathBuf::new(),
    };
    let key = absolute(src, &raw.key, "vulns.key", Path::new(DEFAULT_KEY))?;
    let root = absolute(src, &raw.root, "vulns.root", Path::new("/"))?;
    let format = match &raw.format {
        None => d.format,
        Some(f) => match f.get_ref().as_str() {
            "tracker" => Format::Tracker,
            "osv" => Format::Osv,
            other => {
                return Err(src.invalid(
                    f.span(),
                    "vulns.format",
                    format!("{other:?} is not a feed format (tracker or osv)"),
                ));
            }
        },
    };
    let release = match &raw.release {
        None => None,
        Some(r)
            if !r.get_ref().is_empty()
                && r.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
        {
            Some(r.get_ref().clone())
        }
        Some(r) => {
            return Err(src.invalid(
                r.span(),
                "vulns.release",
                format!(
                    "{:?} is not a release (a codename such as \"bookworm\", or \"12\" for osv)",
                    r.get_ref()
                ),
            ));
        }
    };
    let check_interval = duration(
        src,
        &raw.check_interval,
        "vulns.check_interval",
        d.check_interval,
        (1, 3600),
    )?;
    Ok(VulnsConfig {
        feed,
        signature,
        key,
        format,
        release,
        root,
        check_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn off_by_default_and_the_signature_beside_the_feed() {
        let c = parse("").unwrap().vulns;
        assert_eq!(c, VulnsConfig::default());
        let c = parse("[vulns]\nfeed = \"/var/lib/hardend/feed.json\"\nformat = \"osv\"\ncheck_interval = \"1m\"\n")
            .unwrap()
            .vulns;
        assert_eq!(c.signature, Path::new("/var/lib/hardend/feed.json.sig"));
        assert_eq!(c.format, Format::Osv);
        assert_eq!(c.check_interval, 60);
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let e = parse("[vulns]\nfeed = \"feed.json\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: vulns.feed:"),
            "{e}"
        );
        let e = parse("[vulns]\n\nformat = \"csv\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc/hardend/hardend.toml:3: vulns.format: \"csv\" is not a feed format (tracker or osv)"
        );
        let e = parse("[vulns]\nrelease = \"../x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("vulns.release"), "{e}");
    }
}
