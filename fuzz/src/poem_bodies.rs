//! Fuzz body for the poem adapter: arbitrary `Cookie` headers and request sequences
//! through the middleware, in process (`Endpoint::get_response`). Invariants: no panic,
//! and no 5xx from cookie bytes (the routes used here never fail on their own and the
//! memory store is always up).

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, handler, post};
use sessionkit::{Registry, Secret};
use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

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

#[derive(Debug, Arbitrary)]
enum CookieSource {
    Jar,
    Raw(Vec<u8>),
    JarThenRaw(Vec<u8>),
    Twice(Vec<u8>, Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Step {
    route: u8,
    cookie: CookieSource,
}

const ROUTES: [(Method, &str); 6] = [
    (Method::GET, "/untouched"),
    (Method::GET, "/read"),
    (Method::POST, "/write"),
    (Method::POST, "/regenerate"),
    (Method::POST, "/destroy"),
    (Method::POST, "/admin"),
];

/// Runs up to 8 requests from `data`.
pub fn poem_requests(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(sealed) = u.arbitrary::<bool>() else { return };
    let app = app(sealed);
    let mut jar: Vec<(String, String)> = Vec::new();
    for _ in 0..8 {
        let Ok(step) = u.arbitrary::<Step>() else { return };
        let (method, path) = &ROUTES[usize::from(step.route) % ROUTES.len()];
        let jar_header = jar
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let headers: Vec<Vec<u8>> = match step.cookie {
            CookieSource::Jar => vec![jar_header.into_bytes()],
            CookieSource::Raw(raw) => vec![raw],
            CookieSource::JarThenRaw(raw) => vec![jar_header.into_bytes(), raw],
            CookieSource::Twice(a, b) => vec![a, b],
        };
        let mut builder = Request::builder().method(method.clone()).uri_str(*path);
        for value in headers {
            // Bytes hyper would refuse never reach a service.
            let Ok(value) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            builder = builder.header(header::COOKIE, value);
        }
        let response = runtime().block_on(app.get_response(builder.finish()));
        assert!(
            response.status().as_u16() < 500,
            "{method} {path} answered {}",
            response.status()
        );
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("set-cookie is ASCII");
            assert!(text.len() <= 4096);
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            jar.retain(|(n, _)| n != name);
            if !value.is_empty() {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}
