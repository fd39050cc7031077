//! hardend: the daemon. Owns org.hardend1 on the system bus, verifies that every assigned
//! unit runs confined, and confines/releases units on request.

use std::process::ExitCode;

use clap::Parser;
use hardend::cmdline::hardend::Args;
use hardend::config::Config;
use hardend::daemon::run::{Options, init_logging, run};

fn main() -> ExitCode {
    // the TSS library would log its own view of every TPM error to stderr (the journal);
    // the daemon reports them itself. Any TSS2_LOG value set for the unit wins.
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("TSS2_LOG", "all+none") };
    }
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
    let result = rt.block_on(run(Options {
        config: args.config,
        bus: args.bus,
    }));
    // work still on a worker thread (a read that hangs) is abandoned, not waited for
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("hardend: {e}");
            ExitCode::FAILURE
        }
    }
}
