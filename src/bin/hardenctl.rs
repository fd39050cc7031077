//! hardenctl: the admin CLI (see `hardend::cli`). Offline commands work without the daemon.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // The Rust runtime ignores SIGPIPE, so a closed reader (`hardenctl ... | head -1`) would
    // surface as a write error or a panic in println!. End like every other Unix tool instead.
    // SAFETY: setting a signal disposition to SIG_DFL before any thread exists has no
    // memory-safety requirements.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // the TSS library logs its own view of every error (`ERROR:tcti:...`) to stderr; hardenctl
    // says what went wrong itself. `TSS2_LOG=all+error` (or any value) brings them back.
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("TSS2_LOG", "all+none") };
    }
    let matches = hardend::cmdline::hardenctl::Args::command().get_matches();
    let args =
        hardend::cmdline::hardenctl::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    hardend::cli::run_matched(args, &matches)
}
