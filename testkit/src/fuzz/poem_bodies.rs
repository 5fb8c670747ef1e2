//! Fuzz body for the poem adapter: arbitrary `Cookie` headers and request sequences
//! through the middleware, in process (`Endpoint::get_response`). Invariants: no panic,
//! and no 5xx from cookie bytes (the routes used here never fail on their own and the
//! memory store is always up).

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use std::sync::OnceLock;

use super::adapter_steps;

use poem::endpoint::BoxEndpoint;
use poem::http::{Method, header};
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, handler, post};
use sessionkit::{Registry, Secret};
use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};

#[handler]
fn untouched() -> &'static str {
    "ok"
}

#[handler]
fn read(s: Session) -> Result<String, SessionRejection> {
    Ok(format!("{:?}", s.get::<u32>("n")?))
}

#[handler]
fn write(s: Session) -> Result<&'static str, SessionRejection> {
    let n = s.get::<u32>("n")?.unwrap_or(0).wrapping_add(1);
    s.insert("n", &n)?;
    Ok("ok")
}

#[handler]
fn regenerate(s: Session) -> Result<&'static str, SessionRejection> {
    s.regenerate()?;
    Ok("ok")
}

#[handler]
fn destroy(s: Session) -> Result<&'static str, SessionRejection> {
    s.destroy()?;
    Ok("ok")
}

#[handler]
async fn admin(n: NamedSessions) -> Result<&'static str, SessionRejection> {
    n.get("admin").await?.insert("on", &true)?;
    Ok("ok")
}

type App = BoxEndpoint<'static, Response>;

fn app(cookie_sessions: bool) -> &'static App {
    static APPS: OnceLock<[App; 2]> = OnceLock::new();
    &APPS.get_or_init(|| {
        let build = |sealed: bool| {
            let mut registry = Registry::new();
            registry.set_secret(Secret::new(*b"poem adapter fuzzing secret 32 b").expect("32 bytes"));
            if sealed {
                for name in ["web", "admin"] {
                    registry.session_mut(name).expect("built in").driver = sessionkit::DriverChoice::Cookie;
                }
            }
            let sessions = registry.build_with_env(&|_| None).expect("registry");
            let app = Route::new()
                .at("/untouched", get(untouched))
                .at("/read", get(read))
                .at("/write", post(write))
                .at("/regenerate", post(regenerate))
                .at("/destroy", post(destroy))
                .at("/admin", post(admin))
                .with(SessionMiddleware::new(sessions).with_session("admin"));
            app.boxed()
        };
        [build(false), build(true)]
    })[usize::from(cookie_sessions)]
}

/// Runs up to 8 requests from `data`.
pub fn poem_requests(data: &[u8]) {
    adapter_steps::run(data, |sealed, method, path, cookies| {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut builder = Request::builder().method(method).uri_str(path);
        for value in cookies {
            builder = builder.header(header::COOKIE, value);
        }
        let response = adapter_steps::runtime().block_on(app(sealed).get_response(builder.finish()));
        adapter_steps::Reply::of(response.status().as_u16(), response.headers())
    });
}
