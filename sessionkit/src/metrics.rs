//! Session counters through the [`metrics`](https://docs.rs/metrics) facade, behind the
//! `metrics` feature; without it every function here is empty and compiles to nothing.
//!
//! The names and labels are documented in the crate docs ("Logging and metrics"). Label
//! values are only configured names (the session and driver names) and fixed reason
//! words, never request input, ids or cookie values, so their cardinality is bounded by
//! the configuration.

use sessionkit_core::{Event, SessionName, SessionSpec};

use crate::driver::DriverError;

/// Sessions created (a new record, or a new sealed cookie).
pub(crate) const CREATED: &str = "sessionkit_sessions_created_total";
/// Session ids replaced (server-side sessions).
pub(crate) const REGENERATED: &str = "sessionkit_sessions_regenerated_total";
/// Sessions destroyed.
pub(crate) const DESTROYED: &str = "sessionkit_sessions_destroyed_total";
/// Requests presenting an expired session, by `reason`.
pub(crate) const EXPIRED: &str = "sessionkit_sessions_expired_total";
/// Session cookies refused, by `reason`.
pub(crate) const COOKIES_REJECTED: &str = "sessionkit_cookies_rejected_total";
/// Stored records that did not decode.
pub(crate) const RECORDS_CORRUPT: &str = "sessionkit_records_corrupt_total";
/// Failed driver calls, by `operation` and `kind`.
pub(crate) const STORE_ERRORS: &str = "sessionkit_store_errors_total";
/// Saves dropped because the session ended while the request ran.
pub(crate) const SAVES_DROPPED: &str = "sessionkit_saves_dropped_total";

/// Counts one core event of session `name`.
pub(crate) fn event(name: &SessionName, spec: &SessionSpec, event: &Event) {
    let (counter, reason) = match event {
        Event::Created { .. } => (CREATED, None),
        Event::Regenerated { .. } => (REGENERATED, None),
        Event::Destroyed { .. } => (DESTROYED, None),
        Event::Expired { by, .. } => (EXPIRED, Some(by.as_str())),
        // A validly signed id whose record is gone without a tombstone: expired on a
        // store that keeps none, or ended by another request, evicted, or lost.
        Event::Unknown { .. } => (EXPIRED, Some("unknown")),
        Event::CookieRejected { reason } => (COOKIES_REJECTED, Some(reason.as_str())),
        Event::CorruptRecord { .. } => (RECORDS_CORRUPT, None),
        Event::Revoked { .. } => (COOKIES_REJECTED, Some("revoked")),
        _ => return,
    };
    match reason {
        Some(reason) => count(counter, name, spec, &[("reason", reason)]),
        None => count(counter, name, spec, &[]),
    }
}

/// Counts a failed driver call.
pub(crate) fn store_error(
    name: &SessionName,
    spec: &SessionSpec,
    operation: &'static str,
    error: &DriverError,
) {
    let kind = match error {
        DriverError::Unavailable(_) => "unavailable",
        DriverError::Duplicate => "duplicate",
        DriverError::Backend(_) => "backend",
        DriverError::Closed => "closed",
        DriverError::Unsupported(_) => "unsupported",
    };
    count(
        STORE_ERRORS,
        name,
        spec,
        &[("operation", operation), ("kind", kind)],
    );
}

/// Counts a save dropped by the no-resurrection rule.
pub(crate) fn save_dropped(name: &SessionName, spec: &SessionSpec) {
    count(SAVES_DROPPED, name, spec, &[]);
}

#[cfg(feature = "metrics")]
fn count(
    counter: &'static str,
    name: &SessionName,
    spec: &SessionSpec,
    extra: &[(&'static str, &'static str)],
) {
    use ::metrics::Label;

    let mut labels = Vec::with_capacity(2 + extra.len());
    labels.push(Label::new("session", name.as_str().to_owned()));
    labels.push(Label::new("driver", spec.def().driver.as_str().to_owned()));
    labels.extend(
        extra
            .iter()
            .map(|&(key, value)| Label::from_static_parts(key, value)),
    );
    ::metrics::counter!(counter, labels).increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn count(_: &'static str, _: &SessionName, _: &SessionSpec, _: &[(&'static str, &'static str)]) {}
