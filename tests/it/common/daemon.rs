//! hardend on a private bus, with its own configuration, runtime and drop-in directories.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use super::{TestBus, hardenctl, hardend, hardend_exec, shipped_profiles};

/// A hardend daemon on a [`TestBus`] with its own config, runtime and drop-in directories.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub bus: String,
    pub child: Option<std::process::Child>,
    /// Start the daemon under an allow-everything seccomp filter, as hardend.service's
    /// `SystemCallFilter=` puts it on a device.
    pub under_seccomp: bool,
}

impl TestDaemon {
    /// Writes the config (extra TOML appended to the `[daemon]` table) and starts hardend.
    pub fn start(bus: &TestBus, daemon_extra: &str, rest: &str) -> TestDaemon {
        Self::start_with(bus, daemon_extra, rest, false)
    }

    /// [`start`](Self::start), with the daemon under a seccomp filter of its own.
    pub fn start_under_seccomp(bus: &TestBus, daemon_extra: &str, rest: &str) -> TestDaemon {
        Self::start_with(bus, daemon_extra, rest, true)
    }

    fn start_with(
        bus: &TestBus,
        daemon_extra: &str,
        rest: &str,
        under_seccomp: bool,
    ) -> TestDaemon {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::create_dir_all(dir.path().join("profiles")).expect("profiles dir");
        for e in fs::read_dir(shipped_profiles())
            .expect("profiles")
            .flatten()
        {
            fs::copy(e.path(), dir.path().join("profiles").join(e.file_name())).expect("copy");
        }
        let d = dir.path().display();
        // no TPM unless the test brings one (the identity is then `disabled`, not degraded)
        let mut rest = if rest.contains("[identity]") {
            rest.to_string()
        } else {
            format!("{rest}\n[identity]\ntcti = \"none\"\n")
        };
        // nor the host's /etc and /usr watched, unless the test says what to watch
        if !rest.contains("[integrity]") && !rest.contains("[[integrity.watch]]") {
            rest.push_str("\n[integrity]\nenabled = false\n");
        }
        // nor metrics written into the host's node_exporter directory
        if !rest.contains("[metrics]") {
            rest.push_str("\n[metrics]\nenabled = false\n");
        }
        fs::write(
            dir.path().join("hardend.toml"),
            format!(
                "[daemon]\nruntime_dir = \"{d}/run\"\nprofile_path = [\"{d}/profiles\"]\ndropin_dir = \"{d}/etc-systemd\"\nruntime_dropin_dir = \"{d}/run-systemd\"\n{daemon_extra}\n{rest}\n"
            ),
        )
        .expect("config");
        let mut t = TestDaemon {
            dir,
            bus: bus.address.clone(),
            child: None,
            under_seccomp,
        };
        t.spawn();
        t
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn records_dir(&self) -> PathBuf {
        self.path("run/enforced")
    }

    /// Starts (or restarts) the daemon and waits until it answers.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new(hardend());
        if self.under_seccomp {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only prctl is called, with a filter program
            // that lives on this stack frame across the call.
            unsafe {
                cmd.pre_exec(|| {
                    let allow = [libc::sock_filter {
                        code: 0x06, // BPF_RET | BPF_K
                        jt: 0,
                        jf: 0,
                        k: 0x7fff_0000, // SECCOMP_RET_ALLOW
                    }];
                    let prog = libc::sock_fprog {
                        len: 1,
                        filter: allow.as_ptr().cast_mut(),
                    };
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || libc::prctl(
                            libc::PR_SET_SECCOMP,
                            libc::SECCOMP_MODE_FILTER,
                            &prog as *const libc::sock_fprog,
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .arg("--config")
            .arg(self.path("hardend.toml"))
            .arg("--bus")
            .arg(&self.bus)
            .stderr(fs::File::create(self.path("hardend.log")).expect("log"))
            .spawn()
            .expect("spawn hardend");
        self.child = Some(child);
        for _ in 0..200 {
            if self.ctl(&["status"]).status.code() != Some(1) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("hardend did not come up: {}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("hardend.log")).unwrap_or_default()
    }

    /// hardenctl with this daemon's bus in `HARDEND_BUS` (`--bus` is refused by the
    /// commands that do not use the daemon).
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(hardenctl())
            .env("HARDEND_BUS", &self.bus)
            .args(args)
            .output()
            .expect("hardenctl")
    }

    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ctl(&a);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "hardenctl {args:?}: {e}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Assigns `profile` to `unit` the way `hardenctl confine` does on a host with systemd:
    /// hardend's drop-in in the daemon's drop-in directory (records alone assign nothing).
    pub fn assign(&self, unit: &str, profile: &str) {
        let dir = self.path("etc-systemd").join(format!("{unit}.d"));
        fs::create_dir_all(&dir).expect("drop-in dir");
        fs::write(
            dir.join("50-hardend.conf"),
            format!("# managed by hardend: profile={profile}\n[Service]\n"),
        )
        .expect("drop-in");
    }

    /// Assigns `profile` to `unit` and runs `cmd` (with args) under hardend-exec as `unit`
    /// with that profile from the daemon's profile directory; returns the child (the
    /// confined program itself).
    pub fn start_confined(&self, unit: &str, profile: &str, cmd: &[&str]) -> std::process::Child {
        self.assign(unit, profile);
        self.start_unassigned(unit, profile, cmd)
    }

    /// Runs `cmd` under hardend-exec as `unit` without assigning anything: what any local
    /// user can do.
    pub fn start_unassigned(&self, unit: &str, profile: &str, cmd: &[&str]) -> std::process::Child {
        Command::new(hardend_exec())
            .args(["--profile", profile, "--unit", unit, "--profile-path"])
            .arg(self.path("profiles"))
            .arg("--runtime-dir")
            .arg(self.records_dir())
            .arg("--")
            .args(cmd)
            .spawn()
            .expect("hardend-exec")
    }

    /// Polls `hardenctl services` until `unit` has `state` (or panics after ~10 s).
    pub fn wait_state(&self, unit: &str, state: &str) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        for _ in 0..200 {
            let v = self.ctl_json(&["services"]);
            if let Some(s) = v["services"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["unit"] == unit))
            {
                if s["state"] == state {
                    return s.clone();
                }
                last = s.clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "{unit} never became {state}; last: {last:#}\nlog:\n{}",
            self.log()
        );
    }

    pub fn kill(&mut self, signal: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill with a valid pid and signal number touches no memory.
            unsafe { libc::kill(c.id() as i32, signal) };
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill(libc::SIGTERM);
    }
}
