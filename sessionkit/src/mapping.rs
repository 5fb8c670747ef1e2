//! The one error-to-HTTP mapping every adapter carries out.
//!
//! The rules live here, not in the adapters:
//!
//! - the status: 503 only for an unreachable or timed-out store, 500 otherwise
//!   ([`Error::status`]);
//! - the default response: that status, a short plain-text body, and
//!   [`ERROR_CONTENT_TYPE`](crate::ERROR_CONTENT_TYPE) ([`Error::response`]);
//! - the order: the error is logged first ([`Error::log`]), then mapped, so an
//!   application's own mapping never hides it from the logs;
//! - the application's hook: `on_error` on every adapter replaces the default response
//!   for every session error, wherever it is raised (an extractor, a handler's `?`, a
//!   failed save);
//! - a failed save replaces the response: a request whose changes could not be stored
//!   never goes out as a success ([`RequestSessions::finish_response`]).
//!
//! An adapter keeps an [`ErrorMapping`] of its framework's response type and only
//! converts types.
//!
//! [`RequestSessions::finish_response`]: crate::RequestSessions::finish_response

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;

use crate::error::Error;
use crate::sessions::{EnabledSessions, RequestSessions, Sessions};

/// An application's own mapping of session errors to responses.
type CustomMapping<R> = Arc<dyn Fn(&Error) -> R + Send + Sync>;

/// An adapter's error mapping for responses of type `R`: the application's `on_error`
/// hook when one is set, otherwise [`Error::response`] converted by the adapter.
pub struct ErrorMapping<R> {
    default: fn(&Error) -> R,
    custom: Option<CustomMapping<R>>,
}

impl<R> ErrorMapping<R> {
    /// The default mapping; `default` turns an error into the framework's response,
    /// normally by converting [`Error::response`].
    pub fn new(default: fn(&Error) -> R) -> Self {
        ErrorMapping {
            default,
            custom: None,
        }
    }

    /// Replaces the default response with the application's `mapper` (logging stays).
    #[must_use]
    pub fn with_custom(mut self, mapper: impl Fn(&Error) -> R + Send + Sync + 'static) -> Self {
        self.custom = Some(Arc::new(mapper));
        self
    }

    /// Whether the application set its own mapping.
    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// Logs `error`, then maps it: what every adapter does with a session error.
    pub fn respond(&self, error: &Error) -> R {
        error.log();
        self.map(error)
    }

    /// Maps `error` without logging it, for an error that was logged where it was raised
    /// (a rejection re-mapped by the layer).
    pub fn map(&self, error: &Error) -> R {
        match &self.custom {
            Some(mapper) => mapper(error),
            None => (self.default)(error),
        }
    }
}

impl<R> Clone for ErrorMapping<R> {
    fn clone(&self) -> Self {
        ErrorMapping {
            default: self.default,
            custom: self.custom.clone(),
        }
    }
}

impl<R> fmt::Debug for ErrorMapping<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorMapping")
            .field("custom", &self.is_custom())
            .finish_non_exhaustive()
    }
}

/// What every adapter's layer (or filters, or middleware) carries: the started sessions,
/// the sessions its routes may use ([`EnabledSessions`]) and the [`ErrorMapping`] for
/// its framework's response type `R`. The adapter's builder methods (`with_session`,
/// `on_error`) forward here, so they behave the same on every framework. Cheap to clone.
pub struct AdapterState<R> {
    sessions: Sessions,
    enabled: EnabledSessions,
    errors: ErrorMapping<R>,
}

impl<R> AdapterState<R> {
    /// Carries the default session of `sessions`; `default` converts
    /// [`Error::response`] into the framework's response.
    pub fn new(sessions: Sessions, default: fn(&Error) -> R) -> Self {
        let enabled = EnabledSessions::default_of(&sessions);
        AdapterState {
            sessions,
            enabled,
            errors: ErrorMapping::new(default),
        }
    }

    /// Also carries the session `name` (see [`EnabledSessions::with`]); `method` names
    /// the adapter's method in the log line for an unknown name.
    #[must_use]
    pub fn with_session(mut self, name: &str, method: &str) -> Self {
        self.enabled = self.enabled.with(&self.sessions, name, method);
        self
    }

    /// Replaces the default error response with `mapper` (see [`ErrorMapping`]).
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> R + Send + Sync + 'static) -> Self {
        self.errors = self.errors.with_custom(mapper);
        self
    }

    /// The sessions of a request with these headers, limited to the carried sessions.
    /// Parses and loads nothing yet.
    pub fn request(&self, headers: &HeaderMap) -> RequestSessions {
        self.sessions
            .request_with_enabled(headers, self.enabled.names().clone())
    }

    /// Like [`request`](Self::request), from the request's `Cookie` header values as
    /// bytes, for a framework whose header types are not `http`'s.
    pub fn request_from_cookies<I, V>(&self, cookie_headers: I) -> RequestSessions
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        self.sessions
            .request_from_cookies_with_enabled(cookie_headers, self.enabled.names().clone())
    }

    /// The error mapping.
    pub fn errors(&self) -> &ErrorMapping<R> {
        &self.errors
    }

    /// The started registry.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }
}

impl<R> Clone for AdapterState<R> {
    fn clone(&self) -> Self {
        AdapterState {
            sessions: self.sessions.clone(),
            enabled: self.enabled.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl<R> fmt::Debug for AdapterState<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterState")
            .field("sessions", self.enabled.names())
            .field("custom_error_mapping", &self.errors.is_custom())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverError;
    use sessionkit_core::SessionName;

    fn closed() -> Error {
        Error::Store {
            session: SessionName::new("web").expect("valid"),
            operation: "load",
            source: DriverError::Closed,
        }
    }

    #[test]
    fn the_default_is_the_errors_own_response() {
        let mapping: ErrorMapping<http::Response<String>> = ErrorMapping::new(Error::response);
        assert!(!mapping.is_custom());
        let response = mapping.respond(&closed());
        assert_eq!(response.status(), 503);
    }

    #[test]
    fn a_custom_mapping_replaces_it() {
        let mapping = ErrorMapping::new(|e: &Error| e.status().as_u16())
            .with_custom(|e: &Error| e.status().as_u16() + 1000);
        assert!(mapping.is_custom());
        assert_eq!(mapping.clone().map(&closed()), 1503);
    }
}
