//! `/etc/hardend/hardend.toml`: every key optional; a bad file is a startup error naming the
//! file, line and key.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::profile::DEFAULT_SEARCH_PATH;
use crate::systemd::dropin::valid_unit_name;
use crate::tomlpos;

pub const DEFAULT_CONFIG: &str = "/etc/hardend/hardend.toml";

/// Errors in the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    verity: RawVerity,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    integrity: RawIntegrity,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntegrity {
    enabled: Option<bool>,
    dir: Option<Spanned<String>>,
    scan_interval: Option<Spanned<String>>,
    scan_rate_mb: Option<Spanned<i64>>,
    max_watches: Option<Spanned<i64>>,
    max_events: Option<Spanned<i64>>,
    #[serde(default)]
    watch: Vec<Spanned<RawWatch>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    name: Spanned<String>,
    paths: Vec<Spanned<String>>,
    recursive: Option<bool>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    attributes: Option<Vec<Spanned<String>>>,
    severity: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    tcti: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    signers_group: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVerity {
    root_hash: Option<Spanned<String>>,
    mountpoint: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    bus: Option<String>,
    verify_interval: Option<Spanned<i64>>,
    restart_timeout: Option<Spanned<i64>>,
    profile_path: Option<Vec<Spanned<String>>>,
    runtime_dir: Option<Spanned<String>>,
    dropin_dir: Option<Spanned<String>>,
    runtime_dropin_dir: Option<Spanned<String>>,
    exec_path: Option<Spanned<String>>,
}

/// The daemon's configuration with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from (`None`: built-in defaults, no file).
    pub source: Option<PathBuf>,
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
    /// unit → profile, applied at startup and reload.
    pub services: BTreeMap<String, String>,
    /// Expected dm-verity root hash (overrides the kernel command line).
    pub verity_root_hash: Option<String>,
    /// The mount point whose device is checked (default `/`).
    pub verity_mountpoint: String,
    /// TCTI for the TPM (`None`: the TPM is not used, identity state `disabled`).
    pub identity_tcti: Option<String>,
    /// Where the identity key blobs live.
    pub identity_dir: PathBuf,
    /// Group whose members may Sign, Quote and Csr besides root ("" = root only).
    pub identity_signers_group: String,
    /// Default CSR subject ("" = `CN=<hostname>`).
    pub identity_subject: String,
    /// `[integrity]`.
    pub integrity: IntegrityConfig,
}

/// `[integrity]`: what to watch and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityConfig {
    pub enabled: bool,
    /// Baseline, MAC key and event log.
    pub dir: PathBuf,
    /// Seconds between full rescans.
    pub scan_interval: u64,
    /// Periodic scans read at most this many bytes per second (None: unlimited).
    pub scan_rate: Option<u64>,
    /// inotify watches to use at most (0: half of fs.inotify.max_user_watches).
    pub max_watches: usize,
    /// Events kept in the persistent log.
    pub max_events: usize,
    pub sets: Vec<crate::integrity::WatchSet>,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            enabled: true,
            dir: "/var/lib/hardend/integrity".into(),
            scan_interval: 86_400,
            scan_rate: None,
            max_watches: 0,
            max_events: 10_000,
            sets: crate::integrity::WatchSet::defaults(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            bus: "system".into(),
            verify_interval: 30,
            restart_timeout: 90,
            profile_path: DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect(),
            runtime_dir: "/run/hardend".into(),
            dropin_dir: "/etc/systemd/system".into(),
            runtime_dropin_dir: "/run/systemd/system".into(),
            exec_path: "/usr/libexec/hardend/hardend-exec".into(),
            services: BTreeMap::new(),
            verity_root_hash: None,
            verity_mountpoint: "/".into(),
            // `$TCTI` when set, else device:/dev/tpmrm0
            identity_tcti: Some(crate::tpm::tcti::choose(None)),
            identity_dir: crate::tpm::identity::DEFAULT_IDENTITY_DIR.into(),
            identity_signers_group: String::new(),
            identity_subject: String::new(),
            integrity: IntegrityConfig::default(),
        }
    }
}

