//! The errors of the async layer: [`SetupError`] at startup, [`Error`] per request.

use std::fmt;
use std::path::PathBuf;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use sessionkit_core::{
    ConfigError, DefError, DriverChoice, FinishError, KeyError, NameError, SessionError, SessionName,
};

use crate::driver::DriverError;

/// A problem found while setting up or starting the registry. Fix it before serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A session definition breaks a rule.
    #[error(transparent)]
    Definition(#[from] DefError),
    /// A config section for a session that is not registered.
    #[error(
        "[session.sessions.{name}] configures a session that is not registered; register it before applying the config"
    )]
    UnregisteredSessionConfig {
        /// The unknown session name.
        name: String,
    },
    /// A session names a driver that is not registered.
    #[error("session `{session}` uses driver `{driver}`, which is not registered")]
    UnknownDriver {
        /// The session whose definition names the driver.
        session: SessionName,
        /// The driver it names.
        driver: DriverChoice,
    },
    /// The configuration file could not be read.
    #[error("could not read session config {path:?}")]
    ReadConfig {
        /// The path that was given.
        path: PathBuf,
        /// The I/O error (not found, permission denied, ...).
        #[source]
        source: std::io::Error,
    },
    /// A session, driver or namespace name is not valid.
    #[error("invalid name {name:?}")]
    Name {
        /// The refused name, as given.
        name: String,
        /// The rule it breaks (length, characters).
        #[source]
        source: NameError,
    },
    /// The driver name `cookie` is built in and cannot be replaced.
    #[error("the driver name {name:?} is reserved for sessionkit's sealed-cookie driver")]
    ReservedDriverName {
        /// The name an application tried to register.
        name: String,
    },
    /// A session was named that is not registered.
    #[error(
        "no session named {name:?} is registered: register it first with Registry::add_session({name:?}) or \
         Registry::register_session"
    )]
    UnknownSession {
        /// The name that was asked for.
        name: String,
    },
    /// Two sessions use the same cookie name, so their cookies would overwrite each other.
    #[error("sessions `{first}` and `{second}` both use the cookie name {cookie:?}")]
    DuplicateCookieName {
        /// One session.
        first: SessionName,
        /// The other.
        second: SessionName,
        /// The shared cookie name.
        cookie: String,
    },
    /// A secret is too short. `origin` names where it came from; the secret itself is
    /// never shown.
    #[error("the secret from {origin} is not usable (set it to at least 32 random bytes)")]
    Secret {
        /// Where the secret came from (`SESSIONKIT_SECRET`, `session.secret`, ...).
        origin: String,
        /// What is wrong with it (its length; never its bytes).
        #[source]
        source: KeyError,
    },
    /// No secret in production (`APP_ENV` set to anything but a development name).
    #[error(
        "no session secret is set and APP_ENV names a production environment (anything but development, dev, \
         test or local): set SESSIONKIT_SECRET to at least 32 random bytes (or session.secret or app.secret); \
         without one every restart would log everyone out"
    )]
    MissingSecret,
    /// A secret in production that is a placeholder, not random bytes: fewer than
    /// [`MIN_DISTINCT_SECRET_BYTES`](crate::MIN_DISTINCT_SECRET_BYTES) distinct byte
    /// values. The secret itself is never shown.
    #[error(
        "the secret from {origin} has only {distinct} distinct byte values, which is a placeholder, not a random \
         secret: in production set SESSIONKIT_SECRET to at least 32 random bytes (e.g. `openssl rand -base64 32`)"
    )]
    WeakSecret {
        /// Where the secret came from.
        origin: String,
        /// How many distinct byte values it holds.
        distinct: usize,
    },
}

