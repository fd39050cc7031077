//! `[verity]`: the expected root hash and the mount point checked.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, absolute};
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    root_hash: Option<Spanned<String>>,
    mountpoint: Option<Spanned<String>>,
}

/// `[verity]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerityConfig {
    /// Expected dm-verity root hash, lower case (overrides the kernel command line).
    pub root_hash: Option<String>,
    /// The mount point whose device is checked (default `/`).
    pub mountpoint: String,
}

impl Default for VerityConfig {
    fn default() -> Self {
        VerityConfig {
            root_hash: None,
            mountpoint: "/".into(),
        }
    }
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<VerityConfig, ConfigError> {
    let root_hash = match &raw.root_hash {
        None => None,
        Some(h)
            if !h.get_ref().is_empty()
                && h.get_ref().len() % 2 == 0
                && h.get_ref().chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Some(h.get_ref().to_ascii_lowercase())
        }
        Some(h) => {
            return Err(src.invalid(
                h.span(),
                "verity.root_hash",
                format!("{:?} is not a hex digest", h.get_ref()),
            ));
        }
    };
    let mountpoint = absolute(src, &raw.mountpoint, "verity.mountpoint", Path::new("/"))?
        .display()
        .to_string();
    Ok(VerityConfig {
        root_hash,
        mountpoint,
    })
}
