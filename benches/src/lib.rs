//! Shared pieces of the sessionkit benchmarks: the side-by-side axum apps and the
//! requests each benchmark case sends.
//!
//! Every variant serves the same three routes with the same non-session work, so the
//! difference between a variant and [`Variant::Bare`] is the cost of its session
//! middleware:
//!
//! - `GET /untouched`: never touches the session;
//! - `GET /read`: reads one integer from the session;
//! - `POST /write`: reads it and writes it back incremented.

use std::sync::Arc;

pub mod drivers;
pub mod memory;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{HeaderValue, Request, header};
use tower::ServiceExt;

/// A middleware set-up compared in the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// axum with no session middleware: the floor.
    Bare,
    /// sessionkit on the memory driver.
    SessionkitMemory,
    /// sessionkit on the sealed-cookie driver.
    SessionkitCookie,
    /// sessionkit on the sealed-cookie driver, the session bound to a user, so every
    /// request also checks the user's revocation record (the memory driver).
    SessionkitCookieBound,
    /// tower-sessions 0.15 with its memory store.
    TowerSessionsMemory,
    /// tower-sessions 0.15 with its memory store and a signed cookie (`with_signed`),
    /// the set-up that authenticates its cookie as sessionkit always does.
    TowerSessionsSigned,
}

impl Variant {
    /// Every variant, floor first.
    pub const ALL: [Variant; 6] = [
        Variant::Bare,
        Variant::SessionkitMemory,
        Variant::SessionkitCookie,
        Variant::SessionkitCookieBound,
        Variant::TowerSessionsMemory,
        Variant::TowerSessionsSigned,
    ];

    /// A short name for reports and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::SessionkitMemory => "sessionkit-memory",
            Variant::SessionkitCookie => "sessionkit-cookie",
            Variant::SessionkitCookieBound => "sessionkit-cookie-bound",
            Variant::TowerSessionsMemory => "tower-sessions-memory",
            Variant::TowerSessionsSigned => "tower-sessions-signed",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A request shape compared in the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A route that never touches the session, with a valid session cookie.
    Untouched,
    /// Read one integer from an existing session.
    Read,
    /// Read and write it back incremented.
    ReadWrite,
    /// The first request: no cookie; the handler writes, creating a session.
    First,
}

impl Case {
    /// Every case.
    pub const ALL: [Case; 4] = [Case::Untouched, Case::Read, Case::ReadWrite, Case::First];

    /// A short name for reports and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Case::Untouched => "untouched",
            Case::Read => "read",
            Case::ReadWrite => "read-write",
            Case::First => "first",
        }
    }

    /// The case called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The method and path the case sends.
    pub fn route(self) -> (&'static str, &'static str) {
        match self {
            Case::Untouched => ("GET", "/untouched"),
            Case::Read => ("GET", "/read"),
            Case::ReadWrite | Case::First => ("POST", "/write"),
        }
    }
}

/// The benchmark secret (any 32 bytes; benchmarks do not need a real one).
pub const SECRET: &[u8; 32] = b"benchmark secret, thirty-two b.!";

fn sessionkit_app(cookie: bool, bound: bool) -> Router {
    let mut registry = sessionkit::Registry::new();
    registry.set_secret(sessionkit::Secret::new(*SECRET).expect("32 bytes"));
    if cookie {
        registry.session_mut("web").expect("built in").driver = sessionkit::DriverChoice::Cookie;
    }
    routes(
        registry.build_with_env(&|_| None).expect("registry builds"),
        bound,
    )
}

/// The benchmark routes behind sessionkit's layer, over any registry.
pub fn sessionkit_routes(sessions: sessionkit::Sessions) -> Router {
    routes(sessions, false)
}

/// The benchmark routes; with `bind`, the first write also binds the session to a user.
fn routes(sessions: sessionkit::Sessions, bind: bool) -> Router {
    use sessionkit_axum::{Session, SessionLayer, SessionRejection};
    Router::new()
        .route("/untouched", get(|| async { "0" }))
        .route(
            "/read",
            get(|s: Session| async move {
                Ok::<_, SessionRejection>(s.get::<u64>("n")?.unwrap_or(0).to_string())
            }),
        )
        .route(
            "/write",
            post(move |s: Session| async move {
                let n = s.get::<u64>("n")?.unwrap_or(0) + 1;
                s.insert("n", &n)?;
                if bind && s.user()?.is_none() {
                    s.set_user("bench-user")?;
                }
                Ok::<_, SessionRejection>(n.to_string())
            }),
        )
        .layer(SessionLayer::new(sessions))
}

