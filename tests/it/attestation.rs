//! Attestation a verifier can trust, attacked: quotes forged with a software key, with the
//! identity key, with an unrestricted key, for another nonce, for PCR 40, relabelled; the
//! credential challenge of a fleet (made in software by tpm2-tools) answered only by the TPM
//! whose EK it was made for; the EK certificate checked against swtpm's own CA, and a
//! certificate planted in NV for another key refused. All against real swtpm instances.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

use hardend::tpm::ek::EkAlgorithm;
use hardend::tpm::enroll::{self, Challenge};
use hardend::tpm::identity::{IdentityStore, Tpm};
use hardend::tpm::quote::{self, PinnedAk, PinnedKey, QuoteBundle, verify};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{EccParameter, EccSignature, Signature};
use tss_esapi::traits::Marshall;

use crate::common::swtpm::Swtpm;

fn err(r: Result<quote::Verified, hardend::tpm::TpmError>) -> String {
    r.unwrap_err().to_string()
}

/// An identity and an enrolment on `sw`; the verifier's pin from it.
fn enrolled(sw: &Swtpm, dir: &Path) -> (Tpm, enroll::Enrollment, PinnedAk) {
    let mut tpm = Tpm::connect(&sw.tcti()).unwrap();
    IdentityStore::new(dir).create(&mut tpm).unwrap();
    let e = enroll::enroll(dir, &mut tpm, EkAlgorithm::Rsa2048, "CN=gw-1").unwrap();
    let pin = PinnedAk {
        key: PinnedKey::Public(Box::new(
            hardend::tpm::public::from_bytes(&hex::decode(&e.ak_public).unwrap()).unwrap(),
        )),
        qualified_name: Some(hex::decode(&e.ak_qualified_name).unwrap()),
    };
    (tpm, e, pin)
}

fn tpmt_signature(sig: &p256::ecdsa::Signature) -> String {
    let (r, s) = sig.split_bytes();
    let s = Signature::EcDsa(
        EccSignature::create(
            HashingAlgorithm::Sha256,
            EccParameter::try_from(r.to_vec()).unwrap(),
            EccParameter::try_from(s.to_vec()).unwrap(),
        )
        .unwrap(),
    );
    hex::encode(s.marshall().unwrap())
}

#[test]
fn forged_and_tampered_quotes_are_rejected() {
    let sw = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut tpm, e, pin) = enrolled(&sw, dir.path());
    let nonce = b"verifier-nonce-1";
    let ak = IdentityStore::attestation(dir.path());
    let q = quote::quote(&ak, &mut tpm, nonce, &[0, 7]).unwrap();
    let v = verify(&q, nonce, &pin).unwrap();
    assert!(
        v.qualified_signer_checked,
        "the enrolled pin checks qualifiedSigner"
    );
    assert_eq!(v.ak_name, e.ak_name);

    // a TPMS_ATTEST with chosen PCR values signed by a software P-256 key
    let soft = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let attest = hex::decode(&q.attest).unwrap();
    let mut forged = q.clone();
    forged.signature = tpmt_signature(&soft.sign(&attest));
    assert!(err(verify(&forged, nonce, &pin)).contains("does not match"));

    // a foreign AK: another TPM's attestation key, with a genuine quote of its own
    let other = Swtpm::start();
    let odir = tempfile::tempdir().unwrap();
    let mut otpm = Tpm::connect(&other.tcti()).unwrap();
    let foreign = quote::quote(
        &IdentityStore::attestation(odir.path()),
        &mut otpm,
        nonce,
        &[0, 7],
    )
    .unwrap();
    assert!(
        verify(&foreign, nonce, &pin)
            .unwrap_err()
            .to_string()
            .contains("another attestation key than the pinned one")
    );
    let by_name = PinnedAk {
        key: PinnedKey::Name(hex::decode(&e.ak_name).unwrap()),
        qualified_name: None,
    };
    assert!(err(verify(&foreign, nonce, &by_name)).contains("its name differs"));
    verify(&q, nonce, &by_name).unwrap();

    // the identity key (open to the signers group) will not sign a TPM structure...
    let id = IdentityStore::new(dir.path());
    let refused = id
        .sign_statement(&mut tpm, &attest)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("TPM_GENERATED_VALUE"), "{refused}");
    // ...and what it signs is prefixed, so a signature over other data never covers attest
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&attest);
    let der = id.sign_statement(&mut tpm, &shifted).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    let id_key = hardend::tpm::public::p256_key(&id.tpm_public().unwrap()).unwrap();
    use p256::ecdsa::signature::Verifier;
    assert!(id_key.verify(&attest, &sig).is_err());
    assert!(
        id_key
            .verify(
                &[hardend::tpm::identity::SIGN_CONTEXT, &shifted].concat(),
                &sig
            )
            .is_ok()
    );

    // an unrestricted key can make a real TPM2_Quote: it is not an attestation key
    let unrestricted = quote::quote(&id, &mut tpm, nonce, &[0, 7]).unwrap();
    let id_pin = PinnedAk {
        key: PinnedKey::Public(Box::new(id.tpm_public().unwrap())),
        qualified_name: None,
    };
    let m = err(verify(&unrestricted, nonce, &id_pin));
    assert!(
        m.contains("not an attestation key") && m.contains("restricted"),
        "{m}"
    );

    // freshness: another nonce is a replay
    assert!(err(verify(&q, b"another nonce", &pin)).contains("another nonce"));
    // PCR 40 does not exist in the bank (it used to wrap to PCR 8)
    let mut t = q.clone();
    let v7 = t.pcrs.remove(&7).unwrap();
    t.pcrs.insert(40, v7.clone());
    assert!(err(verify(&t, nonce, &pin)).contains("PCR 40 does not exist"));
    assert!(
        quote::quote(&ak, &mut tpm, nonce, &[40])
            .unwrap_err()
            .to_string()
            .contains("PCR 40")
    );
    // a modified selection: PCR 7's value relabelled as PCR 8
    let mut t = q.clone();
    t.pcrs.remove(&7);
    t.pcrs.insert(8, v7);
    assert!(err(verify(&t, nonce, &pin)).contains("covers other PCRs"));
    // the right key under a pin whose qualified name is another key's place
    let wrong_qn = PinnedAk {
        key: PinnedKey::Public(Box::new(ak.tpm_public().unwrap())),
        qualified_name: Some(hex::decode(&e.ak_name).unwrap()),
    };
    assert!(err(verify(&q, nonce, &wrong_qn)).contains("qualifiedSigner"));
    // a bundle of an earlier version (PEM key, DER signature) is refused, not half-checked
    let v1 = serde_json::json!({
        "nonce": "00", "pcrs": {}, "attest": q.attest, "signature": "00",
        "ak_public_pem": "-----BEGIN PUBLIC KEY-----"
    });
    let m = quote::parse_bundle(&v1.to_string())
        .unwrap_err()
        .to_string();
    assert!(m.contains("version-1"), "{m}");
    let back: QuoteBundle = quote::parse_bundle(&serde_json::to_string(&q).unwrap()).unwrap();
    assert_eq!(back, q);
}

