//! `hardenctl identity show | create | csr | sign | quote | verify-quote | rotate`.
//!
//! By default through the daemon (org.hardend1.Identity), which owns the TPM and decides who
//! may sign. `--direct` (or `--tcti`) talks to the TPM itself instead: for provisioning
//! before the daemon runs, and for a TPM the daemon does not use (root).

use std::path::{Path, PathBuf};

use super::client::{Client, bus_error};
use super::{CliError, Exit, Output, columns};
use crate::api::{IdentityInfo, IdentityState};
use crate::tpm::TpmError;
use crate::tpm::ek::EkAlgorithm;
use crate::tpm::enroll::{self, Challenge, Enrollment};
use crate::tpm::identity::IdentityStore;
use crate::tpm::quote::{self, PinnedAk, PinnedKey, QuoteBundle};
use crate::tpm::{tcti, worker};

impl From<TpmError> for CliError {
    fn from(e: TpmError) -> Self {
        CliError::Daemon(e.to_string())
    }
}

/// Who does the TPM work.
pub enum Backend {
    Daemon { client: Client, bus: String },
    Direct { tcti: String, dir: PathBuf },
}

/// What `rotate` should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    Start,
    Commit,
    Abort,
}

impl Backend {
    /// The daemon on `bus`, or the TPM directly when `direct` or a TCTI is given.
    pub fn choose(
        bus: &str,
        direct: bool,
        tcti_arg: Option<&str>,
        dir: Option<&Path>,
    ) -> Result<Backend, CliError> {
        if direct || tcti_arg.is_some() {
            return Ok(Backend::Direct {
                tcti: tcti::choose(tcti_arg),
                dir: dir
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| crate::tpm::identity::DEFAULT_IDENTITY_DIR.into()),
            });
        }
        if dir.is_some() {
            return Err(CliError::Usage(
                "--identity-dir needs --direct (the daemon uses its configured directory)".into(),
            ));
        }
        Ok(Backend::Daemon {
            client: Client::connect(bus)?,
            bus: bus.to_string(),
        })
    }

    fn direct<T>(
        tcti: &str,
        f: impl FnMut(&mut crate::tpm::identity::Tpm) -> Result<T, TpmError>,
    ) -> Result<T, CliError> {
        worker::with_retry(tcti, f).map_err(CliError::from)
    }

    pub fn info(&self) -> Result<IdentityInfo, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                let (i,) = client.block_on(p.check()).map_err(|e| bus_error(bus, e))?;
                Ok(i)
            }
            Backend::Direct { tcti, dir } => {
                // an unreachable TPM is an error here, not a state: the admin asked this TPM
                let mut tpm = crate::tpm::identity::Tpm::connect(tcti)?;
                match crate::tpm::status::examine(&mut tpm, dir) {
                    Ok(e) => Ok(IdentityInfo::from_examination(e, dir)),
                    Err(e) => Ok(IdentityInfo::no_tpm(tcti, e.to_string())),
                }
            }
        }
    }

    pub fn create(&self) -> Result<IdentityInfo, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                let (i,) = client.block_on(p.create()).map_err(|e| bus_error(bus, e))?;
                Ok(i)
            }
            Backend::Direct { tcti, dir } => {
                Self::direct(tcti, |tpm| IdentityStore::new(dir).create(tpm))?;
                self.info()
            }
        }
    }

    pub fn sign(&self, nonce: &[u8]) -> Result<Vec<u8>, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                client
                    .block_on(p.sign(nonce.to_vec()))
                    .map_err(|e| bus_error(bus, e))
            }
            Backend::Direct { tcti, dir } => Self::direct(tcti, |tpm| {
                IdentityStore::new(dir).sign_statement(tpm, nonce)
            }),
        }
    }

    pub fn csr(&self, subject: &str, next: bool) -> Result<String, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                client
                    .block_on(p.csr(subject.to_string(), next))
                    .map_err(|e| bus_error(bus, e))
            }
            Backend::Direct { tcti, dir } => {
                if subject.is_empty() {
                    return Err(CliError::Usage(
                        "--subject is required with --direct".into(),
                    ));
                }
                let store = IdentityStore::new(dir);
                let store = if next {
                    if store.pending_public().is_none() {
                        return Err(TpmError::NoRotation(dir.clone()).into());
                    }
                    store.pending()
                } else {
                    store
                };
                Self::direct(tcti, |tpm| crate::tpm::csr::csr(&store, tpm, subject))
            }
        }
    }

    pub fn quote(&self, nonce: &[u8], pcrs: &[u8]) -> Result<QuoteBundle, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                let (q,) = client
                    .block_on(p.quote(nonce.to_vec(), pcrs.to_vec()))
                    .map_err(|e| bus_error(bus, e))?;
                Ok(q.into())
            }
            Backend::Direct { tcti, dir } => Self::direct(tcti, |tpm| {
                crate::tpm::quote::quote(&IdentityStore::attestation(dir), tpm, nonce, pcrs)
            }),
        }
    }

    pub fn enroll(&self, alg: EkAlgorithm, subject: &str) -> Result<Enrollment, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                let (e,) = client
                    .block_on(p.enroll(alg.as_str().to_string(), subject.to_string()))
                    .map_err(|e| bus_error(bus, e))?;
                Ok(e)
            }
            Backend::Direct { tcti, dir } => {
                if subject.is_empty() {
                    return Err(CliError::Usage(
                        "--subject is required with --direct".into(),
                    ));
                }
                Self::direct(tcti, |tpm| enroll::enroll(dir, tpm, alg, subject))
            }
        }
    }

    pub fn activate(&self, alg: EkAlgorithm, c: &Challenge) -> Result<Vec<u8>, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                client
                    .block_on(p.activate_credential(
                        alg.as_str().to_string(),
                        c.credential_blob.clone(),
                        c.secret.clone(),
                    ))
                    .map_err(|e| bus_error(bus, e))
            }
            Backend::Direct { tcti, dir } => {
                Self::direct(tcti, |tpm| enroll::activate(dir, tpm, alg, c))
            }
        }
    }

    /// Returns the fingerprint of the pending (Start) or new current (Commit) identity.
    pub fn rotate(&self, what: Rotation) -> Result<String, CliError> {
        match self {
            Backend::Daemon { client, bus } => {
                let p = client.identity()?;
                let r = match what {
                    Rotation::Start => client.block_on(p.rotate()),
                    Rotation::Commit => client.block_on(p.commit_rotation()),
                    Rotation::Abort => client.block_on(p.abort_rotation()).map(|()| String::new()),
                };
                r.map_err(|e| bus_error(bus, e))
            }
            Backend::Direct { tcti, dir } => {
                let store = IdentityStore::new(dir);
                match what {
                    Rotation::Start => {
                        Self::direct(tcti, |tpm| store.rotate(tpm).map(|i| i.fingerprint))
                    }
                    Rotation::Commit => Ok(store.commit_rotation()?.fingerprint),
                    Rotation::Abort => store
                        .abort_rotation()
                        .map(|()| String::new())
                        .map_err(Into::into),
                }
            }
        }
    }
}

