//! Helpers shared by the host integration tests: run the real `hardend-exec` binary on the
//! probe example (a separate, forked child process) and read what it reports.
#![allow(dead_code)]

pub mod swtpm;

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

pub fn hardend() -> &'static str {
    env!("CARGO_BIN_EXE_hardend")
}

/// A private dbus-daemon for one test, on a socket any local user can reach, with a policy
/// that lets everyone talk (authorization is hardend's job; the shipped system bus policy
/// is tested in the VM).
pub struct TestBus {
    pub dir: tempfile::TempDir,
    pub address: String,
    child: std::process::Child,
}

impl TestBus {
    pub fn start() -> TestBus {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let sock = dir.path().join("bus.sock");
        let conf = dir.path().join("bus.conf");
        fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )
        .expect("bus config");
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TestBus {
            address: format!("unix:path={}", sock.display()),
            dir,
            child,
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hardend daemon on a [`TestBus`] with its own config, runtime and drop-in directories.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub bus: String,
    pub child: Option<std::process::Child>,
}

impl TestDaemon {
    /// Writes the config (extra TOML appended to the `[daemon]` table) and starts hardend.
    pub fn start(bus: &TestBus, daemon_extra: &str, rest: &str) -> TestDaemon {
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
        let child = Command::new(hardend())
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

    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(hardenctl())
            .arg("--bus")
            .arg(&self.bus)
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

    /// Runs `cmd` (with args) under hardend-exec as `unit` with a profile from the daemon's
    /// profile directory; returns the child (the confined program itself).
    pub fn start_confined(&self, unit: &str, profile: &str, cmd: &[&str]) -> std::process::Child {
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
