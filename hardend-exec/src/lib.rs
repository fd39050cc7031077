//! hardend-exec: the ExecStart wrapper. Loads a profile, confines itself (no_new_privs,
//! Landlock, seccomp), writes an enforcement record, then execs the service in place.
//! No async runtime, no D-Bus, never forks, reads no environment variable of its own. Any
//! failure: a message on stderr, a non-zero exit, and nothing executed (fail closed).
//!
//! The command-line definition lives here (not in `main.rs`) so that the man page
//! generator (`cargo xtask docs`) renders it without running the binary.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use hardend_core::confine::ConfineOptions;
use hardend_core::confine::exec::{ExecRequest, confine_and_exec};
use hardend_core::confine::record::DEFAULT_RUNTIME_DIR;
use hardend_core::profile::{DEFAULT_SEARCH_PATH, ProfileLoader};

/// Confine this process by a hardend profile, then exec COMMAND in place.
#[derive(Parser, Debug)]
#[command(name = "hardend-exec", version, about, long_about = None)]
pub struct Args {
    /// Profile name (looked up on the profile path) or path to a profile file.
    #[arg(long)]
    pub profile: String,
    /// The systemd unit being started, for the enforcement record and messages.
    #[arg(long)]
    pub unit: Option<String>,
    /// Directory for the enforcement record.
    #[arg(long, default_value = DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: PathBuf,
    /// Colon-separated directories searched for bare profile names.
    #[arg(long, value_delimiter = ':', default_values = DEFAULT_SEARCH_PATH)]
    pub profile_path: Vec<PathBuf>,
    /// Use at most this Landlock ABI (tests the old-kernel path; reported as partial).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub max_landlock_abi: Option<u8>,
    /// argv[0] for the program when it differs from COMMAND (systemd's `@` prefix).
    #[arg(long)]
    pub argv0: Option<OsString>,
    /// Restore the default SIGPIPE disposition (for units with IgnoreSIGPIPE=no).
    #[arg(long)]
    pub reset_sigpipe: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Confines this process and execs the command; returns only on failure, with the message
/// already printed and the exit status to use (127 not found, 126 not executable, 1 else).
pub fn run(args: Args) -> i32 {
    let req = ExecRequest {
        profile: args.profile,
        unit: args.unit.clone(),
        command: args.command,
        argv0: args.argv0,
        loader: ProfileLoader::new(args.profile_path.clone()),
        options: ConfineOptions {
            max_landlock_abi: args.max_landlock_abi,
            profile_path: args.profile_path,
        },
        record_dir: Some(args.runtime_dir),
        reset_sigpipe: args.reset_sigpipe,
    };
    let Err(err) = confine_and_exec(&req, |_| {});
    let who = args.unit.map(|u| format!(" {u}")).unwrap_or_default();
    eprintln!("hardend-exec{who}: {err}; not started");
    err.exit_code()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
