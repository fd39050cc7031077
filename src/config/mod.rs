//! `/etc/hardend/hardend.toml`: every key optional; a bad file is a startup (or reload)
//! error naming the file, line and key. One module per section; each service of the daemon
//! gets its own section.

mod attestation;
mod audit;
mod daemon;
mod identity;
mod integrity;
mod metrics;
mod report;
mod services;
mod verity;
mod vulns;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use self::attestation::{AgentId, AttestationConfig};
pub use self::audit::{AuditConfig, tenths as audit_tenths};
pub use self::daemon::DaemonConfig;
pub use self::identity::IdentityConfig;
pub use self::integrity::IntegrityConfig;
pub use self::metrics::MetricsConfig;
pub use self::report::ReportConfig;
pub use self::verity::VerityConfig;
pub use self::vulns::VulnsConfig;
use crate::source::Source;
pub use crate::source::SourceError as ConfigError;

pub const DEFAULT_CONFIG: &str = "/etc/hardend/hardend.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: daemon::Raw,
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    verity: verity::Raw,
    #[serde(default)]
    identity: identity::Raw,
    #[serde(default)]
    integrity: integrity::Raw,
    #[serde(default)]
    vulns: vulns::Raw,
    #[serde(default)]
    metrics: metrics::Raw,
    #[serde(default)]
    audit: audit::Raw,
    #[serde(default)]
    report: report::Raw,
    #[serde(default)]
    attestation: attestation::Raw,
}

/// The daemon's configuration with defaults filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from (`None`: built-in defaults, no file).
    pub source: Option<PathBuf>,
    pub daemon: DaemonConfig,
    /// `[services]`: unit → profile, applied at startup and reload.
    pub services: BTreeMap<String, String>,
    pub verity: VerityConfig,
    pub identity: IdentityConfig,
    pub integrity: IntegrityConfig,
    pub vulns: VulnsConfig,
    pub metrics: MetricsConfig,
    pub audit: AuditConfig,
    pub report: ReportConfig,
    /// `[attestation]`: the Keylime registrar and verifier (`hardenctl identity keylime`).
    pub attestation: AttestationConfig,
}

impl Config {
    /// Loads `path`; a missing file at the default location means defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound && path == Path::new(DEFAULT_CONFIG) => {
                Ok(Config::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let src = Source::new(path, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| src.syntax(&e))?;
        Ok(Config {
            source: Some(path.to_path_buf()),
            daemon: daemon::parse(&src, &raw.daemon)?,
            services: services::parse(&src, &raw.services)?,
            verity: verity::parse(&src, &raw.verity)?,
            identity: identity::parse(&src, &raw.identity)?,
            integrity: integrity::parse(&src, &raw.integrity)?,
            vulns: vulns::parse(&src, &raw.vulns)?,
            metrics: metrics::parse(&src, &raw.metrics)?,
            audit: audit::parse(&src, &raw.audit)?,
            report: report::parse(&src, &raw.report)?,
            attestation: attestation::parse(&src, &raw.attestation)?,
        })
    }
}

/// An absolute path, or `default` when the key is absent.
fn absolute(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
    default: &Path,
) -> Result<PathBuf, ConfigError> {
    match v {
        None => Ok(default.to_path_buf()),
        Some(s) => absolute_value(src, s, key),
    }
}

fn absolute_value(src: &Source, s: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
    if Path::new(s.get_ref()).is_absolute() {
        Ok(PathBuf::from(s.get_ref()))
    } else {
        Err(src.invalid(
            s.span(),
            key,
            format!("{:?} must be an absolute path", s.get_ref()),
        ))
    }
}

/// A duration as written in hardend.toml: a string (`"30s"`, `"5m"`, `"24h"`, humantime's
/// format) or, as older files have it, an integer number of seconds. Every duration key
/// takes both.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(i64),
    Text(String),
}

/// Seconds in `min..=max`, or `default` when the key is absent.
fn duration(
    src: &Source,
    v: &Option<Spanned<RawDuration>>,
    key: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    let Some(s) = v else {
        return Ok(default);
    };
    let secs = match s.get_ref() {
        RawDuration::Seconds(n) => u64::try_from(*n).ok(),
        RawDuration::Text(t) => match humantime::parse_duration(t) {
            Ok(d) => Some(d.as_secs()),
            Err(e) => {
                return Err(src.invalid(
                    s.span(),
                    key,
                    format!("{t:?}: {e} (a duration such as \"30s\", \"5m\", \"24h\")"),
                ));
            }
        },
    };
    let shown = |n: u64| humantime::format_duration(std::time::Duration::from_secs(n)).to_string();
    match secs {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(src.invalid(
            s.span(),
            key,
            format!("must be between {} and {}", shown(min), shown(max)),
        )),
    }
}

/// A non-negative integer, or `default` when the key is absent.
fn non_negative(
    src: &Source,
    v: &Option<Spanned<i64>>,
    key: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(n) => u64::try_from(*n.get_ref()).map_err(|_| {
            src.invalid(
                n.span(),
                key,
                format!("{} must not be negative", n.get_ref()),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/hardend/hardend.toml"), t)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.daemon.verify_interval, 30);
        assert_eq!(c.daemon.records_dir(), Path::new("/run/hardend/enforced"));
        assert_eq!(Config { source: None, ..c }, Config::default());
    }

    #[test]
    fn durations_are_strings_or_seconds_everywhere() {
        let c = parse("[daemon]\nverify_interval = \"2m\"\nrestart_timeout = 45\n[integrity]\nscan_interval = 3600\n").unwrap();
        assert_eq!(c.daemon.verify_interval, 120);
        assert_eq!(c.daemon.restart_timeout, 45);
        assert_eq!(c.integrity.scan_interval, 3600);
        let c = parse("[integrity]\nscan_interval = \"12h\"\n").unwrap();
        assert_eq!(c.integrity.scan_interval, 43_200);
        assert!(
            parse("[integrity]\nscan_interval = \"10s\"\n").is_err(),
            "at least a minute"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[daemon]\n\nverify_interval = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc/hardend/hardend.toml:3: daemon.verify_interval: must be between 1s and 1day"
        );
        let e = parse("[daemon]\nverify_interval = \"30 parsecs\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("daemon.verify_interval: \"30 parsecs\":"), "{e}");
        let e = parse("[daemon]\nruntime_dir = \"run\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: daemon.runtime_dir:"),
            "{e}"
        );
        let e = parse("[daemon]\nverbose = true\n").unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2:1: unknown field `verbose`"),
            "{e}"
        );
    }
}