fn nonce_arg(nonce_hex: &str, max: usize) -> Result<Vec<u8>, CliError> {
    let nonce = hex::decode(nonce_hex)
        .map_err(|e| CliError::Usage(format!("--nonce {nonce_hex:?}: {e}")))?;
    if nonce.is_empty() || nonce.len() > max {
        return Err(CliError::Usage(format!(
            "--nonce must be 1 to {max} bytes of hex"
        )));
    }
    Ok(nonce)
}

fn print_info(out: &Output, i: &IdentityInfo) {
    if out.json {
        out.json(&serde_json::json!({ "identity": i }));
        return;
    }
    let mut rows = vec![
        vec![
            "state".into(),
            out.paint(i.state.as_str(), Some(i.state == IdentityState::Ok)),
        ],
        vec![
            "tpm".into(),
            if i.tpm.is_empty() {
                "-".into()
            } else {
                i.tpm.clone()
            },
        ],
        vec![
            "ek certificate".into(),
            if i.ek_certificates.is_empty() {
                "none in NV".into()
            } else {
                i.ek_certificates.join(", ")
            },
        ],
    ];
    if !i.fingerprint.is_empty() {
        rows.push(vec![
            "fingerprint".into(),
            format!("sha256:{}", i.fingerprint),
        ]);
    }
    if !i.pending_fingerprint.is_empty() {
        rows.push(vec![
            "rotation".into(),
            format!(
                "pending sha256:{} (commit with `hardenctl identity rotate --commit`)",
                i.pending_fingerprint
            ),
        ]);
    }
    print!("{}", columns(&rows));
    if i.software_tpm {
        println!(
            "{}",
            out.paint(
                "warning: this is a software TPM; keys in it are not protected by hardware",
                None
            )
        );
    }
    print!("{}", i.public_key_pem);
    if !i.detail.is_empty() {
        println!("{}", super::safe(&i.detail));
    }
}

/// `show`: exit 3 unless the identity is `ok` or deliberately `disabled` (`tcti = "none"`).
pub fn show(out: &Output, b: &Backend) -> Result<Exit, CliError> {
    let i = b.info()?;
    print_info(out, &i);
    Ok(match i.state {
        IdentityState::Ok | IdentityState::Disabled => Exit::Ok,
        _ => Exit::Bad,
    })
}

pub fn create(out: &Output, b: &Backend) -> Result<Exit, CliError> {
    let i = b.create()?;
    if !out.json {
        println!("created the device identity: sha256:{}", i.fingerprint);
    }
    print_info(out, &i);
    Ok(if i.state == IdentityState::Ok {
        Exit::Ok
    } else {
        Exit::Bad
    })
}

