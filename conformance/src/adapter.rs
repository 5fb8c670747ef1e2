//! The adapter suite: one reference app, built by each adapter from the same route
//! table and the same handler logic, served on 127.0.0.1 and driven over real TCP.
//!
//! # The reference app
//!
//! An adapter under test serves these routes with its own router, layer (or filter, or
//! middleware) and extractors, carrying the sessions `web` (the default) and `admin`,
//! and calls [`web`] / [`admin`] for the handler logic:
//!
//! | method | path | handler |
//! |---|---|---|
//! | GET | `/untouched` | never touches a session: `200 untouched` |
//! | GET | `/state` | default session: [`WebAction::State`] |
//! | POST | `/web/{key}/{value}` | default session: [`WebAction::Set`] |
//! | GET | `/web/{key}` | default session: [`WebAction::Get`] |
//! | DELETE | `/web/{key}` | default session: [`WebAction::Remove`] |
//! | POST | `/clear` | [`WebAction::Clear`] |
//! | POST | `/regenerate` | [`WebAction::Regenerate`] |
//! | POST | `/login/remember` | [`WebAction::Login`] with `remember: true` |
//! | POST | `/login/forget` | [`WebAction::Login`] with `remember: false` |
//! | POST | `/destroy` | [`WebAction::Destroy`] |
//! | POST | `/flash/{message}` | [`WebAction::Flash`] |
//! | GET | `/flashes` | [`WebAction::Flashes`] |
//! | POST | `/fail` | [`WebAction::Fail`] (the handler fails) |
//! | POST | `/own-cache-control` | [`WebAction::OwnCacheControl`] (sets its own `Cache-Control` and `Vary`) |
//! | POST | `/admin/{key}/{value}` | the named session `admin`: [`AdminAction::Set`] |
//! | GET | `/admin/{key}` | `admin`: [`AdminAction::Get`] |
//! | GET | `/not-on-layer` | asks for the named session `api`, registered but not on the layer |
//! | GET | `/unregistered` | asks for the named session `nope`, which is not registered |
//!
//! Session errors (from the extractors or from [`web`]/[`admin`]) go through the
//! adapter's own error mapping: 503 for a store failure, 500 otherwise.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sessionkit::{Session, Sessions};

use crate::http::{Response, request};
use crate::session::{ADMIN_COOKIE, Harness, Jar, SECRET, SessionBackend, WEB_COOKIE};
use crate::wrappers::Switch;

/// The sessions the reference app's layer carries.
pub const LAYER_SESSIONS: [&str; 2] = ["web", "admin"];

/// What a reference handler answers (the adapter turns it into its framework's
/// response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// A plain-text body.
    pub body: String,
    /// A `Cache-Control` header the handler sets itself, if any.
    pub cache_control: Option<&'static str>,
    /// A `Vary` header the handler sets itself, if any.
    pub vary: Option<&'static str>,
}

impl Reply {
    fn ok(body: impl Into<String>) -> Self {
        Reply {
            status: 200,
            body: body.into(),
            cache_control: None,
            vary: None,
        }
    }
}

/// Handler logic on the default session.
#[derive(Debug, Clone)]
pub enum WebAction {
    /// `{"new": bool, "keys": [...]}`; changes nothing.
    State,
    /// Stores `value` (a string) under `key`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// The value under `key`, or 404.
    Get {
        /// The key.
        key: String,
    },
    /// Removes `key`.
    Remove {
        /// The key.
        key: String,
    },
    /// Clears the session.
    Clear,
    /// Regenerates the id.
    Regenerate,
    /// Signs in: regenerates the id, stores `user = "ada"` and chooses a persistent
    /// (`remember`) or browser-session cookie.
    Login {
        /// Remember me.
        remember: bool,
    },
    /// Destroys the session.
    Destroy,
    /// Adds a flash message.
    Flash {
        /// The message.
        message: String,
    },
    /// Takes the flash messages (a JSON array).
    Flashes,
    /// Writes `failed = "yes"`, then fails with 500.
    Fail,
    /// Writes a key and sets its own `Cache-Control: private, max-age=0` and
    /// `Vary: Accept-Encoding`.
    OwnCacheControl,
}

/// Handler logic on the named session `admin`.
#[derive(Debug, Clone)]
pub enum AdminAction {
    /// Stores `value` under `key`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// The value under `key`, or 404.
    Get {
        /// The key.
        key: String,
    },
}

