//! Fuzz body for the axum adapter: arbitrary `Cookie` headers and request sequences
//! through the layer, in process. Invariants: no panic, and no 5xx from cookie bytes
//! (the routes used here never fail on their own and the memory store is always up).

use std::sync::OnceLock;

use super::adapter_steps;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, header};
use sessionkit::{Registry, Secret};
use sessionkit_axum::{NamedSessions, Session, SessionLayer, SessionRejection};
use tower::ServiceExt;

fn app(cookie_sessions: bool) -> Router {
    static APPS: OnceLock<[Router; 2]> = OnceLock::new();
    APPS.get_or_init(|| {
        let build = |sealed: bool| {
            let mut registry = Registry::new();
            registry.set_secret(Secret::new(*b"axum adapter fuzzing secret 32 b").expect("32 bytes"));
            if sealed {
                for name in ["web", "admin"] {
                    registry.session_mut(name).expect("built in").driver = sessionkit::DriverChoice::Cookie;
                }
            }
            let sessions = registry.build_with_env(&|_| None).expect("registry");
            Router::new()
                .route("/untouched", get(|| async { "ok" }))
                .route(
                    "/read",
                    get(|s: Session| async move { Ok::<_, SessionRejection>(format!("{:?}", s.get::<u32>("n")?)) }),
                )
                .route(
                    "/write",
                    post(|s: Session| async move {
                        let n = s.get::<u32>("n")?.unwrap_or(0).wrapping_add(1);
                        s.insert("n", &n)?;
                        Ok::<_, SessionRejection>("ok")
                    }),
                )
                .route("/regenerate", post(|s: Session| async move { s.regenerate().map(|()| "ok").map_err(SessionRejection::from) }))
                .route("/destroy", post(|s: Session| async move { s.destroy().map(|()| "ok").map_err(SessionRejection::from) }))
                .route(
                    "/admin",
                    post(|n: NamedSessions| async move {
                        n.get("admin").await?.insert("on", &true)?;
                        Ok::<_, SessionRejection>("ok")
                    }),
                )
                .layer(SessionLayer::new(sessions).with_session("admin"))
        };
        [build(false), build(true)]
    })[usize::from(cookie_sessions)]
    .clone()
}

/// Runs up to 8 requests from `data`.
pub fn axum_requests(data: &[u8]) {
    adapter_steps::run(data, |sealed, method, path, cookies| {
        let mut builder = Request::builder().method(method).uri(path);
        for value in cookies {
            builder = builder.header(header::COOKIE, value);
        }
        let request = builder.body(Body::empty()).expect("request");
        let response = adapter_steps::runtime()
            .block_on(app(sealed).oneshot(request))
            .expect("infallible");
        adapter_steps::Reply::of(response.status().as_u16(), response.headers())
    });
}
