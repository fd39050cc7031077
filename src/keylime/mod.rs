//! Keylime's agent protocol, spoken by `hardenctl identity keylime`: the device registers
//! with a Keylime registrar and answers its credential challenge (`registrar.rs`), then
//! pushes quotes to a Keylime verifier in push mode (`push.rs`: API v3, the device connects
//! out, no port is opened on it) in Keylime's quote format (`evidence.rs`), over JSON/HTTP(S)
//! (`http.rs`). The TPM work goes through [`AgentTpm`]: the daemon over D-Bus, or the TPM
//! directly — this module never touches the TPM itself and the daemon never opens a socket
//! to the network.

pub mod evidence;
pub mod http;
pub mod push;
pub mod registrar;

use std::path::PathBuf;

use crate::tpm::certify::Certified;
use crate::tpm::enroll::Challenge;
use crate::tpm::quote::QuoteBundle;

/// Errors of the Keylime client.
#[derive(Debug, thiserror::Error)]
pub enum KeylimeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[attestation]: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// The server answered, but not as the protocol says.
    #[error("{server} answered {status}: {message}")]
    Refused {
        server: String,
        status: u16,
        message: String,
    },
    #[error(
        "{server}: too early for the next attestation; the verifier asks to retry in {retry_after} s"
    )]
    TooEarly { server: String, retry_after: u64 },
    #[error("{server}: {message}")]
    Protocol { server: String, message: String },
    #[error("{0}")]
    Evidence(String),
    #[error("{0}")]
    Tpm(String),
}

/// The keys registered: TPM wire bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentKeys {
    /// The EK's TPM2B_PUBLIC.
    pub ek_public: Vec<u8>,
    /// Its certificate from NV (DER), if the TPM has one.
    pub ek_certificate: Option<Vec<u8>>,
    /// The attestation key's TPM2B_PUBLIC.
    pub ak_public: Vec<u8>,
    /// Its name (nameAlg ‖ digest of TPMT_PUBLIC).
    pub ak_name: Vec<u8>,
}

/// The TPM operations the agent protocol needs; the attestation key is the RSA one
/// (`ak-rsa.*`, see `tpm::identity::KeyKind::AttestationRsa`).
pub trait AgentTpm {
    /// The EK (public area, certificate) and the attestation key's public area.
    fn keys(&self) -> Result<AgentKeys, KeylimeError>;
    /// The attestation key's TPM2B_PUBLIC alone (no EK derivation).
    fn ak_public(&self) -> Result<Vec<u8>, KeylimeError>;
    /// TPM2_Certify of the attestation key by itself over a verifier's challenge.
    fn certify(&self, challenge: &[u8]) -> Result<Certified, KeylimeError>;
    /// TPM2_ActivateCredential of a registrar's challenge: the released secret.
    fn activate(&self, challenge: &Challenge) -> Result<Vec<u8>, KeylimeError>;
    /// A sha256 quote of `pcrs` over `nonce` by the attestation key.
    fn quote(&self, nonce: &[u8], pcrs: &[u8]) -> Result<QuoteBundle, KeylimeError>;
}

/// The message a server put in its answer (Keylime: `status`, or JSON:API `errors`).
fn server_message(body: &serde_json::Value) -> String {
    if let Some(s) = body.get("status").and_then(|s| s.as_str()) {
        return http::clip(s);
    }
    if let Some(errors) = body.get("errors") {
        return http::clip(&errors.to_string());
    }
    http::clip(&body.to_string())
}

fn protocol(server: &str, message: impl Into<String>) -> KeylimeError {
    KeylimeError::Protocol {
        server: server.to_string(),
        message: message.into(),
    }
}

fn refused(server: &str, a: &http::Answer) -> KeylimeError {
    KeylimeError::Refused {
        server: server.to_string(),
        status: a.status,
        message: server_message(&a.body),
    }
}