fn get(session: &Session, key: &str) -> Result<Reply, sessionkit::Error> {
    Ok(match session.get::<String>(key)? {
        Some(value) => Reply::ok(value),
        None => Reply {
            status: 404,
            body: "missing".into(),
            cache_control: None,
            vary: None,
        },
    })
}

/// Runs a reference handler on the default session.
///
/// # Errors
/// The session error, for the adapter's error mapping.
pub fn web(action: WebAction, session: &Session) -> Result<Reply, sessionkit::Error> {
    Ok(match action {
        WebAction::State => {
            let state = serde_json::json!({ "new": session.is_new()?, "keys": session.keys()? });
            Reply::ok(state.to_string())
        }
        WebAction::Set { key, value } => {
            session.insert(&key, &value)?;
            Reply::ok("ok")
        }
        WebAction::Get { key } => return get(session, &key),
        WebAction::Remove { key } => Reply::ok(if session.remove(&key)?.is_some() {
            "removed"
        } else {
            "absent"
        }),
        WebAction::Clear => {
            session.clear()?;
            Reply::ok("cleared")
        }
        WebAction::Regenerate => {
            session.regenerate()?;
            Reply::ok("regenerated")
        }
        WebAction::Login { remember } => {
            session.regenerate()?;
            session.insert("user", "ada")?;
            session.set_persistent(remember)?;
            Reply::ok("signed in")
        }
        WebAction::Destroy => {
            session.destroy()?;
            Reply::ok("destroyed")
        }
        WebAction::Flash { message } => {
            session.flash(&message)?;
            Reply::ok("flashed")
        }
        WebAction::Flashes => {
            Reply::ok(serde_json::to_string(&session.take_flashes::<String>()?).unwrap_or_default())
        }
        WebAction::Fail => {
            session.insert("failed", "yes")?;
            Reply {
                status: 500,
                body: "handler failed".into(),
                cache_control: None,
                vary: None,
            }
        }
        WebAction::OwnCacheControl => {
            session.insert("cached", "no")?;
            Reply {
                status: 200,
                body: "own cache-control".into(),
                cache_control: Some("private, max-age=0"),
                vary: Some("Accept-Encoding"),
            }
        }
    })
}

/// Runs a reference handler on the named session `admin`.
///
/// # Errors
/// The session error, for the adapter's error mapping.
pub fn admin(action: AdminAction, session: &Session) -> Result<Reply, sessionkit::Error> {
    match action {
        AdminAction::Set { key, value } => {
            session.insert(&key, &value)?;
            Ok(Reply::ok("ok"))
        }
        AdminAction::Get { key } => get(session, &key),
    }
}

