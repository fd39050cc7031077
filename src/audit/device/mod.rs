//! Device hygiene checks: each has an id, a status, a severity, what was found and the
//! remedy. File-based checks read the system at `root` (an image can be checked offline);
//! the kernel's and the platform's state only on the running system (`live`).

pub mod accounts;
pub mod files;
pub mod kernel;
pub mod platform;
pub mod ssh;

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be checked (unreadable, not running); the finding says why.
    Unknown,
    /// Does not apply here (the software is not installed, an offline image).
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::NotApplicable => "n/a",
        }
    }
}

/// At most this many items are listed per check (the count says how many there were).
pub const MAX_ITEMS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    /// How bad a failure of this check is (also given when it passes).
    pub severity: Severity,
    pub finding: String,
    /// What to do when it fails ("" otherwise).
    pub remedy: String,
    /// The paths, accounts or sockets concerned (at most [`MAX_ITEMS`]).
    pub items: Vec<String>,
    /// How many there were in all.
    pub count: usize,
}

impl Check {
    pub fn new(
        id: &'static str,
        severity: Severity,
        status: Status,
        finding: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status,
            severity,
            finding: finding.into(),
            remedy: String::new(),
            items: Vec::new(),
            count: 0,
        }
    }

    pub fn remedy(mut self, r: impl Into<String>) -> Check {
        if self.status == Status::Fail {
            self.remedy = r.into();
        }
        self
    }

    pub fn items(mut self, mut items: Vec<String>) -> Check {
        self.count = items.len();
        items.truncate(MAX_ITEMS);
        self.items = items;
        self
    }

    /// A failed check at or above `level`.
    pub fn fails_at(&self, level: Severity) -> bool {
        self.status == Status::Fail && self.severity >= level
    }
}

/// Where the checks look.
pub struct Target<'a> {
    pub root: &'a Path,
    /// The running system (kernel and platform checks apply).
    pub live: bool,
}

impl Target<'_> {
    /// `path` (absolute on the device) under the root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A regular file of the device, at most `cap` bytes (decoded lossily): links resolve
    /// inside the root (an image's absolute link never reaches the host's file), FIFOs and
    /// devices are refused without blocking.
    pub fn read(&self, path: &str, cap: u64) -> Result<String, String> {
        use std::io::Read;
        let rel = Path::new(path.trim_start_matches('/'));
        let f = crate::sbom::rootfs::open(self.root, rel).map_err(|e| format!("{path}: {e}"))?;
        let mut buf = Vec::new();
        f.take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// A regular file exists at `path` on the device (resolved like [`Target::read`]).
    pub fn is_file(&self, path: &str) -> bool {
        crate::sbom::rootfs::open(self.root, Path::new(path.trim_start_matches('/'))).is_ok()
    }
}

/// Every file-based check (the kernel and platform ones need facts gathered live: see
/// [`kernel`] and [`platform`]).
pub fn file_checks(t: &Target) -> Vec<Check> {
    let mut out = ssh::checks(t);
    out.extend(accounts::checks(t));
    out.extend(files::checks(t));
    out
}
