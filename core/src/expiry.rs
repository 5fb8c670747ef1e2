//! Session lifetimes: the absolute `ttl`, the `idle_timeout`, when an idle refresh
//! ("touch") is due, when an id is renewed, and the per-session narrowing of all of
//! these ([`SessionLifetime`]).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::time::Timestamp;

/// The default share of the idle budget that must be used up before a touch is written.
pub const DEFAULT_TOUCH_SHARE: f64 = 0.2;
/// The default grace window of a renewed id ([`ExpiryPolicy::with_renewal`]).
pub const DEFAULT_RENEW_GRACE: Duration = Duration::from_secs(5);
/// The longest grace window a renewed id may keep: a grace window is for requests
/// already in flight, not a second lifetime.
pub const MAX_RENEW_GRACE: Duration = Duration::from_secs(60);
/// The `Max-Age` of a persistent cookie of an idle-only session (no absolute lifetime):
/// 400 days, the longest lifetime browsers keep a cookie for (RFC 6265bis caps
/// `Max-Age` there). The server still ends the session after its idle timeout.
pub const IDLE_ONLY_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// When sessions expire, when reading one refreshes it, and when its id is renewed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryPolicy {
    ttl: Option<Duration>,
    idle_timeout: Option<Duration>,
    touch_share: f64,
    renew_after: Option<Duration>,
    renew_grace: Duration,
}

/// Why a session is no longer valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiredBy {
    /// Older than `ttl` since creation (or past its per-session deadline).
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
    /// A session without an absolute lifetime needs an idle timeout, or it would never
    /// end.
    #[error("a session without an absolute lifetime (ttl = \"none\") needs an idle_timeout")]
    NoLifetime,
    /// `renew_after` must be positive.
    #[error("renew_after must be longer than zero")]
    ZeroRenewAfter,
    /// The grace window is longer than [`MAX_RENEW_GRACE`].
    #[error("renew_grace may be at most 60 seconds, got {0:?}")]
    GraceTooLong(Duration),
}

/// A per-session lifetime that would exceed what the session's configuration allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// A per-session lifetime must be positive.
    #[error("a per-session {what} must be longer than zero")]
    Zero {
        /// `ttl` or `idle_timeout`.
        what: &'static str,
    },
    /// Longer than the configured one: a session can only be given a shorter lifetime
    /// than its definition's.
    #[error("a per-session {what} of {requested:?} exceeds the configured {limit:?}")]
    TooLong {
        /// `ttl` or `idle_timeout`.
        what: &'static str,
        /// What was asked for.
        requested: Duration,
        /// The configured bound.
        limit: Duration,
    },
}

/// The lifetime choices made for one session, kept in its record (and inside sealed
/// cookies) under a reserved key, so every driver stores them without knowing about
/// them and every later request enforces them.
///
/// Everything here can only narrow the session's configured [`ExpiryPolicy`]: a
/// shorter `ttl` or `idle_timeout`, an absolute deadline, and whether its cookie is
/// persistent (`Max-Age`) or a browser-session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionLifetime {
    persistent: Option<bool>,
    ttl: Option<Duration>,
    idle_timeout: Option<Duration>,
    deadline: Option<Timestamp>,
    id_issued: Option<Timestamp>,
}

/// When a session expires, from its times and its lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deadlines {
    /// The absolute deadline: creation plus `ttl`, or the per-session deadline if
    /// earlier. `None` for an idle-only session.
    pub absolute: Option<Timestamp>,
    /// The idle deadline: last use plus `idle_timeout`. `None` without an idle timeout.
    pub idle: Option<Timestamp>,
}

impl Deadlines {
    /// The earlier of the two: when the session expires unless used before.
    pub fn expires_at(&self) -> Timestamp {
        match (self.absolute, self.idle) {
            (Some(a), Some(i)) => a.min(i),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => Timestamp::MAX,
        }
    }

    /// The `Max-Age` a persistent cookie gets at `now`: until the absolute deadline, or
    /// [`IDLE_ONLY_COOKIE_AGE`] for an idle-only session.
    pub fn cookie_max_age(&self, now: Timestamp) -> Duration {
        self.absolute
            .map_or(IDLE_ONLY_COOKIE_AGE, |a| a.saturating_since(now))
    }

    /// Whether the session has expired at `now`, and why: absolute first when both
    /// apply. `now >= deadline` is expired.
    pub fn check(&self, now: Timestamp) -> Option<ExpiredBy> {
        if self.absolute.is_some_and(|a| now >= a) {
            return Some(ExpiredBy::Absolute);
        }
        if self.idle.is_some_and(|i| now >= i) {
            return Some(ExpiredBy::Idle);
        }
        None
    }
}

/// Why stored lifetime metadata is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's stored lifetime metadata is malformed")]
#[non_exhaustive]
pub struct LifetimeDecodeError;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SessionLifetime {
    /// Whether the cookie is persistent: the per-session choice, else `default`.
    pub fn persistent_or(&self, default: bool) -> bool {
        self.persistent.unwrap_or(default)
    }