/// A running reference app; dropping it stops the server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Wraps a spawned server task listening on `addr`.
    pub fn new(addr: SocketAddr, task: tokio::task::JoinHandle<()>) -> Self {
        Server { addr, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An adapter under test: it serves the reference app.
pub trait AdapterUnderTest: Send + Sync + 'static {
    /// Serves the reference app for `sessions` on `127.0.0.1:0`, with its layer (or
    /// filter, or middleware) carrying [`LAYER_SESSIONS`].
    fn serve(&self, sessions: Sessions) -> impl Future<Output = Server> + Send;
}

/// A reference app with a harness and a cookie jar, driven over HTTP.
pub struct Client {
    /// The registry, store and clock.
    pub harness: Arc<Harness>,
    /// The running app.
    pub server: Server,
    /// The browser's cookies.
    pub jar: Jar,
}

impl Client {
    /// Starts the reference app of `adapter` over a fresh `backend`.
    pub async fn start<A: AdapterUnderTest, B: SessionBackend>(adapter: &A, backend: &B) -> Self {
        Self::start_with_config(adapter, backend, "").await
    }

    /// [`start`](Self::start) with the sessions changed by `toml` (see
    /// [`Harness::with_config`]).
    pub async fn start_with_config<A: AdapterUnderTest, B: SessionBackend>(
        adapter: &A,
        backend: &B,
        toml: &str,
    ) -> Self {
        let harness = Arc::new(Harness::with_config(backend, toml).await);
        let server = adapter.serve(harness.sessions.clone()).await;
        Client {
            harness,
            server,
            jar: Jar::default(),
        }
    }

    /// Sends a request with the jar's cookies and applies the Set-Cookies to the jar.
    pub async fn send(&mut self, method: &str, path: &str) -> Response {
        let response = request(self.server.addr, method, path, Some(&self.jar.header()), None).await;
        for cookie in response.set_cookies() {
            self.jar.apply(cookie);
        }
        response
    }

    /// Sends a request with `jar` instead, leaving both jars unchanged.
    pub async fn send_with(&self, jar: &Jar, method: &str, path: &str) -> Response {
        request(self.server.addr, method, path, Some(&jar.header()), None).await
    }

    fn calls(&self) -> usize {
        self.harness.calls()
    }
}

fn state(response: &Response) -> (bool, Vec<String>) {
    assert_eq!(response.status, 200, "GET /state: {response:?}");
    let value: serde_json::Value = serde_json::from_str(&response.body).expect("state is JSON");
    let keys = value["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().unwrap_or_default().to_owned())
        .collect();
    (value["new"].as_bool().expect("new"), keys)
}

/// A route that never touches the session gets no Set-Cookie and causes no driver
/// call, with or without a valid cookie.
pub async fn untouched_route_costs_nothing<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    let r = c.send("GET", "/untouched").await;
    assert_eq!((r.status, r.body.as_str()), (200, "untouched"));
    assert!(r.set_cookies().is_empty());
    c.send("POST", "/web/user/ada").await;
    let calls = c.calls();
    let r = c.send("GET", "/untouched").await;
    assert!(
        r.set_cookies().is_empty() && r.header("cache-control").is_none(),
        "{r:?}"
    );
    assert_eq!(c.calls(), calls, "an untouched route must not call the driver");
}

/// A write sets exactly one cookie with the configured name and attributes, with
/// `Cache-Control: no-store`; the cookie round-trips; a read sets nothing.
pub async fn write_sets_one_cookie_that_round_trips<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    let r = c.send("POST", "/web/user/ada").await;
    assert_eq!(r.status, 200, "{r:?}");
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies[0];
    assert!(cookie.starts_with(&format!("{WEB_COOKIE}=")), "{cookie}");
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    for expected in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(attributes.contains(&expected), "{cookie} lacks {expected}");
    }
    assert!(attributes.iter().any(|a| a.starts_with("Max-Age=")), "{cookie}");
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let writes = c.harness.writes();
    let r = c.send("GET", "/web/user").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ada"));
    assert!(r.set_cookies().is_empty(), "a read sets no cookie: {r:?}");
    assert_eq!(c.harness.writes(), writes, "a read writes nothing");
}

/// Tampered, truncated, foreign (another session's, another app's), old-format and
/// garbage cookies give a fresh session, never an error.
pub async fn bad_cookies_give_a_fresh_session<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    c.send("POST", "/web/user/ada").await;
    c.send("POST", "/admin/level/3").await;
    let good = c.jar.get(WEB_COOKIE).expect("web cookie").to_owned();
    let admin = c.jar.get(ADMIN_COOKIE).expect("admin cookie").to_owned();
    let other_app = c.harness.sibling(SECRET, &[], "another-app");
    let mut foreign = Jar::default();
    other_app
        .with_session(&mut foreign, "web", |s| s.insert("user", "eve").expect("insert"))
        .await;
    let mut bytes = B64.decode(&good).expect("base64");
    bytes[0] = 0;
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let cases = [
        ("tampered", String::from_utf8(flipped).expect("ascii")),
        ("truncated", good[..good.len() / 2].to_owned()),
        ("another session's", admin),
        (
            "another app's",
            foreign.get(WEB_COOKIE).expect("cookie").to_owned(),
        ),
        ("old format", B64.encode(&bytes)),
        ("garbage", "!!!".to_owned()),
    ];
    for (what, value) in cases {
        let mut jar = Jar::default();
        jar.set(WEB_COOKIE, &value);
        let r = c.send_with(&jar, "GET", "/state").await;
        let (new, keys) = state(&r);
        assert!(
            new && keys.is_empty(),
            "{what} cookie must give a fresh session: {r:?}"
        );
        assert!(
            r.set_cookies().is_empty(),
            "{what}: nothing to set for an untouched fresh session"
        );
    }
}

