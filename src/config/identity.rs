//! `[identity]`: the TPM (TCTI), where the key blobs live, who may sign, the CSR subject.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, absolute};
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    tcti: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    signers_group: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
}

/// `[identity]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    /// TCTI for the TPM (`None`: the TPM is not used, identity state `disabled`).
    pub tcti: Option<String>,
    /// Where the identity key blobs live.
    pub dir: PathBuf,
    /// Group whose members may Sign, Quote and Csr besides root ("" = root only).
    pub signers_group: String,
    /// Default CSR subject ("" = `CN=<hostname>`).
    pub subject: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            // `$TCTI` when set, else device:/dev/tpmrm0
            tcti: Some(crate::tpm::tcti::choose(None)),
            dir: crate::tpm::identity::DEFAULT_IDENTITY_DIR.into(),
            signers_group: String::new(),
            subject: String::new(),
        }
    }
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<IdentityConfig, ConfigError> {
    let d = IdentityConfig::default();
    let tcti = match &raw.tcti {
        None => d.tcti.clone(),
        Some(t) if t.get_ref() == "none" => None,
        Some(t) => {
            crate::tpm::tcti::parse(t.get_ref())
                .map_err(|e| src.invalid(t.span(), "identity.tcti", e.to_string()))?;
            Some(t.get_ref().clone())
        }
    };
    let signers_group = match &raw.signers_group {
        None => String::new(),
        Some(g)
            if g.get_ref().is_empty()
                || g.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            g.get_ref().clone()
        }
        Some(g) => {
            return Err(src.invalid(
                g.span(),
                "identity.signers_group",
                format!("{:?} is not a group name", g.get_ref()),
            ));
        }
    };
    let subject = match &raw.subject {
        None => String::new(),
        Some(sub) => {
            crate::tpm::csr::parse_subject(sub.get_ref())
                .map_err(|e| src.invalid(sub.span(), "identity.subject", e.to_string()))?;
            sub.get_ref().clone()
        }
    };
    Ok(IdentityConfig {
        tcti,
        dir: absolute(src, &raw.dir, "identity.dir", &d.dir)?,
        signers_group,
        subject,
    })
}
