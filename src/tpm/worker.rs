//! One TPM, one thread: the daemon's TPM work runs on a dedicated thread that connects per
//! job, so calls are serialized (a TPM context is not reentrant, and without a resource
//! manager only one client may talk at a time) and a TPM that comes back after a restart
//! is simply used again. Transient "busy" answers are retried within a bound.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tss_esapi::constants::response_code::Tss2ResponseCodeKind;

use super::TpmError;
use super::identity::Tpm;

/// Backoff between attempts when the TPM answers "busy"; the sum bounds the wait.
const BACKOFF_MS: [u64; 5] = [20, 50, 100, 250, 500];

type Job = Box<dyn FnOnce(&str) + Send>;

/// Handle to the TPM thread; cheap to clone.
#[derive(Clone)]
pub struct TpmWorker {
    tx: mpsc::Sender<Job>,
    tcti: String,
}

/// Whether `e` is a TPM warning that says "try again" rather than "no".
pub fn is_transient(e: &TpmError) -> bool {
    let source = match e {
        TpmError::Tpm { source, .. } | TpmError::Lost { source, .. } => source,
        _ => return false,
    };
    let tss_esapi::Error::Tss2Error(rc) = source else {
        return false;
    };
    matches!(
        rc.kind(),
        Some(
            Tss2ResponseCodeKind::Retry
                | Tss2ResponseCodeKind::Yielded
                | Tss2ResponseCodeKind::Testing
                | Tss2ResponseCodeKind::Canceled
                | Tss2ResponseCodeKind::NvRate
                | Tss2ResponseCodeKind::ObjectMemory
                | Tss2ResponseCodeKind::SessionMemory
                | Tss2ResponseCodeKind::Memory
        )
    )
}

/// Runs `f` on a fresh connection through `tcti`, retrying transient TPM answers.
pub fn with_retry<T>(
    tcti: &str,
    mut f: impl FnMut(&mut Tpm) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let mut attempt = 0;
    loop {
        let r = Tpm::connect(tcti).and_then(|mut tpm| f(&mut tpm));
        match r {
            Err(e) if is_transient(&e) && attempt < BACKOFF_MS.len() => {
                thread::sleep(Duration::from_millis(BACKOFF_MS[attempt]));
                attempt += 1;
            }
            Err(e) if is_transient(&e) => {
                return Err(TpmError::Busy {
                    attempts: attempt + 1,
                    last: e.to_string(),
                });
            }
            r => return r,
        }
    }
}

impl TpmWorker {
    /// Starts the thread for `tcti` (validated when the first job connects).
    pub fn spawn(tcti: &str) -> Result<TpmWorker, TpmError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let t = tcti.to_string();
        thread::Builder::new()
            .name("hardend-tpm".into())
            .spawn(move || {
                for job in rx {
                    job(&t);
                }
            })
            .map_err(|source| TpmError::Io {
                path: "hardend-tpm thread".into(),
                source,
            })?;
        Ok(TpmWorker {
            tx,
            tcti: tcti.to_string(),
        })
    }

    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// Runs `f` on the TPM thread (retrying transient answers) and awaits its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, TpmError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tpm) -> Result<T, TpmError> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |tcti| {
            let _ = done.send(with_retry(tcti, f));
        });
        self.tx.send(job).map_err(|_| TpmError::WorkerGone)?;
        result.await.map_err(|_| TpmError::WorkerGone)?
    }
}