fn makecredential(dir: &Path, ek_public_hex: &str, name_hex: &str, secret: &[u8]) -> Vec<u8> {
    let (ek, s, out) = (dir.join("ek.pub"), dir.join("secret"), dir.join("cred"));
    std::fs::write(&ek, hex::decode(ek_public_hex).unwrap()).unwrap();
    std::fs::write(&s, secret).unwrap();
    let o = Command::new("tpm2_makecredential")
        .args(["-T", "none", "-u"])
        .arg(&ek)
        .arg("-s")
        .arg(&s)
        .args(["-n", name_hex, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

#[test]
fn a_credential_challenge_is_answered_only_by_the_tpm_it_was_made_for() {
    let sw = Swtpm::start_manufactured();
    let dir = tempfile::tempdir().unwrap();
    let (mut tpm, e, _) = enrolled(&sw, dir.path());
    let work = tempfile::tempdir().unwrap();
    // the fleet, in software: MakeCredential for this EK and the AK's name
    let cred = makecredential(work.path(), &e.ek_public, &e.ak_name, b"fleet-secret-42");
    let c = Challenge::from_tpm2_tools(&cred).unwrap();
    let secret = enroll::activate(dir.path(), &mut tpm, EkAlgorithm::Rsa2048, &c).unwrap();
    assert_eq!(secret, b"fleet-secret-42");

    // made for another TPM's EK: this TPM cannot recover it
    let other = Swtpm::start();
    let odir = tempfile::tempdir().unwrap();
    let mut otpm = Tpm::connect(&other.tcti()).unwrap();
    IdentityStore::new(odir.path()).create(&mut otpm).unwrap();
    let oe = enroll::enroll(odir.path(), &mut otpm, EkAlgorithm::Rsa2048, "CN=o").unwrap();
    let cred = makecredential(work.path(), &oe.ek_public, &e.ak_name, b"x");
    let c = Challenge::from_tpm2_tools(&cred).unwrap();
    let m = enroll::activate(dir.path(), &mut tpm, EkAlgorithm::Rsa2048, &c)
        .unwrap_err()
        .to_string();
    assert!(m.contains("ActivateCredential"), "{m}");
    // made for this EK but another key's name (an attacker's AK): refused as well
    let id_name = hex::encode(
        hardend::tpm::public::name(&IdentityStore::new(dir.path()).tpm_public().unwrap()).unwrap(),
    );
    let cred = makecredential(work.path(), &e.ek_public, &id_name, b"x");
    let c = Challenge::from_tpm2_tools(&cred).unwrap();
    assert!(enroll::activate(dir.path(), &mut tpm, EkAlgorithm::Rsa2048, &c).is_err());
    // the session and key slots were freed on the failures: the right challenge still works
    let cred = makecredential(work.path(), &e.ek_public, &e.ak_name, b"again");
    let c = Challenge::from_tpm2_tools(&cred).unwrap();
    assert_eq!(
        enroll::activate(dir.path(), &mut tpm, EkAlgorithm::Rsa2048, &c).unwrap(),
        b"again"
    );
    // a truncated or foreign file is a clear error, not a panic
    assert!(Challenge::from_tpm2_tools(&cred[..cred.len() - 1]).is_err());
    assert!(Challenge::from_tpm2_tools(b"not a credential").is_err());
}

fn ctl(sw: &Swtpm, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hardenctl"))
        .args(args)
        .args(["--tcti", &sw.tcti(), "--identity-dir"])
        .arg(dir)
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap()
}

/// `hardenctl --json identity enroll` for `ek` against the CA directory `ca`.
fn enroll(sw: &Swtpm, id: &Path, ek: &str, ca: &str) -> Output {
    ctl(
        sw,
        id,
        &[
            "--json",
            "identity",
            "enroll",
            "--ek",
            ek,
            "--subject",
            "CN=gw-7",
            "--ek-ca",
            ca,
        ],
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn the_ek_certificate_is_checked_against_the_ca_and_against_this_tpm() {
    let sw = Swtpm::start_manufactured();
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("id");
    assert!(ctl(&sw, &id, &["identity", "create"]).status.success());
    // swtpm's local CA (root and intermediate), as a device maker would ship its CA
    let ca = dir.path().join("ca");
    std::fs::create_dir(&ca).unwrap();
    for f in ["swtpm-localca-rootca-cert.pem", "issuercert.pem"] {
        std::fs::copy(Path::new("/var/lib/swtpm-localca").join(f), ca.join(f)).unwrap();
    }
    let ca_s = ca.to_str().unwrap();
    let o = enroll(&sw, &id, "rsa2048", ca_s);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["ek_certificate_check"]["state"], "verified", "{v}");
    let chain = v["ek_certificate_check"]["chain"].as_array().unwrap();
    assert!(chain.len() >= 2, "the EK certificate and its issuer: {v}");
    assert!(
        chain
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("swtpm-localca"),
        "every certificate in the directory is an anchor: the chain ends at the issuer: {v}"
    );

    // a CA the certificate was not issued by
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=not-the-maker",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(foreign.join("ca.pem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = enroll(&sw, &id, "rsa2048", foreign.to_str().unwrap());
    assert_eq!(o.status.code(), Some(3));
    let v = json(&o);
    assert_eq!(v["ek_certificate_check"]["state"], "untrusted");
    assert!(
        v["ek_certificate_check"]["detail"]
            .as_str()
            .unwrap()
            .contains("does not chain"),
        "{v}"
    );

    // an attacker with owner auth plants the (genuine, CA-signed) RSA EK certificate at the
    // ECC P-256 index: it chains, but certifies another key than this TPM's ECC EK
    let cert = dir.path().join("rsa-ek.der");
    sw.tools(&["tpm2_nvread", "0x01c00002", "-o", cert.to_str().unwrap()]);
    let size = std::fs::metadata(&cert).unwrap().len().to_string();
    sw.tools(&[
        "tpm2_nvdefine",
        "0x01c0000a",
        "-C",
        "o",
        "-s",
        &size,
        "-a",
        "ownerread|ownerwrite|authread|authwrite|no_da",
    ]);
    sw.tools(&[
        "tpm2_nvwrite",
        "0x01c0000a",
        "-C",
        "o",
        "-i",
        cert.to_str().unwrap(),
    ]);
    let o = enroll(&sw, &id, "ecc-p256", ca_s);
    assert_eq!(o.status.code(), Some(3));
    let v = json(&o);
    assert_eq!(v["ek_certificate_check"]["state"], "untrusted");
    assert!(
        v["ek_certificate_check"]["detail"]
            .as_str()
            .unwrap()
            .contains("not this TPM's endorsement key"),
        "{v}"
    );

    // the CLI: verify-quote needs the verifier's nonce and a pinned key
    let q = ctl(&sw, &id, &["identity", "quote", "--nonce", "0102"]);
    assert!(q.status.success());
    let qf = dir.path().join("q.json");
    std::fs::write(&qf, &q.stdout).unwrap();
    let ef = dir.path().join("enroll.json");
    let o = enroll(&sw, &id, "rsa2048", ca_s);
    std::fs::write(&ef, &o.stdout).unwrap();
    let vq = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hardenctl"))
            .args(["--json", "identity", "verify-quote"])
            .arg(&qf)
            .args(extra)
            .output()
            .unwrap()
    };
    let ef_s = ef.to_str().unwrap();
    let o = vq(&["--nonce", "0102", "--ak", ef_s]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(json(&o)["quote"]["qualified_signer_checked"], true);
    assert_eq!(
        vq(&["--ak", ef_s]).status.code(),
        Some(2),
        "no nonce: usage error"
    );
    assert_eq!(
        vq(&["--nonce", "0102"]).status.code(),
        Some(2),
        "no pinned key: usage error"
    );
    assert_eq!(
        vq(&["--nonce", "0103", "--ak", ef_s]).status.code(),
        Some(3)
    );
    // Sign refuses data that looks like a TPM structure
    let o = ctl(
        &sw,
        &id,
        &["identity", "sign", "--nonce", "ff54434780180000"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TPM_GENERATED_VALUE"));
}
