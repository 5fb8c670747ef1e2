//! [actix-web](https://docs.rs/actix-web) adapter for [sessionkit](https://docs.rs/sessionkit).
//!
//! A thin shim: [`SessionMiddleware`] hands the request's `Cookie` headers to
//! sessionkit, and after the handler has run it saves what sessionkit decided and writes
//! the `Set-Cookie` and `Cache-Control` headers. No session rule lives here. actix-web 4
//! is built on `http` 0.2 and sessionkit on `http` 1: headers cross as bytes.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use sessionkit::Registry;
//! use sessionkit_actix::{NamedSessions, Session, SessionMiddleware, SessionRejection};
//!
//! async fn visit(session: Session) -> Result<String, SessionRejection> {
//!     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! async fn enter_admin(sessions: NamedSessions) -> Result<&'static str, SessionRejection> {
//!     sessions.get("admin").await?.insert("admin", &true)?;
//!     Ok("admin mode")
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Registry::new().build()?;
//! HttpServer::new(move || {
//!     App::new()
//!         .route("/visit", web::post().to(visit))
//!         .route("/admin/enter", web::post().to(enter_admin))
//!         .wrap(SessionMiddleware::new(sessions.clone()).with_session("admin"))
//! })
//! .bind("127.0.0.1:3000")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! # What the middleware does
//!
//! - Nothing is parsed or loaded until a handler extracts a session; a route that never
//!   does costs no driver call and gets no header.
//! - The [`Session`] extractor gives the default session, loaded. [`NamedSessions`]
//!   reaches any session the middleware carries ([`SessionMiddleware::with_session`]).
//! - After the handler (an `Err` from it, or from an extractor, is a response by then),
//!   the middleware saves with the response status (a 5xx drops the changes) and adds
//!   `Set-Cookie`, `Vary: Cookie` and, unless the handler set its own,
//!   `Cache-Control: no-store`. A failed save replaces the response: it never goes out as
//!   a success. An `Err` from a middleware wrapped inside this one passes through and
//!   saves nothing: there is no response to carry the cookie.
//!
//! # Errors
//!
//! Session errors reach actix-web as [`SessionRejection`]s (handlers return them, and
//! `?` converts [`sessionkit::Error`] into one). They follow sessionkit's one mapping
//! ([`sessionkit::ErrorMapping`]): an unreachable store is a `503 Service Unavailable`
//! with a short plain-text body, anything else a `500` (a store that answered with an
//! error, or a mistake whose body says what to fix). Each is logged first, with its
//! source chain. [`SessionMiddleware::on_error`] replaces the response, for failed saves
//! and for every [`SessionRejection`] that reaches the middleware in a response.
//!
//! # Misuse
//!
//! The two mistakes users make most get a clear error that names the fix, never a
//! panic or a silent empty session:
//!
//! - extracting [`Session`] or [`NamedSessions`] on a route without the middleware is a
//!   500 ([`Error::NotInstalled`]) whose body says to add
//!   `.wrap(SessionMiddleware::new(sessions))`;
//! - asking for a session the middleware does not carry, or that the registry does not
//!   know, is a 500 naming the sessions that are there
//!   ([`Error::SessionNotEnabled`] / [`Error::UnknownSession`]).

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use sessionkit::{AdapterState, Error, RequestSessions, Sessions};

/// The middleware that gives an app (or a scope, or a resource) its sessions.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    state: AdapterState<HttpResponse>,
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
    /// otherwise) for every session error of these routes; errors are still logged.
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> HttpResponse + Send + Sync + 'static) -> Self {
        self.state = self.state.on_error(mapper);
        self
    }
}

/// Appends one of sessionkit's `http` 1 header lines to actix-web's map. Both sides
/// accept the same bytes, so the conversion cannot fail; a line that did would be left
/// out rather than panic.
fn append(headers: &mut HeaderMap, name: &http::HeaderName, value: &http::HeaderValue) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_str().as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        headers.append(name, value);
    }
}

fn status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The default response for a session error: sessionkit's, converted.
fn default_response(error: &Error) -> HttpResponse {
    let (parts, body) = error.response::<String>().into_parts();
    let mut response = HttpResponse::with_body(status(parts.status), body).map_into_boxed_body();
    for (name, value) in &parts.headers {
        append(response.headers_mut(), name, value);
    }
    response
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<SessionService<S>, ()>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(SessionService {
            inner,
            state: self.state.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
#[derive(Debug)]
pub struct SessionService<S> {
    inner: S,
    state: AdapterState<HttpResponse>,
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<ServiceResponse<BoxBody>, actix_web::Error>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let cookies = request
            .headers()
            .get_all(header::COOKIE)
            .map(HeaderValue::as_bytes);
        let sessions = self.state.request_from_cookies(cookies);
        request.extensions_mut().insert(sessions.clone());
        // Only the mapping travels with the response; the rest of the state is per service.
        let errors = self.state.errors().clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let (request, mut response) = response.await?.map_into_boxed_body().into_parts();
            // A rejection was logged when it became a response; only a custom mapping
            // changes it.
            if errors.is_custom()
                && let Some(rejection) = response.error().and_then(|e| e.as_error::<SessionRejection>())
            {
                response = errors.map(&rejection.0);
            }
            let status = response.status();
            let response = sessions
                .finish_response(response, status, &errors, |response, saved| {
                    let headers = response.headers_mut();
                    let lines = saved.header_lines(
                        headers.contains_key(header::CACHE_CONTROL),
                        headers.get_all(header::VARY).map(HeaderValue::as_bytes),
                    );
                    for (name, value) in lines {
                        append(headers, &name, value);
                    }
                })
                .await;
            Ok(ServiceResponse::new(request, response))
        })
    }
}

/// Why a session could not be extracted or used: a [`sessionkit::Error`] (including
/// [`Error::NotInstalled`] for a route without the middleware). As an actix-web error
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

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        status(self.0.status())
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        default_response(&self.0)
    }
}

fn request_sessions(request: &HttpRequest) -> Result<RequestSessions, SessionRejection> {
    request
        .extensions()
        .get::<RequestSessions>()
        .cloned()
        .ok_or(SessionRejection(Error::NotInstalled {
            component: "SessionMiddleware",
            fix: "add `.wrap(SessionMiddleware::new(sessions))` to the app",
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

impl FromRequest for Session {
    type Error = SessionRejection;
    type Future = LocalFuture<Result<Session, SessionRejection>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let sessions = request_sessions(request);
        Box::pin(async move { Ok(Session(sessions?.default_session().await?)) })
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

impl FromRequest for NamedSessions {
    type Error = SessionRejection;
    type Future = Ready<Result<NamedSessions, SessionRejection>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(request_sessions(request).map(NamedSessions))
    }
}
