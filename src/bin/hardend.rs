//! hardend: the daemon. Owns org.hardend1 on the system bus, verifies that every assigned
//! unit runs confined, and confines/releases units on request.

use std::process::ExitCode;

use clap::Parser;
use hardend::cmdline::hardend::Args;
use hardend::config::Config;
use hardend::daemon::run::{Options, init_logging, run};

/// `--release-dropins`: the configured directories, and the defaults too (a drop-in written
/// under an earlier configuration must not outlive the package either).
fn release_dropins(config: &std::path::Path) -> ExitCode {
    let defaults = hardend::config::DaemonConfig::default();
    let cfg = match Config::load(config) {
        Ok(c) => c.daemon,
        Err(e) => {
            eprintln!("hardend: {e}; releasing in the default directories");
            defaults.clone()
        }
    };
    let mut dirs = vec![
        cfg.dropin_dir.as_path(),
        cfg.runtime_dropin_dir.as_path(),
        defaults.dropin_dir.as_path(),
        defaults.runtime_dropin_dir.as_path(),
    ];
    dirs.dedup();
    dirs.sort();
    dirs.dedup();
    let r = hardend::systemd::dropin::release_all(&dirs);
    for u in &r.units {
        println!("{u}");
    }
    for (f, e) in &r.failed {
        eprintln!("hardend: cannot remove {}: {e}", f.display());
    }
    if r.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

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
    if args.release_dropins {
        return release_dropins(&args.config);
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
