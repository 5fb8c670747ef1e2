//! [warp](https://docs.rs/warp) adapter for [sessionkit](https://docs.rs/sessionkit).
//!
//! A thin shim: [`SessionFilters::context`] hands the request's `Cookie` headers to
//! sessionkit, and [`SessionContext::finish`] (or [`SessionContext::respond`]) saves
//! what sessionkit decided and writes the `Set-Cookie` and `Cache-Control` headers on
//! the reply. No session rule lives here.
//!
//! warp's [`Filter`] trait is sealed, so a filter cannot wrap the routes after it the
//! way a tower layer does. The adapter uses warp's own idioms instead: a filter that
//! extracts a [`SessionContext`], and a reply wrapper that the handler ends with.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use sessionkit::Registry;
//! use sessionkit_warp::{SessionContext, SessionFilters};
//! use warp::Filter;
//!
//! fn count(session: &sessionkit::Session) -> Result<String, sessionkit::Error> {
//!     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! async fn visit(context: SessionContext, session: sessionkit::Session) -> Result<warp::reply::Response, Infallible> {
//!     // Saves the session and writes its cookie; an error becomes the mapped response.
//!     Ok(context.respond(count(&session)).await)
//! }
//!
//! async fn enter_admin(context: SessionContext) -> Result<warp::reply::Response, Infallible> {
//!     let result = match context.named("admin").await {
//!         Ok(admin) => admin.insert("admin", &true).map(|()| "admin mode"),
//!         Err(error) => Err(error),
//!     };
//!     Ok(context.respond(result).await)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Registry::new().build()?;
//! let filters = SessionFilters::new(sessions).with_session("admin");
//! let visit = warp::post()
//!     .and(warp::path!("visit"))
//!     .and(filters.session())
//!     .and_then(visit);
//! let admin = warp::post()
//!     .and(warp::path!("admin" / "enter"))
//!     .and(filters.context())
//!     .and_then(enter_admin);
//! // `filters.session()` rejects when the session cannot be loaded: `recover` turns
//! // that into the mapped error response (503 when the store is down).
//! let routes = visit.or(admin).recover(sessionkit_warp::recover);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! warp::serve(routes).incoming(listener).run().await;
//! # Ok(()) }
//! ```
//!
//! # What the filters do
//!
//! - [`SessionFilters::context`] never fails and parses nothing: a handler that never
//!   asks its [`SessionContext`] for a session costs no driver call and gets no header.
//!   Put the filters that can reject (path, method, body) before it, so a route that
//!   does not match never starts a context, and none is dropped unfinished.
//! - [`SessionFilters::session`] also loads the default session, and rejects with a
//!   [`SessionRejection`] when that fails. Routes that use it need
//!   `.recover(sessionkit_warp::recover)` (see [`recover`]).
//! - [`SessionContext::session`] and [`SessionContext::named`] load the default or a
//!   named session on first use; the context reaches the sessions the filters carry
//!   ([`SessionFilters::with_session`]).
//! - [`SessionContext::finish`] turns the handler's reply into a response, saves with
//!   its status (a 5xx drops the changes) and adds `Set-Cookie` and, unless the handler
//!   set its own, `Cache-Control: no-store`. A failed save replaces the response: it
//!   never goes out as a success. [`SessionContext::respond`] does the same for a
//!   `Result`, mapping an `Err` first.
//!
//! # Errors
//!
//! Errors follow sessionkit's one mapping ([`sessionkit::ErrorMapping`]): an
//! unreachable store is a `503 Service Unavailable` with a short plain-text body,
//! anything else a `500` (a store that answered with an error, or a mistake whose body
//! says what to fix: a session the filters do not carry or the registry does not
//! know). Each is logged first, with its source chain. [`SessionFilters::on_error`]
//! replaces the response, for [`SessionContext::respond`], for failed saves and for
//! [`recover`].
//!
//! # Misuse
//!
//! The types rule out the first common mistake: a handler cannot reach a session
//! without a [`SessionContext`], and only the filters make one. Asking for a session
//! the filters do not carry, or that the registry does not know, is an
//! [`Error::SessionNotEnabled`] / [`Error::UnknownSession`] whose message names the fix.
//! What the types cannot rule out is a handler that uses a session and then forgets
//! [`SessionContext::finish`]: nothing would be saved. When a context whose sessions
//! were used is dropped unfinished, the adapter logs a `tracing` error naming
//! `SessionContext::finish`.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use sessionkit::{AdapterState, Error, ErrorMapping, RequestSessions, Sessions};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

