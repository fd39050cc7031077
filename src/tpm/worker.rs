//! One TPM, one thread: the daemon's TPM work runs on a dedicated thread that connects per
//! job, so calls are serialized (a TPM context is not reentrant, and without a resource
//! manager only one client may talk at a time) and a TPM that comes back after a restart
//! is simply used again. Transient "busy" answers are retried within a bound.
//!
//! Two queues: the daemon's own and privileged work (root, the signers group) goes first;
//! work asked for by callers who are not root waits behind it, and at most one such job is
//! queued or running at a time. So privileged work waits for at most the one unprivileged
//! job that is already on the TPM.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use tss_esapi::constants::response_code::Tss2ResponseCodeKind;

use super::TpmError;
use super::identity::Tpm;

/// Backoff between attempts when the TPM answers "busy"; the sum bounds the wait.
const BACKOFF_MS: [u64; 5] = [20, 50, 100, 250, 500];

type Job = Box<dyn FnOnce(&str) + Send>;

/// Who a job is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// The daemon itself, root, the signers group.
    Privileged,
    /// A caller who is not root: behind every privileged job, one at a time.
    Unprivileged,
}

#[derive(Default)]
struct Queues {
    privileged: VecDeque<Job>,
    unprivileged: VecDeque<Job>,
    /// An unprivileged job is queued or running.
    unprivileged_busy: bool,
    /// Live `TpmWorker` handles; the thread ends with the last.
    handles: usize,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

fn locked(s: &Shared) -> std::sync::MutexGuard<'_, Queues> {
    s.queues.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle to the TPM thread; cheap to clone.
pub struct TpmWorker {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                handles: 1,
                ..Queues::default()
            }),
            ready: Condvar::new(),
        });
        let (t, s) = (tcti.to_string(), shared.clone());
        thread::Builder::new()
            .name("hardend-tpm".into())
            .spawn(move || {
                loop {
                    let (job, unprivileged) = {
                        let mut q = locked(&s);
                        loop {
                            if let Some(j) = q.privileged.pop_front() {
                                break (j, false);
                            }
                            if let Some(j) = q.unprivileged.pop_front() {
                                break (j, true);
                            }
                            if q.closed {
                                return;
                            }
                            q = s.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    job(&t);
                    if unprivileged {
                        locked(&s).unprivileged_busy = false;
                    }
                }
            })
            .map_err(|source| TpmError::Io {
                path: "hardend-tpm thread".into(),
                source,
            })?;
        Ok(TpmWorker {
            shared,
            tcti: tcti.to_string(),
        })
    }

    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// Runs `f` on the TPM thread as privileged work (retrying transient answers) and
    /// awaits its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, TpmError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tpm) -> Result<T, TpmError> + Send + 'static,
    {
        self.run_as(Priority::Privileged, f).await
    }

    /// Runs `f` with `priority`. Unprivileged work is refused (`UnprivilegedBusy`) while
    /// another unprivileged job is queued or running.
    pub async fn run_as<T, F>(&self, priority: Priority, f: F) -> Result<T, TpmError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tpm) -> Result<T, TpmError> + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        self.enqueue(
            priority,
            Box::new(move |tcti| {
                let _ = done.send(with_retry(tcti, f));
            }),
        )?;
        result.await.map_err(|_| TpmError::WorkerGone)?
    }

    /// [`run`](Self::run) for a blocking thread (never on the async runtime's threads).
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T, TpmError>
    where
        T: Send + 'static,
        F: FnMut(&mut Tpm) -> Result<T, TpmError> + Send + 'static,
    {
        let (done, result) = std::sync::mpsc::channel();
        self.enqueue(
            Priority::Privileged,
            Box::new(move |tcti| {
                let _ = done.send(with_retry(tcti, f));
            }),
        )?;
        result.recv().map_err(|_| TpmError::WorkerGone)?
    }

    fn enqueue(&self, priority: Priority, job: Job) -> Result<(), TpmError> {
        {
            let mut q = locked(&self.shared);
            if q.closed {
                return Err(TpmError::WorkerGone);
            }
            match priority {
                Priority::Privileged => q.privileged.push_back(job),
                Priority::Unprivileged => {
                    if q.unprivileged_busy {
                        return Err(TpmError::UnprivilegedBusy);
                    }
                    q.unprivileged_busy = true;
                    q.unprivileged.push_back(job);
                }
            }
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for TpmWorker {
    fn clone(&self) -> Self {
        locked(&self.shared).handles += 1;
        TpmWorker {
            shared: self.shared.clone(),
            tcti: self.tcti.clone(),
        }
    }
}

/// The thread ends when the last handle goes (a reload to another TCTI, shutdown).
impl Drop for TpmWorker {
    fn drop(&mut self) {
        let mut q = locked(&self.shared);
        q.handles -= 1;
        if q.handles == 0 {
            q.closed = true;
            drop(q);
            self.shared.ready.notify_all();
        }
    }
}
