//! Profiles: the TOML files that say what a confined service may do.
//!
//! A profile is read into a raw, spanned model (`raw.rs`), validated file by file so that every
//! error names the file, line and key, then merged with its includes (`load.rs`) into the
//! resolved [`Profile`] that the confinement code consumes.

pub mod errno;
pub mod families;
pub mod groups;
mod load;
pub mod process;
mod raw;
pub use raw::MAX_KNOWN_ABI;
pub mod sidedoors;
pub mod suggest;
pub mod syscalls;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use load::{DEFAULT_SEARCH_PATH, ProfileLoader};

use crate::source::SourceError;

/// Errors from finding, reading and validating profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {name:?} not found (searched {searched}){hint}")]
    NotFound {
        name: String,
        searched: String,
        /// `; did you mean "X"?`, or "".
        hint: String,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Several independent errors in one file (one per line of the message), so that a
    /// profile is fixed in one round, not one error at a time.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<SourceError>),
}

impl ProfileError {
    /// The file the error is about, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            ProfileError::NotFound { .. } => None,
            ProfileError::Source(e) => Some(e.path()),
            ProfileError::Several(v) => v.first().map(SourceError::path),
        }
    }

    /// The 1-based line the (first) error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ProfileError::Source(e) => e.line(),
            ProfileError::Several(v) => v.first().and_then(SourceError::line),
            ProfileError::NotFound { .. } => None,
        }
    }

    /// One error for `errors` (at least one).
    pub(crate) fn all(mut errors: Vec<SourceError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop().map(ProfileError::Source),
            _ => Some(ProfileError::Several(errors)),
        }
    }

    /// An invalid value at `line` of `path`.
    pub fn invalid(
        path: &std::path::Path,
        line: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ProfileError::Source(SourceError::invalid(path, line, key, message))
    }
}

/// `enforce`: denials are denials. `complain`: seccomp denials are logged (SECCOMP_RET_LOG)
/// and allowed; Landlock has no permissive mode and stays enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Complain,
}

impl Mode {
    /// How strict: a merge keeps the strictest mode of the includes.
    pub fn strictness(self) -> u8 {
        match self {
            Mode::Complain => 0,
            Mode::Enforce => 1,
        }
    }
}

/// Landlock scopes (ABI 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeKind {
    /// Connecting to abstract UNIX sockets created outside the sandbox.
    AbstractUnixSocket,
    /// Sending signals to processes outside the sandbox.
    Signal,
}

/// The `[landlock]` section after merging.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LandlockPolicy {
    pub min_abi: u8,
    pub read: BTreeSet<PathBuf>,
    pub read_exec: BTreeSet<PathBuf>,
    pub write: BTreeSet<PathBuf>,
    /// `None`: binding is not restricted. `Some(empty)`: no TCP bind at all.
    pub bind_tcp: Option<BTreeSet<u16>>,
    /// `None`: connecting is not restricted. `Some(empty)`: no outgoing TCP at all.
    pub connect_tcp: Option<BTreeSet<u16>>,
    pub scope: BTreeSet<ScopeKind>,
}

/// What happens to a syscall that is not allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Fail the call with `errno`.
    #[default]
    Errno,
    /// Kill the process (SIGSYS).
    Kill,
    /// Allow it and log it (audit mode for one profile, independent of `mode`).
    Log,
}

impl DefaultAction {
    /// How strict: a merge keeps the strictest action of the includes.
    pub fn strictness(self) -> u8 {
        match self {
            DefaultAction::Log => 0,
            DefaultAction::Errno => 1,
            DefaultAction::Kill => 2,
        }
    }
}

/// Comparison of one syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`
    MaskedEq,
}

/// One condition of an argument rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgCondition {
    /// Argument index, 0..=5.
    pub arg: u8,
    pub op: CmpOp,
    pub value: u64,
    /// Only for `masked_eq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
    /// Compare the low 32 bits (`32`) or the whole register (`64`).
    pub width: u8,
}

/// `[[seccomp.rule]]`: the syscall is allowed only when all conditions hold. Several rules
/// for one syscall are alternatives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgRule {
    pub syscall: String,
    pub allow_if: Vec<ArgCondition>,
}

/// The `[seccomp]` section after merging.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeccompPolicy {
    pub default_action: DefaultAction,
    /// errno name, e.g. `EPERM`.
    pub errno: String,
    pub allow: BTreeSet<String>,
    pub deny: BTreeSet<String>,
    pub rules: Vec<ArgRule>,
    /// Denies of includes that a profile lifted, with the file that lifted each.
    pub overridden: Vec<Override>,
    /// Names lifted by `override_deny` (side doors among them count as granted).
    pub granted: BTreeSet<String>,
}

/// One `override_deny` entry: `name` was denied by an include and `file` lifted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Override {
    pub name: String,
    pub file: PathBuf,
}

/// `[network]` after merging: what Landlock alone cannot express about sockets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkPolicy {
    /// Address families `socket()` may create (canonical names: `unix`, `inet`, ...).
    pub families: BTreeSet<String>,
    /// UDP datagram sockets (inet/inet6 `SOCK_DGRAM`).
    pub udp: bool,
    /// Pathname UNIX sockets the service may connect or send to (a directory grants the
    /// sockets under it).
    pub unix_connect: BTreeSet<PathBuf>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            families: families::DEFAULT_FAMILIES
                .iter()
                .map(|f| f.to_string())
                .collect(),
            udp: false,
            unix_connect: BTreeSet::new(),
        }
    }
}

/// `[process]` after merging.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessPolicy {
    /// Kept in the bounding, permitted, effective, inheritable and ambient sets; every
    /// other capability is dropped before exec, also for root.
    pub capabilities: BTreeSet<String>,
    /// Namespaces the service may create (`unshare`, `clone`) or join (`setns`).
    pub namespaces: BTreeSet<process::Namespace>,
}

impl SeccompPolicy {
    /// The numeric errno returned for denied calls.
    pub fn errno_value(&self) -> i32 {
        errno::from_name(&self.errno).unwrap_or(libc::EPERM)
    }
}

/// A profile with its includes merged: what gets applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The file the profile was loaded from.
    pub source: PathBuf,
    /// Every file that contributed, includes first.
    pub files: Vec<PathBuf>,
    pub mode: Mode,
    /// `None`: no `[landlock]` section anywhere, so no filesystem/network restriction.
    pub landlock: Option<LandlockPolicy>,
    /// `None`: no `[seccomp]` section anywhere, so no syscall allow-list (hardend's own
    /// rules for capabilities, namespaces, sockets and other processes still apply).
    pub seccomp: Option<SeccompPolicy>,
    pub network: NetworkPolicy,
    pub process: ProcessPolicy,
}

impl Profile {
    /// SHA-256 over the effective policy (not the file bytes: comments and formatting do
    /// not change it), plus the hardend version, since group tables can change between
    /// releases. Used to tell whether a running service still has the current profile.
    pub fn policy_hash(&self) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            hardend: &'static str,
            name: &'a str,
            mode: Mode,
            landlock: &'a Option<LandlockPolicy>,
            seccomp: &'a Option<SeccompPolicy>,
            network: &'a NetworkPolicy,
            process: &'a ProcessPolicy,
        }
        let json = serde_json::to_vec(&Hashed {
            hardend: env!("CARGO_PKG_VERSION"),
            name: &self.name,
            mode: self.mode,
            landlock: &self.landlock,
            seccomp: &self.seccomp,
            network: &self.network,
            process: &self.process,
        })
        .unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }
}
