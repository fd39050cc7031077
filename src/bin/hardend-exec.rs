//! hardend-exec: the ExecStart wrapper. Loads a profile, confines itself (no_new_privs,
//! Landlock, seccomp), writes an enforcement record, then execs the service in place.
//! No async runtime, no D-Bus, never forks. Any failure: a message on stderr, a non-zero
//! exit, and nothing executed (fail closed).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use hardend::confine::ConfineOptions;
use hardend::confine::exec::{ExecRequest, confine_and_exec};
use hardend::confine::record::DEFAULT_RUNTIME_DIR;
use hardend::profile::{DEFAULT_SEARCH_PATH, ProfileLoader};

/// Confine this process by a hardend profile, then exec COMMAND in place.
#[derive(Parser, Debug)]
#[command(name = "hardend-exec", version, about, long_about = None)]
struct Args {
    /// Profile name (looked up on the profile path) or path to a profile file.
    #[arg(long)]
    profile: String,
    /// The systemd unit being started, for the enforcement record and messages.
    #[arg(long)]
    unit: Option<String>,
    /// Directory for the enforcement record.
    #[arg(long, default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Colon-separated directories searched for bare profile names.
    #[arg(long, value_delimiter = ':', default_values = DEFAULT_SEARCH_PATH)]
    profile_path: Vec<PathBuf>,
    /// Use at most this Landlock ABI (tests the old-kernel path; reported as partial).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    max_landlock_abi: Option<u8>,
    /// argv[0] for the program when it differs from COMMAND (systemd's `@` prefix).
    #[arg(long)]
    argv0: Option<OsString>,
    /// Restore the default SIGPIPE disposition (for units with IgnoreSIGPIPE=no).
    #[arg(long)]
    reset_sigpipe: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

fn main() {
    hardend::cli::docs::generate_if_asked(<Args as clap::CommandFactory>::command(), "8");
    let args = Args::parse();
    let req = ExecRequest {
        profile: args.profile,
        unit: args.unit.clone(),
        command: args.command,
        argv0: args.argv0,
        loader: ProfileLoader::new(args.profile_path),
        options: ConfineOptions {
            max_landlock_abi: args.max_landlock_abi,
        },
        record_dir: Some(args.runtime_dir),
        reset_sigpipe: args.reset_sigpipe,
    };
    let Err(err) = confine_and_exec(&req, |_| {});
    let who = args.unit.map(|u| format!(" {u}")).unwrap_or_default();
    eprintln!("hardend-exec{who}: {err}; not started");
    std::process::exit(err.exit_code());
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
