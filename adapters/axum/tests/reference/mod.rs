//! The reference app of `sessionkit_conformance::adapter`, in axum, shared by the
//! adapter-suite test files.

#![allow(dead_code)] // each test file uses part of it

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use sessionkit::Sessions;
use sessionkit_axum::{NamedSessions, Session, SessionLayer, SessionRejection};
use sessionkit_conformance::adapter::{self, AdminAction, Reply, WebAction};
use sessionkit_conformance::{AdapterUnderTest, Server};

fn respond(result: Result<Reply, sessionkit::Error>) -> Response {
    match result {
        Ok(reply) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, reply.body).into_response();
            if let Some(value) = reply.cache_control {
                response
                    .headers_mut()
                    .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(value));
            }
            if let Some(value) = reply.vary {
                response
                    .headers_mut()
                    .insert(http::header::VARY, http::HeaderValue::from_static(value));
            }
            response
        }
        Err(error) => SessionRejection::from(error).into_response(),
    }
}

#[allow(clippy::unused_async)] // used as an axum handler body, which must be a future
async fn web(session: Session, action: WebAction) -> Response {
    respond(adapter::web(action, &session))
}

async fn admin(sessions: NamedSessions, action: AdminAction) -> Response {
    match sessions.get("admin").await {
        Ok(session) => respond(adapter::admin(action, &session)),
        Err(rejection) => rejection.into_response(),
    }
}

/// The reference app of `sessionkit_conformance::adapter`, in axum.
pub(crate) fn reference_app(sessions: Sessions) -> Router {
    Router::new()
        .route("/untouched", get(|| async { "untouched" }))
        .route("/state", get(|s: Session| web(s, WebAction::State)))
        .route(
            "/web/{key}/{value}",
            post(|s: Session, Path((key, value)): Path<(String, String)>| {
                web(s, WebAction::Set { key, value })
            }),
        )
        .route(
            "/web/{key}",
            get(|s: Session, Path(key): Path<String>| web(s, WebAction::Get { key }))
                .delete(|s: Session, Path(key): Path<String>| web(s, WebAction::Remove { key })),
        )
        .route("/clear", post(|s: Session| web(s, WebAction::Clear)))
        .route("/regenerate", post(|s: Session| web(s, WebAction::Regenerate)))
        .route(
            "/login/remember",
            post(|s: Session| web(s, WebAction::Login { remember: true })),
        )
        .route(
            "/login/forget",
            post(|s: Session| web(s, WebAction::Login { remember: false })),
        )
        .route("/destroy", post(|s: Session| web(s, WebAction::Destroy)))
        .route(
            "/flash/{message}",
            post(|s: Session, Path(message): Path<String>| web(s, WebAction::Flash { message })),
        )
        .route("/flashes", get(|s: Session| web(s, WebAction::Flashes)))
        .route("/fail", post(|s: Session| web(s, WebAction::Fail)))
        .route(
            "/own-cache-control",
            post(|s: Session| web(s, WebAction::OwnCacheControl)),
        )
        .route(
            "/admin/{key}/{value}",
            post(|n: NamedSessions, Path((key, value)): Path<(String, String)>| {
                admin(n, AdminAction::Set { key, value })
            }),
        )
        .route(
            "/admin/{key}",
            get(|n: NamedSessions, Path(key): Path<String>| admin(n, AdminAction::Get { key })),
        )
        .route(
            "/not-on-layer",
            get(|n: NamedSessions| async move { n.get("api").await.map(|_| "unreachable") }),
        )
        .route(
            "/unregistered",
            get(|n: NamedSessions| async move { n.get("nope").await.map(|_| "unreachable") }),
        )
        .layer(SessionLayer::new(sessions).with_session("admin"))
}

/// The axum adapter under test.
pub(crate) struct Axum;

impl AdapterUnderTest for Axum {
    async fn serve(&self, sessions: Sessions) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = reference_app(sessions);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Server::new(addr, task)
    }
}