/// Regenerate issues a new cookie and the old one loads nothing; destroy sends a
/// removal cookie with the same Path (and no Domain) and the old cookie loads nothing,
/// plus `Clear-Site-Data: "cookies"` (the suite's `web` session asks for it; no other
/// response carries it).
pub async fn regenerate_and_destroy<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    c.send("POST", "/web/user/ada").await;
    let before = c.jar.clone();
    let r = c.send("POST", "/regenerate").await;
    assert_eq!(r.set_cookies().len(), 1, "{r:?}");
    assert!(r.header("clear-site-data").is_none(), "{r:?}");
    assert_ne!(c.jar.get(WEB_COOKIE), before.get(WEB_COOKIE));
    assert_eq!(c.send("GET", "/web/user").await.body, "ada");
    if c.harness.server_side() {
        assert_eq!(
            c.send_with(&before, "GET", "/web/user").await.status,
            404,
            "the old id loads nothing"
        );
    }
    let live = c.jar.clone();
    let r = c.send("POST", "/destroy").await;
    let removal = r.set_cookies();
    assert_eq!(removal.len(), 1, "{r:?}");
    assert_eq!(
        r.all("clear-site-data"),
        ["\"cookies\""],
        "logout clears site data when the session asks for it: {r:?}"
    );
    assert!(
        removal[0].starts_with(&format!("{WEB_COOKIE}=;")) && removal[0].contains("Max-Age=0"),
        "{}",
        removal[0]
    );
    assert!(
        removal[0].contains("Path=/") && !removal[0].contains("Domain"),
        "{}",
        removal[0]
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(c.jar.get(WEB_COOKIE).is_none());
    if c.harness.server_side() {
        assert_eq!(
            c.send_with(&live, "GET", "/web/user").await.status,
            404,
            "the destroyed id loads nothing"
        );
    }
}

/// Remember-me through the adapter: a sign-in without it sets a browser-session cookie
/// (no `Max-Age`), with it a persistent one; the session's server-side lifetime is the
/// same either way, and a read sets no cookie.
pub async fn remember_me_chooses_the_cookie_kind<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    for (path, persistent) in [("/login/forget", false), ("/login/remember", true)] {
        let mut c = Client::start(a, b).await;
        c.send("POST", "/web/visits/1").await;
        let before = c.jar.clone();
        let r = c.send("POST", path).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let cookies = r.set_cookies();
        assert_eq!(cookies.len(), 1, "{path}: {r:?}");
        assert_eq!(
            cookies[0].contains("Max-Age="),
            persistent,
            "{path}: {}",
            cookies[0]
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(c.send("GET", "/web/user").await.body, "ada");
        let read = c.send("GET", "/web/visits").await;
        assert!(read.set_cookies().is_empty(), "{read:?}");
        if c.harness.server_side() {
            assert_eq!(
                c.send_with(&before, "GET", "/web/user").await.status,
                404,
                "sign-in rotates the id with no grace window"
            );
        }
    }
}

/// Idle and absolute expiry, in simulated time.
pub async fn idle_and_absolute_expiry<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    c.send("POST", "/web/user/ada").await;
    c.harness.clock.advance(Duration::from_secs(29 * 60));
    assert!(
        !state(&c.send("GET", "/state").await).0,
        "alive after 29 idle minutes"
    );
    c.harness.clock.advance(Duration::from_secs(30 * 60));
    assert!(
        state(&c.send("GET", "/state").await).0,
        "expired after 30 idle minutes"
    );
    c.send("POST", "/web/n/0").await;
    let mut alive = 0;
    loop {
        c.harness.clock.advance(Duration::from_secs(20 * 60));
        if state(&c.send("GET", "/state").await).0 {
            break;
        }
        alive += 1;
        c.send("POST", &format!("/web/n/{alive}")).await;
        assert!(alive < 100, "absolute lifetime not enforced");
    }
    assert_eq!(alive, 71, "24 h lifetime with a request every 20 minutes");
}

/// A flash message is read exactly once.
pub async fn flash_is_read_once<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    c.send("POST", "/flash/hello").await;
    assert_eq!(c.send("GET", "/flashes").await.body, r#"["hello"]"#);
    assert_eq!(c.send("GET", "/flashes").await.body, "[]");
}

/// Two named sessions on one app are independent.
pub async fn named_sessions_are_independent<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    c.send("POST", "/web/a/1").await;
    c.send("POST", "/admin/b/2").await;
    assert!(c.jar.get(WEB_COOKIE).is_some() && c.jar.get(ADMIN_COOKIE).is_some());
    assert_eq!(c.send("GET", "/admin/a").await.status, 404);
    assert_eq!(c.send("GET", "/web/b").await.status, 404);
    let r = c.send("POST", "/destroy").await;
    assert_eq!(r.set_cookies().len(), 1, "only web's removal: {r:?}");
    assert_eq!(c.send("GET", "/admin/b").await.body, "2");
    assert_eq!(c.send("GET", "/web/a").await.status, 404);
}

