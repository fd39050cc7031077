//! `[daemon]`: the bus, timers, and where profiles, records and drop-ins live.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, RawDuration, absolute, absolute_value, duration};
use crate::profile::DEFAULT_SEARCH_PATH;
use crate::source::Source;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    bus: Option<String>,
    verify_interval: Option<Spanned<RawDuration>>,
    restart_timeout: Option<Spanned<RawDuration>>,
    profile_path: Option<Vec<Spanned<String>>>,
    runtime_dir: Option<Spanned<String>>,
    dropin_dir: Option<Spanned<String>>,
    runtime_dropin_dir: Option<Spanned<String>>,
    exec_path: Option<Spanned<String>>,
}

/// `[daemon]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `"system"` or a D-Bus address.
    pub bus: String,
    /// Seconds between full verification passes.
    pub verify_interval: u64,
    /// Seconds to wait for systemd to restart a unit.
    pub restart_timeout: u64,
    pub profile_path: Vec<PathBuf>,
    /// Records are in `<runtime_dir>/enforced`.
    pub runtime_dir: PathBuf,
    /// Persistent drop-ins (`/etc/systemd/system`).
    pub dropin_dir: PathBuf,
    /// Drop-ins for `--runtime` confinement, gone at reboot (`/run/systemd/system`).
    pub runtime_dropin_dir: PathBuf,
    /// hardend-exec as written into drop-ins.
    pub exec_path: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            bus: "system".into(),
            verify_interval: 30,
            restart_timeout: 90,
            profile_path: DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect(),
            runtime_dir: "/run/hardend".into(),
            dropin_dir: "/etc/systemd/system".into(),
            runtime_dropin_dir: "/run/systemd/system".into(),
            exec_path: "/usr/libexec/hardend/hardend-exec".into(),
        }
    }
}

impl DaemonConfig {
    /// Where hardend-exec writes enforcement records.
    pub fn records_dir(&self) -> PathBuf {
        self.runtime_dir.join("enforced")
    }
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<DaemonConfig, ConfigError> {
    let d = DaemonConfig::default();
    let profile_path = match &raw.profile_path {
        None => d.profile_path.clone(),
        Some(pp) => pp
            .iter()
            .map(|p| absolute_value(src, p, "daemon.profile_path"))
            .collect::<Result<_, _>>()?,
    };
    let path =
        |v: &Option<Spanned<String>>, key: &str, default: &Path| absolute(src, v, key, default);
    Ok(DaemonConfig {
        bus: raw.bus.clone().unwrap_or(d.bus),
        verify_interval: duration(
            src,
            &raw.verify_interval,
            "daemon.verify_interval",
            d.verify_interval,
            (1, 86_400),
        )?,
        restart_timeout: duration(
            src,
            &raw.restart_timeout,
            "daemon.restart_timeout",
            d.restart_timeout,
            (1, 3_600),
        )?,
        profile_path,
        runtime_dir: path(&raw.runtime_dir, "daemon.runtime_dir", &d.runtime_dir)?,
        dropin_dir: path(&raw.dropin_dir, "daemon.dropin_dir", &d.dropin_dir)?,
        runtime_dropin_dir: path(
            &raw.runtime_dropin_dir,
            "daemon.runtime_dropin_dir",
            &d.runtime_dropin_dir,
        )?,
        exec_path: path(&raw.exec_path, "daemon.exec_path", &d.exec_path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use std::path::PathBuf;

    #[test]
    fn daemon_keys() {
        let c = parse("[daemon]\nverify_interval = 5\nprofile_path = [\"/srv/p\"]\n").unwrap();
        assert_eq!(c.daemon.verify_interval, 5);
        assert_eq!(c.daemon.profile_path, [PathBuf::from("/srv/p")]);
        let e = parse("[daemon]\nprofile_path = [\"/a\", \"rel\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: daemon.profile_path:"),
            "{e}"
        );
    }
}
