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
    /// sessionkit on the memory driver, its layer around the whole router
    /// (`SessionLayer::layer(router)`) instead of `Router::layer`: without axum's own
    /// per-route cost of a layer (a boxed future and two service clones per request).
    SessionkitMemoryAround,
    /// tower-sessions with a signed cookie, its layer around the whole router.
    TowerSessionsSignedAround,
    /// Bare axum called through the same boxed service as the "around" variants: their
    /// floor (the box's clone costs an allocation per request).
    BareBoxed,
}

impl Variant {
    /// Every variant, floor first.
    pub const ALL: [Variant; 9] = [
        Variant::Bare,
        Variant::SessionkitMemory,
        Variant::SessionkitCookie,
        Variant::SessionkitCookieBound,
        Variant::TowerSessionsMemory,
        Variant::TowerSessionsSigned,
        Variant::SessionkitMemoryAround,
        Variant::TowerSessionsSignedAround,
        Variant::BareBoxed,
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
            Variant::SessionkitMemoryAround => "sessionkit-memory-around",
            Variant::TowerSessionsSignedAround => "tower-sessions-signed-around",
            Variant::BareBoxed => "bare-boxed",
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

fn sessionkit_registry(cookie: bool) -> sessionkit::Sessions {
    let mut registry = sessionkit::Registry::new();
    registry.set_secret(sessionkit::Secret::new(*SECRET).expect("32 bytes"));
    if cookie {
        registry.session_mut("web").expect("built in").driver = sessionkit::DriverChoice::Cookie;
    }
    registry.build_with_env(&|_| None).expect("registry builds")
}

fn sessionkit_app(cookie: bool, bound: bool) -> Router {
    routes(sessionkit_registry(cookie), bound)
}

/// The benchmark routes behind sessionkit's layer, over any registry.
pub fn sessionkit_routes(sessions: sessionkit::Sessions) -> Router {
    routes(sessions, false)
}

/// The benchmark routes behind `Router::layer`; with `bind`, the first write also binds
/// the session to a user.
fn routes(sessions: sessionkit::Sessions, bind: bool) -> Router {
    session_routes(bind).layer(sessionkit_axum::SessionLayer::new(sessions))
}

/// The benchmark routes, without the layer.
fn session_routes(bind: bool) -> Router {
    use sessionkit_axum::{Session, SessionRejection};
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
}

fn tower_sessions_app(signed: bool) -> Router {
    use tower_sessions::{MemoryStore, SessionManagerLayer};
    let layer = SessionManagerLayer::new(MemoryStore::default()).with_secure(true);
    if signed {
        tower_sessions_routes().layer(layer.with_signed(tower_sessions_key()))
    } else {
        tower_sessions_routes().layer(layer)
    }
}

/// `Key::from` takes 64 bytes: the benchmark secret twice.
fn tower_sessions_key() -> tower_sessions::cookie::Key {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(SECRET);
    key[32..].copy_from_slice(SECRET);
    tower_sessions::cookie::Key::from(&key)
}

/// A service that takes the benchmark requests: a router, or a layer around one.
type Service =
    tower::util::BoxCloneSyncService<Request<Body>, axum::response::Response, std::convert::Infallible>;

/// The app of an "around" variant: the session layer wraps the whole router.
fn around(variant: Variant) -> Option<Service> {
    use tower::Layer;
    match variant {
        Variant::SessionkitMemoryAround => Some(Service::new(
            sessionkit_axum::SessionLayer::new(sessionkit_registry(false))
                .layer(session_routes(false).with_state(())),
        )),
        Variant::TowerSessionsSignedAround => Some(Service::new(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(true)
                .with_signed(tower_sessions_key())
                .layer(tower_sessions_routes().with_state(())),
        )),
        Variant::BareBoxed => Some(Service::new(bare_app().with_state(()))),
        _ => None,
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
    if let Some(service) = around(variant) {
        // For serving: one more router in front, routing everything to the layer.
        return Router::new().fallback_service(service);
    }
    let app = match variant {
        Variant::Bare => bare_app(),
        Variant::SessionkitMemory => sessionkit_app(false, false),
        Variant::SessionkitCookie => sessionkit_app(true, false),
        Variant::SessionkitCookieBound => sessionkit_app(true, true),
        Variant::TowerSessionsMemory => tower_sessions_app(false),
        Variant::TowerSessionsSigned => tower_sessions_app(true),
        Variant::SessionkitMemoryAround | Variant::TowerSessionsSignedAround | Variant::BareBoxed => {
            bare_app()
        }
    };
    app.with_state(())
}

/// An app and the cookie of a session it created, ready to send `case` requests.
pub struct Bench {
    app: Router,
    /// For "around" variants, the layer around the router, called directly.
    around: Option<Service>,
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
            around: around(variant),
            case,
            cookie: None,
        };
        if case != Case::First && matches!(variant, Variant::Bare | Variant::BareBoxed) {
            // The floor carries a cookie header of the same size, so parsing the
            // request costs the same everywhere.
            let pair = format!("__Host-web={}", "A".repeat(92));
            bench.cookie = Some(HeaderValue::from_str(&pair).expect("valid header"));
        }
        if case != Case::First && !matches!(variant, Variant::Bare | Variant::BareBoxed) {
            let response = bench.call(request("POST", "/write", None)).await;
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
        let response = self.call(request(method, path, self.cookie.clone())).await;
        let status = response.status().as_u16();
        drop(response);
        status
    }

    async fn call(&self, request: Request<Body>) -> axum::response::Response {
        let result = match &self.around {
            Some(service) => service.clone().oneshot(request).await,
            None => self.app.clone().oneshot(request).await,
        };
        result.expect("infallible")
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
