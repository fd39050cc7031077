//! `hardenctl identity keylime register | attest [--loop]`: this device as a Keylime agent.
//!
//! The TPM is used directly (root), like `identity --direct`: the attestation key Keylime
//! needs is the RSA one (`ak-rsa.*` beside the identity blobs), which the daemon's bus API
//! does not offer. The network side (registrar, verifier) is this process's; the daemon
//! never connects out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CliError, Exit, Output};
use crate::config::{AgentId, AttestationConfig, Config};
use crate::keylime::http::{Client, Tls};
use crate::keylime::push::{self, Verdict};
use crate::keylime::{AgentKeys, AgentTpm, KeylimeError, registrar};
use crate::tpm::certify::{self, Certified};
use crate::tpm::ek::{self, EkAlgorithm};
use crate::tpm::enroll::{self, Challenge};
use crate::tpm::identity::IdentityStore;
use crate::tpm::quote::{self, QuoteBundle};
use crate::tpm::{TpmError, public, worker};

impl From<KeylimeError> for CliError {
    fn from(e: KeylimeError) -> Self {
        match e {
            KeylimeError::Config(_) | KeylimeError::Io { .. } | KeylimeError::Tls(_) => {
                CliError::Input(e.to_string())
            }
            _ => CliError::Daemon(e.to_string()),
        }
    }
}

/// The longest pause between two rounds of `--loop`, whatever the verifier says.
const MAX_PAUSE: u64 = 3600;

/// The TPM behind the agent protocol: this process's own connection.
pub struct DirectTpm {
    pub tcti: String,
    pub dir: PathBuf,
    pub ek: EkAlgorithm,
}

fn tpm_failed(e: TpmError) -> KeylimeError {
    KeylimeError::Tpm(e.to_string())
}

impl DirectTpm {
    fn ak(&self) -> IdentityStore {
        IdentityStore::attestation_rsa(&self.dir)
    }

    /// The Keylime AK, created on first use, and refused unless it is a restricted
    /// RSASSA-SHA256 signing key (a planted unrestricted key would sign forged quotes).
    fn checked_ak(&self, tpm: &mut crate::tpm::identity::Tpm) -> Result<IdentityStore, TpmError> {
        let ak = self.ak();
        if !ak.exists() {
            ak.create_key(tpm)?;
        }
        public::check_rsa_attestation_key(&ak.tpm_public()?).map_err(|e| {
            TpmError::Format(format!("{}: {e}", ak.dir.join("ak-rsa.pub").display()))
        })?;
        Ok(ak)
    }

    fn run<T>(
        &self,
        f: impl FnMut(&mut crate::tpm::identity::Tpm) -> Result<T, TpmError>,
    ) -> Result<T, KeylimeError> {
        worker::with_retry(&self.tcti, f).map_err(tpm_failed)
    }
}

impl AgentTpm for DirectTpm {
    fn keys(&self) -> Result<AgentKeys, KeylimeError> {
        self.run(|tpm| {
            let ak = self.checked_ak(tpm)?;
            let ak_public = ak.tpm_public()?;
            // the key must load into this TPM, else its name belongs to a key it cannot use
            ak.with_key(tpm, |_, _| Ok(()))?;
            let ek = ek::read(tpm, self.ek)?;
            Ok(AgentKeys {
                ek_public: public::to_tpm2b(&ek.public)?,
                ek_certificate: ek.certificate,
                ak_public: public::to_tpm2b(&ak_public)?,
                ak_name: public::name(&ak_public)?,
            })
        })
    }

    fn ak_public(&self) -> Result<Vec<u8>, KeylimeError> {
        self.run(|tpm| public::to_tpm2b(&self.checked_ak(tpm)?.tpm_public()?))
    }

    fn certify(&self, challenge: &[u8]) -> Result<Certified, KeylimeError> {
        self.run(|tpm| certify::certify_self(&self.checked_ak(tpm)?, tpm, challenge))
    }

    fn activate(&self, challenge: &Challenge) -> Result<Vec<u8>, KeylimeError> {
        self.run(|tpm| enroll::activate_for(&self.checked_ak(tpm)?, tpm, self.ek, challenge))
    }

    fn quote(&self, nonce: &[u8], pcrs: &[u8]) -> Result<QuoteBundle, KeylimeError> {
        self.run(|tpm| quote::quote(&self.checked_ak(tpm)?, tpm, nonce, pcrs))
    }
}

/// What the keylime commands work with: the section, the TPM, the agent id.
pub struct Agent {
    pub cfg: AttestationConfig,
    pub tpm: DirectTpm,
    pub agent_id: String,
}

