//! Confine the current process by a profile, record it, and `execve` the command in place.
//! Shared by `hardend-exec` (the ExecStart wrapper) and `hardenctl exec`.
//!
//! Never forks: the service keeps our PID (systemd's MainPID), our inherited file
//! descriptors (socket activation, journal stdout) and our environment.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::record::{EnforcementRecord, RecordError};
use super::{ConfineError, ConfineOptions};
use crate::profile::{Profile, ProfileError, ProfileLoader};

/// Errors that stop the command from running. Nothing is executed after any of them.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no command given")]
    NoCommand,
    #[error("profile {profile}: {source}")]
    Profile {
        profile: String,
        source: ProfileError,
    },
    #[error("profile {profile}: {source}")]
    Confine {
        profile: String,
        source: ConfineError,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0}: argument or environment contains a NUL byte")]
    Nul(String),
    #[error("cannot execute {}: {source}{hint}", path.display())]
    Exec {
        path: PathBuf,
        source: io::Error,
        hint: &'static str,
    },
}

impl ExecError {
    /// Shell conventions: 127 not found, 126 found but not executable, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound(_) => 127,
            ExecError::Exec { .. } => 126,
            _ => 1,
        }
    }
}

/// Everything needed to run one confined command.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    /// Profile name or path.
    pub profile: String,
    pub unit: Option<String>,
    pub command: Vec<OsString>,
    /// argv[0] for the program when it differs from the path (systemd's `@` prefix).
    pub argv0: Option<OsString>,
    pub loader: ProfileLoader,
    pub options: ConfineOptions,
    /// Where to write the enforcement record; `None` writes none (`hardenctl exec`).
    pub record_dir: Option<PathBuf>,
    /// Restore the default SIGPIPE disposition before exec. The Rust runtime ignores SIGPIPE
    /// at startup and ignored signals survive execve; systemd units default to
    /// `IgnoreSIGPIPE=yes`, so keeping it ignored is right unless the unit says otherwise.
    pub reset_sigpipe: bool,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds `cmd` like execvp does: a name with `/` is used as is, anything else is searched
/// along `$PATH`.
pub fn resolve_command(cmd: &OsStr) -> Result<PathBuf, ExecError> {
    let as_path = Path::new(cmd);
    if cmd.as_bytes().contains(&b'/') {
        return executable(as_path, cmd);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(cmd);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(ExecError::NotFound(cmd.to_string_lossy().into_owned()))
}

/// A command given as a path, checked before anything is confined: missing is "not found"
/// (127); a directory or a file this process may not execute anyway is "cannot execute"
/// (126) with a hint that the profile is not the reason.
fn executable(path: &Path, cmd: &OsStr) -> Result<PathBuf, ExecError> {
    let not_exec = |source: io::Error, hint: &'static str| ExecError::Exec {
        path: path.to_path_buf(),
        source,
        hint,
    };
    match std::fs::metadata(path) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            Err(ExecError::NotFound(cmd.to_string_lossy().into_owned()))
        }
        Err(e) => Err(not_exec(e, "")),
        Ok(m) if m.is_dir() => Err(not_exec(io::Error::from_raw_os_error(libc::EISDIR), "")),
        Ok(_) => match rustix::fs::access(path, rustix::fs::Access::EXEC_OK) {
            Ok(()) => Ok(path.to_path_buf()),
            Err(e) => Err(not_exec(
                e.into(),
                "; not executable before any confinement (file mode, or a noexec mount): the profile is not the reason",
            )),
        },
    }
}

fn cstring(s: OsString) -> Result<CString, ExecError> {
    let shown = s.to_string_lossy().into_owned();
    CString::new(s.into_vec()).map_err(|_| ExecError::Nul(shown))
}

/// Loads the profile named in `req`.
pub fn load_profile(req: &ExecRequest) -> Result<Profile, ExecError> {
    req.loader
        .load(&req.profile)
        .map_err(|source| ExecError::Profile {
            profile: req.profile.clone(),
            source,
        })
}

/// Confines this process and execs the command. Returns only on failure; then nothing has
/// been executed. `on_ready` sees the record (written or not) just before enforcement.
pub fn confine_and_exec(
    req: &ExecRequest,
    on_ready: impl FnOnce(&EnforcementRecord),
) -> Result<Infallible, ExecError> {
    let cmd = req.command.first().ok_or(ExecError::NoCommand)?;
    let profile = load_profile(req)?;
    let confine_err = |source| ExecError::Confine {
        profile: profile.name.clone(),
        source,
    };
    let prepared = super::prepare(&profile, &req.options).map_err(confine_err)?;

    let path = resolve_command(cmd)?;
    let c_path = cstring(path.clone().into_os_string())?;
    let argv = req
        .argv0
        .iter()
        .chain(req.command.iter().skip(usize::from(req.argv0.is_some())))
        .cloned()
        .map(cstring)
        .collect::<Result<Vec<_>, _>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let record = EnforcementRecord::for_self(
        req.unit.clone(),
        &profile,
        req.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        prepared.report.clone(),
    )?;
    // Written before enforcing: afterwards Landlock forbids writing to the runtime directory.
    let record_path = match &req.record_dir {
        Some(dir) => Some(record.write(dir)?),
        None => None,
    };
    on_ready(&record);

    if let Err(e) = prepared.enforce() {
        // Enforcement failed, so Landlock (if it was reached) may not allow this; try anyway
        // so that no record claims a confinement that never happened.
        if let Some(p) = &record_path {
            let _ = std::fs::remove_file(p);
        }
        return Err(confine_err(e));
    }

    if req.reset_sigpipe {
        // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety requirements.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }

    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer comes from a CString that outlives the call, and both arrays are
    // NULL-terminated as execve requires. On success execve does not return.
    unsafe { libc::execve(c_path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    let source = io::Error::last_os_error();
    let hint = if source.raw_os_error() == Some(libc::EACCES) {
        "; the profile must grant the program and its interpreter under landlock.read_exec"
    } else {
        ""
    };
    Err(ExecError::Exec { path, source, hint })
}