    /// The per-session persistence choice, if one was made.
    pub fn persistent(&self) -> Option<bool> {
        self.persistent
    }

    /// The per-session `ttl`, if set.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The per-session `idle_timeout`, if set.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The per-session absolute deadline, if set.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// When the current id was issued, if it was renewed or regenerated since the
    /// session was created (otherwise the creation time is the id's age).
    pub fn id_issued(&self) -> Option<Timestamp> {
        self.id_issued
    }

    pub(crate) fn set_persistent(&mut self, persistent: bool) {
        self.persistent = Some(persistent);
    }

    pub(crate) fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = Some(ttl);
    }

    pub(crate) fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle_timeout = Some(idle);
    }

    pub(crate) fn set_deadline(&mut self, deadline: Timestamp) {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
    }

    pub(crate) fn set_id_issued(&mut self, at: Timestamp) {
        self.id_issued = Some(at);
    }

    /// Whether nothing was chosen (nothing needs storing).
    pub fn is_default(&self) -> bool {
        *self == SessionLifetime::default()
    }

    /// The stored form: a JSON object with the fields that are set (`persistent`,
    /// `ttl`, `idle`, `until`, `id_at`; durations and instants in milliseconds).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(p) = self.persistent {
            map.insert("persistent".into(), Value::Bool(p));
        }
        for (name, value) in [
            ("ttl", self.ttl.map(millis)),
            ("idle", self.idle_timeout.map(millis)),
            ("until", self.deadline.map(Timestamp::as_millis)),
            ("id_at", self.id_issued.map(Timestamp::as_millis)),
        ] {
            if let Some(value) = value {
                map.insert(name.into(), Value::from(value));
            }
        }
        Value::Object(map)
    }

    /// Reads what [`to_value`](Self::to_value) wrote; `None` (no stored choices) is the
    /// default.
    ///
    /// # Errors
    /// [`LifetimeDecodeError`] for anything else: an unknown field, a wrong type, a
    /// zero lifetime. Sessions treat such a record as corrupt.
    pub fn from_value(value: Option<&Value>) -> Result<Self, LifetimeDecodeError> {
        let Some(value) = value else {
            return Ok(SessionLifetime::default());
        };
        let Value::Object(map) = value else {
            return Err(LifetimeDecodeError);
        };
        let mut life = SessionLifetime::default();
        for (name, value) in map {
            let number = || value.as_u64().ok_or(LifetimeDecodeError);
            let positive = || {
                number()
                    .and_then(|ms| if ms == 0 { Err(LifetimeDecodeError) } else { Ok(ms) })
                    .map(Duration::from_millis)
            };
            match name.as_str() {
                "persistent" => life.persistent = Some(value.as_bool().ok_or(LifetimeDecodeError)?),
                "ttl" => life.ttl = Some(positive()?),
                "idle" => life.idle_timeout = Some(positive()?),
                "until" => life.deadline = Some(Timestamp::from_millis(number()?)),
                "id_at" => life.id_issued = Some(Timestamp::from_millis(number()?)),
                _ => return Err(LifetimeDecodeError),
            }
        }
        Ok(life)
    }
}

impl ExpiryPolicy {
    /// A policy with an absolute lifetime, an optional idle timeout, the default touch
    /// share (20%) and no renewal.
    ///
    /// # Errors
    /// [`ExpiryError::ZeroTtl`] for a zero `ttl`. A zero idle timeout means none.
    pub fn new(ttl: Duration, idle_timeout: Option<Duration>) -> Result<Self, ExpiryError> {
        if ttl.is_zero() {
            return Err(ExpiryError::ZeroTtl);
        }
        Ok(ExpiryPolicy {
            ttl: Some(ttl),
            idle_timeout: idle_timeout.filter(|d| !d.is_zero()),
            touch_share: DEFAULT_TOUCH_SHARE,
            renew_after: None,
            renew_grace: DEFAULT_RENEW_GRACE,
        })
    }

