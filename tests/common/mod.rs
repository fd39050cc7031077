//! Helpers shared by the host integration tests: run the real `hardend-exec` binary on the
//! probe example (a separate, forked child process) and read what it reports.
#![allow(dead_code)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn hardend_exec() -> &'static str {
    env!("CARGO_BIN_EXE_hardend-exec")
}

pub fn hardenctl() -> &'static str {
    env!("CARGO_BIN_EXE_hardenctl")
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

/// A scratch directory with a profile in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// Writes `NAME.toml`; `{probe}` and `{dir}` are substituted.
    pub fn profile(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        let body = body
            .replace("{probe}", &probe().display().to_string())
            .replace("{dir}", &self.dir.path().display().to_string());
        fs::write(&p, body).expect("write profile");
        p
    }

    /// A profile that includes base and may execute the probe, plus `extra` TOML inside
    /// the `[landlock]` table, then any further sections.
    pub fn probe_profile(&self, name: &str, landlock_extra: &str, rest: &str) -> PathBuf {
        self.profile(
            name,
            &format!(
                "include = [\"base\"]\n[landlock]\nread_exec = [\"{{probe}}\"]\n{landlock_extra}\n{rest}\n"
            ),
        )
    }

    pub fn exec_cmd(&self, profile: &Path, extra_args: &[&str], ops: &[&str]) -> Command {
        let mut c = Command::new(hardend_exec());
        c.arg("--profile")
            .arg(profile)
            .arg("--profile-path")
            .arg(shipped_profiles())
            .arg("--runtime-dir")
            .arg(self.runtime_dir())
            .args(extra_args)
            .arg("--")
            .arg(probe())
            .args(ops);
        c
    }

    /// Runs the probe confined by `profile` and returns its output.
    pub fn run(&self, profile: &Path, extra_args: &[&str], ops: &[&str]) -> Output {
        self.exec_cmd(profile, extra_args, ops)
            .output()
            .expect("spawn hardend-exec")
    }
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