/// 50 concurrent requests on one session, each writing a different key, all persist.
pub async fn concurrent_requests_all_persist<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    if !c.harness.server_side() {
        return;
    }
    c.send("POST", "/web/base/0").await;
    let addr = c.server.addr;
    let header = c.jar.header();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let header = header.clone();
            tokio::spawn(async move {
                request(addr, "POST", &format!("/web/k{i}/{i}"), Some(&header), None).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("request").status, 200);
    }
    for i in 0..50 {
        assert_eq!(
            c.send("GET", &format!("/web/k{i}")).await.body,
            i.to_string(),
            "request {i} was lost"
        );
    }
}

/// A store that is down gives 503 with a short plain-text body; the next request after
/// it comes back succeeds.
pub async fn store_outage_gives_503_then_recovers<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    store_failure_then_recovery(a, b, Switch::down, 503).await;
}

/// A store that answers with an error is a 500 (not a 503 "please retry") with a short
/// plain-text body that says nothing about the store; a failed save never goes out as a
/// success; once the store is healthy again, requests work.
pub async fn store_error_gives_500<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    store_failure_then_recovery(a, b, Switch::fail, 500).await;
}

async fn store_failure_then_recovery<A: AdapterUnderTest, B: SessionBackend>(
    a: &A,
    b: &B,
    failure: fn(&Switch),
    status: u16,
) {
    let mut c = Client::start(a, b).await;
    let Some(switch) = c.harness.switch.clone() else {
        return;
    };
    c.send("POST", "/web/user/ada").await;
    failure(&switch);
    let r = c.send("GET", "/web/user").await;
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.body.len() < 200 && !r.body.contains(WEB_COOKIE) && !r.body.contains("relation"),
        "nothing about the store or the session reaches the client: {r:?}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{r:?}"
    );
    let fresh = Jar::default();
    let r = c.send_with(&fresh, "POST", "/web/x/1").await;
    assert_eq!(
        r.status, status,
        "a failed save never goes out as a success: {r:?}"
    );
    assert!(r.set_cookies().is_empty());
    switch.up();
    assert_eq!(c.send("GET", "/web/user").await.body, "ada");
}

/// A response whose handler loaded a session carries `Cache-Control: no-store` (unless
/// the handler set its own) and `Vary: Cookie` (added to the handler's own `Vary`, never
/// replacing it), whether or not it sets a cookie; a route that never touched the
/// session keeps its headers untouched.
pub async fn cache_control_respects_the_handler<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    let r = c.send("POST", "/own-cache-control").await;
    assert_eq!(r.set_cookies().len(), 1);
    assert_eq!(r.all("cache-control"), ["private, max-age=0"], "{r:?}");
    assert_eq!(vary(&r), ["accept-encoding", "cookie"], "{r:?}");
    let r = c.send("POST", "/web/a/1").await;
    if c.harness.server_side() {
        assert!(r.set_cookies().is_empty(), "no cookie change: {r:?}");
    } else {
        assert_eq!(
            r.set_cookies().len(),
            1,
            "a sealed session is re-sealed on every change"
        );
    }
    assert_eq!(r.all("cache-control"), ["no-store"], "{r:?}");
    assert_eq!(vary(&r), ["cookie"], "{r:?}");
    for (method, path) in [("GET", "/web/a"), ("GET", "/web/missing"), ("GET", "/state")] {
        let r = c.send(method, path).await;
        assert!(r.set_cookies().is_empty(), "a read sets no cookie: {r:?}");
        assert_eq!(r.all("cache-control"), ["no-store"], "{method} {path}: {r:?}");
        assert_eq!(vary(&r), ["cookie"], "{method} {path}: {r:?}");
    }
    let r = c.send("GET", "/untouched").await;
    assert!(
        r.header("cache-control").is_none() && r.header("vary").is_none(),
        "a route that never loads a session keeps its headers: {r:?}"
    );
    let r = c.send("POST", "/destroy").await;
    assert_eq!(r.all("cache-control"), ["no-store"]);
    assert_eq!(vary(&r), ["cookie"], "{r:?}");
}

