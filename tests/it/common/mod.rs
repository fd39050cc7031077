//! Helpers shared by the host integration tests:
//! * this module: the binaries under test, the probe and what it reports;
//! * `sandbox.rs`: a scratch directory with profiles, the probe run confined;
//! * `bus.rs`: a private dbus-daemon;
//! * `daemon.rs`: hardend on that bus with its own directories;
//! * `swtpm.rs`: a software TPM (also used by the benchmarks);
//! * `feedkey.rs`: an Ed25519 key made and used with `openssl`, to sign feeds;
//! * `keylime.rs`: a real Keylime registrar and verifier (pinned, from PyPI).
#![allow(dead_code, unused_imports)]

mod bus;
mod daemon;
pub mod feedkey;
pub mod keylime;
mod sandbox;
pub mod swtpm;

pub use bus::TestBus;
pub use daemon::TestDaemon;
pub use feedkey::FeedKey;
pub use sandbox::Sandbox;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/<profile>/NAME`: a binary of the workspace, built by `cargo build --workspace`
/// (scripts/test does; `hardend-exec` is another package, so `cargo test` alone does not).
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins --examples` first (scripts/test does)",
        p.display()
    );
    p
}

pub fn hardend_exec() -> PathBuf {
    workspace_bin("hardend-exec")
}

pub fn hardenctl() -> &'static str {
    env!("CARGO_BIN_EXE_hardenctl")
}

pub fn hardend() -> &'static str {
    env!("CARGO_BIN_EXE_hardend")
}

/// The repository's shipped profiles (tests include `base` from here).
pub fn shipped_profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// `target/<profile>/examples/probe`, built by `cargo test` alongside the tests.
pub fn probe() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("examples").join("probe");
    assert!(
        p.exists(),
        "{} missing: run through cargo test",
        p.display()
    );
    p
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the probe without any confinement (the control case).
pub fn run_unconfined(ops: &[&str]) -> Vec<String> {
    let out = Command::new(probe()).args(ops).output().expect("probe");
    results(&out)
}

/// The probe's result per op: "ok N" or "errno N".
pub fn results(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" -> ").map(|(_, r)| r.to_string()))
        .collect()
}

/// Asserts the probe ran every op and returns the results, showing stderr on failure.
pub fn ran(out: &Output, n: usize) -> Vec<String> {
    let r = results(out);
    assert_eq!(
        r.len(),
        n,
        "probe did not run all ops: status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    r
}

/// The state a correctly confined unit reaches on this machine: `enforced` only where
/// nothing is open (root with Landlock ABI ≥ 9); otherwise `partial`, naming what is open
/// (rights the kernel lacks, pathname UNIX sockets created after start, metadata for
/// non-root services).
pub fn confined_state() -> &'static str {
    if is_root() && hardend::confine::landlock::kernel_abi() >= 9 {
        "enforced"
    } else {
        "partial"
    }
}

pub fn errno(n: i32) -> String {
    format!("errno {n}")
}

/// Spawns `cmd` with `file` as its fd 3.
pub fn with_fd3(cmd: &mut Command, file: fs::File) {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `fd` stays open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // dup2(3, 3) would keep FD_CLOEXEC: clear it explicitly in that case.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `(NoNewPrivs, Seccomp)` of a process, from the kernel.
pub fn proc_confinement(pid: u32) -> (String, String) {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let f = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    (f("NoNewPrivs:"), f("Seccomp:"))
}
