//! `[report]`: what the readiness report says about the product that the device cannot
//! know itself — who makes it, whom to tell about a vulnerability, until when it is
//! supported (CRA Art. 13(8), Annex I Part II (5), (6)).

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    product: Option<String>,
    manufacturer: Option<String>,
    security_contact: Option<String>,
    disclosure_policy: Option<String>,
    support_until: Option<Spanned<String>>,
}

/// `[report]`; every key optional (an absent one is reported as missing evidence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportConfig {
    pub product: Option<String>,
    pub manufacturer: Option<String>,
    /// Where vulnerabilities are reported (an address or URL).
    pub security_contact: Option<String>,
    /// The coordinated vulnerability disclosure policy (a URL).
    pub disclosure_policy: Option<String>,
    /// The end of the support period, YYYY-MM-DD.
    pub support_until: Option<String>,
}

/// A calendar date YYYY-MM-DD (checked: month 1–12, day within the month).
pub fn valid_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    let [y, m, d] = p.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<ReportConfig, ConfigError> {
    let support_until = match &raw.support_until {
        None => None,
        Some(s) if valid_date(s.get_ref()) => Some(s.get_ref().clone()),
        Some(s) => {
            return Err(src.invalid(
                s.span(),
                "report.support_until",
                format!("{:?} is not a date (YYYY-MM-DD)", s.get_ref()),
            ));
        }
    };
    Ok(ReportConfig {
        product: text(&raw.product),
        manufacturer: text(&raw.manufacturer),
        security_contact: text(&raw.security_contact),
        disclosure_policy: text(&raw.disclosure_policy),
        support_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn dates_are_checked_and_errors_name_the_key() {
        assert!(valid_date("2031-12-31") && valid_date("2028-02-29"));
        assert!(
            !valid_date("2027-02-29") && !valid_date("2031-13-01") && !valid_date("31.12.2031")
        );
        let c = Config::parse(
            Path::new("/h.toml"),
            "[report]\nsecurity_contact = \"psirt@example.com\"\nsupport_until = \"2031-12-31\"\n",
        )
        .unwrap();
        assert_eq!(c.report.support_until.as_deref(), Some("2031-12-31"));
        assert_eq!(c.report.product, None);
        let e = Config::parse(Path::new("/h.toml"), "[report]\nsupport_until = \"soon\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("report.support_until"), "{e}");
    }
}