impl Config {
    pub fn records_dir(&self) -> PathBuf {
        self.runtime_dir.join("enforced")
    }

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
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let off = e.span().map_or(0, |s| s.start);
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line: tomlpos::line(text, off),
                column: tomlpos::column(text, off),
                message: e.message().trim().to_string(),
            }
        })?;
        let invalid =
            |span: std::ops::Range<usize>, key: &str, message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: tomlpos::line(text, span.start),
                key: key.to_string(),
                message,
            };
        let abs = |v: &Option<Spanned<String>>,
                   key: &str,
                   default: &Path|
         -> Result<PathBuf, ConfigError> {
            match v {
                None => Ok(default.to_path_buf()),
                Some(s) if Path::new(s.get_ref()).is_absolute() => Ok(PathBuf::from(s.get_ref())),
                Some(s) => Err(invalid(
                    s.span(),
                    key,
                    format!("{:?} must be an absolute path", s.get_ref()),
                )),
            }
        };
        let secs = |v: &Option<Spanned<i64>>,
                    key: &str,
                    default: u64,
                    max: u64|
         -> Result<u64, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) => match u64::try_from(*s.get_ref()) {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(
                        s.span(),
                        key,
                        format!("{} is out of range 1..={max} seconds", s.get_ref()),
                    )),
                },
            }
        };
        let d = Config::default();
        let mut profile_path = d.profile_path.clone();
        if let Some(pp) = &raw.daemon.profile_path {
            profile_path = Vec::new();
            for p in pp {
                if !Path::new(p.get_ref()).is_absolute() {
                    return Err(invalid(
                        p.span(),
                        "daemon.profile_path",
                        format!("{:?} must be an absolute path", p.get_ref()),
                    ));
                }
                profile_path.push(PathBuf::from(p.get_ref()));
            }
        }
        let mut services = BTreeMap::new();
        for (unit, profile) in &raw.services {
            if !valid_unit_name(unit.get_ref()) {
                return Err(invalid(
                    unit.span(),
                    "services",
                    format!(
                        "{:?} is not a service unit name (NAME.service)",
                        unit.get_ref()
                    ),
                ));
            }
            if profile.get_ref().is_empty() {
                return Err(invalid(
                    profile.span(),
                    &format!("services.{}", unit.get_ref()),
                    "empty profile name".into(),
                ));
            }
            services.insert(unit.get_ref().clone(), profile.get_ref().clone());
        }
        let verity_root_hash = match &raw.verity.root_hash {
            None => None,
            Some(h)
                if !h.get_ref().is_empty()
                    && h.get_ref().len() % 2 == 0
                    && h.get_ref().chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                Some(h.get_ref().to_ascii_lowercase())
            }
            Some(h) => {
                return Err(invalid(
                    h.span(),
                    "verity.root_hash",
                    format!("{:?} is not a hex digest", h.get_ref()),
                ));
            }
        };
        let verity_mountpoint = abs(&raw.verity.mountpoint, "verity.mountpoint", Path::new("/"))?
            .display()
            .to_string();
        let identity_tcti = match &raw.identity.tcti {
            None => d.identity_tcti.clone(),
            Some(t) if t.get_ref() == "none" => None,
            Some(t) => {
                crate::tpm::tcti::parse(t.get_ref())
                    .map_err(|e| invalid(t.span(), "identity.tcti", e.to_string()))?;
                Some(t.get_ref().clone())
            }
        };
        let identity_signers_group = match &raw.identity.signers_group {
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
                return Err(invalid(
                    g.span(),
                    "identity.signers_group",
                    format!("{:?} is not a group name", g.get_ref()),
                ));
            }
        };
        let identity_subject = match &raw.identity.subject {
            None => String::new(),
            Some(sub) => {
                crate::tpm::csr::parse_subject(sub.get_ref())
                    .map_err(|e| invalid(sub.span(), "identity.subject", e.to_string()))?;
                sub.get_ref().clone()
            }
        };
        let integrity = parse_integrity(&raw.integrity, &invalid)?;
        Ok(Config {
            integrity,
            identity_tcti,
            identity_dir: abs(&raw.identity.dir, "identity.dir", &d.identity_dir)?,
            identity_signers_group,
            identity_subject,
            verity_root_hash,
            verity_mountpoint,
            source: Some(path.to_path_buf()),
            bus: raw.daemon.bus.unwrap_or(d.bus),
            verify_interval: secs(
                &raw.daemon.verify_interval,
                "daemon.verify_interval",
                d.verify_interval,
                86_400,
            )?,
            restart_timeout: secs(
                &raw.daemon.restart_timeout,
                "daemon.restart_timeout",
                d.restart_timeout,
                3_600,
            )?,
            profile_path,
            runtime_dir: abs(
                &raw.daemon.runtime_dir,
                "daemon.runtime_dir",
                &d.runtime_dir,
            )?,
            dropin_dir: abs(&raw.daemon.dropin_dir, "daemon.dropin_dir", &d.dropin_dir)?,
            runtime_dropin_dir: abs(
                &raw.daemon.runtime_dropin_dir,
                "daemon.runtime_dropin_dir",
                &d.runtime_dropin_dir,
            )?,
            exec_path: abs(&raw.daemon.exec_path, "daemon.exec_path", &d.exec_path)?,
            services,
        })
    }
}

