//! Push-mode attestation with a Keylime verifier (API v3, Keylime 7.14): the device
//! connects out, so it needs no open port and works behind NAT.
//!
//! 1. **Session.** `POST /v3.0/sessions` offers `tpm_pop`; the verifier answers with a
//!    challenge. The TPM certifies the attestation key with itself over it (TPM2_Certify);
//!    `PATCH /v3.0/sessions/{id}` sends TPMS_ATTEST and TPMT_SIGNATURE. The verifier checks
//!    them against the AK the admin enrolled for this agent and answers with a bearer token.
//!    A device with another AK gets no token.
//! 2. **Capabilities.** `POST /v3.0/agents/{id}/attestations`: sha256, RSASSA, the PCRs
//!    (0-23), the AK, the boot time. The verifier answers with its own nonce and the PCRs
//!    its policy needs (429 + Retry-After when it is too early).
//! 3. **Evidence.** The TPM quotes exactly those PCRs over that nonce;
//!    `PATCH .../attestations/latest` sends TPMS_ATTEST, TPMT_SIGNATURE and the PCR values
//!    (`evidence.rs`). The verifier verifies after answering 202.
//! 4. **Verdict.** `GET /v2.6/agents/{id}` with the token: PASS, FAIL or PENDING.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};

use super::http::Client;
use super::{AgentTpm, KeylimeError, evidence, protocol, refused};
use crate::tpm::quote::PCR_COUNT;

const JSON_API: &str = "application/vnd.api+json";
/// How long `attest` waits for the verifier's verdict after sending evidence.
const VERDICT_WAIT: Duration = Duration::from_secs(30);

/// The verifier's verdict on one attestation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not decided within the wait (or the verifier reports PENDING/TIMEOUT).
    Pending,
}

/// What one round established (`hardenctl --json identity keylime attest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attested {
    pub agent_id: String,
    pub verifier: String,
    /// The PCRs the verifier asked for and the TPM quoted.
    pub pcrs: Vec<u8>,
    /// The verifier's nonce, hex (TPMS_ATTEST.extraData of the quote).
    pub nonce: String,
    pub verdict: Verdict,
    /// The verifier's own word (`attestation_status`): PASS, FAIL, PENDING, TIMEOUT.
    pub verifier_status: String,
    /// When the verifier wants the next attestation, seconds.
    pub next_in: Option<u64>,
}

/// An agent session: the bearer token the verifier gave for the AK's proof of possession.
pub struct Session {
    token: String,
}

fn b64_field(server: &str, v: &Value, pointer: &str) -> Result<Vec<u8>, KeylimeError> {
    let s = v
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| protocol(server, format!("the answer has no {pointer}")))?;
    STANDARD
        .decode(s)
        .map_err(|e| protocol(server, format!("{pointer} is not base64: {e}")))
}

/// Opens a session: the TPM proves it holds the enrolled AK.
pub fn open_session(
    client: &Client,
    tpm: &dyn AgentTpm,
    agent_id: &str,
) -> Result<Session, KeylimeError> {
    super::registrar::check_agent_id(agent_id)?;
    let server = client.base();
    let offer = json!({"data": {"type": "session", "attributes": {
        "agent_id": agent_id,
        "authentication_supported": [
            {"authentication_class": "pop", "authentication_type": "tpm_pop"}
        ],
    }}});
    let a = client.call(
        "POST",
        "/v3.0/sessions",
        Some(&offer),
        &[("Content-Type", JSON_API)],
    )?;
    if a.status != 200 && a.status != 201 {
        return Err(refused(server, &a));
    }
    let id = a
        .body
        .pointer("/data/id")
        .and_then(Value::as_str)
        .ok_or_else(|| protocol(server, "the session answer has no data.id"))?
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(protocol(
            server,
            format!(
                "session id {:?} is not a UUID",
                crate::keylime::http::clip(&id)
            ),
        ));
    }
    let challenge = b64_field(
        server,
        &a.body,
        "/data/attributes/authentication_requested/0/chosen_parameters/challenge",
    )?;
    let proof = tpm.certify(&challenge)?;
    let answer = json!({"data": {"type": "session", "id": id, "attributes": {
        "agent_id": agent_id,
        "authentication_provided": [{
            "authentication_class": "pop",
            "authentication_type": "tpm_pop",
            "data": {
                "message": STANDARD.encode(&proof.attest),
                "signature": STANDARD.encode(&proof.signature),
            },
        }],
    }}});
    let a = client.call(
        "PATCH",
        &format!("/v3.0/sessions/{id}"),
        Some(&answer),
        &[("Content-Type", JSON_API)],
    )?;
    let evaluation = a
        .body
        .pointer("/data/attributes/evaluation")
        .and_then(Value::as_str)
        .unwrap_or("");
    if a.status == 200 && evaluation == "fail" || a.status == 401 {
        return Err(KeylimeError::Refused {
            server: server.to_string(),
            status: a.status,
            message: "the verifier did not accept the TPM's proof of possession of the attestation key: this agent is not enrolled there, or with another AK".into(),
        });
    }
    if a.status != 200 || evaluation != "pass" {
        return Err(refused(server, &a));
    }
    let token = a
        .body
        .pointer("/data/attributes/token")
        .and_then(Value::as_str)
        .filter(|t| {
            // RFC 6750 b64token
            !t.is_empty()
                && t.len() <= 4096
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
        })
        .ok_or_else(|| protocol(server, "the session answer has no usable token"))?;
    Ok(Session {
        token: token.to_string(),
    })
}

