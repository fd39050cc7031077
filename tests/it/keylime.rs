//! hardend as a Keylime agent against a real Keylime 7.14 registrar and verifier (push mode,
//! pinned from PyPI, their own CA, sqlite) and swtpm: the registrar marks the device active
//! only after the TPM answered its credential challenge; the verifier attests it with a
//! nonce of its own; a PCR extended after enrolment makes the verifier fail it; another
//! TPM's attestation key under the same agent id is refused by the registrar, and gets no
//! session at the verifier.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::hardenctl;
use crate::common::keylime::Keylime;
use crate::common::swtpm::Swtpm;

/// A device: its TPM, its identity directory, its hardend.toml.
struct Device {
    sw: Swtpm,
    dir: tempfile::TempDir,
}

impl Device {
    fn new(kl: &Keylime, agent_uuid: Option<&str>) -> Device {
        let sw = Swtpm::start_manufactured();
        let dir = tempfile::tempdir().unwrap();
        let uuid = agent_uuid
            .map(|u| format!("agent_uuid = \"{u}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            dir.path().join("hardend.toml"),
            format!(
                "[identity]\ntcti = \"{}\"\ndir = \"{}\"\n\n[attestation]\nregistrar = \"http://127.0.0.1:{}\"\nverifier = \"https://127.0.0.1:{}\"\nverifier_ca = \"{}\"\n{uuid}",
                sw.tcti(),
                dir.path().join("id").display(),
                kl.registrar_port,
                kl.verifier_port,
                kl.ca().display()
            ),
        )
        .unwrap();
        Device { sw, dir }
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("hardend.toml")
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(hardenctl())
            .args(["--json", "identity", "keylime", "--config"])
            .arg(self.config())
            .args(args)
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap()
    }

    fn fingerprint(&self) -> String {
        let o = Command::new(hardenctl())
            .args([
                "--json",
                "identity",
                "--tcti",
                &self.sw.tcti(),
                "--identity-dir",
            ])
            .arg(self.dir.path().join("id"))
            .arg("create")
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["identity"]["fingerprint"].as_str().unwrap().to_string()
    }
}

fn doc(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// `doc`, checked against its shape in docs/json.md.
fn documented(command: &str, o: &Output) -> Value {
    let v = doc(o);
    let shapes = crate::json_shapes::documented();
    let shape = &shapes[if o.status.code() == Some(1) {
        "error"
    } else {
        command
    }];
    if let Err(e) = crate::json_shapes::conforms(shape, &v, command) {
        panic!("hardenctl --json {command} differs from docs/json.md: {e}");
    }
    v
}

/// What went wrong: with --json the error is the document's `error` (stderr otherwise).
fn stderr(o: &Output) -> String {
    match serde_json::from_slice::<Value>(&o.stdout) {
        Ok(v) if v["error"].is_string() => v["error"].as_str().unwrap().to_string(),
        _ => String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The tenant's enrolment of `agent` at the verifier: the AK the registrar holds for it, a
/// PCR policy (0 and 23 as a fresh swtpm has them: zero).
fn enrol_at_verifier(kl: &Keylime, agent: &str, aik_tpm: &str) {
    let zero = "0".repeat(64);
    let policy = json!({"0": [zero], "23": [zero]}).to_string();
    let body = json!({
        "tpm_policy": policy,
        "metadata": "{}",
        "ima_sign_verification_keys": "",
        "revocation_key": "",
        "accept_tpm_hash_algs": ["sha256"],
        "accept_tpm_encryption_algs": ["rsa", "ecc"],
        "accept_tpm_signing_algs": ["rsassa"],
        "ak_tpm": aik_tpm,
        "mb_policy_name": null,
        "mb_policy": null,
        "runtime_policy": "",
    });
    let a = kl
        .verifier_admin()
        .call("POST", &format!("/v2.6/agents/{agent}"), Some(&body), &[])
        .unwrap();
    assert_eq!(a.status, 200, "verifier enrolment: {}", a.body);
}

fn latest_attestation(kl: &Keylime, agent: &str) -> Value {
    let a = kl
        .verifier_admin()
        .call(
            "GET",
            &format!("/v3.0/agents/{agent}/attestations/latest"),
            None,
            &[],
        )
        .unwrap();
    assert!(
        a.status == 200 || a.status == 201,
        "{}: {}",
        a.status,
        a.body
    );
    a.body["data"]["attributes"].clone()
}

#[test]
fn a_keylime_verifier_attests_the_device_and_fails_it_after_a_pcr_change() {
    let kl = Keylime::start();
    let dev = Device::new(&kl, None);
    // the agent id is the identity's fingerprint unless configured
    let agent = dev.fingerprint();
    let registrar = kl.registrar_admin();
    let show = |id: &str| {
        registrar
            .call("GET", &format!("/v2.6/agents/{id}"), None, &[])
            .unwrap()
    };
    assert_eq!(show(&agent).status, 404, "not registered yet");

    let o = dev.ctl(&["register"]);
    assert!(o.status.success(), "register: {}", stderr(&o));
    let r = documented("identity keylime register", &o);
    assert_eq!(r["agent_id"], agent.as_str());
    assert_eq!(r["active"], true);
    assert_eq!(
        r["ek_certificate_sent"], true,
        "swtpm_setup put an EK certificate in NV"
    );

    // the registrar's own word: active (404 "has not been activated" otherwise), and the AK
    // it holds is the TPM's RSA attestation key
    let a = show(&agent);
    assert_eq!(a.status, 200, "registrar: {}", a.body);
    let aik_tpm = a.body["results"]["aik_tpm"].as_str().unwrap().to_string();
    let ak_pub = std::fs::read(dev.dir.path().join("id/ak-rsa.pub")).unwrap();
    let ak2b = hardend::tpm::public::to_tpm2b(
        &<tss_esapi::structures::Public as tss_esapi::traits::UnMarshall>::unmarshall(&ak_pub)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(STANDARD.decode(&aik_tpm).unwrap(), ak2b);
    // and it is a restricted RSASSA signing key (Keylime itself never checks)
    hardend::tpm::public::check_rsa_attestation_key(
        &hardend::tpm::public::from_bytes(&ak2b).unwrap(),
    )
    .unwrap();
    assert!(a.body["results"]["ekcert"].is_string());

    enrol_at_verifier(&kl, &agent, &aik_tpm);
    let o = dev.ctl(&["attest"]);
    assert!(
        o.status.success(),
        "attest: {}\n{}",
        stderr(&o),
        kl.log("verifier.log")
    );
    let r = documented("identity keylime attest", &o);
    assert_eq!(r["verdict"], "pass", "{r}");
    assert_eq!(
        r["pcrs"],
        json!([0, 23]),
        "the PCRs the verifier's policy names"
    );
    // the nonce is the verifier's own: the one it chose for this attestation
    let latest = latest_attestation(&kl, &agent);
    assert_eq!(latest["evaluation"], "pass", "{latest}");
    let challenge = latest["evidence"][0]["chosen_parameters"]["challenge"]
        .as_str()
        .or_else(|| latest["evidence_requested"][0]["chosen_parameters"]["challenge"].as_str())
        .unwrap_or_else(|| panic!("no challenge in {latest}"));
    assert_eq!(
        hex::encode(STANDARD.decode(challenge).unwrap()),
        r["nonce"].as_str().unwrap()
    );

    // a PCR changes after enrolment (something else was measured): the verifier fails it
    dev.sw
        .tools(&["tpm2_pcrextend", &format!("23:sha256={}", "ab".repeat(32))]);
    std::thread::sleep(std::time::Duration::from_secs(3)); // quote_interval = 2 s
    let o = dev.ctl(&["attest"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "attest after the extend: {}",
        stderr(&o)
    );
    let r = documented("identity keylime attest", &o);
    assert_eq!(r["verdict"], "fail", "{r}");
    assert_eq!(r["verifier_status"], "FAIL");
    assert_eq!(latest_attestation(&kl, &agent)["evaluation"], "fail");
    // and says why: the value the TPM quoted, which is what the extend made of PCR 23
    let extended = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update([0u8; 32]);
        h.update([0xab; 32]);
        hex::encode(h.finalize())
    };
    let log = kl.log("verifier.log");
    assert!(
        log.contains(&format!("PCR #23: {extended} from quote"))
            && log.contains("does not match expected value"),
        "the verifier names the PCR and the quoted value: {log}"
    );
}

#[test]
fn another_tpm_under_the_same_agent_id_is_refused() {
    let kl = Keylime::start();
    let agent = "gw-0042";
    let dev = Device::new(&kl, Some(agent));
    let o = dev.ctl(&["register"]);
    assert!(o.status.success(), "register: {}", stderr(&o));
    let a = kl
        .registrar_admin()
        .call("GET", &format!("/v2.6/agents/{agent}"), None, &[])
        .unwrap();
    let aik_tpm = a.body["results"]["aik_tpm"].as_str().unwrap().to_string();
    enrol_at_verifier(&kl, agent, &aik_tpm);

    // an impostor: another TPM (its own EK and AK) claiming the enrolled device's id
    let impostor = Device::new(&kl, Some(agent));
    let o = impostor.ctl(&["register"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = stderr(&o);
    assert!(
        e.contains("answered 403"),
        "the registrar refuses another TPM identity: {e}"
    );
    // it goes to the verifier directly: its TPM cannot prove the enrolled AK, no session
    let o = impostor.ctl(&["attest"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("did not accept the TPM's proof of possession"),
        "no session for another AK: {e}"
    );
    // the enrolled device itself still attests, round after round at the verifier's pace
    // (quote_interval 2 s; Keylime times an agent out after 5 of them)
    let mut child = Command::new(hardenctl())
        .args(["--json", "identity", "keylime", "--config"])
        .arg(dev.config())
        .args(["attest", "--loop"])
        .env("TSS2_LOG", "all+none")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(12));
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let rounds: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        rounds.len() >= 3,
        "rounds in 12 s: {rounds:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for r in &rounds {
        assert_eq!(r["verdict"], "pass", "{r}");
        assert_eq!(r["verifier_status"], "PASS", "never TIMEOUT: {r}");
    }
}

/// A server that answers every request with `response` (status line, headers, body).
fn fake_server(response: Vec<u8>) -> u16 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = std::io::Read::read_exact(&mut r, &mut body);
            let _ = s.write_all(&response);
        }
    });
    port
}

fn http(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A registrar (or whoever answers at its address: registration is plain HTTP in Keylime)
/// that answers nonsense gets a clear error naming it — no panic, no hang, nothing
/// activated — and the TPM releases nothing for a challenge it cannot open.
#[test]
fn a_hostile_registrar_gets_errors_not_secrets() {
    let sw = Swtpm::start_manufactured();
    let dir = tempfile::tempdir().unwrap();
    let blob = |b: &[u8]| {
        format!("{{\"results\": {{\"blob\": \"{}\"}}}}", STANDARD.encode(b)).into_bytes()
    };
    // a credential file in the right format that the TPM cannot open: it releases nothing
    let mut other = vec![
        0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1, 0, 4, 0, 2, 1, 2, 0, 2, 9, 9,
    ];
    other.truncate(18);
    let huge = vec![b' '; 3 << 20];
    for (answer, expect) in [
        (http("200 OK", b"<html>hello</html>"), "is not JSON"),
        (http("200 OK", b"{\"results\": {}}"), "has no results.blob"),
        (http("200 OK", &blob(b"not a credential")), "results.blob"),
        (
            http("200 OK", b"{\"results\": {\"blob\": \"%%%\"}}"),
            "not base64",
        ),
        (http("200 OK", &blob(&other)), "ActivateCredential"),
        (
            http("500 Internal Server Error", b"{\"status\": \"boom\"}"),
            "answered 500: boom",
        ),
        (http("200 OK", &huge), "larger than request limit"),
    ] {
        let port = fake_server(answer);
        let cfg = dir.path().join("hardend.toml");
        std::fs::write(
            &cfg,
            format!(
                "[identity]\ntcti = \"{}\"\ndir = \"{}\"\n[attestation]\nregistrar = \"http://127.0.0.1:{port}\"\nagent_uuid = \"gw-1\"\n",
                sw.tcti(),
                dir.path().join("id").display()
            ),
        )
        .unwrap();
        let o = Command::new(hardenctl())
            .args(["--json", "identity", "keylime", "--config"])
            .arg(&cfg)
            .arg("register")
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{expect}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(expect), "expected {expect:?} in: {e}");
        assert!(e.len() < 1000, "the error is short: {} bytes", e.len());
    }
}

/// The verifier must prove itself with a certificate from the configured CA: a server with
/// another certificate (a man in the middle) gets no request, no quote, no proof.
#[test]
fn a_verifier_with_another_certificate_is_refused() {
    let kl = Keylime::start();
    let dev = Device::new(&kl, Some("gw-7"));
    // another CA: swtpm's local CA certificate, which did not sign the verifier's
    let other_ca = dev.dir.path().join("other-ca.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=not the verifier's CA",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(dev.dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = std::fs::read_to_string(dev.config()).unwrap();
    let cfg = cfg.replace(
        &kl.ca().display().to_string(),
        &other_ca.display().to_string(),
    );
    std::fs::write(dev.config(), cfg).unwrap();
    let o = dev.ctl(&["attest"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "https://127.0.0.1:{}/v3.0/sessions",
            kl.verifier_port
        )) && (e.contains("certificate") || e.contains("TLS") || e.contains("tls")),
        "a TLS failure naming the verifier: {e}"
    );
    assert!(
        !kl.log("verifier.log").contains("gw-7"),
        "the verifier never heard of the agent"
    );
}

/// The registrar's challenge is answered only for the Keylime AK of this TPM: a challenge
/// (made in software by tpm2-tools, as Keylime's registrar does) for this EK and the name of
/// hardend's other attestation key releases nothing; for the Keylime AK's name it does.
#[test]
fn the_tpm_answers_only_a_challenge_for_the_keylime_ak() {
    use hardend::keylime::AgentTpm;
    let sw = Swtpm::start_manufactured();
    let dir = tempfile::tempdir().unwrap();
    let tpm = hardend::cli::keylime::DirectTpm {
        tcti: sw.tcti(),
        dir: dir.path().join("id"),
        ek: hardend::tpm::ek::EkAlgorithm::Rsa2048,
    };
    let keys = tpm.keys().unwrap();
    let mut t = hardend::tpm::identity::Tpm::connect(&sw.tcti()).unwrap();
    let ecc_ak = hardend::tpm::identity::IdentityStore::attestation(dir.path().join("id"));
    let ecc_name = hardend::tpm::public::name(&ecc_ak.create_key(&mut t).unwrap()).unwrap();
    drop(t);
    let ek = dir.path().join("ek.pub");
    std::fs::write(&ek, &keys.ek_public).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"keylime-registrar-secret-0123456").unwrap();
    let challenge = |name: &[u8]| {
        let out = dir.path().join("cred");
        let o = Command::new("tpm2_makecredential")
            .args(["-T", "none", "-u"])
            .arg(&ek)
            .arg("-s")
            .arg(&secret)
            .args(["-n", &hex::encode(name), "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        hardend::tpm::enroll::Challenge::from_tpm2_tools(&std::fs::read(out).unwrap()).unwrap()
    };
    let e = tpm.activate(&challenge(&ecc_name)).unwrap_err().to_string();
    assert!(e.contains("ActivateCredential"), "{e}");
    assert_eq!(
        tpm.activate(&challenge(&keys.ak_name)).unwrap(),
        b"keylime-registrar-secret-0123456"
    );
}
