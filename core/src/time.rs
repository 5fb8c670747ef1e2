//! Timestamps as the core sees them: milliseconds since the Unix epoch.
//!
//! The core never reads a clock. Every `now` is an argument; this type only converts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole milliseconds since the Unix epoch.
///
/// Records, sealed cookies and store expiries all use this one representation, so a
/// timestamp written by one machine means the same instant to every other.
///
/// Every deadline is exclusive: something that expires at `expires_at` is expired at
/// `now` when `now >= expires_at`, live up to the millisecond before. The core's
/// deadlines, the built-in drivers and the driver contract all use this rule.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The latest representable instant; used as "never" by arithmetic that saturates,
    /// so it can arrive as a store expiry. A store whose expiry type is narrower clamps
    /// it to its own latest instant (a signed 64-bit millisecond count: `i64::MAX`),
    /// never converts it with a wrapping cast, which would put it in the past.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Converts a wall-clock time; instants before the epoch become the epoch.
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            // Seconds times 1000 cannot overflow before the year 584 million; saturate
            // anyway rather than trust it.
            Ok(since) => Timestamp(
                since
                    .as_secs()
                    .saturating_mul(1000)
                    .saturating_add(u64::from(since.subsec_millis())),
            ),
            Err(_) => Timestamp::EPOCH,
        }
    }

    /// The same instant as a [`SystemTime`] (saturating at the platform's maximum).
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(self.0))
            .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is; zero if it is not later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Timestamp::from_system_time(time)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        time.to_system_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_saturates() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(5)),
            Timestamp::EPOCH
        );
        assert_eq!(
            Timestamp::MAX.saturating_add(Duration::from_secs(1)),
            Timestamp::MAX
        );
        assert_eq!(t.saturating_since(Timestamp::MAX), Duration::ZERO);
        assert_eq!(
            t.saturating_add(Duration::from_secs(2)).saturating_since(t),
            Duration::from_secs(2)
        );
    }
}
