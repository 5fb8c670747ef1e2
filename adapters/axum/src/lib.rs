//! [axum](https://docs.rs/axum) adapter for [sessionkit](https://docs.rs/sessionkit).
//!
//! A thin shim: [`SessionLayer`] hands the request's `Cookie` headers to sessionkit,
//! and after the handler has run it saves what sessionkit decided and writes the
//! `Set-Cookie` and `Cache-Control` headers. No session rule lives here. The layer is
//! a plain tower [`Layer`](tower_layer::Layer), so it works for any tower HTTP service,
//! not only axum.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use sessionkit::Registry;
//! use sessionkit_axum::{NamedSessions, Session, SessionLayer, SessionRejection};
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
//! let app = Router::new()
//!     .route("/visit", post(visit))
//!     .route("/admin/enter", post(enter_admin))
//!     .layer(SessionLayer::new(sessions).with_session("admin"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Around the whole router
//!
//! `Router::layer` wraps every route on its own, and axum then pays, per request, a
//! boxed future and two clones of the route's service for any layer. The layer can
//! instead wrap the router once; sessions behave the same, and the benchmarks measure
//! two allocations fewer per request (`benches/README.md`):
//!
//! ```no_run
//! use axum::{Router, ServiceExt, routing::get};
//! use sessionkit_axum::{Session, SessionLayer, SessionRejection};
//! use tower_layer::Layer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = sessionkit::Registry::new().build()?;
//! let router = Router::new().route(
//!     "/",
//!     get(|session: Session| async move {
//!         Ok::<_, SessionRejection>(session.get::<u64>("visits")?.unwrap_or(0).to_string())
//!     }),
//! );
//! let app = SessionLayer::new(sessions).layer(router);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, ServiceExt::<axum::extract::Request>::into_make_service(app)).await?;
//! # Ok(()) }
//! ```
//!
//! # What the layer does
//!
//! - Nothing is parsed or loaded until a handler extracts a session; a route that never
//!   does costs no driver call and gets no header.
//! - The [`Session`] extractor gives the default session, loaded. [`NamedSessions`]
//!   reaches any session the layer carries ([`SessionLayer::with_session`]).
//! - After the handler, the layer saves with the response status (a 5xx drops the
//!   changes) and adds `Set-Cookie` and, unless the handler set its own,
//!   `Cache-Control: no-store`. A failed save replaces the response: it never goes out
//!   as a success.
//! - Errors follow sessionkit's one mapping ([`sessionkit::ErrorMapping`]): an
//!   unreachable store is a `503 Service Unavailable` with a short plain-text body,
//!   anything else a `500` (a store that answered with an error, or a mistake whose body
//!   says what to fix: a route without the layer, a session the layer does not carry or
//!   the registry does not know). Each is logged first, with its source chain.
//!   [`SessionLayer::on_error`] replaces the response.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Request;
use http::request::Parts;
use sessionkit::{AdapterState, Error, ErrorMapping, Finish, RequestSessions, Sessions};

/// The tower layer that gives a router its sessions.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    state: AdapterState<Response>,
}

impl SessionLayer {
    /// A layer carrying the registry's default session.
    pub fn new(sessions: Sessions) -> Self {
        SessionLayer {
            state: AdapterState::new(sessions, Error::response),
        }
    }

    /// Also carries the session `name`, for [`NamedSessions`]. A name that is not
    /// registered is reported when a handler asks for it (as a 500 naming the
    /// registered sessions) and logged now.
    #[must_use]
    pub fn with_session(mut self, name: &str) -> Self {
        self.state = self.state.with_session(name, "SessionLayer::with_session");
        self
    }

    /// Replaces the default error response (503 for an unreachable store, 500
    /// otherwise) for every session error of these routes; errors are still logged.
    #[must_use]
    pub fn on_error(mut self, mapper: impl Fn(&Error) -> Response + Send + Sync + 'static) -> Self {
        self.state = self.state.on_error(mapper);
        self
    }
}

impl<S> tower_layer::Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    layer: SessionLayer,
}

