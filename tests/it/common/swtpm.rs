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
/// Two adjacent free ports (tcti-swtpm finds the control port at port + 1), handed out once
/// per test process and below Linux's ephemeral range (32768–60999): a port taken from the
/// ephemeral range could be given to an outgoing connection — there are many, to the other
/// TPMs — between this check and swtpm's bind, and then the TPM half-works.
pub fn two_free_ports() -> (u16, u16) {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // another test process (a bench, a second cargo test) starts elsewhere in the range
    let base = 20_000 + (std::process::id() % 300) as u16 * 40;
    for _ in 0..2000 {
        let off = NEXT.fetch_add(2, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (base - 20_000 + off) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return (port, port + 1);
        }
    }
    panic!("no two adjacent free ports below 32000");
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
        // a loaded machine (a VM beside the tests, the suite starting) can take seconds to
        // start it; tcti-swtpm needs both the server and the control port, and swtpm may
        // listen on one a while before the other
        let ready = (0..1000).any(|_| {
            let up = [port, ctrl]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if !up {
                std::thread::sleep(Duration::from_millis(10));
            }
            up
        });
        assert!(
            ready,
            "swtpm did not listen on ports {port} and {ctrl} within 10 s"
        );
        let sw = Swtpm {
            _dir: dir,
            child,
            port,
            ctrl,
        };
        // and answers through the TSS itself: listening is not yet serving
        let mut last = String::new();
        let serving = (0..100).any(|_| match hardend::tpm::identity::Tpm::connect(&sw.tcti()) {
            Ok(_) => true,
            Err(e) => {
                last = e.to_string();
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        });
        assert!(serving, "swtpm on port {port} does not answer: {last}");
        sw
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