impl Agent {
    /// From the config file (`[attestation]`, `[identity]`), `--tcti` and `--identity-dir`.
    pub fn load(config: &Path, tcti: Option<&str>, dir: Option<&Path>) -> Result<Agent, CliError> {
        let c = Config::load(config).map_err(|e| CliError::Input(e.to_string()))?;
        let tcti = match (tcti, &c.identity.tcti) {
            (Some(t), _) => t.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => {
                return Err(CliError::Input(format!(
                    "{}: [identity] tcti = \"none\": this device has no TPM to attest with",
                    config.display()
                )));
            }
        };
        let dir = dir.map(Path::to_path_buf).unwrap_or(c.identity.dir.clone());
        let agent_id = match &c.attestation.agent_id {
            AgentId::Configured(id) => id.clone(),
            AgentId::Fingerprint => IdentityStore::new(&dir)
                .public()
                .map_err(|e| {
                    CliError::Input(format!(
                        "the agent id is the identity's fingerprint by default: {e} (or set [attestation] agent_uuid)"
                    ))
                })?
                .fingerprint,
        };
        Ok(Agent {
            tpm: DirectTpm {
                tcti,
                dir,
                ek: c.attestation.ek,
            },
            cfg: c.attestation,
            agent_id,
        })
    }

    fn client(
        &self,
        url: &Option<String>,
        ca: &Option<PathBuf>,
        key: &str,
    ) -> Result<Client, CliError> {
        let url = url
            .as_deref()
            .ok_or_else(|| CliError::Input(format!("[attestation] {key} is not set")))?;
        let tls = Tls {
            ca: ca.clone(),
            client: None,
        };
        Ok(Client::new(url, &tls)?)
    }

    fn registrar(&self) -> Result<Client, CliError> {
        self.client(&self.cfg.registrar, &self.cfg.registrar_ca, "registrar")
    }

    fn verifier(&self) -> Result<Client, CliError> {
        self.client(&self.cfg.verifier, &self.cfg.verifier_ca, "verifier")
    }
}

/// `keylime register`.
pub fn register(out: &Output, a: &Agent) -> Result<Exit, CliError> {
    let r = registrar::register(&a.registrar()?, &a.tpm, &a.agent_id)?;
    if out.json {
        out.json(&r);
    } else if !out.quiet {
        println!(
            "agent {} registered and activated at {} (attestation key {}; EK certificate {})",
            r.agent_id,
            r.registrar,
            r.ak_name,
            if r.ek_certificate_sent {
                "sent"
            } else {
                "none in the TPM"
            }
        );
    }
    Ok(Exit::Ok)
}

fn show(out: &Output, r: &push::Attested) {
    if out.json {
        out.json_line(r);
    } else if !out.quiet {
        println!(
            "{}: {:?} (verifier {}: {}), PCRs {:?}",
            r.agent_id, r.verdict, r.verifier, r.verifier_status, r.pcrs
        );
    }
}

/// `keylime attest [--loop]`: one round (exit 3 unless it passed), or rounds forever: at the
/// pace the verifier asks for, at most `[attestation] interval` apart (Keylime times an agent
/// out after 5 × its quote_interval), never faster than once a second; after 429/503 as
/// long as Retry-After says (at most an hour); a new session when the token expired; errors
/// back off exponentially up to the interval.
pub fn attest(out: &Output, a: &Agent, forever: bool) -> Result<Exit, CliError> {
    let client = a.verifier()?;
    if !forever {
        let session = push::open_session(&client, &a.tpm, &a.agent_id)?;
        let r = push::attest(&client, &a.tpm, &session, &a.agent_id)?;
        show(out, &r);
        return Ok(if r.verdict == Verdict::Pass {
            Exit::Ok
        } else {
            Exit::Bad
        });
    }
    let mut session = None;
    let mut backoff = 1u64;
    loop {
        let s = match session.take() {
            Some(s) => s,
            None => match push::open_session(&client, &a.tpm, &a.agent_id) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("hardenctl: {e}");
                    pause(retry_of(&e).unwrap_or(backoff));
                    backoff = (backoff * 2).min(a.cfg.interval);
                    continue;
                }
            },
        };
        match push::attest(&client, &a.tpm, &s, &a.agent_id) {
            Ok(r) => {
                show(out, &r);
                backoff = 1;
                session = Some(s);
                pause(r.next_in.unwrap_or(a.cfg.interval).min(a.cfg.interval));
            }
            // the token expired (or was revoked): a new session at once
            Err(KeylimeError::Refused { status: 401, .. }) if backoff == 1 => backoff = 2,
            Err(e) => {
                eprintln!("hardenctl: {e}");
                if !matches!(e, KeylimeError::Refused { status: 401, .. }) {
                    session = Some(s);
                }
                pause(retry_of(&e).unwrap_or(backoff));
                backoff = (backoff * 2).min(a.cfg.interval);
            }
        }
    }
}

fn retry_of(e: &KeylimeError) -> Option<u64> {
    match e {
        KeylimeError::TooEarly { retry_after, .. } => Some(*retry_after),
        _ => None,
    }
}

/// Sleeps `secs`, at least one second, at most an hour.
fn pause(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs.clamp(1, MAX_PAUSE)));
}
