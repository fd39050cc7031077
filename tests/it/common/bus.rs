//! A private dbus-daemon for one test.

use std::fs;
use std::process::Command;

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
