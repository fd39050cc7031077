//! `[metrics]`: where the daemon writes `hardend.prom` for node_exporter's textfile
//! collector, and how often it is rewritten when nothing changed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, RawDuration, absolute, duration};
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    enabled: Option<bool>,
    dir: Option<Spanned<String>>,
    interval: Option<Spanned<RawDuration>>,
}

/// Debian's `prometheus-node-exporter` reads this directory
/// (`--collector.textfile.directory`).
pub const DEFAULT_DIR: &str = "/var/lib/prometheus/node-exporter";

/// `[metrics]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `false`: never written. `true` (default): written while `dir` exists — installing
    /// node_exporter is the admin's choice to export metrics.
    pub enabled: bool,
    pub dir: PathBuf,
    /// Rewritten at least this often (seconds), so that `node_textfile_mtime_seconds`
    /// shows a daemon that stopped writing.
    pub interval: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            dir: DEFAULT_DIR.into(),
            interval: 60,
        }
    }
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<MetricsConfig, ConfigError> {
    let d = MetricsConfig::default();
    Ok(MetricsConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        dir: absolute(src, &raw.dir, "metrics.dir", Path::new(DEFAULT_DIR))?,
        interval: duration(
            src,
            &raw.interval,
            "metrics.interval",
            d.interval,
            (5, 3600),
        )?,
    })
}