    /// A policy with no absolute lifetime: the session lives while it is used at least
    /// every `idle_timeout` ("stay signed in while active"). In TOML: `ttl = "none"`.
    /// A persistent cookie then gets a `Max-Age` of [`IDLE_ONLY_COOKIE_AGE`]; combine it
    /// with [`with_renewal`](Self::with_renewal) so long-lived sessions still change id.
    ///
    /// # Errors
    /// [`ExpiryError::NoLifetime`] for a zero idle timeout.
    pub fn idle_only(idle_timeout: Duration) -> Result<Self, ExpiryError> {
        if idle_timeout.is_zero() {
            return Err(ExpiryError::NoLifetime);
        }
        Ok(ExpiryPolicy {
            ttl: None,
            idle_timeout: Some(idle_timeout),
            touch_share: DEFAULT_TOUCH_SHARE,
            renew_after: None,
            renew_grace: DEFAULT_RENEW_GRACE,
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

    /// Renews the session id once it is older than `renew_after` (`None`: never), on
    /// the next request, keeping the data and the creation time. The old id keeps
    /// working for `grace` for requests already in flight, on drivers that keep
    /// forwards (see the driver contract); `regenerate()` never has a grace window.
    ///
    /// # Errors
    /// [`ExpiryError::ZeroRenewAfter`], or [`ExpiryError::GraceTooLong`] past
    /// [`MAX_RENEW_GRACE`].
    pub fn with_renewal(
        mut self,
        renew_after: Option<Duration>,
        grace: Duration,
    ) -> Result<Self, ExpiryError> {
        if renew_after.is_some_and(|d| d.is_zero()) {
            return Err(ExpiryError::ZeroRenewAfter);
        }
        if grace > MAX_RENEW_GRACE {
            return Err(ExpiryError::GraceTooLong(grace));
        }
        self.renew_after = renew_after;
        self.renew_grace = grace;
        Ok(self)
    }

    /// The absolute lifetime; `None` for an idle-only policy.
    pub fn ttl(&self) -> Option<Duration> {
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

    /// After how long an id is renewed, if ever.
    pub fn renew_after(&self) -> Option<Duration> {
        self.renew_after
    }

    /// How long a renewed id keeps working for requests in flight.
    pub fn renew_grace(&self) -> Duration {
        self.renew_grace
    }

    /// Checks a per-session `ttl` against this policy: positive and no longer than the
    /// configured one (any length for an idle-only policy).
    ///
    /// # Errors
    /// [`LifetimeError`].
    pub fn check_ttl(&self, ttl: Duration) -> Result<(), LifetimeError> {
        bounded("ttl", ttl, self.ttl)
    }

    /// Checks a per-session `idle_timeout` against this policy: positive and no longer
    /// than the configured one (any length when none is configured).
    ///
    /// # Errors
    /// [`LifetimeError`].
    pub fn check_idle_timeout(&self, idle: Duration) -> Result<(), LifetimeError> {
        bounded("idle_timeout", idle, self.idle_timeout)
    }

    /// The deadlines of a session created at `created`, last used at `last_seen`, with
    /// its per-session choices `life`: each per-session value narrows the configured
    /// one, never widens it.
    pub fn deadlines(&self, created: Timestamp, last_seen: Timestamp, life: &SessionLifetime) -> Deadlines {
        let ttl = min_opt(self.ttl, life.ttl);
        let absolute = min_opt(ttl.map(|ttl| created.saturating_add(ttl)), life.deadline);
        let idle = min_opt(self.idle_timeout, life.idle_timeout).map(|idle| last_seen.saturating_add(idle));
        Deadlines { absolute, idle }
    }

    /// The instant a session created at `created` and last seen at `last_seen` expires:
    /// the earlier of `created + ttl` and `last_seen + idle_timeout`.
    pub fn expires_at(&self, created: Timestamp, last_seen: Timestamp) -> Timestamp {
        self.deadlines(created, last_seen, &SessionLifetime::default())
            .expires_at()
    }

    /// Whether the session has expired at `now`, and why. Absolute expiry is reported
    /// first when both apply. Expiry is monotonic: once expired, later `now`s stay
    /// expired.
    pub fn check(&self, created: Timestamp, last_seen: Timestamp, now: Timestamp) -> Option<ExpiredBy> {
        self.deadlines(created, last_seen, &SessionLifetime::default())
            .check(now)
    }

    /// Whether a read at `now` should refresh last-seen: only with an idle timeout, and
    /// only once `touch_share` of it has passed since `last_seen`.
    pub fn touch_due(&self, last_seen: Timestamp, now: Timestamp) -> bool {
        self.touch_due_for(last_seen, now, &SessionLifetime::default())
    }

    /// [`touch_due`](Self::touch_due) with the session's own idle timeout.
    pub fn touch_due_for(&self, last_seen: Timestamp, now: Timestamp, life: &SessionLifetime) -> bool {
        match min_opt(self.idle_timeout, life.idle_timeout) {
            Some(idle) => now.saturating_since(last_seen) >= idle.mul_f64(self.touch_share),
            None => false,
        }
    }

    /// Whether an id issued at `issued` is due for renewal at `now`.
    pub fn renew_due(&self, issued: Timestamp, now: Timestamp) -> bool {
        self.renew_after
            .is_some_and(|after| now.saturating_since(issued) >= after)
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn bounded(what: &'static str, requested: Duration, limit: Option<Duration>) -> Result<(), LifetimeError> {
    if requested.is_zero() {
        return Err(LifetimeError::Zero { what });
    }
    match limit {
        Some(limit) if requested > limit => Err(LifetimeError::TooLong {
            what,
            requested,
            limit,
        }),
        _ => Ok(()),
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
