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
//! converts [`sessionkit::Error`] into one). A store failure is a
//! `503 Service Unavailable` with a short plain-text body, anything else a `500` whose
//! body says what to fix. Each is also a `tracing` event.
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
//!   500 whose body says to add `.with(SessionMiddleware::new(sessions))`;
//! - asking for a session the middleware does not carry, or that the registry does not
//!   know, is a 500 naming the sessions that are there
//!   ([`Error::SessionNotEnabled`] / [`Error::UnknownSession`]).

use std::fmt;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};
use sessionkit::{EnabledSessions, Error, RequestSessions, Sessions};

/// Maps a session error to the response sent instead.
pub type ErrorMapper = Arc<dyn Fn(&Error) -> Response + Send + Sync>;

/// The middleware that gives an endpoint its sessions.
#[derive(Clone)]
pub struct SessionMiddleware {
    sessions: Sessions,
    enabled: EnabledSessions,
    on_error: Option<ErrorMapper>,
}

impl SessionMiddleware {
    /// A middleware carrying the registry's default session.
    pub fn new(sessions: Sessions) -> Self {
        let enabled = EnabledSessions::default_of(&sessions);
        SessionMiddleware {
            sessions,
            enabled,
            on_error: None,
        }
    }

    /// Also carries the session `name`, for [`NamedSessions`]. A name that is not
    /// registered is reported when a handler asks for it (as a 500 naming the
    /// registered sessions) and logged now.
    #[must_use]
    pub fn with_session(mut self, name: &str) -> Self {
        self.enabled = self
            .enabled
            .with(&self.sessions, name, "SessionMiddleware::with_session");
        self
    }

    /// Replaces the default error mapping (503 for store failures, 500 otherwise).
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> Response + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(mapper));
        self
    }
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("sessions", self.enabled.names())
            .field("custom_error_mapping", &self.on_error.is_some())
            .finish_non_exhaustive()
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

/// What the middleware leaves in the request extensions for the extractors.
#[derive(Clone)]
struct RequestContext {
    sessions: RequestSessions,
}

impl<E: Endpoint> Endpoint for SessionEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let sessions = self
            .middleware
            .sessions
            .request_with_enabled(request.headers(), self.middleware.enabled.names().clone());
        request.extensions_mut().insert(RequestContext {
            sessions: sessions.clone(),
        });
        let on_error = self.middleware.on_error.as_ref();
        let mut response = match self.inner.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => match (error.downcast_ref::<SessionRejection>(), on_error) {
                (Some(SessionRejection::Session(session_error)), Some(mapper)) => {
                    session_error.log();
                    mapper(session_error)
                }
                _ => error.into_response(),
            },
        };
        let status = response.status().as_u16();
        if let Err(error) = sessions.save_to(status, response.headers_mut()).await {
            error.log();
            response = match on_error {
                Some(mapper) => mapper(&error),
                None => default_response(&error),
            };
        }
        Ok(response)
    }
}

/// The default response for a session error.
fn default_response(error: &Error) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = error.response_body();
    plain(status, body)
}

fn plain(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type(sessionkit::ERROR_CONTENT_TYPE)
        .body(body)
}

/// Why a session could not be extracted or used. As a [`poem::Error`] its response is
/// the middleware's error mapping (by default 503 for store failures, 500 with the fix
/// otherwise). Handlers can return it, and `?` converts [`sessionkit::Error`] into it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route has no [`SessionMiddleware`].
    MissingMiddleware,
    /// sessionkit refused.
    Session(Error),
}

impl From<Error> for SessionRejection {
    fn from(error: Error) -> Self {
        SessionRejection::Session(error)
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionRejection::MissingMiddleware => f.write_str(
                "this route extracts a session but has no SessionMiddleware: add `.with(SessionMiddleware::new(sessions))` to the endpoint",
            ),
            SessionRejection::Session(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionRejection::MissingMiddleware => None,
            SessionRejection::Session(error) => Some(error),
        }
    }
}

impl poem::error::ResponseError for SessionRejection {
    fn status(&self) -> StatusCode {
        match self {
            SessionRejection::MissingMiddleware => StatusCode::INTERNAL_SERVER_ERROR,
            SessionRejection::Session(error) => {
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn as_response(&self) -> Response {
        match self {
            SessionRejection::MissingMiddleware => {
                tracing::error!(target: "sessionkit", "{self}");
                plain(StatusCode::INTERNAL_SERVER_ERROR, format!("sessionkit: {self}\n"))
            }
            SessionRejection::Session(error) => {
                error.log();
                default_response(error)
            }
        }
    }
}

fn context(request: &Request) -> Result<&RequestContext, SessionRejection> {
    request
        .extensions()
        .get::<RequestContext>()
        .ok_or(SessionRejection::MissingMiddleware)
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
        let sessions = context(request)?.sessions.clone();
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
        Ok(NamedSessions(context(request)?.sessions.clone()))
    }
}
