//! Deleting expired records on an interval, for drivers whose store keeps them.
//!
//! The [driver contract](crate::driver#time) says a driver never *returns* an expired
//! record; it does not make one disappear. A store that expires entries by itself
//! (Redis, the built-in memory driver) needs nothing more. One that does not (a map,
//! a directory of files, a SQL table) keeps every abandoned session until something
//! deletes it, so such a driver offers a purge ("delete what has expired, say how
//! many") and the application runs it now and then. [`purge_every`] is that loop, as
//! the PostgreSQL driver's cleanup task runs it for its table:
//!
//! - the first run starts as soon as the task is polled, then one run every
//!   `interval` after the previous one ended (runs never overlap);
//! - a failed run is logged (`tracing`, target `sessionkit`, `warn`) and the next one
//!   is tried at the next interval; a run that deleted records is logged at `debug`;
//! - [`PurgeHandle::stop`] ends the loop and waits for it; dropping the handle ends
//!   it too, at its next wake-up. A run in flight always finishes first.
//!
//! It returns the loop as a future instead of spawning it, so it works with any
//! executor and needs no runtime feature of this crate: hand the future to
//! `tokio::spawn` (the loop waits with Tokio's timer, so run it on a Tokio runtime).
//!
//! ```
//! # use std::sync::Arc;
//! # use sessionkit::{DriverError, SharedClock};
//! # struct MyDriver;
//! # impl MyDriver {
//! #     fn new(_clock: SharedClock) -> Self { MyDriver }
//! #     async fn purge_expired(&self) -> Result<u64, DriverError> { Ok(0) }
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sessionkit::Registry;
//!
//! let mut registry = Registry::new();
//! let driver = Arc::new(MyDriver::new(registry.clock().clone()));
//! registry.register_shared_driver("mine", driver.clone())?;
//!
//! let (purge, purging) = sessionkit::cleanup::purge_every(Duration::from_secs(60), move || {
//!     let driver = driver.clone();
//!     async move { driver.purge_expired().await }
//! });
//! tokio::spawn(purge);
//!
//! // ... serve requests ...
//!
//! purging.stop().await; // at shutdown (or just drop `purging`)
//! # Ok(()) }
//! # impl sessionkit::Driver for MyDriver {
//! #     async fn load(&self, _: &sessionkit::StoreKey) -> Result<sessionkit::LoadResult, DriverError> { Ok(sessionkit::LoadResult::Missing) }
//! #     async fn create(&self, _: &sessionkit::StoreKey, _: &sessionkit::Record, _: sessionkit::Timestamp) -> Result<(), DriverError> { Ok(()) }
//! #     async fn patch(&self, _: &sessionkit::StoreKey, _: &sessionkit::Patch, _: sessionkit::Timestamp) -> Result<sessionkit::WriteResult, DriverError> { Ok(sessionkit::WriteResult::Gone) }
//! #     async fn touch(&self, _: &sessionkit::StoreKey, _: sessionkit::Timestamp, _: sessionkit::Timestamp) -> Result<sessionkit::WriteResult, DriverError> { Ok(sessionkit::WriteResult::Gone) }
//! #     async fn delete(&self, _: &sessionkit::StoreKey) -> Result<(), DriverError> { Ok(()) }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! The purge decides what has expired with the same clock and rule as every other call
//! of the driver: `now >= expires_at`, `now` from the registry's clock.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::driver::DriverError;

/// The shortest interval [`purge_every`] waits between runs; shorter ones are raised to
/// it.
pub const MIN_PURGE_INTERVAL: Duration = Duration::from_millis(1);

/// Runs `purge` right away and then every `interval` (after the previous run ended),
/// until the returned [`PurgeHandle`] is stopped or dropped. `purge` deletes the
/// expired records of a store and answers how many went (0 when it cannot tell).
///
/// Returns the loop, to be spawned (`tokio::spawn(future)`), and its handle. See the
/// [module documentation](self).
pub fn purge_every<F, Fut>(
    interval: Duration,
    mut purge: F,
) -> (impl Future<Output = ()> + Send + 'static, PurgeHandle)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, DriverError>> + Send + 'static,
{
    let interval = interval.max(MIN_PURGE_INTERVAL);
    let (stop, mut stopped) = watch::channel(false);
    // Never sent on: its receiver learns that the loop ended when it is dropped.
    let (running, finished) = watch::channel(());
    let task = async move {
        let _running = running;
        loop {
            // Stopped, or the handle dropped, before this run: no run.
            if *stopped.borrow() || stopped.has_changed().is_err() {
                return;
            }
            match purge().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(target: "sessionkit", purged, "purged expired sessions"),
                Err(err) => {
                    let cause = std::error::Error::source(&err).map(ToString::to_string);
                    tracing::warn!(target: "sessionkit", error = %err, cause, "purging expired sessions failed");
                }
            }
            // A stop signal, or the handle dropped: either ends the loop.
            if tokio::time::timeout(interval, stopped.changed()).await.is_ok() {
                return;
            }
        }
    };
    (task, PurgeHandle { stop, finished })
}

