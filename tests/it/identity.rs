//! org.hardend1.Identity through a real daemon on a private bus, with a real software TPM:
//! create, sign, CSR, quote and rotation through hardenctl; who may sign; a cleared TPM
//! is reported as lost with a signal; no TPM degrades the status without a panic.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::common::swtpm::{Swtpm, two_free_ports};
use crate::common::{TestBus, TestDaemon, hardenctl, is_root};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};

struct Setup {
    _keys: tempfile::TempDir,
    d: TestDaemon,
    bus: TestBus,
}

fn setup(tcti: &str, extra: &str) -> Setup {
    let bus = TestBus::start();
    let keys = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(
        &bus,
        "",
        &format!(
            "[identity]\ntcti = \"{tcti}\"\ndir = \"{}\"\n{extra}\n",
            keys.path().join("identity").display()
        ),
    );
    Setup {
        _keys: keys,
        d,
        bus,
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether `sig_hex` is the identity's statement signature over `data` (context prefix first).
fn verifies(pem: &str, data: &[u8], sig_hex: &str) -> bool {
    let key = VerifyingKey::from_public_key_pem(pem).unwrap();
    let sig = Signature::from_der(&hex::decode(sig_hex.trim()).unwrap()).unwrap();
    let msg = [hardend::tpm::identity::SIGN_CONTEXT, data].concat();
    key.verify(&msg, &sig).is_ok()
}

/// The sha256 fingerprint of the key in a PEM CSR, as openssl reads it.
fn csr_key_fingerprint(csr_pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("req.pem");
    std::fs::write(&f, csr_pem).unwrap();
    let out = ok(Command::new("openssl")
        .args(["req", "-verify", "-pubkey", "-noout", "-in"])
        .arg(&f)
        .output()
        .unwrap());
    let key = p256::PublicKey::from_public_key_pem(&String::from_utf8_lossy(&out.stdout)).unwrap();
    hex::encode(Sha256::digest(key.to_public_key_der().unwrap().as_bytes()))
}

#[test]
fn create_sign_csr_quote_and_rotate_through_the_daemon() {
    let sw = Swtpm::start();
    let prom = tempfile::tempdir().unwrap();
    let s = setup(
        &sw.tcti(),
        &format!(
            "subject = \"CN=gw-0042,O=Acme\"\n[metrics]\ndir = \"{}\"\n",
            prom.path().display()
        ),
    );
    let d = &s.d;
    let out = d.ctl(&["--json", "identity", "show"]);
    assert_eq!(out.status.code(), Some(3), "no identity yet");
    assert_eq!(json(&out)["identity"]["state"], "none");
    assert_eq!(json(&out)["identity"]["software_tpm"], true);

    let v = json(&ok(d.ctl(&["--json", "identity", "create"])))["identity"].clone();
    assert_eq!(v["state"], "ok");
    let (fp1, pem1) = (
        v["fingerprint"].as_str().unwrap().to_string(),
        v["public_key_pem"].as_str().unwrap().to_string(),
    );
    // a second create is refused, the identity unchanged
    let out = d.ctl(&["identity", "create"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let sig = ok(d.ctl(&["identity", "sign", "--nonce", "0badc0de"])).stdout;
    assert!(verifies(
        &pem1,
        &[0x0b, 0xad, 0xc0, 0xde],
        &String::from_utf8_lossy(&sig)
    ));

    // the configured subject is the default; the CSR carries the identity key
    let csr = String::from_utf8(ok(d.ctl(&["identity", "csr"])).stdout).unwrap();
    assert_eq!(csr_key_fingerprint(&csr), fp1);

    let last_quote = || {
        std::fs::read_to_string(prom.path().join("hardend.prom"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("hardend_identity_last_quote_timestamp_seconds "))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let q = ok(d.ctl(&["identity", "quote", "--nonce", "c0ffee", "--pcrs", "0,7"])).stdout;
    // the metrics say when the TPM last quoted (0 before: not since the start)
    let mut quoted = last_quote();
    for _ in 0..100 {
        if quoted.is_some_and(|t| t > 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        quoted = last_quote();
    }
    assert!(quoted.is_some_and(|t| t > 1_700_000_000), "{quoted:?}");
    let qf = d.path("quote.json");
    let name = serde_json::from_slice::<serde_json::Value>(&q).unwrap()["ak_name"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&qf, q).unwrap();
    ok(d.ctl(&[
        "identity",
        "verify-quote",
        qf.to_str().unwrap(),
        "--nonce",
        "c0ffee",
        "--ak-name",
        &name,
    ]));

    // rotation: the next key exists beside the current one, which stays in use
    let v = json(&ok(d.ctl(&["--json", "identity", "rotate"])));
    let fp2 = v["fingerprint"].as_str().unwrap().to_string();
    assert_ne!(fp1, fp2);
    let v = json(&ok(d.ctl(&["--json", "identity", "show"])))["identity"].clone();
    assert_eq!(v["fingerprint"], fp1.as_str());
    assert_eq!(v["pending_fingerprint"], fp2.as_str());
    let sig = ok(d.ctl(&["identity", "sign", "--nonce", "01"])).stdout;
    assert!(verifies(&pem1, &[1], &String::from_utf8_lossy(&sig)));
    let csr = String::from_utf8(ok(d.ctl(&["identity", "csr", "--next"])).stdout).unwrap();
    assert_eq!(
        csr_key_fingerprint(&csr),
        fp2,
        "the CSR for enrolment carries the new key"
    );
    let out = d.ctl(&["identity", "rotate"]);
    assert_eq!(out.status.code(), Some(1), "one rotation at a time");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already pending"));

    let v = json(&ok(d.ctl(&["--json", "identity", "rotate", "--commit"])));
    assert_eq!(v["fingerprint"], fp2.as_str());
    let v = json(&ok(d.ctl(&["--json", "identity", "show"])))["identity"].clone();
    assert_eq!(v["fingerprint"], fp2.as_str());
    assert_eq!(v["pending_fingerprint"], serde_json::Value::Null);
    let pem2 = v["public_key_pem"].as_str().unwrap().to_string();
    let sig = String::from_utf8(ok(d.ctl(&["identity", "sign", "--nonce", "02"])).stdout).unwrap();
    assert!(verifies(&pem2, &[2], &sig));
    assert!(!verifies(&pem1, &[2], &sig), "the old key no longer signs");
    let out = d.ctl(&["identity", "rotate", "--abort"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rotation is pending"));

    // an aborted rotation leaves the identity as it was
    ok(d.ctl(&["identity", "rotate"]));
    ok(d.ctl(&["identity", "rotate", "--abort"]));
    let v = json(&ok(d.ctl(&["--json", "identity", "show"])))["identity"].clone();
    assert_eq!(v["fingerprint"], fp2.as_str());
    assert_eq!(v["pending_fingerprint"], serde_json::Value::Null);
}

/// Runs hardenctl as uid/gid 65534 with exactly `groups` as supplementary groups.
fn as_nobody(bus: &TestBus, groups: &[u32], args: &[&str]) -> Output {
    let groups = groups.to_vec();
    let mut cmd = Command::new(hardenctl());
    cmd.arg("--bus").arg(&bus.address).args(args);
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid) between fork and
    // exec; `groups` is owned by the closure and outlives the calls.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn gid_of(group: &str) -> u32 {
    let line = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{group}:")))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("group {group} in /etc/group"));
    line.split(':').nth(2).unwrap().parse().unwrap()
}

#[test]
fn signing_is_for_root_and_the_signers_group_reading_for_everyone() {
    if !is_root() {
        eprintln!("skipped: needs root to run clients as nobody");
        return;
    }
    let sw = Swtpm::start();
    let s = setup(&sw.tcti(), "signers_group = \"audio\"");
    ok(s.d.ctl(&["identity", "create"]));
    let audio = gid_of("audio");

    let out = as_nobody(&s.bus, &[], &["--json", "identity", "show"]);
    assert!(out.status.success(), "everyone may read the identity");
    assert_eq!(json(&out)["identity"]["state"], "ok");
    for args in [
        &["identity", "sign", "--nonce", "00"][..],
        &["identity", "csr", "--subject", "CN=x"][..],
        &["identity", "quote", "--nonce", "00"][..],
    ] {
        let out = as_nobody(&s.bus, &[], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("permission denied:") && err.contains("requires root or group audio"),
            "{args:?}: {err}"
        );
    }
    // a member of the signers group may sign, but not create or rotate
    ok(as_nobody(
        &s.bus,
        &[audio],
        &["identity", "sign", "--nonce", "00"],
    ));
    // ...a CSR only in the configured name (here the default, CN=<hostname>)...
    ok(as_nobody(&s.bus, &[audio], &["identity", "csr"]));
    let out = as_nobody(
        &s.bus,
        &[audio],
        &["identity", "csr", "--subject", "CN=another-device"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only root may ask for a subject"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and nothing that looks like a TPM structure
    let out = as_nobody(
        &s.bus,
        &[audio],
        &["identity", "sign", "--nonce", "ff54434780180000"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TPM_GENERATED_VALUE"));
    for args in [
        &["identity", "create"][..],
        &["identity", "rotate"][..],
        &["identity", "rotate", "--commit"][..],
        &["identity", "enroll"][..],
    ] {
        let out = as_nobody(&s.bus, &[audio], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("requires root (caller uid 65534)"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cleared_tpm_makes_the_identity_lost_with_a_signal_and_no_new_key() {
    use futures_util::StreamExt;
    use hardend::api::IdentityProxy;
    let sw = Swtpm::start();
    let s = setup(&sw.tcti(), "");
    let v = json(&ok(s.d.ctl(&["--json", "identity", "create"])))["identity"].clone();
    let fp = v["fingerprint"].as_str().unwrap().to_string();
    let conn = zbus::connection::Builder::address(s.bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let proxy = IdentityProxy::new(&conn).await.unwrap();
    assert_eq!(proxy.state().await.unwrap(), "ok");
    let mut changes = proxy.receive_state_changed().await.unwrap();

    sw.tools(&["tpm2_clear", "-c", "p"]);
    let (info,) = proxy.check().await.unwrap();
    assert_eq!(info.state, hardend::api::IdentityState::Lost);
    assert_eq!(info.fingerprint, fp, "the lost identity is still named");
    let sig = tokio::time::timeout(std::time::Duration::from_secs(10), changes.next())
        .await
        .expect("StateChanged within 10 s")
        .unwrap();
    let a = sig.args().unwrap();
    assert_eq!((*a.old_state(), *a.new_state()), ("ok", "lost"));

    let out = s.d.ctl(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["state"], "degraded");
    assert!(
        v["detail"].as_str().unwrap().contains("identity lost"),
        "{v}"
    );
    // no silent replacement: create refuses, signing fails, the blobs stay
    assert_eq!(s.d.ctl(&["identity", "create"]).status.code(), Some(1));
    let out = s.d.ctl(&["identity", "sign", "--nonce", "00"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the identity is lost"));
    assert_eq!(proxy.fingerprint().await.unwrap(), fp);
    // the explicit way back: rotate, then commit
    ok(s.d.ctl(&["identity", "rotate"]));
    ok(s.d.ctl(&["identity", "rotate", "--commit"]));
    let (info,) = proxy.check().await.unwrap();
    assert_eq!(info.state, hardend::api::IdentityState::Ok);
    assert_ne!(info.fingerprint, fp);
}

#[test]
fn no_tpm_degrades_the_status_and_gives_clear_errors() {
    let (port, _) = two_free_ports();
    let s = setup(&format!("swtpm:host=127.0.0.1,port={port}"), "");
    let out = s.d.ctl(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["state"], "degraded");
    assert!(
        v["detail"].as_str().unwrap().contains("identity no-tpm"),
        "{v}"
    );
    let out = s.d.ctl(&["--json", "identity", "show"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["identity"]["state"], "no-tpm");
    let out = s.d.ctl(&["identity", "sign", "--nonce", "00"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no TPM reachable through swtpm:host=127.0.0.1"),
        "{err}"
    );
    // still serving
    assert_eq!(s.d.ctl(&["status"]).status.code(), Some(3));
    // and --direct says the same without the daemon
    let out = Command::new(hardenctl())
        .args(["identity", "show", "--tcti"])
        .arg(format!("swtpm:host=127.0.0.1,port={port}"))
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TPM reachable"));
}

#[test]
fn a_bad_identity_config_names_file_line_and_key() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let cfg = d.path("bad.toml");
    std::fs::write(&cfg, "[identity]\n\ntcti = \"swtpm:host=h,prot=1\"\n").unwrap();
    let out = Command::new(crate::common::hardend())
        .arg("--config")
        .arg(&cfg)
        .arg("--bus")
        .arg(&bus.address)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: identity.tcti:", cfg.display())),
        "{err}"
    );
}
