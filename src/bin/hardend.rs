//! hardend: the daemon. Owns org.hardend1 on the system bus, verifies that every assigned
//! unit runs confined, and confines/releases units on request.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hardend::daemon::config::{Config, DEFAULT_CONFIG};
use hardend::daemon::run::{Options, init_logging, run};

/// The hardend daemon (normally started by systemd as hardend.service).
#[derive(Parser, Debug)]
#[command(name = "hardend", version, about, long_about = None)]
struct Args {
    /// Configuration file (every key optional; a missing default file means defaults).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// D-Bus address to serve on instead of the configured bus (tests, demos).
    #[arg(long)]
    bus: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    hardend::cli::docs::generate_if_asked(<Args as clap::CommandFactory>::command(), "8");
    let args = Args::parse();
    if args.check_config {
        return match Config::load(&args.config) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hardend: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hardend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Options {
        config: args.config,
        bus: args.bus,
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("hardend: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
