//! Blocking work off the event loop. Every file and `/proc` read of the daemon, and every
//! ptrace, runs on a worker thread, never on the loop that answers the bus; a pool has a
//! fixed number of permits, so a stuck or hostile file costs at most one worker of one pool
//! and never the loop, and work that cannot get a permit in time is refused, not queued
//! forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Why a piece of work did not produce its result.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{what}: all {permits} workers are busy; try again")]
    Busy { what: String, permits: usize },
    #[error("{what}: no result within {after:?}")]
    TimedOut { what: String, after: Duration },
    #[error("{what}: the worker failed: {why}")]
    Failed { what: String, why: String },
}

/// A bounded pool of blocking workers.
#[derive(Clone, Debug)]
pub struct Workers {
    name: &'static str,
    permits: usize,
    sem: Arc<Semaphore>,
    /// How long work may wait for a permit.
    queue_wait: Duration,
    /// How long the caller waits for the result (the worker keeps its permit until the
    /// work really ends).
    run_wait: Duration,
}

impl Workers {
    pub fn new(
        name: &'static str,
        permits: usize,
        queue_wait: Duration,
        run_wait: Duration,
    ) -> Self {
        Workers {
            name,
            permits,
            sem: Arc::new(Semaphore::new(permits)),
            queue_wait,
            run_wait,
        }
    }

    /// Runs `f` on a worker thread and returns its result.
    pub async fn run<T, F>(&self, what: &str, f: F) -> Result<T, WorkerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let busy = || WorkerError::Busy {
            what: format!("{} ({})", what, self.name),
            permits: self.permits,
        };
        let permit = tokio::time::timeout(self.queue_wait, self.sem.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        });
        match tokio::time::timeout(self.run_wait, handle).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(WorkerError::Failed {
                what: what.to_string(),
                why: e.to_string(),
            }),
            Err(_) => Err(WorkerError::TimedOut {
                what: what.to_string(),
                after: self.run_wait,
            }),
        }
    }

    /// Permits free now (for tests and status).
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_worker_costs_its_permit_not_the_caller() {
        let w = Workers::new(
            "test",
            1,
            Duration::from_millis(50),
            Duration::from_millis(50),
        );
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = w.run("stuck", move || rx.recv().ok()).await;
        assert!(
            matches!(stuck, Err(WorkerError::TimedOut { .. })),
            "{stuck:?}"
        );
        assert_eq!(w.available(), 0, "the stuck work keeps its permit");
        let next = w.run("next", || 1).await;
        assert!(matches!(next, Err(WorkerError::Busy { .. })), "{next:?}");
        tx.send(()).unwrap();
        for _ in 0..100 {
            if w.available() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(w.run("after", || 2).await.unwrap(), 2);
    }
}
