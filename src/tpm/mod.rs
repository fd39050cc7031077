//! Device identity bound to the TPM: a signing key that never leaves it.
//!
//! * TCTI from the caller, `$TCTI`, or `device:/dev/tpmrm0`, validated (`tcti.rs`).
//! * Parent: the standard ECC P-256 storage key (SRK) template, re-derived as a transient
//!   primary for every use — never persisted, never 0x81000001 (others own that handle).
//! * Identity: an unrestricted ECC P-256 ECDSA-SHA256 key created under it once, stored as
//!   public/private blobs (never ContextSave blobs, which die at TPM reset), loaded per use
//!   and flushed after (`identity.rs`). A rotation makes the next key beside it; it becomes
//!   the identity only at commit.
//! * The daemon does all TPM work on one thread, a fresh connection per job, transient
//!   "busy" answers retried within a bound (`worker.rs`).

pub mod certify;
pub mod csr;
pub mod ek;
pub mod ekcert;
pub mod enroll;
pub mod identity;
pub mod nv;
pub mod public;
pub mod quote;
pub mod seal;
pub mod status;
pub mod tcti;
pub mod worker;

/// Errors from the TPM and the identity store.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error(transparent)]
    Tcti(#[from] tcti::TctiError),
    #[error(
        "no TPM device at {}: the TPM is off in the firmware, or its driver (tpm_crb, tpm_tis) is not loaded",
        path.display()
    )]
    NoDevice { path: std::path::PathBuf },
    #[error("no TPM reachable through {tcti}: {source}")]
    Unreachable {
        tcti: String,
        source: tss_esapi::Error,
    },
    #[error("TPM: {what}: {source}")]
    Tpm {
        what: &'static str,
        source: tss_esapi::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no device identity in {0}: create one with `hardenctl identity create`")]
    NoIdentity(std::path::PathBuf),
    #[error("a device identity already exists in {0}; creating another is an explicit rotation")]
    Exists(std::path::PathBuf),
    #[error(
        "the identity key in {dir} no longer loads into this TPM ({source}): the TPM was cleared or replaced, or the blobs belong to another device; the identity is lost"
    )]
    Lost {
        dir: std::path::PathBuf,
        source: tss_esapi::Error,
    },
    #[error(
        "a rotation is already pending in {0}: `hardenctl identity rotate --commit` or `--abort` it first"
    )]
    RotationPending(std::path::PathBuf),
    #[error("no rotation is pending in {0}")]
    NoRotation(std::path::PathBuf),
    #[error("the TPM stayed busy through {attempts} attempts: {last}")]
    Busy { attempts: usize, last: String },
    #[error("the TPM thread is gone")]
    WorkerGone,
    #[error("another request of a user who is not root is on the TPM; try again")]
    UnprivilegedBusy,
    #[error("{0}")]
    Format(String),
}