/// Controls a loop started by [`purge_every`]. Dropping it stops the loop at its next
/// wake-up (after a run in flight).
pub struct PurgeHandle {
    stop: watch::Sender<bool>,
    finished: watch::Receiver<()>,
}

impl PurgeHandle {
    /// Stops the loop and waits until it has ended: a run in flight finishes first, no
    /// further run starts. Returns at once when the loop has already ended or its
    /// future was dropped; waits while its future is neither polled nor dropped.
    pub async fn stop(mut self) {
        // The loop may have ended already; then there is nobody to tell.
        let _ = self.stop.send(true);
        // Nothing is ever sent: this returns when the loop drops its sender.
        let _ = self.finished.changed().await;
    }

    /// Whether the loop has ended (or its future was dropped).
    pub fn is_finished(&self) -> bool {
        self.finished.has_changed().is_err()
    }
}

impl fmt::Debug for PurgeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::*;

    const TICK: Duration = Duration::from_millis(10);

    /// A purge that counts its runs; every `fail_every`-th run fails.
    fn counting(
        fail_every: u64,
    ) -> (
        Arc<AtomicU64>,
        impl FnMut() -> std::future::Ready<Result<u64, DriverError>>,
    ) {
        let runs = Arc::new(AtomicU64::new(0));
        let counter = runs.clone();
        let purge = move || {
            let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(if fail_every != 0 && run.is_multiple_of(fail_every) {
                Err(DriverError::backend("the store refused"))
            } else {
                Ok(run)
            })
        };
        (runs, purge)
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn runs_at_once_then_on_the_interval_until_stopped() {
        let (runs, purge) = counting(0);
        let (task, handle) = purge_every(TICK, purge);
        let joined = tokio::spawn(task);
        wait_for("the first run", || runs.load(Ordering::SeqCst) >= 1).await;
        wait_for("three runs", || runs.load(Ordering::SeqCst) >= 3).await;
        assert!(!handle.is_finished());
        handle.stop().await;
        let after_stop = runs.load(Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), joined)
            .await
            .expect("the loop ended")
            .expect("no panic");
        tokio::time::sleep(TICK * 5).await;
        assert_eq!(runs.load(Ordering::SeqCst), after_stop, "no run after stop");
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_loop() {
        let (runs, purge) = counting(0);
        let (task, handle) = purge_every(TICK, purge);
        let joined = tokio::spawn(task);
        wait_for("two runs", || runs.load(Ordering::SeqCst) >= 2).await;
        drop(handle);
        tokio::time::timeout(Duration::from_secs(5), joined)
            .await
            .expect("the loop ended when its handle was dropped")
            .expect("no panic");
        let after = runs.load(Ordering::SeqCst);
        tokio::time::sleep(TICK * 5).await;
        assert_eq!(runs.load(Ordering::SeqCst), after);
    }

    #[tokio::test]
    async fn a_failed_run_is_retried_at_the_next_interval() {
        // Runs 2, 4, 6... fail; the loop goes on.
        let (runs, purge) = counting(2);
        let (task, handle) = purge_every(TICK, purge);
        tokio::spawn(task);
        wait_for("runs past several failures", || runs.load(Ordering::SeqCst) >= 5).await;
        handle.stop().await;
    }

    #[tokio::test]
    async fn stopped_before_it_ran_it_never_runs_and_zero_intervals_do_not_spin() {
        let (runs, purge) = counting(0);
        let (task, handle) = purge_every(Duration::ZERO, purge);
        let stopping = tokio::spawn(handle.stop());
        // The loop is polled only now, after the stop signal was sent.
        tokio::time::sleep(TICK).await;
        tokio::spawn(task).await.expect("no panic");
        stopping.await.expect("stop returned");
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        // A zero interval is raised to MIN_PURGE_INTERVAL: the loop still yields.
        let (runs, purge) = counting(0);
        let (task, handle) = purge_every(Duration::ZERO, purge);
        tokio::spawn(task);
        wait_for("a few runs", || runs.load(Ordering::SeqCst) >= 3).await;
        handle.stop().await;
        assert!(runs.load(Ordering::SeqCst) >= 3);
    }

    #[tokio::test]
    async fn stop_returns_when_the_loop_was_never_spawned() {
        let (_runs, purge) = counting(0);
        let (task, handle) = purge_every(TICK, purge);
        drop(task);
        assert!(handle.is_finished());
        tokio::time::timeout(Duration::from_secs(5), handle.stop())
            .await
            .expect("stop returns at once");
    }
}