fn tower_sessions_app(signed: bool) -> Router {
    use tower_sessions::{MemoryStore, SessionManagerLayer, cookie::Key};
    let layer = SessionManagerLayer::new(MemoryStore::default()).with_secure(true);
    if signed {
        // `Key::from` takes 64 bytes: the benchmark secret twice.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(SECRET);
        key[32..].copy_from_slice(SECRET);
        tower_sessions_routes().layer(layer.with_signed(Key::from(&key)))
    } else {
        tower_sessions_routes().layer(layer)
    }
}

fn tower_sessions_routes() -> Router {
    use tower_sessions::Session;
    Router::new()
        .route("/untouched", get(|| async { "0" }))
        .route(
            "/read",
            get(|s: Session| async move { s.get::<u64>("n").await.ok().flatten().unwrap_or(0).to_string() }),
        )
        .route(
            "/write",
            post(|s: Session| async move {
                let n = s.get::<u64>("n").await.ok().flatten().unwrap_or(0) + 1;
                let _ = s.insert("n", n).await;
                n.to_string()
            }),
        )
}

fn bare_app() -> Router {
    // The same non-session work: produce the number as text.
    Router::new()
        .route("/untouched", get(|| async { "0" }))
        .route("/read", get(|| async { std::hint::black_box(0u64).to_string() }))
        .route(
            "/write",
            post(|| async { std::hint::black_box(0u64).wrapping_add(1).to_string() }),
        )
}

/// The app of `variant`, its routes made ready once (`with_state`), as `axum::serve`
/// does (`Router::into_make_service`). Without it a `Router<()>` called as a service
/// builds every route's service again on each request, a cost no served app pays.
pub fn app(variant: Variant) -> Router {
    let app = match variant {
        Variant::Bare => bare_app(),
        Variant::SessionkitMemory => sessionkit_app(false, false),
        Variant::SessionkitCookie => sessionkit_app(true, false),
        Variant::SessionkitCookieBound => sessionkit_app(true, true),
        Variant::TowerSessionsMemory => tower_sessions_app(false),
        Variant::TowerSessionsSigned => tower_sessions_app(true),
    };
    app.with_state(())
}

/// An app and the cookie of a session it created, ready to send `case` requests.
pub struct Bench {
    app: Router,
    case: Case,
    cookie: Option<HeaderValue>,
}

impl Bench {
    /// Builds the app of `variant` and, for cases that need one, creates a session with
    /// one write and keeps its cookie.
    pub async fn new(variant: Variant, case: Case) -> Self {
        let app = app(variant);
        let mut bench = Bench {
            app,
            case,
            cookie: None,
        };
        if case != Case::First && variant == Variant::Bare {
            // The floor carries a cookie header of the same size, so parsing the
            // request costs the same everywhere.
            let pair = format!("__Host-web={}", "A".repeat(92));
            bench.cookie = Some(HeaderValue::from_str(&pair).expect("valid header"));
        }
        if case != Case::First && variant != Variant::Bare {
            let response = bench
                .app
                .clone()
                .oneshot(request("POST", "/write", None))
                .await
                .expect("infallible");
            let set = response
                .headers()
                .get(header::SET_COOKIE)
                .expect("the first write sets a cookie");
            let pair = set
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .to_owned();
            bench.cookie = Some(HeaderValue::from_str(&pair).expect("valid header"));
        }
        bench
    }

    /// Sends one request of this case and returns the response status.
    pub async fn send(&self) -> u16 {
        let (method, path) = self.case.route();
        let response = self
            .app
            .clone()
            .oneshot(request(method, path, self.cookie.clone()))
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        drop(response);
        status
    }

    /// The session cookie, for load generators.
    pub fn cookie(&self) -> Option<&HeaderValue> {
        self.cookie.as_ref()
    }

    /// The app, for serving.
    pub fn app(&self) -> Router {
        self.app.clone()
    }
}

/// A request for the benchmark routes.
pub fn request(method: &str, path: &str, cookie: Option<HeaderValue>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).expect("valid request")
}

/// A current-thread runtime, the same for every variant.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Shared so closures can hold it.
pub type SharedBench = Arc<Bench>;