/// The `Vary` header's field names, lower-cased, across all its lines.
fn vary(r: &Response) -> Vec<String> {
    r.all("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// With `cookie_chunks = 4` on `web`, a sealed session that outgrows one cookie is sent
/// as chunk cookies (`__Host-web`, `__Host-web.1`, ...), each `Set-Cookie` line at most
/// 4096 bytes; all of them come back in the request's `Cookie` header and read back
/// whole; a set missing a chunk is a fresh session; shrinking removes the stale chunks
/// and destroy removes every one. (Sessions kept in a store have one short cookie.)
pub async fn large_cookie_sessions_span_chunk_cookies<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    const CHUNK_1: &str = "__Host-web.1";
    let mut c = Client::start_with_config(a, b, "[session.sessions.web]\ncookie_chunks = 4").await;
    let mut longest = 0;
    for key in ["a", "b", "c"] {
        let value = key.repeat(2_000);
        let r = c.send("POST", &format!("/web/{key}/{value}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        for line in r.set_cookies() {
            assert!(line.len() <= 4096, "a {} byte Set-Cookie line", line.len());
            assert!(line.contains("; Path=/") && line.contains("; Secure"), "{line}");
        }
        longest = longest.max(r.set_cookies().len());
    }
    if c.harness.server_side() {
        assert_eq!(longest, 1, "a store's session has one short cookie");
        return;
    }
    assert!(longest >= 2, "6000 bytes of data take more than one cookie");
    assert!(c.jar.get(CHUNK_1).is_some(), "the jar holds a chunk cookie");
    for key in ["a", "b", "c"] {
        let r = c.send("GET", &format!("/web/{key}")).await;
        assert_eq!((r.status, r.body.len()), (200, 2_000), "{key}");
        assert!(r.set_cookies().is_empty(), "a read sets no cookie: {r:?}");
    }
    let mut partial = c.jar.clone();
    partial.remove(CHUNK_1);
    let r = c.send_with(&partial, "GET", "/state").await;
    assert_eq!(
        state(&r),
        (true, Vec::new()),
        "a partial set is a fresh session: {r:?}"
    );
    // Shrink to one cookie: the chunks are removed on the same response.
    c.send("DELETE", "/web/b").await;
    let r = c.send("DELETE", "/web/c").await;
    let removed: Vec<&str> = r
        .set_cookies()
        .into_iter()
        .filter(|line| line.contains("Max-Age=0"))
        .collect();
    assert!(!removed.is_empty(), "{r:?}");
    for line in &removed {
        assert!(
            line.starts_with("__Host-web.") && line.contains("; Path=/"),
            "{line}"
        );
    }
    assert!(c.jar.get(CHUNK_1).is_none(), "the chunk cookie was removed");
    assert_eq!(c.send("GET", "/web/a").await.body.len(), 2_000);
    // Grow again and log out: every cookie of the set is removed.
    c.send("POST", &format!("/web/b/{}", "b".repeat(2_000))).await;
    c.send("POST", &format!("/web/c/{}", "c".repeat(2_000))).await;
    assert!(c.jar.get(CHUNK_1).is_some());
    c.send("POST", "/destroy").await;
    assert_eq!(c.jar.header(), "", "destroy removes every chunk");
}

/// A failing handler's response passes through and its session changes are dropped.
pub async fn failing_handler_persists_nothing<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    let r = c.send("POST", "/fail").await;
    assert_eq!((r.status, r.body.as_str()), (500, "handler failed"));
    assert!(r.set_cookies().is_empty());
    c.send("POST", "/web/user/ada").await;
    c.send("POST", "/fail").await;
    assert_eq!(c.send("GET", "/web/failed").await.status, 404);
}

/// Asking for a session the layer does not carry, or that the registry does not know,
/// is a 500 whose message names the fix; never a panic or a silent empty session.
pub async fn misconfigured_routes_say_how_to_fix_them<A: AdapterUnderTest, B: SessionBackend>(a: &A, b: &B) {
    let mut c = Client::start(a, b).await;
    let r = c.send("GET", "/not-on-layer").await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body.contains("\"api\"") && r.body.contains("not enabled on this route"),
        "{}",
        r.body
    );
    let r = c.send("GET", "/unregistered").await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body.contains("\"nope\"") && r.body.contains("registered"),
        "{}",
        r.body
    );
    assert_eq!(
        c.send("GET", "/untouched").await.status,
        200,
        "the server still works"
    );
}