/// The boot time as ISO 8601 (UTC), from `btime` in /proc/stat.
pub fn boot_time() -> Result<String, KeylimeError> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|source| KeylimeError::Io {
        path: "/proc/stat".into(),
        source,
    })?;
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| KeylimeError::Evidence("/proc/stat has no btime".into()))?;
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs());
    Ok(humantime::format_rfc3339_seconds(t).to_string())
}

fn selected_pcrs(server: &str, requested: &Value) -> Result<Vec<u8>, KeylimeError> {
    let p = "/chosen_parameters/selected_subjects/sha256";
    let list = requested
        .pointer(p)
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(server, format!("the evidence request has no {p}")))?;
    let mut pcrs = Vec::new();
    for v in list {
        match v.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(n) if n < PCR_COUNT && !pcrs.contains(&n) => pcrs.push(n),
            _ => {
                return Err(protocol(
                    server,
                    format!("{p}: {v} is not a PCR (0-23) or repeats"),
                ));
            }
        }
    }
    if pcrs.is_empty() {
        return Err(protocol(
            server,
            "the verifier asked for no PCR: its policy for this agent has none (tpm_policy)",
        ));
    }
    pcrs.sort_unstable();
    Ok(pcrs)
}

/// One attestation round: capabilities, the verifier's nonce, a quote, the verdict.
pub fn attest(
    client: &Client,
    tpm: &dyn AgentTpm,
    session: &Session,
    agent_id: &str,
) -> Result<Attested, KeylimeError> {
    super::registrar::check_agent_id(agent_id)?;
    let server = client.base();
    let bearer = format!("Bearer {}", session.token);
    let auth = [
        ("Content-Type", JSON_API),
        ("Authorization", bearer.as_str()),
    ];
    let ak_public = tpm.ak_public()?;
    let capabilities = json!({"data": {"type": "attestation", "attributes": {
        "evidence_supported": [{
            "evidence_class": "certification",
            "evidence_type": "tpm_quote",
            "capabilities": {
                "component_version": "2.0",
                "hash_algorithms": ["sha256"],
                "signature_schemes": ["rsassa"],
                "available_subjects": {"sha256": (0..PCR_COUNT).collect::<Vec<u8>>()},
                "certification_keys": [{
                    "key_class": "asymmetric",
                    "key_algorithm": "rsa",
                    "key_size": 2048,
                    "server_identifier": "ak",
                    "public": STANDARD.encode(&ak_public),
                }],
            },
        }],
        "system_info": {"boot_time": boot_time()?},
    }}});
    let path = format!("/v3.0/agents/{agent_id}/attestations");
    let a = client.call("POST", &path, Some(&capabilities), &auth)?;
    if a.status == 429 || a.status == 503 {
        return Err(KeylimeError::TooEarly {
            server: server.to_string(),
            retry_after: a.retry_after.unwrap_or(2),
        });
    }
    if a.status != 201 {
        return Err(refused(server, &a));
    }
    let requested = a
        .body
        .pointer("/data/attributes/evidence_requested")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(server, "the answer has no evidence_requested"))?;
    let [request] = requested.as_slice() else {
        return Err(protocol(
            server,
            format!(
                "the verifier asks for {} kinds of evidence; hardend sends one TPM quote (no IMA or boot log)",
                requested.len()
            ),
        ));
    };
    if request.get("evidence_type").and_then(Value::as_str) != Some("tpm_quote") {
        return Err(protocol(
            server,
            "the verifier asks for evidence other than a tpm_quote",
        ));
    }
    for (field, want) in [("signature_scheme", "rsassa"), ("hash_algorithm", "sha256")] {
        let got = request
            .pointer(&format!("/chosen_parameters/{field}"))
            .and_then(Value::as_str);
        if got != Some(want) {
            let got = super::http::clip(got.unwrap_or("nothing"));
            return Err(protocol(
                server,
                format!("the verifier chose {field} {got:?}, not {want}"),
            ));
        }
    }
    let nonce = b64_field(server, request, "/chosen_parameters/challenge")?;
    let pcrs = selected_pcrs(server, request)?;
    let q = tpm.quote(&nonce, &pcrs)?;
    let mut values = std::collections::BTreeMap::new();
    for (i, v) in &q.pcrs {
        let v = hex::decode(v).map_err(|e| KeylimeError::Evidence(format!("PCR {i}: {e}")))?;
        values.insert(*i, v);
    }
    let unhex = |what: &str, v: &str| {
        hex::decode(v).map_err(|e| KeylimeError::Evidence(format!("the quote's {what}: {e}")))
    };
    let evidence = json!({"data": {"type": "attestation", "attributes": {
        "evidence_collected": [{
            "evidence_class": "certification",
            "evidence_type": "tpm_quote",
            "data": {
                "message": STANDARD.encode(unhex("attest", &q.attest)?),
                "signature": STANDARD.encode(unhex("signature", &q.signature)?),
                "subject_data": STANDARD.encode(evidence::pcr_blob(&values)?),
            },
        }],
    }}});
    let before = status(client, &bearer, agent_id)?;
    let a = client.call("PATCH", &format!("{path}/latest"), Some(&evidence), &auth)?;
    if a.status != 202 && a.status != 200 {
        return Err(refused(server, &a));
    }
    let next_in = a
        .body
        .pointer("/meta/seconds_to_next_attestation")
        .and_then(Value::as_u64);
    let (verdict, verifier_status) = wait_verdict(client, &bearer, agent_id, &before)?;
    Ok(Attested {
        agent_id: agent_id.to_string(),
        verifier: server.to_string(),
        pcrs,
        nonce: hex::encode(&nonce),
        verdict,
        verifier_status,
        next_in,
    })
}