fn parse_integrity(
    r: &RawIntegrity,
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<IntegrityConfig, ConfigError> {
    use crate::integrity::{Attrs, Severity, WatchSet};
    let d = IntegrityConfig::default();
    let dir = match &r.dir {
        None => d.dir.clone(),
        Some(p) if Path::new(p.get_ref()).is_absolute() => PathBuf::from(p.get_ref()),
        Some(p) => {
            return Err(invalid(
                p.span(),
                "integrity.dir",
                format!("{:?} must be an absolute path", p.get_ref()),
            ));
        }
    };
    let scan_interval = match &r.scan_interval {
        None => d.scan_interval,
        Some(v) => match humantime::parse_duration(v.get_ref()) {
            Ok(t) if t.as_secs() >= 60 => t.as_secs(),
            Ok(_) => {
                return Err(invalid(
                    v.span(),
                    "integrity.scan_interval",
                    "must be at least 1m".into(),
                ));
            }
            Err(e) => {
                return Err(invalid(
                    v.span(),
                    "integrity.scan_interval",
                    format!("{:?}: {e} (e.g. \"24h\", \"30m\")", v.get_ref()),
                ));
            }
        },
    };
    let nonneg = |v: &Option<Spanned<i64>>, key: &str, default: u64| match v {
        None => Ok(default),
        Some(n) => u64::try_from(*n.get_ref()).map_err(|_| {
            invalid(
                n.span(),
                key,
                format!("{} must not be negative", n.get_ref()),
            )
        }),
    };
    let rate = nonneg(&r.scan_rate_mb, "integrity.scan_rate_mb", 0)?;
    let max_watches = nonneg(&r.max_watches, "integrity.max_watches", 0)? as usize;
    let max_events = nonneg(&r.max_events, "integrity.max_events", d.max_events as u64)? as usize;
    let mut sets = Vec::new();
    for w in &r.watch {
        let span = w.span();
        let w = w.get_ref();
        let name = w.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                w.name.span(),
                "integrity.watch.name",
                format!("{name:?}: letters, digits, - _ . only"),
            ));
        }
        if sets.iter().any(|s: &WatchSet| &s.name == name) {
            return Err(invalid(
                w.name.span(),
                "integrity.watch.name",
                format!("{name:?} is used twice"),
            ));
        }
        if w.paths.is_empty() {
            return Err(invalid(
                span,
                "integrity.watch.paths",
                format!("set {name:?} has no paths"),
            ));
        }
        let mut paths = Vec::new();
        for p in &w.paths {
            if !Path::new(p.get_ref()).is_absolute() {
                return Err(invalid(
                    p.span(),
                    "integrity.watch.paths",
                    format!("{:?} must be an absolute path", p.get_ref()),
                ));
            }
            paths.push(PathBuf::from(p.get_ref()));
        }
        for e in &w.exclude {
            if let Err(err) = globset::Glob::new(e.get_ref()) {
                return Err(invalid(
                    e.span(),
                    "integrity.watch.exclude",
                    err.to_string(),
                ));
            }
        }
        let attrs = match &w.attributes {
            None => Attrs::ALL,
            Some(list) => {
                for a in list {
                    if !Attrs::NAMES.contains(&a.get_ref().as_str()) {
                        return Err(invalid(
                            a.span(),
                            "integrity.watch.attributes",
                            format!(
                                "unknown attribute {:?} (one of {})",
                                a.get_ref(),
                                Attrs::NAMES.join(", ")
                            ),
                        ));
                    }
                }
                Attrs::from_names(list.iter().map(|a| a.get_ref().as_str()))
                    .map_err(|m| invalid(span.clone(), "integrity.watch.attributes", m))?
            }
        };
        let severity = match &w.severity {
            None => Severity::High,
            Some(s) => Severity::parse(s.get_ref()).ok_or_else(|| {
                invalid(
                    s.span(),
                    "integrity.watch.severity",
                    format!("{:?}: one of low, medium, high, critical", s.get_ref()),
                )
            })?,
        };
        sets.push(WatchSet {
            name: name.clone(),
            paths,
            recursive: w.recursive.unwrap_or(true),
            exclude: w.exclude.iter().map(|e| e.get_ref().clone()).collect(),
            attrs,
            severity,
        });
    }
    Ok(IntegrityConfig {
        enabled: r.enabled.unwrap_or(true),
        dir,
        scan_interval,
        scan_rate: (rate > 0).then(|| rate * 1_000_000),
        max_watches,
        max_events,
        sets: if sets.is_empty() { d.sets } else { sets },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/hardend/hardend.toml"), t)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.verify_interval, 30);
        assert_eq!(c.records_dir(), Path::new("/run/hardend/enforced"));
    }

    #[test]
    fn services_and_daemon_keys() {
        let c = parse("[daemon]\nverify_interval = 5\nprofile_path = [\"/srv/p\"]\n[services]\n\"mosquitto.service\" = \"mosquitto\"\n").unwrap();
        assert_eq!(c.verify_interval, 5);
        assert_eq!(c.profile_path, [PathBuf::from("/srv/p")]);
        assert_eq!(c.services["mosquitto.service"], "mosquitto");
    }

    #[test]
    fn integrity_sets_and_their_errors() {
        let c = parse("[integrity]\nscan_interval = \"6h\"\n[[integrity.watch]]\nname = \"app\"\npaths = [\"/opt/app\"]\nexclude = [\"**/*.log\"]\nattributes = [\"content\", \"mode\"]\nseverity = \"critical\"\n").unwrap();
        assert_eq!(c.integrity.scan_interval, 6 * 3600);
        assert_eq!(c.integrity.sets.len(), 1);
        assert!(!c.integrity.sets[0].attrs.owner);
        assert_eq!(parse("").unwrap().integrity.sets.len(), 5, "the defaults");
        let e = parse(
            "[[integrity.watch]]\nname = \"a\"\npaths = [\"/x\"]\n\nattributes = [\"colour\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/etc/hardend/hardend.toml:5: integrity.watch.attributes: unknown attribute \"colour\""), "{e}");
        let e = parse("[[integrity.watch]]\nname = \"a\"\npaths = [\"rel\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:3: integrity.watch.paths:"),
            "{e}"
        );
        let e = parse("[integrity]\nscan_interval = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: integrity.scan_interval:"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[daemon]\n\nverify_interval = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc/hardend/hardend.toml:3: daemon.verify_interval: 0 is out of range 1..=86400 seconds"
        );
        let e = parse("[daemon]\nruntime_dir = \"run\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: daemon.runtime_dir:"),
            "{e}"
        );
        let e = parse("[services]\n\"x.socket\" = \"p\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2: services:"),
            "{e}"
        );
        let e = parse("[daemon]\nverbose = true\n").unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/hardend/hardend.toml:2:1: unknown field `verbose`"),
            "{e}"
        );
    }
}
