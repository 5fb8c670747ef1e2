//! Fuzz body for the warp adapter: arbitrary `Cookie` headers and request sequences
//! through the filters, in process (the routes as a tower service, `warp::service`).
//! Invariants: no panic, and no 5xx from cookie bytes (the routes used here never fail
//! on their own and the memory store is always up).

use std::convert::Infallible;
use std::sync::OnceLock;

use super::adapter_steps;

use http::{Request, header};
use sessionkit::{Registry, Secret, Session};
use sessionkit_warp::{SessionContext, SessionFilters};
use tower::ServiceExt;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply, Response};

fn app(cookie_sessions: bool) -> BoxedFilter<(Response,)> {
    static APPS: OnceLock<[BoxedFilter<(Response,)>; 2]> = OnceLock::new();
    APPS.get_or_init(|| {
        let build = |sealed: bool| {
            let mut registry = Registry::new();
            registry.set_secret(Secret::new(*b"warp adapter fuzzing secret 32 b").expect("32 bytes"));
            if sealed {
                for name in ["web", "admin"] {
                    registry.session_mut(name).expect("built in").driver = sessionkit::DriverChoice::Cookie;
                }
            }
            let sessions = registry.build_with_env(&|_| None).expect("registry");
            let filters = SessionFilters::new(sessions).with_session("admin");
            let session = filters.session();
            let routes: [BoxedFilter<(Response,)>; 6] = [
                warp::path!("untouched")
                    .and(warp::get())
                    .map(|| "ok".into_response())
                    .boxed(),
                warp::path!("read")
                    .and(warp::get())
                    .and(session.clone())
                    .and_then(|c: SessionContext, s: Session| async move {
                        let read = s.get::<u32>("n").map(|n| format!("{n:?}"));
                        Ok::<_, Infallible>(c.respond(read).await)
                    })
                    .boxed(),
                warp::path!("write")
                    .and(warp::post())
                    .and(session.clone())
                    .and_then(|c: SessionContext, s: Session| async move {
                        let write = s
                            .get::<u32>("n")
                            .and_then(|n| s.insert("n", &n.unwrap_or(0).wrapping_add(1)))
                            .map(|()| "ok");
                        Ok::<_, Infallible>(c.respond(write).await)
                    })
                    .boxed(),
                warp::path!("regenerate")
                    .and(warp::post())
                    .and(session.clone())
                    .and_then(|c: SessionContext, s: Session| async move {
                        Ok::<_, Infallible>(c.respond(s.regenerate().map(|()| "ok")).await)
                    })
                    .boxed(),
                warp::path!("destroy")
                    .and(warp::post())
                    .and(session)
                    .and_then(|c: SessionContext, s: Session| async move {
                        Ok::<_, Infallible>(c.respond(s.destroy().map(|()| "ok")).await)
                    })
                    .boxed(),
                warp::path!("admin")
                    .and(warp::post())
                    .and(filters.context())
                    .and_then(|c: SessionContext| async move {
                        let admin = match c.named("admin").await {
                            Ok(admin) => admin.insert("on", &true).map(|()| "ok"),
                            Err(error) => Err(error),
                        };
                        Ok::<_, Infallible>(c.respond(admin).await)
                    })
                    .boxed(),
            ];
            routes
                .into_iter()
                .reduce(|a, b| a.or(b).unify().boxed())
                .expect("six routes")
                .recover(sessionkit_warp::recover)
                .unify()
                .boxed()
        };
        [build(false), build(true)]
    })[usize::from(cookie_sessions)]
    .clone()
}

/// Runs up to 8 requests from `data`.
pub fn warp_requests(data: &[u8]) {
    adapter_steps::run(data, |sealed, method, path, cookies| {
        let mut builder = Request::builder().method(method).uri(path);
        for value in cookies {
            builder = builder.header(header::COOKIE, value);
        }
        let request = builder.body(String::new()).expect("request");
        let response = adapter_steps::runtime()
            .block_on(warp::service(app(sealed)).oneshot(request))
            .expect("infallible");
        adapter_steps::Reply::of(response.status().as_u16(), response.headers())
    });
}
