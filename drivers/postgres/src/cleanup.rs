//! The background task that deletes expired rows.

use std::fmt;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::driver::PostgresDriver;
use crate::error::SetupError;

/// The default pause between cleanup runs.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);
/// The default number of rows one cleanup statement deletes at most.
pub const DEFAULT_CLEANUP_BATCH: u32 = 1_000;

/// How the cleanup task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupConfig {
    /// The pause between runs (default 60 s). Each run deletes every expired row, in
    /// batches.
    pub interval: Duration,
    /// The most rows one statement deletes (default 1000). Smaller batches hold row
    /// locks for less time; the table itself is never locked.
    pub batch_size: u32,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        CleanupConfig {
            interval: DEFAULT_CLEANUP_INTERVAL,
            batch_size: DEFAULT_CLEANUP_BATCH,
        }
    }
}

/// The running cleanup task. Call [`stop`](CleanupHandle::stop) at shutdown; dropping
/// the handle also stops the task, at its next wake-up.
pub struct CleanupHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for CleanupHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CleanupHandle")
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl CleanupHandle {
    /// Stops the task and waits for it: a batch in flight finishes first (bounded by
    /// the driver's query timeout); no further batch starts.
    pub async fn stop(mut self) {
        // The task may have ended already; then there is nobody to tell.
        let _ = self.stop.send(true);
        // A task that panicked or was cancelled has stopped too.
        let _ = (&mut self.task).await;
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl PostgresDriver {
    /// Starts the task that deletes expired rows: every `config.interval`, it runs
    /// [`delete_expired`](PostgresDriver::delete_expired) (first run right away).
    /// Failures are logged (`tracing`, target `sessionkit_postgres`) and retried at the
    /// next run. Run it in one or in every instance of the application: concurrent
    /// runs skip each other's rows.
    ///
    /// # Errors
    /// [`SetupError::NoRuntime`] outside a Tokio runtime; [`SetupError::Setting`] for
    /// a zero interval.
    pub fn start_cleanup(&self, config: CleanupConfig) -> Result<CleanupHandle, SetupError> {
        if config.interval.is_zero() {
            return Err(SetupError::Setting("the cleanup interval must not be zero"));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SetupError::NoRuntime)?;
        let (stop, mut stopped) = watch::channel(false);
        let driver = self.clone();
        let task = runtime.spawn(async move {
            loop {
                // Stop when asked or when the handle is gone.
                let keep_going = || !*stopped.borrow() && stopped.has_changed().is_ok();
                match driver.delete_expired_while(config.batch_size, keep_going).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        tracing::debug!(target: "sessionkit_postgres", deleted, table = driver.table(), "deleted expired sessions");
                    }
                    Err(err) => {
                        let cause = std::error::Error::source(&err).map(ToString::to_string);
                        tracing::warn!(target: "sessionkit_postgres", error = %err, cause, table = driver.table(), "session cleanup failed");
                    }
                }
                // A stop signal, or the handle dropped: either ends the task.
                if tokio::time::timeout(config.interval, stopped.changed()).await.is_ok() {
                    return;
                }
            }
        });
        Ok(CleanupHandle { stop, task })
    }
}
