//! JSON over HTTP(S) to a Keylime registrar or verifier: `ureq` with native-tls (OpenSSL,
//! already linked for the EK certificate checks — no second TLS stack). With `https://` the
//! server must chain to the configured CA file only (the system's roots are not used); a
//! client certificate is sent when configured. Bodies are bounded; timeouts are set, so an
//! unresponsive server cannot hang the caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use super::KeylimeError;

/// Largest answer read from a server (a challenge or a status is a few KiB).
const MAX_BODY: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);

/// TLS material for one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificate(s), PEM: the only roots the server's certificate may chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS (the tests' Keylime admin; never
    /// configured on a device).
    pub client: Option<(PathBuf, PathBuf)>,
}

fn read(path: &Path) -> Result<Vec<u8>, KeylimeError> {
    std::fs::read(path).map_err(|source| KeylimeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_err(path: &Path) -> impl Fn(ureq::Error) -> KeylimeError + '_ {
    move |e| KeylimeError::Tls(format!("{}: {e}", path.display()))
}

/// An HTTP client for one base URL (`http://host:port` or `https://host:port`).
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// An answer: the status and the JSON body (`null` when there was none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<u64>,
}

impl Client {
    pub fn new(base: &str, tls: &Tls) -> Result<Client, KeylimeError> {
        let base = base.trim_end_matches('/').to_string();
        let https = base.starts_with("https://");
        if !https && !base.starts_with("http://") {
            return Err(KeylimeError::Config(format!(
                "{base}: not an http:// or https:// URL"
            )));
        }
        let mut cfg = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            // never $http_proxy & co.: the device talks to the configured servers only
            .proxy(None);
        if https {
            let Some(ca) = &tls.ca else {
                return Err(KeylimeError::Config(format!(
                    "{base}: https needs a CA file to check the server against"
                )));
            };
            let ca_pem = read(ca)?;
            let mut roots = Vec::new();
            for c in ureq::tls::parse_pem(&ca_pem) {
                if let ureq::tls::PemItem::Certificate(c) = c.map_err(pem_err(ca))? {
                    roots.push(c);
                }
            }
            if roots.is_empty() {
                return Err(KeylimeError::Tls(format!(
                    "{}: no certificate in the CA file",
                    ca.display()
                )));
            }
            let mut t = TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                .root_certs(RootCerts::Specific(Arc::new(roots)));
            if let Some((cert, key)) = &tls.client {
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&read(cert)?)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key = PrivateKey::from_pem(&read(key)?).map_err(pem_err(key))?;
                t = t.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
            }
            cfg = cfg.tls_config(t.build());
        }
        Ok(Client {
            base,
            agent: cfg.build().new_agent(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method` to `path` (beginning with `/`) with an optional JSON body and headers.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, KeylimeError> {
        let url = format!("{}{path}", self.base);
        let fail = |e: ureq::Error| KeylimeError::Http {
            url: url.clone(),
            message: e.to_string(),
        };
        let method = ureq::http::Method::from_bytes(method.as_bytes())
            .map_err(|e| KeylimeError::Config(format!("{method}: {e}")))?;
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match body {
            Some(b) => {
                let text = serde_json::to_vec(b)
                    .map_err(|e| KeylimeError::Evidence(format!("encode a request: {e}")))?;
                let typed = headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
                let req = if typed {
                    req
                } else {
                    req.header("Content-Type", "application/json")
                };
                let req = req
                    .body(text)
                    .map_err(|e| KeylimeError::Config(format!("{url}: {e}")))?;
                self.agent.run(req).map_err(fail)?
            }
            None => {
                let req = req
                    .body(())
                    .map_err(|e| KeylimeError::Config(format!("{url}: {e}")))?;
                self.agent.run(req).map_err(fail)?
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(fail)?;
        let body = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| KeylimeError::Http {
                url: url.clone(),
                message: format!("answer {status} is not JSON ({e}): {}", clip(&text)),
            })?
        };
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}

/// At most 200 characters of a server's text for an error message.
pub fn clip(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
    s
}
