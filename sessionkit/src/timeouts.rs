//! Timeouts and retries for network drivers, shared by `sessionkit-redis`,
//! `sessionkit-postgres` and any third-party driver that talks to a server.
//!
//! The [driver contract](crate::driver) wants a store that is down to fail fast with
//! [`DriverError::Unavailable`] (a 503), and to work again once the store is back. Two
//! helpers carry that out the same way in every driver:
//!
//! - [`bounded`] caps one whole driver call (waiting for a connection, retries and
//!   all) at the driver's *operation timeout*; a call that takes longer fails with
//!   [`DriverError::Unavailable`] whose source is a [`TimedOut`].
//! - [`retry`] runs one attempt and, while the driver's own predicate says the failure
//!   left nothing applied (a dead pooled connection, a refused reconnect), runs it
//!   again, at most a given number of extra times.
//!
//! Driver settings use one vocabulary: `connect_timeout` bounds opening a connection,
//! `operation_timeout` bounds one driver call (see [`bounded`]), and a driver whose
//! client has a per-command bound calls it `response_timeout`.
//!
//! ```
//! use std::time::Duration;
//! use sessionkit::DriverError;
//! use sessionkit::timeouts::{TimedOut, bounded, retry};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // A client call that fails once on a dead connection, then succeeds.
//! let mut dead = true;
//! let answer = bounded("Example", Duration::from_secs(1), async {
//!     retry(
//!         1,
//!         || {
//!             let was_dead = std::mem::replace(&mut dead, false);
//!             async move { if was_dead { Err("connection reset") } else { Ok(42) } }
//!         },
//!         |err| *err == "connection reset",
//!     )
//!     .await
//!     .map_err(DriverError::unavailable)
//! })
//! .await;
//! assert_eq!(answer.unwrap(), 42);
//!
//! // A call that hangs is cut off.
//! let hung = bounded("Example", Duration::from_millis(10), std::future::pending::<Result<(), DriverError>>());
//! let Err(DriverError::Unavailable(source)) = hung.await else { panic!("not cut off") };
//! assert_eq!(source.downcast_ref::<TimedOut>().unwrap().limit(), Duration::from_millis(10));
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use crate::DriverError;

/// A driver call that did not finish within the driver's operation timeout; found as
/// the source of [`DriverError::Unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{store} did not answer within {limit:?}")]
pub struct TimedOut {
    store: &'static str,
    limit: Duration,
}

impl TimedOut {
    /// `store` (a product name such as `"Redis"`) did not answer within `limit`.
    pub fn new(store: &'static str, limit: Duration) -> Self {
        TimedOut { store, limit }
    }

    /// The store that did not answer, as named by its driver.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// The timeout that ran out.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// Runs `call` bounded by `limit`: its own result if it finishes in time, else
/// [`DriverError::Unavailable`] with a [`TimedOut`] naming `store` as its source. The
/// call is dropped at the deadline; a command it had already sent may still run on the
/// server.
///
/// Needs a Tokio runtime with its time driver enabled (as every Tokio runtime an
/// application server builds has).
///
/// # Errors
/// The error of `call`, or [`DriverError::Unavailable`] when it took longer than
/// `limit`.
pub async fn bounded<T>(
    store: &'static str,
    limit: Duration,
    call: impl Future<Output = Result<T, DriverError>>,
) -> Result<T, DriverError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(DriverError::unavailable(TimedOut::new(store, limit))))
}

/// Runs `attempt`, and runs it again (at most `retries` more times) while it fails with
/// an error for which `should_retry` holds. Returns the first success, or the last
/// error.
///
/// `should_retry` must hold only for failures that left nothing applied, or for
/// idempotent calls: the helper cannot know which calls are safe to repeat. Retries
/// follow each other at once; bound the whole with [`bounded`].
///
/// # Errors
/// The error of the last attempt.
pub async fn retry<T, E, F, Fut>(
    retries: usize,
    mut attempt: F,
    mut should_retry: impl FnMut(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut left = retries;
    loop {
        match attempt().await {
            Err(err) if left > 0 && should_retry(&err) => left -= 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn retry_stops_at_the_limit_and_on_final_errors() {
        let calls = Cell::new(0);
        let result: Result<(), &str> = block_on(retry(
            2,
            || {
                calls.set(calls.get() + 1);
                async { Err("dead") }
            },
            |_| true,
        ));
        assert_eq!((result, calls.get()), (Err("dead"), 3));

        calls.set(0);
        let result: Result<(), &str> = block_on(retry(
            5,
            || {
                calls.set(calls.get() + 1);
                async { Err("refused") }
            },
            |err| *err == "dead",
        ));
        assert_eq!((result, calls.get()), (Err("refused"), 1));
    }

    #[test]
    fn bounded_passes_results_through_and_cuts_off_hung_calls() {
        let fine = block_on(bounded("Test", Duration::from_secs(5), async { Ok(7) }));
        assert_eq!(fine.expect("in time"), 7);
        let failed = block_on(bounded::<()>("Test", Duration::from_secs(5), async {
            Err(DriverError::Duplicate)
        }));
        assert!(matches!(failed, Err(DriverError::Duplicate)));
        let hung = block_on(bounded::<()>(
            "Test",
            Duration::from_millis(5),
            std::future::pending(),
        ));
        let Err(DriverError::Unavailable(source)) = hung else {
            panic!("not cut off: {hung:?}")
        };
        let timed_out = source.downcast_ref::<TimedOut>().expect("a TimedOut source");
        assert_eq!(timed_out.store(), "Test");
        assert_eq!(timed_out.to_string(), "Test did not answer within 5ms");
    }
}
