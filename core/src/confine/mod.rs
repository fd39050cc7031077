//! Confinement: apply a resolved profile to the current process.
//!
//! [`prepare`] does every fallible step (kernel ABI check, opening rule paths, compiling the
//! BPF filter) and predicts the report; [`Prepared::enforce`] then only sets no_new_privs,
//! restricts with Landlock and installs the filter. Callers write the enforcement record in
//! between, while they can still write to the runtime directory.

pub mod bpf;
pub mod exec;
pub mod landlock;
pub mod record;
pub mod seccomp;

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::profile::syscalls::Arch;
use crate::profile::{Profile, ProfileError, ProfileLoader};

pub use self::landlock::{LandlockReport, LandlockStatus};
pub use self::seccomp::SeccompReport;

/// Errors while preparing or enforcing confinement.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(transparent)]
    Landlock(#[from] self::landlock::LandlockError),
    #[error(transparent)]
    Seccomp(#[from] self::seccomp::SeccompError),
    #[error("unsupported architecture {0}: seccomp filters are built for x86_64 and aarch64")]
    UnsupportedArch(&'static str),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
}

/// Knobs that do not come from the profile.
#[derive(Clone, Debug, Default)]
pub struct ConfineOptions {
    /// Use at most this Landlock ABI (to exercise the old-kernel path on a new kernel).
    pub max_landlock_abi: Option<u8>,
}

/// What was (or will be) enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfinementReport {
    pub landlock: LandlockReport,
    pub seccomp: SeccompReport,
    pub no_new_privs: bool,
}

/// A profile turned into kernel objects, ready to enforce.
#[derive(Debug)]
pub struct Prepared {
    landlock: Option<self::landlock::PreparedLandlock>,
    bpf: Option<seccompiler::BpfProgram>,
    pub report: ConfinementReport,
}

/// Prepares `profile` for the running kernel and architecture.
pub fn prepare(profile: &Profile, opts: &ConfineOptions) -> Result<Prepared, ConfineError> {
    let arch = Arch::native().ok_or(ConfineError::UnsupportedArch(std::env::consts::ARCH))?;
    let landlock = profile
        .landlock
        .as_ref()
        .map(|l| self::landlock::prepare(l, opts.max_landlock_abi))
        .transpose()?;
    let (bpf, seccomp_report) = match &profile.seccomp {
        Some(s) => {
            let (bpf, r) = self::seccomp::compile(s, profile.mode, arch)?;
            (Some(bpf), r)
        }
        None => (None, SeccompReport::not_configured(arch)),
    };
    let landlock_report = landlock
        .as_ref()
        .map(|l| l.report.clone())
        .unwrap_or_else(|| self::landlock::not_configured(self::landlock::kernel_abi()));
    Ok(Prepared {
        landlock,
        bpf,
        report: ConfinementReport {
            landlock: landlock_report,
            seccomp: seccomp_report,
            no_new_privs: true,
        },
    })
}

fn set_no_new_privs() -> Result<(), ConfineError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(ConfineError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Prepared {
    /// Enforces on the calling thread: no_new_privs, then Landlock, then seccomp (last, so
    /// the filter need not allow the Landlock syscalls). Call it from a single-threaded
    /// process: Landlock and seccomp restrict only the calling thread.
    pub fn enforce(self) -> Result<ConfinementReport, ConfineError> {
        set_no_new_privs()?;
        if let Some(l) = self.landlock {
            l.enforce()?;
        }
        if let Some(bpf) = &self.bpf {
            self::seccomp::install(bpf)?;
        }
        Ok(self.report)
    }
}

/// Validates one file completely: load with includes, then compile the seccomp filter for
/// every supported architecture.
pub fn check_profile_file(
    loader: &ProfileLoader,
    file: &Path,
) -> Result<(Profile, Vec<String>), ProfileError> {
    check_profile(loader.load_file(file)?)
}

/// Validates a loaded profile: its seccomp filter must compile for every supported
/// architecture. Returns the profile and the notes worth showing.
pub fn check_profile(profile: Profile) -> Result<(Profile, Vec<String>), ProfileError> {
    let mut notes = Vec::new();
    if let Some(s) = &profile.seccomp {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            match self::seccomp::compile(s, profile.mode, arch) {
                Ok((_, report)) => notes.extend(report.notes),
                Err(e) => {
                    return Err(ProfileError::invalid(
                        &profile.source,
                        1,
                        "seccomp",
                        format!("filter for {arch}: {e}"),
                    ));
                }
            }
        }
    }
    if profile.landlock.is_none() {
        notes.push("no [landlock] section: files and network are not restricted".into());
    }
    if profile.seccomp.is_none() {
        notes.push("no [seccomp] section: syscalls are not filtered".into());
    }
    notes.sort();
    notes.dedup();
    Ok((profile, notes))
}
