//! `hardenctl identity show | create | sign`: the device identity, talking to the TPM
//! directly (root: the TPM device and /var/lib/hardend are root-only). The daemon's
//! org.hardend1.Identity interface will front the same library.

use std::path::Path;

use super::{CliError, Exit, Output, columns};
use crate::tpm::TpmError;
use crate::tpm::identity::{IdentityStore, Tpm};
use crate::tpm::tcti;

impl From<TpmError> for CliError {
    fn from(e: TpmError) -> Self {
        CliError::Daemon(e.to_string())
    }
}

/// `show`: the public key and fingerprint (from the blob), the TPM, and whether the key
/// still loads. Exit 3 when the identity is missing or lost.
pub fn show(out: &Output, tcti_arg: Option<&str>, dir: &Path) -> Result<Exit, CliError> {
    let store = IdentityStore::new(dir);
    let tcti = tcti::choose(tcti_arg);
    let mut tpm = Tpm::connect(&tcti)?;
    let info = tpm.info()?;
    let (state, id, detail) = match store.check(&mut tpm) {
        Ok(id) => ("ok", Some(id), String::new()),
        Err(TpmError::NoIdentity(_)) => ("none", None, format!("no identity in {}", dir.display())),
        Err(e @ TpmError::Lost { .. }) => ("lost", store.public().ok(), e.to_string()),
        Err(e) => return Err(e.into()),
    };
    if out.json {
        out.json(&serde_json::json!({
            "state": state,
            "detail": detail,
            "tpm": info,
            "fingerprint": id.as_ref().map(|i| i.fingerprint.clone()),
            "public_key_pem": id.as_ref().map(|i| i.public_key_pem.clone()),
        }));
    } else {
        let mut rows = vec![
            vec!["state".into(), out.paint(state, Some(state == "ok"))],
            vec![
                "tpm".into(),
                format!(
                    "{} {} firmware {} via {}",
                    info.manufacturer, info.vendor, info.firmware_version, info.tcti
                ),
            ],
        ];
        if let Some(i) = &id {
            rows.push(vec![
                "fingerprint".into(),
                format!("sha256:{}", i.fingerprint),
            ]);
        }
        print!("{}", columns(&rows));
        if info.software {
            println!(
                "{}",
                out.paint(
                    "warning: this is a software TPM; keys in it are not protected by hardware",
                    None
                )
            );
        }
        if let Some(i) = &id {
            print!("{}", i.public_key_pem);
        }
        if !detail.is_empty() {
            println!("{detail}");
        }
    }
    Ok(if state == "ok" { Exit::Ok } else { Exit::Bad })
}

pub fn create(out: &Output, tcti_arg: Option<&str>, dir: &Path) -> Result<Exit, CliError> {
    let mut tpm = Tpm::connect(&tcti::choose(tcti_arg))?;
    let id = IdentityStore::new(dir).create(&mut tpm)?;
    if out.json {
        out.json(&id);
    } else {
        println!(
            "created the device identity in {}: sha256:{}",
            dir.display(),
            id.fingerprint
        );
        print!("{}", id.public_key_pem);
    }
    Ok(Exit::Ok)
}

/// `sign --nonce HEX`: a DER ECDSA-SHA256 signature over the nonce bytes.
pub fn sign(
    out: &Output,
    tcti_arg: Option<&str>,
    dir: &Path,
    nonce_hex: &str,
) -> Result<Exit, CliError> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| CliError::Usage(format!("--nonce {nonce_hex:?}: {e}")))?;
    if nonce.is_empty() || nonce.len() > 1024 {
        return Err(CliError::Usage(
            "--nonce must be 1 to 1024 bytes of hex".into(),
        ));
    }
    let mut tpm = Tpm::connect(&tcti::choose(tcti_arg))?;
    let store = IdentityStore::new(dir);
    let sig = store.sign(&mut tpm, &nonce)?;
    let id = store.public()?;
    if out.json {
        out.json(&serde_json::json!({ "nonce": nonce_hex, "signature_der": hex::encode(&sig), "fingerprint": id.fingerprint }));
    } else {
        println!("{}", hex::encode(&sig));
    }
    Ok(Exit::Ok)
}

/// `csr --subject S`: a PKCS#10 request signed inside the TPM, PEM on stdout.
pub fn csr(
    out: &Output,
    tcti_arg: Option<&str>,
    dir: &Path,
    subject: &str,
) -> Result<Exit, CliError> {
    let mut tpm = Tpm::connect(&tcti::choose(tcti_arg))?;
    let store = IdentityStore::new(dir);
    let pem = crate::tpm::csr::csr(&store, &mut tpm, subject)?;
    if out.json {
        out.json(&serde_json::json!({ "subject": subject, "csr_pem": pem }));
    } else {
        print!("{pem}");
    }
    Ok(Exit::Ok)
}

/// `quote --nonce HEX [--pcrs LIST]`: a PCR quote by the attestation key (created on first
/// use), as a JSON bundle for `verify-quote` or a remote verifier.
pub fn quote(
    out: &Output,
    tcti_arg: Option<&str>,
    dir: &Path,
    nonce_hex: &str,
    pcrs: &[u8],
) -> Result<Exit, CliError> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| CliError::Usage(format!("--nonce {nonce_hex:?}: {e}")))?;
    let mut tpm = Tpm::connect(&tcti::choose(tcti_arg))?;
    let bundle =
        crate::tpm::quote::quote(&IdentityStore::attestation(dir), &mut tpm, &nonce, pcrs)?;
    // the bundle is the answer, in either mode
    out.json(&bundle);
    Ok(Exit::Ok)
}

/// `verify-quote FILE [--nonce HEX]`: offline; exit 0 valid, 3 invalid.
pub fn verify_quote(out: &Output, file: &Path, nonce_hex: Option<&str>) -> Result<Exit, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let bundle: crate::tpm::quote::QuoteBundle = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not a quote bundle: {e}", file.display())))?;
    let nonce = nonce_hex
        .map(hex::decode)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--nonce: {e}")))?;
    let result = crate::tpm::quote::verify(&bundle, nonce.as_deref());
    if out.json {
        out.json(&serde_json::json!({ "valid": result.is_ok(), "error": result.as_ref().err().map(|e| e.to_string()) }));
    } else {
        match &result {
            Ok(()) => println!(
                "valid: signed by the attestation key, nonce and PCR values match ({} PCRs)",
                bundle.pcrs.len()
            ),
            Err(e) => println!("{}: {e}", out.paint("invalid", Some(false))),
        }
    }
    Ok(if result.is_ok() { Exit::Ok } else { Exit::Bad })
}
