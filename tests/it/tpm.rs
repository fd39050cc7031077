//! Device identity against a real software TPM (swtpm over TCP, one per test, on free
//! ports): the key signs inside the TPM and an independent implementation (the p256 crate)
//! verifies; the identity survives a TPM reset; a cleared TPM makes it lost without a new
//! key being created; its blobs are useless in another TPM; no TPM is a clear error.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

use crate::common::swtpm::{Swtpm, two_free_ports};

use hardend::tpm::TpmError;
use hardend::tpm::identity::{IdentityStore, Tpm};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

/// Whether `der_sig` is the identity's signature over a statement of `data`: the context
/// prefix, then the data (docs/attestation.md).
fn verify(spki_der: &[u8], data: &[u8], der_sig: &[u8]) -> bool {
    let key = VerifyingKey::from_public_key_der(spki_der).unwrap();
    let sig = Signature::from_der(der_sig).unwrap();
    let msg = [hardend::tpm::identity::SIGN_CONTEXT, data].concat();
    key.verify(&msg, &sig).is_ok()
}

#[test]
fn create_then_sign_a_nonce_verified_independently() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path().join("identity"));
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    let info = tpm.info().unwrap();
    assert!(
        info.software,
        "swtpm must be reported as a software TPM: {info:?}"
    );
    let id = store.create(&mut tpm).unwrap();
    assert!(id.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(id.fingerprint.len(), 64);
    let nonce = b"verifier-nonce-0123456789abcdef";
    let sig = store.sign_statement(&mut tpm, nonce).unwrap();
    assert!(verify(&id.spki_der, nonce, &sig));
    assert!(!verify(&id.spki_der, b"another message", &sig));
    // the blobs are root-only
    use std::os::unix::fs::PermissionsExt;
    for f in ["identity.pub", "identity.priv"] {
        let mode = std::fs::metadata(store.dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // a second create is refused: replacing an identity is explicit
    assert!(matches!(store.create(&mut tpm), Err(TpmError::Exists(_))));
    assert_eq!(store.public().unwrap().fingerprint, id.fingerprint);
}

#[test]
fn the_identity_survives_a_tpm_reset() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path());
    let id = {
        let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
        store.create(&mut tpm).unwrap()
    };
    sw.reboot();
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    let again = store.check(&mut tpm).unwrap();
    assert_eq!(again.fingerprint, id.fingerprint);
    let sig = store.sign_statement(&mut tpm, b"after reboot").unwrap();
    assert!(verify(&id.spki_der, b"after reboot", &sig));
}

#[test]
fn a_cleared_tpm_loses_the_identity_and_no_new_key_appears() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path());
    let id = {
        let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
        store.create(&mut tpm).unwrap()
    };
    sw.tools(&["tpm2_clear", "-c", "p"]);
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    let e = store.check(&mut tpm).unwrap_err();
    assert!(matches!(e, TpmError::Lost { .. }), "{e}");
    assert!(e.to_string().contains("the identity is lost"));
    assert!(store.sign_statement(&mut tpm, b"x").is_err());
    // nothing was replaced: the stored public key is still the old one, and create refuses
    assert_eq!(store.public().unwrap().fingerprint, id.fingerprint);
    assert!(matches!(store.create(&mut tpm), Err(TpmError::Exists(_))));
}

#[test]
fn the_blobs_are_useless_in_another_tpm() {
    let a = Swtpm::start();
    let b = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path());
    store.create(&mut Tpm::connect(&a.tcti()).unwrap()).unwrap();
    let mut other = Tpm::connect(&b.tcti()).unwrap();
    assert!(matches!(
        store.check(&mut other),
        Err(TpmError::Lost { .. })
    ));
    assert!(store.sign_statement(&mut other, b"nonce").is_err());
}