/// Marks a response made from a rejection, so the layer can apply a custom mapping to
/// errors raised inside handlers (the rejection has no access to the layer).
#[derive(Clone)]
struct ErrorMarker(Arc<Error>);

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SessionService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = SessionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let sessions = self.layer.state.request(request.headers());
        request.extensions_mut().insert(sessions.clone());
        SessionFuture {
            state: State::Handler {
                // The service polled ready is the one called, and its future owns what
                // it needs: no clone of the inner service (a boxed route in axum).
                handler: self.inner.call(request),
                // Only the mapping travels with the response; the rest of the state is
                // per layer.
                finish: Some((sessions, self.layer.state.errors().clone())),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SessionService`]: the inner service's, then the save. A save
    /// that needs no store call (a route that loaded no session, a read, a cookie
    /// session's write) ends in the same poll, without an allocation; only store calls
    /// are boxed.
    pub struct SessionFuture<F> {
        #[pin]
        state: State<F>,
    }
}

type Saving = Pin<Box<dyn Future<Output = Response> + Send>>;

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Handler {
            #[pin]
            handler: F,
            finish: Option<(RequestSessions, ErrorMapping<Response>)>,
        },
        Saving {
            saving: Saving,
        },
    }
}

impl<F> fmt::Debug for SessionFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for SessionFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let saving = match state.as_mut().project() {
                StateProjection::Saving { saving } => return saving.as_mut().poll(cx).map(Ok),
                StateProjection::Handler { handler, finish } => {
                    let mut response = match handler.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                        Poll::Ready(Ok(response)) => response.map(Body::new),
                    };
                    // Taken exactly once, when the handler's response is ready.
                    let Some((sessions, errors)) = finish.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    if let Some(ErrorMarker(error)) = response.extensions_mut().remove::<ErrorMarker>()
                        && errors.is_custom()
                    {
                        response = errors.map(&error);
                    }
                    match sessions.finish_http_now(response, &errors) {
                        Finish::Ready(response) => return Poll::Ready(Ok(response)),
                        Finish::Pending(pending) => Box::pin(pending.run()) as Saving,
                    }
                }
            };
            state.set(State::Saving { saving });
        }
    }
}

/// Why a session could not be extracted or used: a [`sessionkit::Error`] (including
/// [`Error::NotInstalled`] for a route without the layer). Its response is the layer's
/// error mapping. Handlers can return it, and `?` converts [`sessionkit::Error`] into
/// it.
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

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.0.log();
        let mut response: Response = self.0.response();
        response.extensions_mut().insert(ErrorMarker(Arc::new(self.0)));
        response
    }
}

fn request_sessions(parts: &Parts) -> Result<RequestSessions, SessionRejection> {
    parts
        .extensions
        .get::<RequestSessions>()
        .cloned()
        .ok_or(SessionRejection(Error::NotInstalled {
            component: "SessionLayer",
            fix: "add `.layer(SessionLayer::new(sessions))` to the router",
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

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Session(request_sessions(parts)?.default_session().await?))
    }
}

/// Every session the layer carries, loaded on first use:
/// `sessions.get("admin").await?`.
#[derive(Clone, Debug)]
pub struct NamedSessions(RequestSessions);

impl NamedSessions {
    /// The session called `name`.
    ///
    /// # Errors
    /// When the layer does not carry it, the registry does not know it, or the store
    /// fails.
    pub async fn get(&self, name: &str) -> Result<sessionkit::Session, SessionRejection> {
        Ok(self.0.session(name).await?)
    }

    /// The underlying request sessions.
    pub fn request_sessions(&self) -> &RequestSessions {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for NamedSessions {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(NamedSessions(request_sessions(parts)?))
    }
}

/// Compile-time check that the layer suits axum's router.
#[allow(dead_code)]
fn _assert_service<S>(
    s: SessionService<S>,
) -> impl tower_service::Service<Request<Body>, Response = Response, Error = Infallible>
where
    S: tower_service::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    s
}
