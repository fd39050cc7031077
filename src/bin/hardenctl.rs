//! hardenctl: the admin CLI (see `hardend::cli`). Offline commands work without the daemon.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hardend::cli::run(hardend::cmdline::hardenctl::Args::parse())
}