#[test]
fn no_tpm_is_a_clear_error_not_a_panic() {
    let (port, _) = two_free_ports();
    let e = Tpm::connect(&format!("swtpm:host=127.0.0.1,port={port}"))
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("no TPM reachable through swtpm:host=127.0.0.1"),
        "{e}"
    );
    let e = Tpm::connect("swtpm:host=127.0.0.1,prot=1").err().unwrap();
    assert!(e.to_string().contains("unknown key \"prot\""), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = IdentityStore::new(dir.path()).public().unwrap_err();
    assert!(matches!(e, TpmError::NoIdentity(_)));
}

#[test]
fn hardenctl_identity_create_show_sign() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hardenctl"))
            .args(args)
            .args(["--tcti", &sw.tcti(), "--identity-dir"])
            .arg(dir.path())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap()
    };
    let out = ctl(&["--json", "identity", "show"]);
    assert_eq!(out.status.code(), Some(3), "no identity yet");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v["identity"];
    assert_eq!(v["state"], "none");
    assert_eq!(v["software_tpm"], true);
    assert!(ctl(&["identity", "create"]).status.success());
    let out = ctl(&["--json", "identity", "show"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v["identity"];
    assert_eq!(v["state"], "ok");
    let pem = v["public_key_pem"].as_str().unwrap().to_string();
    let out = ctl(&["identity", "sign", "--nonce", "00112233aabbccdd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = hex::decode(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let key = VerifyingKey::from_public_key_pem(&pem).unwrap();
    let sig = Signature::from_der(&sig).unwrap();
    let msg = [
        hardend::tpm::identity::SIGN_CONTEXT,
        &hex::decode("00112233aabbccdd").unwrap(),
    ]
    .concat();
    assert!(key.verify(&msg, &sig).is_ok());
    // after a clear: lost, exit 3, and create still refuses
    sw.tools(&["tpm2_clear", "-c", "p"]);
    let out = ctl(&["--json", "identity", "show"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v["identity"];
    assert_eq!(v["state"], "lost");
    assert_eq!(ctl(&["identity", "create"]).status.code(), Some(1));
}

#[test]
fn the_csr_passes_openssl_and_carries_the_tpm_key() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path().join("id"));
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    let id = store.create(&mut tpm).unwrap();
    let pem = hardend::tpm::csr::csr(&store, &mut tpm, "CN=gw-0042,O=Acme,C=DE").unwrap();
    let csr = dir.path().join("req.pem");
    std::fs::write(&csr, &pem).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-subject", "-in"])
        .arg(&csr)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(
        text.contains("CN = gw-0042") || text.contains("CN=gw-0042"),
        "{text}"
    );
    let out = Command::new("openssl")
        .args(["req", "-pubkey", "-noout", "-in"])
        .arg(&csr)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        id.public_key_pem,
        "the CSR carries the TPM key"
    );
    // a bad subject is refused before the TPM is asked
    assert!(hardend::tpm::csr::csr(&store, &mut tpm, "EMAIL=x").is_err());
}

#[test]
fn a_quote_verifies_and_an_extended_pcr_changes_the_digest() {
    use hardend::tpm::quote::{PinnedAk, PinnedKey, quote, verify};
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let ak = IdentityStore::attestation(dir.path());
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    let nonce = b"fresh-verifier-nonce";
    let q = quote(&ak, &mut tpm, nonce, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let pin = PinnedAk {
        key: PinnedKey::Public(Box::new(ak.tpm_public().unwrap())),
        qualified_name: None,
    };
    assert_eq!(q.pcrs.len(), 8);
    let v = verify(&q, nonce, &pin).unwrap();
    assert_eq!(v.pcrs, 8);
    assert_eq!(v.ak_name, q.ak_name);
    // a replay against another challenge fails
    assert!(
        verify(&q, b"another nonce", &pin)
            .unwrap_err()
            .to_string()
            .contains("another nonce")
    );
    // tampering with a PCR value, the attest or relabelling a PCR fails
    let mut t = q.clone();
    t.pcrs.insert(7, "00".repeat(31) + "01");
    assert!(
        verify(&t, nonce, &pin)
            .unwrap_err()
            .to_string()
            .contains("PCR values do not match")
    );
    let mut t = q.clone();
    let v = t.pcrs.remove(&7).unwrap();
    t.pcrs.insert(8, v);
    assert!(
        verify(&t, nonce, &pin)
            .unwrap_err()
            .to_string()
            .contains("covers other PCRs")
    );
    let mut t = q.clone();
    t.attest.replace_range(20..22, "ff");
    assert!(verify(&t, nonce, &pin).is_err());
    // extend PCR 7: the new quote's values and digest differ, and the old values no
    // longer match a fresh quote
    sw.tools(&["tpm2_pcrextend", &format!("7:sha256={}", "ab".repeat(32))]);
    let q2 = quote(&ak, &mut tpm, nonce, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    verify(&q2, nonce, &pin).unwrap();
    assert_ne!(q.pcrs[&7], q2.pcrs[&7]);
    assert_eq!(q.pcrs[&0], q2.pcrs[&0]);
    let mut mixed = q2.clone();
    mixed.pcrs = q.pcrs.clone();
    assert!(verify(&mixed, nonce, &pin).is_err());
    // the attestation key is restricted: the TPM refuses to sign arbitrary data with it
    assert!(ak.sign_statement(&mut tpm, b"not a TPM structure").is_err());
}

#[test]
fn hardenctl_quote_and_verify_quote() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = env!("CARGO_BIN_EXE_hardenctl");
    let out = Command::new(ctl)
        .args([
            "identity",
            "quote",
            "--nonce",
            "c0ffee",
            "--pcrs",
            "0,7",
            "--tcti",
            &sw.tcti(),
            "--identity-dir",
        ])
        .arg(dir.path())
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("quote.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = bundle["ak_name"].as_str().unwrap().to_string();
    let verify = |nonce: &str| {
        Command::new(ctl)
            .args(["identity", "verify-quote"])
            .arg(&file)
            .args(["--nonce", nonce, "--ak-name", &name])
            .output()
            .unwrap()
    };
    assert!(verify("c0ffee").status.success());
    let bad = verify("beef");
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("another nonce"));
}

#[test]
fn rotation_keeps_the_old_key_until_commit_and_survives_an_interrupted_commit() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let store = IdentityStore::new(dir.path());
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    assert!(matches!(
        store.rotate(&mut tpm).unwrap_err(),
        TpmError::NoIdentity(_)
    ));
    let old = store.create(&mut tpm).unwrap();
    let next = store.rotate(&mut tpm).unwrap();
    assert_ne!(old.fingerprint, next.fingerprint);
    assert_eq!(store.check(&mut tpm).unwrap(), old, "still the identity");
    assert_eq!(store.pending_public().unwrap(), next);
    // a commit that stopped after moving the public blob: the next read finishes it,
    // never pairing the new public blob with the old private one
    std::fs::rename(
        dir.path().join("identity.next.pub"),
        dir.path().join("identity.pub"),
    )
    .unwrap();
    assert_eq!(store.check(&mut tpm).unwrap(), next);
    assert!(store.pending_public().is_none());
    let sig = store.sign_statement(&mut tpm, b"after").unwrap();
    assert!(verify(&next.spki_der, b"after", &sig));
    assert!(matches!(
        store.commit_rotation().unwrap_err(),
        TpmError::NoRotation(_)
    ));
}

#[test]
fn ek_certificates_in_nv_are_reported() {
    let plain = Swtpm::start();
    let info = Tpm::connect(&plain.tcti()).unwrap().info().unwrap();
    assert!(info.ek_certificates.is_empty(), "{info:?}");
    assert!(info.software);
    let made = Swtpm::start_manufactured();
    let info = Tpm::connect(&made.tcti()).unwrap().info().unwrap();
    assert!(
        info.ek_certificates
            .contains(&"rsa2048 (0x01c00002)".to_string()),
        "{info:?}"
    );
    assert!(
        info.ek_certificates
            .contains(&"ecc-p384 (0x01c00016)".to_string()),
        "{info:?}"
    );
}