/// `sign --nonce HEX`: a DER ECDSA-SHA256 signature over the nonce bytes.
pub fn sign(out: &Output, b: &Backend, nonce_hex: &str) -> Result<Exit, CliError> {
    let nonce = nonce_arg(nonce_hex, 1024)?;
    let sig = b.sign(&nonce)?;
    if out.json {
        out.json(&serde_json::json!({ "nonce": nonce_hex, "signature_der": hex::encode(&sig) }));
    } else {
        println!("{}", hex::encode(&sig));
    }
    Ok(Exit::Ok)
}

/// `csr [--subject S] [--next]`: a PKCS#10 request signed inside the TPM, PEM on stdout.
pub fn csr(out: &Output, b: &Backend, subject: &str, next: bool) -> Result<Exit, CliError> {
    let pem = b.csr(subject, next)?;
    if out.json {
        out.json(&serde_json::json!({ "subject": subject, "next": next, "csr_pem": pem }));
    } else {
        print!("{pem}");
    }
    Ok(Exit::Ok)
}

/// `quote --nonce HEX [--pcrs LIST]`: a JSON bundle for `verify-quote` or a verifier.
pub fn quote(out: &Output, b: &Backend, nonce_hex: &str, pcrs: &[u8]) -> Result<Exit, CliError> {
    let nonce = nonce_arg(nonce_hex, 64)?;
    let bundle = b.quote(&nonce, pcrs)?;
    // the bundle is the answer, in either mode
    out.json(&bundle);
    Ok(Exit::Ok)
}

/// `rotate [--commit | --abort]`.
pub fn rotate(out: &Output, b: &Backend, what: Rotation) -> Result<Exit, CliError> {
    let fp = b.rotate(what)?;
    if out.json {
        out.json(
            &serde_json::json!({ "action": format!("{what:?}").to_lowercase(), "fingerprint": fp }),
        );
    } else {
        match what {
            Rotation::Start => println!(
                "next identity created: sha256:{fp}\nthe current identity stays in use; enrol the new one (`hardenctl identity csr --next`), then `hardenctl identity rotate --commit`"
            ),
            Rotation::Commit => {
                println!("the device identity is now sha256:{fp}; the old key is deleted")
            }
            Rotation::Abort => println!("the pending identity was discarded"),
        }
    }
    Ok(Exit::Ok)
}

/// How the EK certificate fared on the device (`enroll`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EkCertState {
    /// Chains to a CA in the directory and certifies this TPM's EK.
    Verified,
    /// Certifies this TPM's EK; no CA directory to check the chain against.
    Unchecked,
    /// The TPM holds no certificate for this EK (the fleet must trust the EK otherwise).
    Absent,
    /// Does not chain to the CAs, or is not this TPM's EK.
    Untrusted,
}

