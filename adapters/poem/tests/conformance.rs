//! The poem adapter passes the adapter suite over real HTTP, on the memory driver and
//! on the sealed-cookie driver.

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use poem::http::header::CACHE_CONTROL;
use poem::http::{HeaderValue, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::Path;
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler, post};
use sessionkit::Sessions;
use sessionkit_conformance::adapter::{self, AdminAction, Reply, WebAction};
use sessionkit_conformance::{
    AdapterUnderTest, CookieBackend, DriverBackend, DriverFactory, Server, adapter_suite,
};
use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};

fn respond(result: Result<Reply, sessionkit::Error>) -> Result<Response, SessionRejection> {
    let reply = result?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = reply.body.with_status(status).into_response();
    if let Some(value) = reply.cache_control {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    if let Some(value) = reply.vary {
        response
            .headers_mut()
            .insert(poem::http::header::VARY, HeaderValue::from_static(value));
    }
    Ok(response)
}

fn web(session: &Session, action: WebAction) -> Result<Response, SessionRejection> {
    respond(adapter::web(action, session))
}

async fn admin(sessions: &NamedSessions, action: AdminAction) -> Result<Response, SessionRejection> {
    respond(adapter::admin(action, &sessions.get("admin").await?))
}

#[handler]
fn untouched() -> &'static str {
    "untouched"
}

#[handler]
fn state(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::State)
}

#[handler]
fn set(s: Session, Path((key, value)): Path<(String, String)>) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Set { key, value })
}

#[handler]
fn read(s: Session, Path(key): Path<String>) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Get { key })
}

#[handler]
fn remove(s: Session, Path(key): Path<String>) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Remove { key })
}

#[handler]
fn clear(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Clear)
}

#[handler]
fn regenerate(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Regenerate)
}

#[handler]
fn login_remember(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Login { remember: true })
}

#[handler]
fn login_forget(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Login { remember: false })
}

#[handler]
fn destroy(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Destroy)
}

#[handler]
fn flash(s: Session, Path(message): Path<String>) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Flash { message })
}

#[handler]
fn flashes(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Flashes)
}

#[handler]
fn fail(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::Fail)
}

#[handler]
fn own_cache_control(s: Session) -> Result<Response, SessionRejection> {
    web(&s, WebAction::OwnCacheControl)
}

#[handler]
async fn admin_set(
    n: NamedSessions,
    Path((key, value)): Path<(String, String)>,
) -> Result<Response, SessionRejection> {
    admin(&n, AdminAction::Set { key, value }).await
}

#[handler]
async fn admin_get(n: NamedSessions, Path(key): Path<String>) -> Result<Response, SessionRejection> {
    admin(&n, AdminAction::Get { key }).await
}

#[handler]
async fn not_on_layer(n: NamedSessions) -> Result<&'static str, SessionRejection> {
    n.get("api").await.map(|_| "unreachable")
}

#[handler]
async fn unregistered(n: NamedSessions) -> Result<&'static str, SessionRejection> {
    n.get("nope").await.map(|_| "unreachable")
}

/// The reference app of `sessionkit_conformance::adapter`, in poem.
pub fn reference_app(sessions: Sessions) -> impl poem::Endpoint {
    Route::new()
        .at("/untouched", get(untouched))
        .at("/state", get(state))
        .at("/web/:key/:value", post(set))
        .at("/web/:key", get(read).delete(remove))
        .at("/clear", post(clear))
        .at("/regenerate", post(regenerate))
        .at("/login/remember", post(login_remember))
        .at("/login/forget", post(login_forget))
        .at("/destroy", post(destroy))
        .at("/flash/:message", post(flash))
        .at("/flashes", get(flashes))
        .at("/fail", post(fail))
        .at("/own-cache-control", post(own_cache_control))
        .at("/admin/:key/:value", post(admin_set))
        .at("/admin/:key", get(admin_get))
        .at("/not-on-layer", get(not_on_layer))
        .at("/unregistered", get(unregistered))
        .with(SessionMiddleware::new(sessions).with_session("admin"))
}

struct Poem;

impl AdapterUnderTest for Poem {
    async fn serve(&self, sessions: Sessions) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TcpAcceptor::from_tokio(listener).expect("acceptor");
        let app = reference_app(sessions);
        let task = tokio::spawn(async move {
            poem::Server::new_with_acceptor(acceptor)
                .run(app)
                .await
                .expect("serve");
        });
        Server::new(addr, task)
    }
}

struct Memory;

impl DriverFactory for Memory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}

mod memory {
    use super::*;
    adapter_suite!(Poem, DriverBackend(Memory));
}

mod cookie {
    use super::*;
    adapter_suite!(Poem, CookieBackend);
}
