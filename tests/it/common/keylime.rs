//! A real Keylime registrar and verifier (push mode, sqlite, their own CA) on localhost for
//! one test: the pinned Keylime from PyPI (scripts/keylime-env), free ports, a private work
//! directory; the whole process groups killed on drop (Keylime forks workers and a shared
//! memory manager, and does not stop promptly on SIGTERM).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hardend::keylime::http::{Client, Tls};

use super::swtpm::two_free_ports;

pub struct Keylime {
    pub dir: tempfile::TempDir,
    verifier: Child,
    registrar: Child,
    pub verifier_port: u16,
    pub registrar_port: u16,
    pub registrar_tls_port: u16,
}

fn venv() -> PathBuf {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/keylime-env"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/keylime-env");
    assert!(out.status.success(), "scripts/keylime-env failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn wait_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut s = String::new();
            std::fs::File::open(log)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            panic!("{what} exited ({st}):\n{s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not listen on {port} within 90 s");
}

impl Keylime {
    pub fn start() -> Keylime {
        let venv = venv();
        let dir = tempfile::tempdir().unwrap();
        let (verifier_port, _) = two_free_ports();
        let (registrar_port, registrar_tls_port) = two_free_ports();
        let d = dir.path();
        let verifier = write(
            d,
            "verifier.conf",
            &format!(
                "[verifier]\nversion = 2.6\nuuid = default\nip = 127.0.0.1\nport = {verifier_port}\n\
                 registrar_ip = 127.0.0.1\nregistrar_port = {registrar_tls_port}\nenable_agent_mtls = True\n\
                 tls_dir = generate\nserver_key = default\nserver_key_password =\nserver_cert = default\n\
                 cert_subject_alternative_names =\ntrusted_client_ca = default\nclient_key = default\n\
                 client_key_password =\nclient_cert = default\ntrusted_server_ca = default\n\
                 authorization_provider = simple\ndatabase_url = sqlite\ndatabase_pool_sz_ovfl = 5,10\n\
                 auto_migrate_db = True\nnum_workers = 1\nmax_workers = 2\nexponential_backoff = True\n\
                 retry_interval = 2\nmax_retries = 5\nquote_interval = 2\nmax_upload_size = 104857600\n\
                 request_timeout = 60.0\nmeasured_boot_policy_name = accept-all\nmeasured_boot_imports = []\n\
                 measured_boot_evaluate = once\n\
                 severity_labels = [\"info\", \"notice\", \"warning\", \"error\", \"critical\", \"alert\", \"emergency\"]\n\
                 severity_policy = [{{\"event_id\": \".*\", \"severity_label\" : \"emergency\"}}]\n\
                 ignore_tomtou_errors = False\ndurable_attestation_import =\npersistent_store_url =\n\
                 transparency_log_url =\ntime_stamp_authority_url =\ntime_stamp_authority_certs_path =\n\
                 persistent_store_format = json\npersistent_store_encoding =\ntransparency_log_sign_algo = sha256\n\
                 signed_attributes =\nrequire_allow_list_signatures = False\nmode = push\n\
                 challenge_lifetime = 1800\nverification_timeout = 0\nsession_create_rate_limit_per_ip = 50\n\
                 session_create_rate_limit_window_ip = 60\nsession_create_rate_limit_per_agent = 15\n\
                 session_create_rate_limit_window_agent = 60\nsession_lifetime = 180\n\
                 extend_token_on_attestation = True\nauto_recover_attestation_failures = False\n\
                 shutdown_drain_timeout = 10\n\
                 [revocations]\nenabled_revocation_notifications = []\nzmq_ip = 127.0.0.1\nzmq_port = 8992\nwebhook_url =\n"
            ),
        );
        let registrar = write(
            d,
            "registrar.conf",
            &format!(
                "[registrar]\nversion = 2.6\nip = 127.0.0.1\nport = {registrar_port}\ntls_port = {registrar_tls_port}\n\
                 tls_dir = default\nserver_key = default\nserver_key_password =\nserver_cert = default\n\
                 cert_subject_alternative_names =\ntrusted_client_ca = default\nauthorization_provider = simple\n\
                 database_url = sqlite\ndatabase_pool_sz_ovfl = 5,10\nmax_workers = 1\nauto_migrate_db = True\n\
                 durable_attestation_import =\npersistent_store_url =\ntransparency_log_url =\n\
                 time_stamp_authority_url =\ntime_stamp_authority_certs_path =\npersistent_store_format = json\n\
                 persistent_store_encoding =\ntransparency_log_sign_algo = sha256\n\
                 signed_attributes = ek_tpm,aik_tpm,ekcert\ntpm_identity = default\nmalformed_cert_action = warn\n"
            ),
        );
        let ca = write(
            d,
            "ca.conf",
            "[ca]\nversion = 2.6\npassword = default\ncert_country = DE\ncert_ca_name = hardend test Keylime CA\n\
             cert_state = BE\ncert_locality = Berlin\ncert_organization = hardend tests\ncert_org_unit = 1\n\
             cert_ca_lifetime = 30\ncert_lifetime = 30\ncert_bits = 2048\ncert_crl_dist = http://localhost:38080/crl\n",
        );
        let logging = write(
            d,
            "logging.conf",
            "[logging]\nversion = 2.6\n[loggers]\nkeys = root,keylime\n[handlers]\nkeys = consoleHandler\n\
             [formatters]\nkeys = formatter\n[formatter_formatter]\n\
             format = %(asctime)s.%(msecs)03d - %(name)s - %(levelname)s - %(message)s\ndatefmt = %Y-%m-%d %H:%M:%S\n\
             [logger_root]\nlevel = INFO\nhandlers = consoleHandler\n[handler_consoleHandler]\nclass = StreamHandler\n\
             level = INFO\nformatter = formatter\nargs = (sys.stdout,)\n[logger_keylime]\nlevel = INFO\nqualname = keylime\nhandlers =\n",
        );
        let spawn = |bin: &str, log: &str| {
            let log = std::fs::File::create(d.join(log)).unwrap();
            Command::new(venv.join("bin").join(bin))
                .current_dir(d)
                .env("KEYLIME_DIR", d)
                .env("KEYLIME_VERIFIER_CONFIG", &verifier)
                .env("KEYLIME_REGISTRAR_CONFIG", &registrar)
                .env("KEYLIME_CA_CONFIG", &ca)
                .env("KEYLIME_LOGGING_CONFIG", &logging)
                .env("PYTHONWARNINGS", "ignore")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{bin}: {e}"))
        };
        // the verifier makes the CA (tls_dir = generate) the registrar then uses
        let mut v = spawn("keylime_verifier", "verifier.log");
        wait_port(
            verifier_port,
            "keylime_verifier",
            &mut v,
            &d.join("verifier.log"),
        );
        let mut r = spawn("keylime_registrar", "registrar.log");
        wait_port(
            registrar_port,
            "keylime_registrar",
            &mut r,
            &d.join("registrar.log"),
        );
        wait_port(
            registrar_tls_port,
            "keylime_registrar",
            &mut r,
            &d.join("registrar.log"),
        );
        Keylime {
            dir,
            verifier: v,
            registrar: r,
            verifier_port,
            registrar_port,
            registrar_tls_port,
        }
    }

    /// The CA that signed the servers' certificates (and the admin's client certificate).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("cv_ca/cacert.crt")
    }

    fn admin_tls(&self) -> Tls {
        let ca = self.dir.path().join("cv_ca");
        Tls {
            ca: Some(self.ca()),
            client: Some((ca.join("client-cert.crt"), ca.join("client-private.pem"))),
        }
    }

    /// The tenant's view of the registrar (mutual TLS with the admin certificate).
    pub fn registrar_admin(&self) -> Client {
        Client::new(
            &format!("https://127.0.0.1:{}", self.registrar_tls_port),
            &self.admin_tls(),
        )
        .unwrap()
    }

    /// The tenant's view of the verifier.
    pub fn verifier_admin(&self) -> Client {
        Client::new(
            &format!("https://127.0.0.1:{}", self.verifier_port),
            &self.admin_tls(),
        )
        .unwrap()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Drop for Keylime {
    fn drop(&mut self) {
        for c in [&mut self.verifier, &mut self.registrar] {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on the process group this test started; no memory involved.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = c.wait();
        }
    }
}
