//! Registration with a Keylime registrar (API 2.x, as rust-keylime does it):
//!
//! 1. `POST /v2.6/agents/{id}` with the EK's TPM2B_PUBLIC (`ek_tpm`), its certificate
//!    (`ekcert`, DER, or null), the AK's TPM2B_PUBLIC (`aik_tpm`), all base64. The registrar
//!    answers `{"results": {"blob": ...}}`: a MakeCredential challenge in tpm2-tools' format,
//!    base64, made for this EK and the AK's name.
//! 2. The TPM activates it (only the TPM holding that EK and an object of that name can).
//! 3. `PUT /v2.6/agents/{id}/activate` with `auth_tag` = hex HMAC-SHA384 keyed with the
//!    base64 text of the released secret, over the agent id. The registrar marks the agent
//!    active; a wrong tag deletes the registration.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha384;

use super::http::Client;
use super::{AgentTpm, KeylimeError, protocol, refused};
use crate::tpm::enroll::Challenge;

/// The registrar API version used (Keylime 7.x serves 2.0-2.6 and 3.0).
pub const API: &str = "v2.6";

/// What registration established (`hardenctl --json identity keylime register`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registered {
    pub agent_id: String,
    pub registrar: String,
    /// The AK's name the challenge was bound to (hex).
    pub ak_name: String,
    /// Whether an EK certificate was sent (a TPM without one is registered on its EK alone).
    pub ek_certificate_sent: bool,
    pub active: bool,
}

/// The activation tag: HMAC-SHA384, key = base64 of the secret (as text), message = agent id.
pub fn auth_tag(secret: &[u8], agent_id: &str) -> Result<String, KeylimeError> {
    let key = STANDARD.encode(secret);
    let mut mac = Hmac::<Sha384>::new_from_slice(key.as_bytes())
        .map_err(|e| KeylimeError::Evidence(format!("HMAC key: {e}")))?;
    mac.update(agent_id.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A Keylime agent id: word characters, `.` and `-` (Keylime's `valid_agent_id`).
pub fn check_agent_id(id: &str) -> Result<(), KeylimeError> {
    // "." and ".." would name another path on the server
    if id.is_empty()
        || id.chars().all(|c| c == '.')
        || id.len() > 255
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(KeylimeError::Config(format!(
            "agent_uuid {id:?}: Keylime takes letters, digits, '_', '.' and '-' (1-255)"
        )));
    }
    Ok(())
}

/// Registers and activates `agent_id` with the registrar at `client`.
pub fn register(
    client: &Client,
    tpm: &dyn AgentTpm,
    agent_id: &str,
) -> Result<Registered, KeylimeError> {
    check_agent_id(agent_id)?;
    let k = tpm.keys()?;
    let ekcert = match &k.ek_certificate {
        None => serde_json::Value::Null,
        Some(der) => STANDARD.encode(der).into(),
    };
    let body = serde_json::json!({
        "ek_tpm": STANDARD.encode(&k.ek_public),
        "ekcert": ekcert,
        "aik_tpm": STANDARD.encode(&k.ak_public),
        // push mode: the verifier is not to contact the device
        "ip": serde_json::Value::Null,
        "port": serde_json::Value::Null,
        "mtls_cert": serde_json::Value::Null,
    });
    let server = client.base().to_string();
    let a = client.call(
        "POST",
        &format!("/{API}/agents/{agent_id}"),
        Some(&body),
        &[],
    )?;
    if a.status != 200 {
        return Err(refused(&server, &a));
    }
    let blob = a
        .body
        .pointer("/results/blob")
        .and_then(|b| b.as_str())
        .ok_or_else(|| protocol(&server, "the registration answer has no results.blob"))?;
    let blob = STANDARD
        .decode(blob)
        .map_err(|err| protocol(&server, format!("results.blob is not base64: {err}")))?;
    let challenge = Challenge::from_tpm2_tools(&blob)
        .map_err(|err| protocol(&server, format!("results.blob: {err}")))?;
    let secret = tpm.activate(&challenge)?;
    let tag = auth_tag(&secret, agent_id)?;
    let a = client.call(
        "PUT",
        &format!("/{API}/agents/{agent_id}/activate"),
        Some(&serde_json::json!({ "auth_tag": tag })),
        &[],
    )?;
    if a.status != 200 {
        return Err(refused(&server, &a));
    }
    Ok(Registered {
        agent_id: agent_id.to_string(),
        registrar: server,
        ak_name: hex::encode(&k.ak_name),
        ek_certificate_sent: k.ek_certificate.is_some(),
        active: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_keylimes_hmac() {
        // Keylime: crypto.do_hmac(base64(secret).encode(), agent_id), HMAC-SHA384 hex
        let tag = auth_tag(b"abc", "d432fbb3-d2f1-4a97-9ef7-75bd81c00000").expect("tag");
        // computed with Python's hmac module, as Keylime does
        assert_eq!(
            tag,
            "be6c828c0b16c73cee4a2315f849edc755c0bac5d21c083b837e92bf3c9ef4517aee23c53ce9d09d08f328a56f9b114c"
        );
    }

    #[test]
    fn agent_ids_are_keylimes() {
        assert!(check_agent_id("d432fbb3-d2f1-4a97-9ef7-75bd81c00000").is_ok());
        assert!(check_agent_id("sha256.ab12").is_ok());
        assert!(check_agent_id("").is_err());
        assert!(check_agent_id("a/b").is_err());
        assert!(check_agent_id("a b").is_err());
        assert!(check_agent_id("..").is_err());
    }
}
