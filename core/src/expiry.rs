//! Session lifetimes: the absolute `ttl`, the `idle_timeout`, and when an idle refresh
//! ("touch") is due.

use std::time::Duration;

use crate::time::Timestamp;

/// The default share of the idle budget that must be used up before a touch is written.
pub const DEFAULT_TOUCH_SHARE: f64 = 0.2;

/// When sessions expire, and when reading one refreshes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryPolicy {
    ttl: Duration,
    idle_timeout: Option<Duration>,
    touch_share: f64,
}

/// Why a session is no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiredBy {
    /// Older than `ttl` since creation.
    Absolute,
    /// Unused for `idle_timeout`.
    Idle,
}

impl ExpiredBy {
    /// A short, fixed name (`absolute`, `idle`), for metric labels and log fields.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExpiredBy::Absolute => "absolute",
            ExpiredBy::Idle => "idle",
        }
    }
}

/// An invalid lifetime setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryError {
    /// `ttl` must be positive.
    #[error("ttl must be longer than zero")]
    ZeroTtl,
    /// The touch share must be within 0.0 and 1.0.
    #[error("touch_share must be between 0.0 and 1.0, got {0}")]
    TouchShare(f64),
}

impl ExpiryPolicy {
    /// A policy with an absolute lifetime, an optional idle timeout and the default
    /// touch share (20%).
    ///
    /// # Errors
    /// [`ExpiryError::ZeroTtl`] for a zero `ttl`. A zero idle timeout means none.
    pub fn new(ttl: Duration, idle_timeout: Option<Duration>) -> Result<Self, ExpiryError> {
        if ttl.is_zero() {
            return Err(ExpiryError::ZeroTtl);
        }
        Ok(ExpiryPolicy {
            ttl,
            idle_timeout: idle_timeout.filter(|d| !d.is_zero()),
            touch_share: DEFAULT_TOUCH_SHARE,
        })
    }

    /// Sets the share of the idle budget after which a read writes a touch: 0.0 touches
    /// on every request, 1.0 never touches before the session would expire.
    ///
    /// # Errors
    /// [`ExpiryError::TouchShare`] outside `0.0..=1.0` (or NaN).
    pub fn with_touch_share(mut self, share: f64) -> Result<Self, ExpiryError> {
        if !(0.0..=1.0).contains(&share) {
            return Err(ExpiryError::TouchShare(share));
        }
        self.touch_share = share;
        Ok(self)
    }

    /// The absolute lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The touch share.
    pub fn touch_share(&self) -> f64 {
        self.touch_share
    }

    /// The instant a session created at `created` and last seen at `last_seen` expires:
    /// the earlier of `created + ttl` and `last_seen + idle_timeout`.
    pub fn expires_at(&self, created: Timestamp, last_seen: Timestamp) -> Timestamp {
        let absolute = created.saturating_add(self.ttl);
        match self.idle_timeout {
            Some(idle) => absolute.min(last_seen.saturating_add(idle)),
            None => absolute,
        }
    }

    /// Whether the session has expired at `now`, and why. Absolute expiry is reported
    /// first when both apply. Expiry is monotonic: once expired, later `now`s stay
    /// expired.
    pub fn check(&self, created: Timestamp, last_seen: Timestamp, now: Timestamp) -> Option<ExpiredBy> {
        if now >= created.saturating_add(self.ttl) {
            return Some(ExpiredBy::Absolute);
        }
        match self.idle_timeout {
            Some(idle) if now >= last_seen.saturating_add(idle) => Some(ExpiredBy::Idle),
            _ => None,
        }
    }

    /// Whether a read at `now` should refresh last-seen: only with an idle timeout, and
    /// only once `touch_share` of it has passed since `last_seen`.
    pub fn touch_due(&self, last_seen: Timestamp, now: Timestamp) -> bool {
        match self.idle_timeout {
            Some(idle) => now.saturating_since(last_seen) >= idle.mul_f64(self.touch_share),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn ts(minutes: u64) -> Timestamp {
        Timestamp::from_millis(minutes * MIN)
    }

    fn policy() -> ExpiryPolicy {
        ExpiryPolicy::new(Duration::from_secs(24 * 3600), Some(Duration::from_secs(30 * 60))).expect("valid")
    }

    #[test]
    fn expiry_table() {
        let p = policy();
        // (created, last_seen, now) in minutes → expected
        let cases = [
            (0, 0, 0, None),
            (0, 0, 29, None),
            (0, 0, 30, Some(ExpiredBy::Idle)),
            (0, 1420, 1439, None),
            (0, 1439, 1440, Some(ExpiredBy::Absolute)),
            (0, 1439, 1470, Some(ExpiredBy::Absolute)),
            (100, 100, 50, None),
        ];
        for (created, seen, now, expected) in cases {
            assert_eq!(
                p.check(ts(created), ts(seen), ts(now)),
                expected,
                "{created} {seen} {now}"
            );
        }
        assert_eq!(p.expires_at(ts(0), ts(10)), ts(40));
        assert_eq!(p.expires_at(ts(0), ts(1430)), ts(1440));
    }

    #[test]
    fn touch_is_throttled_by_share() {
        let p = policy();
        assert!(!p.touch_due(ts(0), ts(5)));
        assert!(p.touch_due(ts(0), ts(6)));
        let every = p.with_touch_share(0.0).expect("valid");
        assert!(every.touch_due(ts(0), ts(0)));
        let no_idle = ExpiryPolicy::new(Duration::from_secs(60), None).expect("valid");
        assert!(!no_idle.touch_due(ts(0), ts(1000)));
        assert_eq!(no_idle.check(ts(0), ts(0), ts(1)), Some(ExpiredBy::Absolute));
    }

    #[test]
    fn invalid_settings() {
        assert_eq!(ExpiryPolicy::new(Duration::ZERO, None), Err(ExpiryError::ZeroTtl));
        assert!(policy().with_touch_share(1.5).is_err());
        assert!(policy().with_touch_share(f64::NAN).is_err());
        assert_eq!(
            ExpiryPolicy::new(Duration::from_secs(1), Some(Duration::ZERO))
                .expect("valid")
                .idle_timeout(),
            None
        );
    }
}
