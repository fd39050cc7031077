//! The EK certificate: its chain checked against the CA certificates a device maker or fleet
//! trusts (a directory, every certificate in it a trust anchor), and its public key compared
//! with the EK this TPM derives — a certificate for another TPM's EK proves nothing here.
//!
//! OpenSSL does the X.509 work (`openssl` crate: path building, signatures, validity,
//! critical extensions — the TPM-specific subjectAltName of EK certificates included); the
//! library is already on every device through the TSS stack's crypto backend.

use std::path::{Path, PathBuf};

use openssl::bn::BigNum;
use openssl::pkey::{Id, PKey, Public as PKeyPublic};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509StoreContext};
use serde::Serialize;
use tss_esapi::structures::Public;

/// Errors checking an EK certificate.
#[derive(Debug, thiserror::Error)]
pub enum EkCertError {
    #[error("the EK certificate is not DER X.509: {0}")]
    NotCertificate(openssl::error::ErrorStack),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a PEM or DER certificate: {source}", path.display())]
    BadCa {
        path: PathBuf,
        source: openssl::error::ErrorStack,
    },
    #[error("{}: no CA certificates (*.pem, *.crt, *.der) in it", .0.display())]
    NoCa(PathBuf),
    #[error("X.509: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("the EK certificate does not chain to a CA in {}: {reason}", dir.display())]
    Untrusted { dir: PathBuf, reason: String },
    #[error("the EK certificate's key is not this TPM's endorsement key: {0}")]
    Mismatch(String),
}

/// A certificate that chained to a trusted CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Subjects from the EK certificate up to the anchor.
    pub chain: Vec<String>,
}

fn subject(c: &X509) -> String {
    c.subject_name()
        .entries()
        .map(|e| {
            let k = e.object().nid().short_name().unwrap_or("?");
            let v = String::from_utf8_lossy(e.data().as_slice());
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn load_cas(dir: &Path) -> Result<Vec<X509>, EkCertError> {
    let io = |source| EkCertError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pem" | "crt" | "der")
            )
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let bytes = std::fs::read(&path).map_err(|source| EkCertError::Io {
            path: path.clone(),
            source,
        })?;
        let certs = if bytes.starts_with(b"-----") || bytes.starts_with(b"\n") {
            X509::stack_from_pem(&bytes)
        } else {
            X509::from_der(&bytes).map(|c| vec![c])
        };
        out.extend(certs.map_err(|source| EkCertError::BadCa { path, source })?);
    }
    if out.is_empty() {
        return Err(EkCertError::NoCa(dir.to_path_buf()));
    }
    Ok(out)
}

/// Checks `cert_der` against every certificate in `ca_dir` as a trust anchor.
pub fn verify_chain(cert_der: &[u8], ca_dir: &Path) -> Result<ChainReport, EkCertError> {
    let cert = X509::from_der(cert_der).map_err(EkCertError::NotCertificate)?;
    let mut store = X509StoreBuilder::new()?;
    for ca in load_cas(ca_dir)? {
        store.add_cert(ca)?;
    }
    // an intermediate the admin put in the directory is trusted as it is
    store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    let store = store.build();
    let mut ctx = X509StoreContext::new()?;
    let untrusted = Stack::new()?;
    let (ok, reason, chain) = ctx.init(&store, &cert, &untrusted, |c| {
        let ok = c.verify_cert()?;
        let chain = c
            .chain()
            .map(|s| s.iter().map(|x| subject(&x.to_owned())).collect())
            .unwrap_or_default();
        Ok((ok, c.error().error_string().to_string(), chain))
    })?;
    if !ok {
        return Err(EkCertError::Untrusted {
            dir: ca_dir.to_path_buf(),
            reason,
        });
    }
    Ok(ChainReport { chain })
}

/// The certificate's public key must be the EK's.
pub fn matches_ek(cert_der: &[u8], ek: &Public) -> Result<(), EkCertError> {
    let cert = X509::from_der(cert_der).map_err(EkCertError::NotCertificate)?;
    let key: PKey<PKeyPublic> = cert.public_key()?;
    let mismatch = |m: &str| Err(EkCertError::Mismatch(m.into()));
    match (ek, key.id()) {
        (
            Public::Rsa {
                parameters, unique, ..
            },
            Id::RSA,
        ) => {
            let rsa = key.rsa()?;
            let exp = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            if rsa.n() != BigNum::from_slice(unique.value())?.as_ref() {
                return mismatch("another RSA modulus");
            }
            if rsa.e() != BigNum::from_u32(exp)?.as_ref() {
                return mismatch("another RSA exponent");
            }
            Ok(())
        }
        (Public::Ecc { unique, .. }, Id::EC) => {
            let ec = key.ec_key()?;
            let mut bn = openssl::bn::BigNumContext::new()?;
            let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut bn)?;
            if x != BigNum::from_slice(unique.x().value())?
                || y != BigNum::from_slice(unique.y().value())?
            {
                return mismatch("another EC point");
            }
            Ok(())
        }
        _ => mismatch("another key type"),
    }
}