/// A request-time failure.
///
/// How it becomes an HTTP response is decided here, once, for every adapter:
/// [`Error::status`] is `503 Service Unavailable` only when the store was unreachable or
/// timed out (a retry may work), `500 Internal Server Error` for everything else (a
/// store that answered with an error, a cookie session too large for its cookie, a
/// misconfigured route); [`Error::response`] is the default plain-text response and
/// [`Error::log`] the `tracing` event. Adapters run both through an
/// [`ErrorMapping`](crate::ErrorMapping), which also carries the application's
/// `on_error` hook.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry has no session of this name. The message lists the registered
    /// names and says how to register this one.
    #[error(
        "no session named {name:?} is registered (registered: {known}): register it at startup with \
         Registry::add_session({name:?}) or Registry::register_session, then configure it under \
         [session.sessions.{name}] if needed"
    )]
    UnknownSession {
        /// The name the handler asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// The session exists but the layer (or filter, or middleware) on this route does
    /// not carry it.
    #[error(
        "session {name:?} is not enabled on this route: add it to the session layer (it carries: {enabled})"
    )]
    SessionNotEnabled {
        /// The name the handler asked for.
        name: String,
        /// The sessions the layer carries, comma-separated.
        enabled: String,
    },
    /// A handler asked for a session on a route where the adapter is not installed.
    #[error("this route uses a session but has no {component}: {fix}")]
    NotInstalled {
        /// What is missing, e.g. `SessionLayer`.
        component: &'static str,
        /// How to add it, e.g. ``add `.layer(SessionLayer::new(sessions))` to the router``.
        fix: &'static str,
    },
    /// The session API refused the call.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The session handle was used after the response was saved.
    #[error("session `{session}` was already saved with the response; changes after that are lost")]
    AlreadySaved {
        /// The session whose handle outlived its response.
        session: SessionName,
    },
    /// The store failed.
    #[error("session `{session}`: {operation} failed")]
    Store {
        /// The session the driver call was for.
        session: SessionName,
        /// `load`, `create`, `patch`, `touch`, `update` or `delete`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// The session could not be saved: it does not fit in its cookie, or could not be
    /// sealed. Nothing was written.
    #[error(transparent)]
    Save(#[from] FinishError),
    /// A sign-in would exceed the session's per-user cap and its policy is `refuse`.
    /// Nothing was written; the default response is `409 Conflict`.
    #[error(
        "session `{session}`: this user already has the most sessions allowed ({max}); sign out elsewhere first"
    )]
    SessionLimit {
        /// The session.
        session: SessionName,
        /// The cap.
        max: u32,
    },
    /// [`Session::update`](crate::Session::update) found the stored session gone (a
    /// concurrent logout or regeneration ended it, or it expired): nothing was written
    /// and nothing was created. The default response is `409 Conflict`.
    #[error("session `{session}` ended while this request ran; nothing was updated")]
    SessionEnded {
        /// The session.
        session: SessionName,
    },
    /// [`Session::update`](crate::Session::update) lost the race for its key to
    /// concurrent updates every time it tried. Nothing was written; the default response
    /// is `503 Service Unavailable` (retry).
    #[error("session `{session}`: key {key:?} changed under every one of {attempts} update attempts")]
    UpdateContended {
        /// The session.
        session: SessionName,
        /// The data key.
        key: String,
        /// How many times the update was tried.
        attempts: u32,
    },
    /// A user-sessions call on a session that is not bound to a user.
    #[error("session `{session}` is not bound to a user: call set_user at sign-in")]
    NotBound {
        /// The session.
        session: SessionName,
    },
}

impl Error {
    /// The HTTP status an adapter answers with by default: 503 when the store was
    /// unreachable or timed out ([`is_store_unavailable`](Self::is_store_unavailable)),
    /// 409 for a sign-in refused by the per-user cap, 500 for everything else, a store
    /// that answered with an error included (retrying would not help).
    pub fn status(&self) -> StatusCode {
        if self.is_store_unavailable() || matches!(self, Error::UpdateContended { .. }) {
            StatusCode::SERVICE_UNAVAILABLE
        } else if matches!(self, Error::SessionLimit { .. } | Error::SessionEnded { .. }) {
            StatusCode::CONFLICT
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// Whether the store was unreachable, timed out or closed: the request may succeed
    /// if retried later.
    pub fn is_store_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                source: DriverError::Unavailable(_) | DriverError::Closed,
                ..
            }
        )
    }

    /// The short plain-text body of the default response: a fixed message for store
    /// failures, so nothing about the store reaches the client; otherwise what is wrong
    /// and how to fix it.
    pub fn response_body(&self) -> String {
        match self {
            Error::Store { .. } if self.is_store_unavailable() => {
                "session store unavailable, please retry\n".to_owned()
            }
            Error::Store { .. } => "session store error\n".to_owned(),
            _ => format!("session error: {self}\n"),
        }
    }

    /// The default response: [`status`](Self::status), [`ERROR_CONTENT_TYPE`] and
    /// [`response_body`](Self::response_body), with a body type any framework's body
    /// converts from.
    pub fn response<B: From<String>>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.response_body()));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ERROR_CONTENT_TYPE));
        response
    }

    /// Emits the `tracing` event for a request this error failed: a warning for an
    /// unavailable store (503), an error otherwise (500). Either carries the whole source
    /// chain, the driver's own message included (driver errors never hold ids, keys or
    /// cookie values).
    pub fn log(&self) {
        let chain = SourceChain(self);
        if self.is_store_unavailable() {
            tracing::warn!(target: "sessionkit", error = %chain, "session store failure: 503");
        } else {
            tracing::error!(target: "sessionkit", error = %chain, "session error: 500");
        }
    }
}

/// The `Content-Type` of [`Error::response`].
pub const ERROR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Displays an error followed by each of its sources: `a: b: c`.
struct SourceChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for SourceChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(source: DriverError) -> Error {
        Error::Store {
            session: SessionName::new("web").expect("valid"),
            operation: "load",
            source,
        }
    }

    #[test]
    fn only_an_unreachable_store_is_a_503() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(store(DriverError::unavailable(refused)).status(), 503);
        assert_eq!(store(DriverError::Closed).status(), 503);
        let missing = std::io::Error::other("relation \"sessions\" does not exist");
        let backend = store(DriverError::backend(missing));
        assert_eq!(backend.status(), 500);
        assert_eq!(store(DriverError::Duplicate).status(), 500);
        assert!(
            !backend.response_body().contains("relation"),
            "nothing about the store reaches the client"
        );
    }

    #[test]
    fn the_chain_names_every_source() {
        let missing = std::io::Error::other("relation \"sessions\" does not exist");
        let error = store(DriverError::backend(missing));
        assert_eq!(
            SourceChain(&error).to_string(),
            "session `web`: load failed: the session store failed: relation \"sessions\" does not exist"
        );
    }

    #[test]
    fn the_default_response_is_plain_text() {
        let response: http::Response<String> = store(DriverError::Closed).response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[CONTENT_TYPE], ERROR_CONTENT_TYPE);
        assert_eq!(response.body(), "session store unavailable, please retry\n");
    }
}
