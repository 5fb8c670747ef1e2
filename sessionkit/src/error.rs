//! The errors of the async layer: [`SetupError`] at startup, [`Error`] per request.

use std::path::PathBuf;

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
        /// The session.
        session: SessionName,
        /// The driver it names.
        driver: DriverChoice,
    },
    /// The configuration file could not be read.
    #[error("could not read session config {path:?}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A session, driver or namespace name is not valid.
    #[error("invalid name {name:?}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: NameError,
    },
    /// The driver name `cookie` is built in and cannot be replaced.
    #[error("the driver name {name:?} is reserved for sessionkit's sealed-cookie driver")]
    ReservedDriverName {
        /// The name.
        name: String,
    },
    /// A session was named that is not registered.
    #[error("no session named {name:?} is registered")]
    UnknownSession {
        /// The name.
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
    #[error("the secret from {origin} is not usable")]
    Secret {
        /// Where the secret came from (`SESSIONKIT_SECRET`, `session.secret`, ...).
        origin: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// No secret in production.
    #[error(
        "no session secret is set and APP_ENV is production: set SESSIONKIT_SECRET (at least 32 random bytes), \
         session.secret or app.secret; without one every restart would log everyone out"
    )]
    MissingSecret,
}

/// The `Content-Type` of [`Error::response_body`].
pub const ERROR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// A request-time failure.
///
/// [`Error::status`] says which HTTP status an adapter answers with: 503 when the store
/// is unavailable, 500 for everything else (a cookie session too large for its cookie,
/// a misconfigured route).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry has no session of this name.
    #[error("no session named {name:?} is registered (registered: {known})")]
    UnknownSession {
        /// The requested name.
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
        /// The requested name.
        name: String,
        /// The sessions the layer carries, comma-separated.
        enabled: String,
    },
    /// The session API refused the call.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The session handle was used after the response was saved.
    #[error("session `{session}` was already saved with the response; changes after that are lost")]
    Finished {
        /// The session.
        session: SessionName,
    },
    /// The store failed.
    #[error("session `{session}`: {operation} failed")]
    Store {
        /// The session.
        session: SessionName,
        /// `load`, `create`, `patch`, `touch` or `delete`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// The session could not be finished (too large for its cookie).
    #[error(transparent)]
    Finish(#[from] FinishError),
}

impl Error {
    /// The HTTP status an adapter answers with by default.
    pub fn status(&self) -> u16 {
        match self {
            Error::Store { .. } => 503,
            _ => 500,
        }
    }

    /// The short plain-text body adapters answer with by default (see
    /// [`ERROR_CONTENT_TYPE`]): a fixed message for store failures, so nothing about
    /// the store reaches the client; otherwise what is wrong and how to fix it.
    pub fn response_body(&self) -> String {
        if self.status() == 503 {
            "session store unavailable, please retry\n".to_owned()
        } else {
            format!("session error: {self}\n")
        }
    }

    /// Emits the `tracing` event for a request this error failed: a warning with the
    /// store's error for a 503, an error otherwise.
    pub fn log(&self) {
        if self.status() == 503 {
            let source = std::error::Error::source(self).map(ToString::to_string);
            tracing::warn!(target: "sessionkit", error = %self, source = ?source, "session store failure: 503");
        } else {
            tracing::error!(target: "sessionkit", error = %self, "session error: 500");
        }
    }

    /// Whether the store was unreachable (the request may succeed if retried later).
    pub fn is_store_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                source: DriverError::Unavailable(_) | DriverError::Closed,
                ..
            }
        )
    }
}
