//! A scratch directory with profiles in it, and the probe run confined from there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{hardend_exec, probe, shipped_profiles};

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

    /// A profile without base (so without its scopes): the loader, libc and the probe.
    pub fn bare_probe_profile(&self, name: &str, landlock_extra: &str) -> PathBuf {
        self.profile(
            name,
            &format!(
                "[landlock]\nread_exec = [\"{{probe}}\", \"/usr/lib\", \"/usr/lib64\"]\nread = [\"/etc/ld.so.cache\"]\n{landlock_extra}\n"
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
