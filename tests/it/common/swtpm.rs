//! A software TPM for one test (or benchmark): `swtpm socket` on two adjacent free TCP
//! ports (the swtpm TCTI talks to PORT and its control channel PORT+1), killed on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Swtpm {
    _dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    pub ctrl: u16,
}

/// Two adjacent free ports: the swtpm TCTI talks to PORT and its control channel PORT+1.
pub fn two_free_ports() -> (u16, u16) {
    for _ in 0..100 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
    panic!("no two adjacent free ports");
}

impl Swtpm {
    pub fn start() -> Swtpm {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    /// A TPM as a manufacturer ships it: EK certificates in NV (swtpm_setup with its local CA).
    pub fn start_manufactured() -> Swtpm {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate"])
            .arg(dir.path())
            .output()
            .expect("swtpm_setup (apt-get install swtpm-tools)");
        assert!(
            out.status.success(),
            "swtpm_setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> Swtpm {
        let (port, ctrl) = two_free_ports();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm (apt-get install swtpm)");
        // a loaded machine (a VM beside the tests) can take seconds to start it
        let ready = (0..1000).any(|_| {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if !up {
                std::thread::sleep(Duration::from_millis(10));
            }
            up
        });
        assert!(ready, "swtpm did not listen on port {port} within 10 s");
        Swtpm {
            _dir: dir,
            child,
            port,
            ctrl,
        }
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    pub fn tools(&self, args: &[&str]) {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A TPM reset, as at reboot: re-initialise, then TPM2_Startup(CLEAR).
    pub fn reboot(&self) {
        let out = Command::new("swtpm_ioctl")
            .args(["--tcp", &format!("127.0.0.1:{}", self.ctrl), "-i"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.tools(&["tpm2_startup", "-c"]);
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