/// The filters that give routes their sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionFilters {
    state: AdapterState<Response>,
}

impl SessionFilters {
    /// Filters carrying the registry's default session.
    pub fn new(sessions: Sessions) -> Self {
        SessionFilters {
            state: AdapterState::new(sessions, Error::response),
        }
    }

    /// Also carries the session `name`, for [`SessionContext::named`]. A name that is
    /// not registered is reported when a handler asks for it (as a 500 naming the
    /// registered sessions) and logged now.
    #[must_use]
    pub fn with_session(mut self, name: &str) -> Self {
        self.state = self.state.with_session(name, "SessionFilters::with_session");
        self
    }

    /// Replaces the default error response (503 for an unreachable store, 500
    /// otherwise) for every session error of these routes; errors are still logged.
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> Response + Send + Sync + 'static) -> Self {
        self.state = self.state.on_error(mapper);
        self
    }

    /// Extracts the request's [`SessionContext`]. Never rejects, and parses or loads
    /// nothing until the handler asks for a session.
    pub fn context(&self) -> impl Filter<Extract = (SessionContext,), Error = Infallible> + Clone + use<> {
        let filters = self.clone();
        warp::header::headers_cloned().map(move |headers: HeaderMap| filters.start(&headers))
    }

    /// Extracts the request's [`SessionContext`] and its default session, loaded.
    ///
    /// Rejects with a [`SessionRejection`] when the session cannot be loaded (the store
    /// is down): add `.recover(sessionkit_warp::recover)` to the routes, or the
    /// rejection ends as warp's generic 500.
    pub fn session(
        &self,
    ) -> impl Filter<Extract = (SessionContext, sessionkit::Session), Error = Rejection> + Clone + use<> {
        self.context()
            .and_then(|context: SessionContext| async move {
                match context.session().await {
                    Ok(session) => Ok((context, session)),
                    Err(error) => Err(warp::reject::custom(context.reject(error))),
                }
            })
            .untuple_one()
    }

    fn start(&self, headers: &HeaderMap) -> SessionContext {
        SessionContext {
            inner: Arc::new(ContextInner {
                sessions: self.state.request(headers),
                errors: self.state.errors().clone(),
                finished: AtomicBool::new(false),
            }),
        }
    }
}

/// The sessions of one request, and the reply wrapper that saves them.
///
/// Made by [`SessionFilters::context`] (or [`SessionFilters::session`]). Ask it for
/// sessions with [`session`](Self::session) or [`named`](Self::named), then end the
/// handler with [`finish`](Self::finish) or [`respond`](Self::respond): that is what
/// saves the changes and writes the cookies. Cheap to clone; all clones share the
/// request's sessions.
#[derive(Clone)]
pub struct SessionContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    sessions: RequestSessions,
    errors: ErrorMapping<Response>,
    finished: AtomicBool,
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        if !*self.finished.get_mut() && self.sessions.any_loaded() {
            tracing::error!(
                target: "sessionkit",
                "a SessionContext whose sessions were used was dropped without `SessionContext::finish` \
                 (or `SessionContext::respond`): any session changes were not saved and no cookie was sent; \
                 end the handler with `context.finish(reply).await`"
            );
        }
    }
}

impl SessionContext {
    /// The default session, loaded on first use.
    ///
    /// # Errors
    /// When the store fails, or after the context was finished.
    pub async fn session(&self) -> Result<sessionkit::Session, Error> {
        self.inner.sessions.default_session().await
    }

