//! `[audit]`: when `hardenctl audit` answers "bad" (exit 3).

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use crate::audit::device::Severity;
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    threshold: Option<Spanned<f64>>,
    fail_on: Option<Spanned<String>>,
}

/// `[audit]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// A unit whose combined exposure (tenths, 0–100) is above this makes the audit bad.
    pub threshold: u64,
    /// A failed device check of this severity or higher makes the audit bad.
    pub fail_on: Severity,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            // systemd's UNSAFE begins at 9.0
            threshold: 89,
            fail_on: Severity::High,
        }
    }
}

/// An exposure as written (0.0–10.0) in tenths.
pub fn tenths(v: f64) -> Option<u64> {
    (v.is_finite() && (0.0..=10.0).contains(&v)).then(|| (v * 10.0).round() as u64)
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<AuditConfig, ConfigError> {
    let d = AuditConfig::default();
    let threshold = match &raw.threshold {
        None => d.threshold,
        Some(s) => tenths(*s.get_ref()).ok_or_else(|| {
            src.invalid(
                s.span(),
                "audit.threshold",
                format!("{} is not an exposure between 0.0 and 10.0", s.get_ref()),
            )
        })?,
    };
    let fail_on = match &raw.fail_on {
        None => d.fail_on,
        Some(s) => Severity::parse(s.get_ref()).ok_or_else(|| {
            src.invalid(
                s.span(),
                "audit.fail_on",
                format!(
                    "{:?} is not a severity (info, low, medium, high, critical)",
                    s.get_ref()
                ),
            )
        })?,
    };
    Ok(AuditConfig { threshold, fail_on })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn threshold_and_severity_parse_and_bad_values_name_the_key() {
        let c = Config::parse(
            Path::new("/h.toml"),
            "[audit]\nthreshold = 5.5\nfail_on = \"medium\"\n",
        )
        .unwrap();
        assert_eq!(c.audit.threshold, 55);
        assert_eq!(c.audit.fail_on, Severity::Medium);
        let e = Config::parse(Path::new("/h.toml"), "[audit]\nthreshold = 12.0\n").unwrap_err();
        assert!(e.to_string().contains("audit.threshold"), "{e}");
        let e = Config::parse(Path::new("/h.toml"), "[audit]\nfail_on = \"severe\"\n").unwrap_err();
        assert!(e.to_string().contains("audit.fail_on"), "{e}");
        assert_eq!(Config::default().audit, AuditConfig::default());
    }
}
