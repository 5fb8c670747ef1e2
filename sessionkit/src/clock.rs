//! Where the async layer gets `now` from: the system clock, or a manual clock in tests.
//!
//! The registry owns one [`SharedClock`]: [`SystemClock`] from
//! [`Registry::new`](crate::Registry::new), or the one given to
//! [`Registry::with_clock`](crate::Registry::with_clock); [`Registry::clock`](crate::Registry::clock)
//! returns it. It dates records, computes every expiry a driver is given, and the
//! built-in memory driver decides expiry with it. A driver of your own that decides
//! expiry itself takes the same clock (a clone of the `Arc`) when it is built, so that
//! both agree on `now` and a [`ManualClock`] in tests moves them together; see
//! [the driver docs](crate::driver#time).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sessionkit_core::Timestamp;

/// A source of the current time. The core never reads a clock; the async layer asks
/// this one, so tests can run every expiry in simulated time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock shared by the registry, its drivers and tests: clone the `Arc` to hand the
/// registry's clock to a driver.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }
}

/// A clock that only moves when told to. Clones share the same time, so one clock can
/// drive a registry ([`Registry::with_clock`](crate::Registry::with_clock)), its
/// drivers and the test that moves it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.as_millis())))
    }

    /// A clock standing at the current system time.
    pub fn starting_now() -> Self {
        ManualClock::new(SystemClock.now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
            Some(t.saturating_add(millis))
        });
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_millis(), Ordering::SeqCst);
    }

    /// This clock as a [`SharedClock`] (sharing the time with `self`).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_millis(1_000));
        other.advance(Duration::from_secs(2));
        assert_eq!(clock.now(), Timestamp::from_millis(3_000));
        clock.set(Timestamp::from_millis(5));
        assert_eq!(other.shared().now(), Timestamp::from_millis(5));
        assert!(SystemClock.now() > Timestamp::from_millis(1_600_000_000_000));
    }
}