/// `enroll [--ek ALG] [--subject S] [--ek-ca DIR]`.
pub fn enroll(
    out: &Output,
    b: &Backend,
    alg: EkAlgorithm,
    subject: &str,
    ca_dir: &Path,
) -> Result<Exit, CliError> {
    let e = b.enroll(alg, subject)?;
    let (state, chain, detail) = check_ek_certificate(&e, ca_dir);
    if out.json {
        out.json(&serde_json::json!({
            "enrollment": e,
            "ek_certificate_check": { "state": state, "ca_dir": ca_dir, "chain": chain, "detail": detail },
        }));
    } else {
        let rows = vec![
            vec!["ek".into(), e.ek_algorithm.clone()],
            vec![
                "ek certificate".into(),
                format!(
                    "{}{}",
                    out.paint(
                        &serde_json::to_value(&state)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        Some(matches!(state, EkCertState::Verified))
                    ),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", super::safe(&detail))
                    }
                ),
            ],
            vec!["ak name".into(), e.ak_name.clone()],
            vec![
                "identity".into(),
                format!("sha256:{}", e.identity_fingerprint),
            ],
        ];
        print!("{}", columns(&rows));
        println!("ak public (TPM2B_PUBLIC): {}", e.ak_public);
        println!("ek public (TPM2B_PUBLIC): {}", e.ek_public);
        print!("{}", e.ek_certificate_pem);
        print!("{}", e.csr_pem);
    }
    Ok(if state == EkCertState::Untrusted {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

fn check_ek_certificate(e: &Enrollment, ca_dir: &Path) -> (EkCertState, Vec<String>, String) {
    use crate::tpm::ekcert;
    let pem = &e.ek_certificate_pem;
    if pem.is_empty() {
        return (
            EkCertState::Absent,
            Vec::new(),
            "no EK certificate in NV".into(),
        );
    }
    let der = match openssl::x509::X509::from_pem(pem.as_bytes()).and_then(|c| c.to_der()) {
        Ok(d) => d,
        Err(err) => return (EkCertState::Untrusted, Vec::new(), err.to_string()),
    };
    let ek_public = hex::decode(&e.ek_public)
        .map_err(|err| err.to_string())
        .and_then(|b| crate::tpm::public::from_bytes(&b).map_err(|err| err.to_string()));
    let matched =
        ek_public.and_then(|p| ekcert::matches_ek(&der, &p).map_err(|err| err.to_string()));
    if let Err(err) = matched {
        return (EkCertState::Untrusted, Vec::new(), err);
    }
    if !ca_dir.is_dir() {
        return (
            EkCertState::Unchecked,
            Vec::new(),
            format!("no CA directory {}", ca_dir.display()),
        );
    }
    match ekcert::verify_chain(&der, ca_dir) {
        Ok(r) => (EkCertState::Verified, r.chain, String::new()),
        Err(err) => (EkCertState::Untrusted, Vec::new(), err.to_string()),
    }
}

/// `activate FILE [--ek ALG]`: the secret of a credential challenge, hex.
pub fn activate(
    out: &Output,
    b: &Backend,
    alg: EkAlgorithm,
    file: &Path,
) -> Result<Exit, CliError> {
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let c = Challenge::from_tpm2_tools(&bytes)
        .map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let secret = b.activate(alg, &c)?;
    if out.json {
        out.json(&serde_json::json!({ "secret": hex::encode(&secret) }));
    } else {
        println!("{}", hex::encode(&secret));
    }
    Ok(Exit::Ok)
}

/// The pinned key from `--ak FILE`: binary TPM2B_PUBLIC, hex of it, or `enroll --json` output.
fn pinned_from_file(file: &Path) -> Result<PinnedAk, CliError> {
    let bad = |e: String| CliError::Input(format!("{}: {e}", file.display()));
    let bytes = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    let mut qualified_name = None;
    let raw = if trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| bad(format!("not JSON: {e}")))?;
        let e = v.get("enrollment").unwrap_or(&v);
        let field = |k: &str| {
            e.get(k)
                .and_then(|x| x.as_str())
                .ok_or_else(|| bad(format!("no \"{k}\" (enroll --json output)")))
                .and_then(|h| hex::decode(h).map_err(|err| bad(format!("{k}: {err}"))))
        };
        qualified_name = Some(field("ak_qualified_name")?);
        field("ak_public")?
    } else if !trimmed.is_empty() && trimmed.bytes().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(trimmed).map_err(|e| bad(e.to_string()))?
    } else {
        bytes.clone()
    };
    let public = crate::tpm::public::from_bytes(&raw).map_err(|e| bad(e.to_string()))?;
    Ok(PinnedAk {
        key: PinnedKey::Public(Box::new(public)),
        qualified_name,
    })
}

/// `verify-quote FILE --nonce HEX (--ak FILE | --ak-name HEX)`: offline; exit 0 valid, 3 invalid.
pub fn verify_quote(
    out: &Output,
    file: &Path,
    nonce_hex: &str,
    ak: Option<&Path>,
    ak_name: Option<&str>,
) -> Result<Exit, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let nonce = nonce_arg(nonce_hex, 64)?;
    let pinned = match (ak, ak_name) {
        (Some(f), _) => pinned_from_file(f)?,
        (None, Some(n)) => PinnedAk {
            key: PinnedKey::Name(
                hex::decode(n).map_err(|e| CliError::Usage(format!("--ak-name {n:?}: {e}")))?,
            ),
            qualified_name: None,
        },
        (None, None) => {
            return Err(CliError::Usage(
                "a pinned attestation key is required: --ak FILE or --ak-name HEX".into(),
            ));
        }
    };
    let result = quote::parse_bundle(&text)
        .map_err(|e| TpmError::Format(format!("{}: {e}", file.display())))
        .and_then(|b| quote::verify(&b, &nonce, &pinned));
    if out.json {
        out.json(&serde_json::json!({
            "valid": result.is_ok(),
            "error": result.as_ref().err().map(|e| e.to_string()),
            "quote": result.as_ref().ok(),
        }));
    } else {
        match &result {
            Ok(v) => println!(
                "valid: signed by the pinned attestation key {}, fresh for your nonce, {} PCR values match{}",
                v.ak_name,
                v.pcrs,
                if v.qualified_signer_checked {
                    ", qualifiedSigner is the enrolled key's place in its TPM"
                } else {
                    " (qualifiedSigner unchecked: pin with --ak enroll.json to check it)"
                }
            ),
            Err(e) => println!(
                "{}: {}",
                out.paint("invalid", Some(false)),
                super::safe(&e.to_string())
            ),
        }
    }
    Ok(if result.is_ok() { Exit::Ok } else { Exit::Bad })
}