/// The verifier's counters for an agent (`GET /v2.6/agents/{id}`, readable with its token).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Status {
    /// Attestations that passed.
    passed: u64,
    /// When the last evidence was evaluated (pass or fail), seconds since the epoch.
    evaluated: u64,
    /// PASS, FAIL (sticky after any failure until re-enrolment), PENDING, TIMEOUT.
    word: String,
}

fn status(client: &Client, bearer: &str, agent_id: &str) -> Result<Status, KeylimeError> {
    let server = client.base();
    let a = client.call(
        "GET",
        &format!("/v2.6/agents/{agent_id}"),
        None,
        &[("Authorization", bearer)],
    )?;
    if a.status != 200 {
        return Err(refused(server, &a));
    }
    let r = a
        .body
        .get("results")
        .ok_or_else(|| protocol(server, "the agent's status has no results"))?;
    Ok(Status {
        passed: r
            .get("attestation_count")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        evaluated: r
            .get("last_received_quote")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        word: r
            .get("attestation_status")
            .and_then(Value::as_str)
            .filter(|w| ["PASS", "FAIL", "PENDING", "TIMEOUT"].contains(w))
            .ok_or_else(|| {
                protocol(
                    server,
                    "the agent's status has no attestation_status PASS, FAIL, PENDING or TIMEOUT",
                )
            })?
            .to_string(),
    })
}

/// Waits until the verifier evaluated the evidence just sent: one more passed attestation
/// is a pass; a new evaluation time without one is a failure. (The aggregate status word
/// alone cannot tell: FAIL stays after a failure even when later rounds pass.)
fn wait_verdict(
    client: &Client,
    bearer: &str,
    agent_id: &str,
    before: &Status,
) -> Result<(Verdict, String), KeylimeError> {
    let deadline = Instant::now() + VERDICT_WAIT;
    loop {
        let now = status(client, bearer, agent_id)?;
        if now.passed > before.passed {
            return Ok((Verdict::Pass, now.word));
        }
        if now.evaluated > before.evaluated {
            return Ok((Verdict::Fail, now.word));
        }
        if Instant::now() >= deadline {
            return Ok((Verdict::Pending, now.word));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_checked() {
        let ok = json!({"chosen_parameters": {"selected_subjects": {"sha256": [23, 0]}}});
        assert_eq!(selected_pcrs("v", &ok).expect("ok"), vec![0, 23]);
        for bad in [
            json!([24]),
            json!([1, 1]),
            json!([]),
            json!(["1"]),
            json!([-1]),
        ] {
            let v = json!({"chosen_parameters": {"selected_subjects": {"sha256": bad}}});
            assert!(selected_pcrs("v", &v).is_err(), "{v}");
        }
    }

    #[test]
    fn boot_time_is_rfc3339() {
        let t = boot_time().expect("btime");
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