    /// The session called `name`, loaded on first use.
    ///
    /// # Errors
    /// When the filters do not carry it ([`SessionFilters::with_session`]), the registry
    /// does not know it, the store fails, or after the context was finished.
    pub async fn named(&self, name: &str) -> Result<sessionkit::Session, Error> {
        self.inner.sessions.session(name).await
    }

    /// The underlying request sessions.
    pub fn request_sessions(&self) -> &RequestSessions {
        &self.inner.sessions
    }

    /// Turns `reply` into the response, saves the sessions with its status (a 5xx
    /// drops the changes) and adds `Set-Cookie` and, unless `reply` set its own,
    /// `Cache-Control: no-store`. When the save fails the response is the mapped error
    /// instead.
    pub async fn finish(self, reply: impl Reply) -> Response {
        let response = reply.into_response();
        self.complete(response).await
    }

    /// Like [`finish`](Self::finish) for a handler's `Result`: an `Err` becomes the
    /// mapped error response (503 for a store failure, 500 otherwise, or the
    /// application's [`SessionFilters::on_error`]), and the save then runs with that
    /// status.
    pub async fn respond(self, result: Result<impl Reply, Error>) -> Response {
        let response = match result {
            Ok(reply) => reply.into_response(),
            Err(error) => self.inner.errors.respond(&error),
        };
        self.complete(response).await
    }

    async fn complete(self, response: Response) -> Response {
        self.inner.finished.store(true, Ordering::Release);
        self.inner
            .sessions
            .finish_http(response, &self.inner.errors)
            .await
    }

    /// The rejection for a session that failed to load in [`SessionFilters::session`].
    fn reject(self, error: Error) -> SessionRejection {
        error.log();
        // The context is fresh and its only session failed to load, so there is nothing
        // to save: it need not be finished.
        self.inner.finished.store(true, Ordering::Release);
        SessionRejection {
            error,
            errors: self.inner.errors.clone(),
        }
    }
}

impl fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionContext")
            .field("sessions", &self.inner.sessions)
            .field("finished", &self.inner.finished.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why [`SessionFilters::session`] rejected: the default session could not be loaded.
/// [`recover`] turns it into the mapped error response.
pub struct SessionRejection {
    error: Error,
    errors: ErrorMapping<Response>,
}

impl SessionRejection {
    /// The session error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The session error, owned.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The response for it: the application's [`SessionFilters::on_error`] mapping, or
    /// the default (503 for an unreachable store, 500 otherwise). It was logged when the
    /// filter rejected.
    pub fn response(&self) -> Response {
        self.errors.map(&self.error)
    }
}

impl From<Error> for SessionRejection {
    /// A rejection with the default mapping.
    fn from(error: Error) -> Self {
        SessionRejection {
            error,
            errors: ErrorMapping::new(Error::response),
        }
    }
}

impl fmt::Debug for SessionRejection {
    // warp shows an unrecovered custom rejection's `Debug` in its generic 500 body, so
    // this says how to get the intended response.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRejection")
            .field("error", &self.error.to_string())
            .field("custom_error_mapping", &self.errors.is_custom())
            .field("fix", &"add `.recover(sessionkit_warp::recover)` to the routes")
            .finish()
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl warp::reject::Reject for SessionRejection {}

/// Turns a [`SessionRejection`] into its mapped response and passes any other
/// rejection on. Use it as `.recover(sessionkit_warp::recover)` on routes that use
/// [`SessionFilters::session`].
///
/// # Errors
/// The rejection, unchanged, when it is not a [`SessionRejection`].
#[allow(
    clippy::unused_async,
    reason = "`Filter::recover` takes a function returning a future"
)]
pub async fn recover(rejection: Rejection) -> Result<Response, Rejection> {
    match rejection.find::<SessionRejection>() {
        Some(session) => Ok(session.response()),
        None => Err(rejection),
    }
}
