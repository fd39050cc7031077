//! `[attestation]`: the Keylime registrar and verifier this device reports to
//! (`hardenctl identity keylime`), the CA files their TLS certificates must chain to, and
//! the agent id. Nothing here is used unless a registrar or verifier is configured.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, RawDuration, absolute_value, duration};
use crate::source::Source;
use crate::tpm::ek::EkAlgorithm;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    registrar: Option<Spanned<String>>,
    registrar_ca: Option<Spanned<String>>,
    verifier: Option<Spanned<String>>,
    verifier_ca: Option<Spanned<String>>,
    agent_uuid: Option<Spanned<String>>,
    ek: Option<Spanned<String>>,
    interval: Option<Spanned<RawDuration>>,
}

/// Where the agent id comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentId {
    /// The device identity's fingerprint (hex SHA-256 of its public key): stable across
    /// reinstalls of the package, changes with a rotation of the identity.
    Fingerprint,
    Configured(String),
}

/// `[attestation]` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationConfig {
    /// The registrar's agent endpoint, e.g. `http://registrar.example:8890`.
    pub registrar: Option<String>,
    pub registrar_ca: Option<PathBuf>,
    /// The verifier's push (API v3) endpoint, e.g. `https://verifier.example:8881`.
    pub verifier: Option<String>,
    pub verifier_ca: Option<PathBuf>,
    pub agent_id: AgentId,
    /// The EK registered: rsa2048 (default, what every TPM has) or ecc-p256.
    pub ek: EkAlgorithm,
    /// The longest pause between rounds of `keylime attest --loop` (the verifier may ask for
    /// a shorter one).
    pub interval: u64,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        AttestationConfig {
            registrar: None,
            registrar_ca: None,
            verifier: None,
            verifier_ca: None,
            agent_id: AgentId::Fingerprint,
            ek: EkAlgorithm::Rsa2048,
            interval: 60,
        }
    }
}

fn url(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(s) = v else { return Ok(None) };
    let u = s.get_ref();
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(['/', '?', '#', ' ', '@']) => Ok(Some(u.clone())),
        _ => Err(src.invalid(
            s.span(),
            key,
            format!("{u:?} is not http(s)://HOST:PORT (no path, no credentials)"),
        )),
    }
}

fn path(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
) -> Result<Option<PathBuf>, ConfigError> {
    v.as_ref().map(|s| absolute_value(src, s, key)).transpose()
}

pub(super) fn parse(src: &Source, raw: &Raw) -> Result<AttestationConfig, ConfigError> {
    let d = AttestationConfig::default();
    let registrar = url(src, &raw.registrar, "attestation.registrar")?;
    let verifier = url(src, &raw.verifier, "attestation.verifier")?;
    // Keylime's verifier serves only https: an http:// address can only reach someone else
    if let (Some(v), Some(k)) = (&verifier, &raw.verifier)
        && !v.starts_with("https://")
    {
        return Err(src.invalid(
            k.span(),
            "attestation.verifier",
            format!("{v}: the verifier is reached over https only (Keylime serves nothing else)"),
        ));
    }
    let registrar_ca = path(src, &raw.registrar_ca, "attestation.registrar_ca")?;
    let verifier_ca = path(src, &raw.verifier_ca, "attestation.verifier_ca")?;
    for (u, ca, key) in [
        (&registrar, &registrar_ca, &raw.registrar),
        (&verifier, &verifier_ca, &raw.verifier),
    ] {
        if let (Some(u), None, Some(k)) = (u, ca, key)
            && u.starts_with("https://")
        {
            return Err(src.invalid(
                k.span(),
                "attestation",
                format!("{u} is https: set the CA file its certificate must chain to (registrar_ca / verifier_ca)"),
            ));
        }
    }
    let agent_id = match &raw.agent_uuid {
        None => AgentId::Fingerprint,
        Some(s) => {
            crate::keylime::registrar::check_agent_id(s.get_ref())
                .map_err(|e| src.invalid(s.span(), "attestation.agent_uuid", e.to_string()))?;
            AgentId::Configured(s.get_ref().clone())
        }
    };
    let ek = match &raw.ek {
        None => d.ek,
        Some(s) => s
            .get_ref()
            .parse::<EkAlgorithm>()
            .map_err(|e| src.invalid(s.span(), "attestation.ek", e.to_string()))?,
    };
    Ok(AttestationConfig {
        registrar,
        registrar_ca,
        verifier,
        verifier_ca,
        agent_id,
        ek,
        interval: duration(
            src,
            &raw.interval,
            "attestation.interval",
            d.interval,
            (5, 86_400),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn absent_means_unused() {
        let c = parse("").expect("parse");
        assert_eq!(c.attestation, AttestationConfig::default());
    }

    #[test]
    fn a_full_section() {
        let c = parse(
            "[attestation]\nregistrar = \"http://10.0.0.1:8890\"\nverifier = \"https://10.0.0.1:8881\"\nverifier_ca = \"/etc/hardend/keylime/ca.pem\"\nagent_uuid = \"gw-0042\"\nek = \"ecc-p256\"\ninterval = \"2m\"\n",
        )
        .expect("parse");
        let a = c.attestation;
        assert_eq!(a.registrar.as_deref(), Some("http://10.0.0.1:8890"));
        assert_eq!(a.agent_id, AgentId::Configured("gw-0042".into()));
        assert_eq!(a.ek, EkAlgorithm::EccP256);
        assert_eq!(a.interval, 120);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (t, key) in [
            ("registrar = \"ftp://x\"", "attestation.registrar"),
            ("verifier = \"https://x:1/path\"", "attestation.verifier"),
            ("verifier = \"https://x:1\"", "attestation"),
            ("agent_uuid = \"a/b\"", "attestation.agent_uuid"),
            ("ek = \"dsa\"", "attestation.ek"),
            ("client_cert = \"/c.pem\"", "client_cert"),
            ("verifier = \"http://x:1\"", "attestation.verifier"),
            ("verifier_ca = \"ca.pem\"", "attestation.verifier_ca"),
        ] {
            let e = parse(&format!("[attestation]\n{t}\n"))
                .expect_err(t)
                .to_string();
            assert!(e.contains(key), "{t}: {e}");
        }
    }
}
