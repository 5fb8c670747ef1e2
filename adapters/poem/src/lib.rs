//! [poem](https://docs.rs/poem) adapter for [sessionkit](https://docs.rs/sessionkit).
//!
//! A thin shim: [`SessionMiddleware`] hands the request's `Cookie` headers to
//! sessionkit, and after the endpoint has run it saves what sessionkit decided and
//! writes the `Set-Cookie` and `Cache-Control` headers. No session rule lives here.
//!
//! ```no_run
//! use poem::listener::TcpListener;
//! use poem::{EndpointExt, Route, Server, handler, post};
//! use sessionkit::Registry;
//! use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};
//!
//! #[handler]
//! async fn visit(session: Session) -> Result<String, SessionRejection> {
//!     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! #[handler]
//! async fn enter_admin(sessions: NamedSessions) -> Result<&'static str, SessionRejection> {
//!     sessions.get("admin").await?.insert("admin", &true)?;
//!     Ok("admin mode")
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Registry::new().build()?;
//! let app = Route::new()
//!     .at("/visit", post(visit))
//!     .at("/admin/enter", post(enter_admin))
//!     .with(SessionMiddleware::new(sessions).with_session("admin"));
//! Server::new(TcpListener::bind("127.0.0.1:3000")).run(app).await?;
//! # Ok(()) }
//! ```
//!
//! # What the middleware does
//!
//! - Nothing is parsed or loaded until a handler extracts a session; a route that never
//!   does costs no driver call and gets no header.
//! - The [`Session`] extractor gives the default session, loaded. [`NamedSessions`]
//!   reaches any session the middleware carries ([`SessionMiddleware::with_session`]).
//! - After the endpoint (an `Err` from it is turned into its response first), the
//!   middleware saves with the response status (a 5xx drops the changes) and adds
//!   `Set-Cookie` and, unless the handler set its own, `Cache-Control: no-store`. A
//!   failed save replaces the response: it never goes out as a success.
//!
//! # Errors
//!
//! Session errors reach poem as [`SessionRejection`]s (handlers return them, and `?`
//! converts [`sessionkit::Error`] into one). They follow sessionkit's one mapping
//! ([`sessionkit::ErrorMapping`]): an unreachable store is a `503 Service Unavailable`
//! with a short plain-text body, anything else a `500` (a store that answered with an
//! error, or a mistake whose body says what to fix). Each is logged first, with its
//! source chain.
//! [`SessionMiddleware::on_error`] replaces the mapping, for failed saves and for every
//! [`SessionRejection`] that reaches the middleware as an error (poem's usual path; a
//! middleware between this one and the handler that turns errors into responses itself
//! keeps the default mapping).
//!
//! # Misuse
//!
//! The two mistakes users make most get a clear error that names the fix, never a
//! panic or a silent empty session:
//!
//! - extracting [`Session`] or [`NamedSessions`] on a route without the middleware is a
//!   500 ([`Error::NotInstalled`]) whose body says to add
//!   `.with(SessionMiddleware::new(sessions))`;
//! - asking for a session the middleware does not carry, or that the registry does not
//!   know, is a 500 naming the sessions that are there
//!   ([`Error::SessionNotEnabled`] / [`Error::UnknownSession`]).

use std::fmt;

use poem::http::StatusCode;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};
use sessionkit::{AdapterState, Error, RequestSessions, Sessions};

/// The middleware that gives an endpoint its sessions.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    state: AdapterState<Response>,
}

/// The default response for a session error: sessionkit's, converted.
fn default_response(error: &Error) -> Response {
    let (parts, body) = error.response::<String>().into_parts();
    let mut response = Response::from(body);
    response.set_status(parts.status);
    *response.headers_mut() = parts.headers;
    response
}

impl SessionMiddleware {
    /// A middleware carrying the registry's default session.
    pub fn new(sessions: Sessions) -> Self {
        SessionMiddleware {
            state: AdapterState::new(sessions, default_response),
        }
    }

