//! Integrity monitoring of critical files.
//!
//! * `entry.rs`: what is recorded about one path (type, mode, owner, size, SHA-256, symlink
//!   target, xattrs, inode and link count) and how two records compare per watch set.
//! * `scan.rs`: the parallel scanner (every core, large reads, O_NOATIME, optional rate limit).
//! * `db.rs`: the baseline on disk: versioned, compact, HMAC-SHA256 over everything, written
//!   atomically with the previous generation kept.
//! * `key.rs`: the baseline's MAC key: sealed in the TPM when there is one, else a root-only file.
//! * `watch.rs`: inotify with recursive watch management inside a budget; overflow and
//!   running out of watches become a rescan, never a silent loss.
//! * `dpkg.rs`: changes made by dpkg are accepted only when they match dpkg's own md5sums.
//! * `log.rs`: the bounded persistent event log.
//! * `monitor.rs`: the engine: baseline + current violations, fed by scans and events.

pub mod db;
pub mod dpkg;
pub mod entry;
pub mod key;
pub mod log;
pub mod monitor;
pub mod pathname;
pub mod scan;
pub mod watch;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Errors of the integrity monitor.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: the baseline was changed outside hardend (its MAC does not match): someone with access to the disk edited the monitor's own database; it is not used. Investigate, then `hardenctl integrity init`",
        path.display()
    )]
    Tampered { path: PathBuf },
    #[error("{}: truncated baseline ({got} of {expected} bytes); not used. The previous generation is {}", path.display(), prev.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        got: u64,
        prev: PathBuf,
    },
    #[error("{}: not a hardend baseline ({what})", path.display())]
    Format { path: PathBuf, what: String },
    #[error(
        "{}: the baseline is protected by a {wanted} key, but {have}; refusing to trust it",
        path.display()
    )]
    KeyMismatch {
        path: PathBuf,
        wanted: &'static str,
        have: String,
    },
    #[error(
        "{}: baseline generation {found}, but the TPM's monotonic counter is at {counter}: {why}; it is not used. Investigate, then `hardenctl integrity init`",
        path.display()
    )]
    Rollback {
        path: PathBuf,
        found: u64,
        counter: u64,
        why: &'static str,
    },
    #[error(
        "{}: the baseline is gone, but {why}: it was deleted (an offline edit?) — not a device without a baseline. Investigate, then `hardenctl integrity init`",
        path.display()
    )]
    Missing { path: PathBuf, why: String },
    #[error("no baseline yet in {}: `hardenctl integrity init`", .0.display())]
    NoBaseline(PathBuf),
    #[error("TPM: {0}")]
    Tpm(#[from] crate::tpm::TpmError),
    #[error("inotify: {0}")]
    Inotify(std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{what}: integrity monitoring is off ([integrity] enabled = false); nothing was changed"
    )]
    Disabled { what: &'static str },
}

/// Which attributes a watch set compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    pub content: bool,
    pub size: bool,
    pub mode: bool,
    pub owner: bool,
    pub kind: bool,
    pub target: bool,
    pub xattrs: bool,
    pub inode: bool,
}

impl Attrs {
    pub const ALL: Attrs = Attrs {
        content: true,
        size: true,
        mode: true,
        owner: true,
        kind: true,
        target: true,
        xattrs: true,
        inode: true,
    };
    pub const NONE: Attrs = Attrs {
        content: false,
        size: false,
        mode: false,
        owner: false,
        kind: false,
        target: false,
        xattrs: false,
        inode: false,
    };
    pub const NAMES: [&'static str; 8] = [
        "content", "size", "mode", "owner", "type", "target", "xattrs", "inode",
    ];

    /// From names (`content`, `size`, `mode`, `owner`, `type`, `target`, `xattrs`, `inode`).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Attrs, String> {
        let mut a = Attrs::NONE;
        for n in names {
            match n {
                "content" => a.content = true,
                "size" => a.size = true,
                "mode" => a.mode = true,
                "owner" => a.owner = true,
                "type" => a.kind = true,
                "target" => a.target = true,
                "xattrs" => a.xattrs = true,
                "inode" => a.inode = true,
                other => {
                    return Err(format!(
                        "unknown attribute {other:?} (one of {})",
                        Attrs::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(a)
    }
}

/// How bad a violation in a set is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One watch set from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSet {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    /// Glob patterns on the full path (`/etc/*.bak`, `**/__pycache__`).
    pub exclude: Vec<String>,
    /// Patterns that exclude files but never a directory (and what is under it): dpkg's and
    /// ucf's suffixes in the defaults, so a directory named `x.dpkg-new` hides nothing.
    pub exclude_files: Vec<String>,
    pub attrs: Attrs,
    pub severity: Severity,
}

impl WatchSet {
    fn new(name: &str, paths: &[&str], severity: Severity) -> WatchSet {
        WatchSet {
            name: name.into(),
            paths: paths.iter().map(PathBuf::from).collect(),
            recursive: true,
            exclude: Vec::new(),
            exclude_files: Vec::new(),
            attrs: Attrs::ALL,
            severity,
        }
    }

    /// What a device should watch when the configuration names nothing.
    pub fn defaults() -> Vec<WatchSet> {
        let mut etc = WatchSet::new("etc", &["/etc"], Severity::High);
        // written by the system itself at runtime
        etc.exclude = vec![
            "/etc/mtab".into(),
            "/etc/adjtime".into(),
            "/etc/resolv.conf".into(),
            "/etc/ld.so.cache".into(),
        ];
        // dpkg's and ucf's own suffixes, on the last component only (`*.dpkg-*` would also
        // hide /etc/systemd/system/backdoor.dpkg-x.service), and on files only: dpkg makes
        // no such directories, so one named that way is someone hiding files in it
        etc.exclude_files = vec![
            "**/*.dpkg-old".into(),
            "**/*.dpkg-new".into(),
            "**/*.dpkg-dist".into(),
            "**/*.dpkg-tmp".into(),
            "**/*.dpkg-bak".into(),
            "**/*.ucf-old".into(),
            "**/*.ucf-new".into(),
            "**/*.ucf-dist".into(),
            "**/*~".into(),
        ];
        vec![
            etc,
            WatchSet::new("binaries", &["/usr/bin", "/usr/sbin"], Severity::Critical),
            WatchSet::new("systemd", &["/usr/lib/systemd"], Severity::Critical),
            WatchSet::new("boot", &["/boot"], Severity::Critical),
            // dpkg's own record (md5sums, lists, maintainer scripts): what acceptance trusts.
            // Changed during a dpkg run it is dpkg's bookkeeping; changed outside one it is
            // reported, and that package's md5sums vouch for nothing in the next run
            WatchSet::new("dpkg", &["/var/lib/dpkg/info"], Severity::High),
            WatchSet::new(
                "hardend",
                &[
                    "/usr/sbin/hardend",
                    "/usr/bin/hardenctl",
                    "/usr/libexec/hardend",
                    "/usr/share/hardend",
                    "/etc/hardend",
                ],
                Severity::Critical,
            ),
        ]
    }
}

/// What kind of change a violation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Modified,
    Added,
    Removed,
    Metadata,
    TypeChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Modified => "modified",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Metadata => "metadata",
            ChangeKind::TypeChanged => "type-changed",
        }
    }
}

/// A difference between the baseline and the file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub path: String,
    pub kind: ChangeKind,
    /// The differing attributes as recorded (`sha256=… size=…`), "" for added.
    pub expected: String,
    /// The differing attributes now, "" for removed.
    pub actual: String,
    pub set: String,
    pub severity: Severity,
    /// Seconds since the epoch when it was found.
    pub time: u64,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