    /// Also carries the session `name`, for [`NamedSessions`]. A name that is not
    /// registered is reported when a handler asks for it (as a 500 naming the
    /// registered sessions) and logged now.
    #[must_use]
    pub fn with_session(mut self, name: &str) -> Self {
        self.state = self.state.with_session(name, "SessionMiddleware::with_session");
        self
    }

    /// Replaces the default error response (503 for an unreachable store, 500
    /// otherwise) for every session error of these endpoints; errors are still logged.
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> Response + Send + Sync + 'static) -> Self {
        self.state = self.state.on_error(mapper);
        self
    }
}

impl<E: Endpoint> Middleware<E> for SessionMiddleware {
    type Output = SessionEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SessionEndpoint {
            inner,
            middleware: self.clone(),
        }
    }
}

/// The endpoint [`SessionMiddleware`] wraps around an inner endpoint.
#[derive(Debug)]
pub struct SessionEndpoint<E> {
    inner: E,
    middleware: SessionMiddleware,
}

impl<E: Endpoint> Endpoint for SessionEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let state = &self.middleware.state;
        let sessions = state.request(request.headers());
        request.extensions_mut().insert(sessions.clone());
        let response = match self.inner.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => match error.downcast_ref::<SessionRejection>() {
                // Logged when it was turned into a poem error.
                Some(rejection) if state.errors().is_custom() => state.errors().map(&rejection.0),
                _ => error.into_response(),
            },
        };
        let status = response.status();
        Ok(sessions
            .finish_response(response, status, state.errors(), |response, saved| {
                saved.apply_to(response.headers_mut());
            })
            .await)
    }
}

/// Why a session could not be extracted or used: a [`sessionkit::Error`] (including
/// [`Error::NotInstalled`] for a route without the middleware). As a [`poem::Error`]
/// its response is the middleware's error mapping. Handlers can return it, and `?`
/// converts [`sessionkit::Error`] into it.
#[derive(Debug)]
pub struct SessionRejection(Error);

impl SessionRejection {
    /// The session error.
    pub fn error(&self) -> &Error {
        &self.0
    }

    /// The session error, owned.
    pub fn into_error(self) -> Error {
        self.0
    }
}

impl From<Error> for SessionRejection {
    fn from(error: Error) -> Self {
        SessionRejection(error)
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl poem::error::ResponseError for SessionRejection {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.log();
        default_response(&self.0)
    }
}

fn request_sessions(request: &Request) -> Result<RequestSessions, SessionRejection> {
    request
        .extensions()
        .get::<RequestSessions>()
        .cloned()
        .ok_or(SessionRejection(Error::NotInstalled {
            component: "SessionMiddleware",
            fix: "add `.with(SessionMiddleware::new(sessions))` to the endpoint",
        }))
}

/// The default session of the request, loaded. Derefs to [`sessionkit::Session`].
#[derive(Clone, Debug)]
pub struct Session(pub sessionkit::Session);

impl std::ops::Deref for Session {
    type Target = sessionkit::Session;

    fn deref(&self) -> &sessionkit::Session {
        &self.0
    }
}

impl<'a> FromRequest<'a> for Session {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let sessions = request_sessions(request)?;
        let session = sessions.default_session().await.map_err(SessionRejection::from)?;
        Ok(Session(session))
    }
}

/// Every session the middleware carries, loaded on first use:
/// `sessions.get("admin").await?`.
#[derive(Clone, Debug)]
pub struct NamedSessions(RequestSessions);

impl NamedSessions {
    /// The session called `name`.
    ///
    /// # Errors
    /// When the middleware does not carry it, the registry does not know it, or the
    /// store fails.
    pub async fn get(&self, name: &str) -> Result<sessionkit::Session, SessionRejection> {
        Ok(self.0.session(name).await?)
    }

    /// The underlying request sessions.
    pub fn request_sessions(&self) -> &RequestSessions {
        &self.0
    }
}

impl<'a> FromRequest<'a> for NamedSessions {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(NamedSessions(request_sessions(request)?))
    }
}
