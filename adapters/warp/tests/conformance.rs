//! The warp adapter passes the adapter suite over real HTTP, on the memory driver and
//! on the sealed-cookie driver.

use std::convert::Infallible;

use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};
use sessionkit::{Session, Sessions};
use sessionkit_conformance::adapter::{self, AdminAction, Reply, WebAction};
use sessionkit_conformance::{
    AdapterUnderTest, CookieBackend, DriverBackend, DriverFactory, Server, adapter_suite,
};
use sessionkit_warp::{SessionContext, SessionFilters};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::{Reply as _, Response};

fn response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = warp::reply::with_status(reply.body, status).into_response();
    if let Some(value) = reply.cache_control {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    if let Some(value) = reply.vary {
        response
            .headers_mut()
            .insert(http::header::VARY, HeaderValue::from_static(value));
    }
    response
}

async fn web(context: SessionContext, session: Session, action: WebAction) -> Result<Response, Infallible> {
    Ok(context
        .respond(adapter::web(action, &session).map(response))
        .await)
}

async fn admin(context: SessionContext, action: AdminAction) -> Result<Response, Infallible> {
    let result = match context.named("admin").await {
        Ok(session) => adapter::admin(action, &session).map(response),
        Err(error) => Err(error),
    };
    Ok(context.respond(result).await)
}

async fn named(context: SessionContext, name: &'static str) -> Result<Response, Infallible> {
    let result = context.named(name).await.map(|_| "unreachable");
    Ok(context.respond(result).await)
}

/// The reference app of `sessionkit_conformance::adapter`, in warp.
pub fn reference_app(sessions: Sessions) -> BoxedFilter<(Response,)> {
    let filters = SessionFilters::new(sessions).with_session("admin");
    let session = filters.session();
    let context = filters.context();
    let web_route = |method: BoxedFilter<()>, path: BoxedFilter<()>, action: WebAction| {
        method
            .and(path)
            .and(session.clone())
            .and_then(move |c: SessionContext, s: Session| web(c, s, action.clone()))
            .boxed()
    };
    let get = || warp::get().boxed();
    let post = || warp::post().boxed();
    let routes: Vec<BoxedFilter<(Response,)>> = vec![
        warp::get()
            .and(warp::path!("untouched"))
            .map(|| "untouched".into_response())
            .boxed(),
        web_route(get(), warp::path!("state").boxed(), WebAction::State),
        warp::post()
            .and(warp::path!("web" / String / String))
            .and(session.clone())
            .and_then(|key: String, value: String, c: SessionContext, s: Session| {
                web(c, s, WebAction::Set { key, value })
            })
            .boxed(),
        warp::get()
            .and(warp::path!("web" / String))
            .and(session.clone())
            .and_then(|key: String, c: SessionContext, s: Session| web(c, s, WebAction::Get { key }))
            .boxed(),
        warp::delete()
            .and(warp::path!("web" / String))
            .and(session.clone())
            .and_then(|key: String, c: SessionContext, s: Session| web(c, s, WebAction::Remove { key }))
            .boxed(),
        web_route(post(), warp::path!("clear").boxed(), WebAction::Clear),
        web_route(post(), warp::path!("regenerate").boxed(), WebAction::Regenerate),
        web_route(
            post(),
            warp::path!("login" / "remember").boxed(),
            WebAction::Login { remember: true },
        ),
        web_route(
            post(),
            warp::path!("login" / "forget").boxed(),
            WebAction::Login { remember: false },
        ),
        web_route(post(), warp::path!("destroy").boxed(), WebAction::Destroy),
        warp::post()
            .and(warp::path!("flash" / String))
            .and(session.clone())
            .and_then(|message: String, c: SessionContext, s: Session| {
                web(c, s, WebAction::Flash { message })
            })
            .boxed(),
        web_route(get(), warp::path!("flashes").boxed(), WebAction::Flashes),
        web_route(post(), warp::path!("fail").boxed(), WebAction::Fail),
        web_route(
            post(),
            warp::path!("own-cache-control").boxed(),
            WebAction::OwnCacheControl,
        ),
        warp::post()
            .and(warp::path!("admin" / String / String))
            .and(context.clone())
            .and_then(|key: String, value: String, c: SessionContext| {
                admin(c, AdminAction::Set { key, value })
            })
            .boxed(),
        warp::get()
            .and(warp::path!("admin" / String))
            .and(context.clone())
            .and_then(|key: String, c: SessionContext| admin(c, AdminAction::Get { key }))
            .boxed(),
        warp::get()
            .and(warp::path!("not-on-layer"))
            .and(context.clone())
            .and_then(|c: SessionContext| named(c, "api"))
            .boxed(),
        warp::get()
            .and(warp::path!("unregistered"))
            .and(context)
            .and_then(|c: SessionContext| named(c, "nope"))
            .boxed(),
    ];
    routes
        .into_iter()
        .reduce(|a, b| a.or(b).unify().boxed())
        .expect("the route table is not empty")
        .recover(sessionkit_warp::recover)
        .unify()
        .boxed()
}

struct Warp;

impl AdapterUnderTest for Warp {
    async fn serve(&self, sessions: Sessions) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = reference_app(sessions);
        let task = tokio::spawn(async move {
            warp::serve(app).incoming(listener).run().await;
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
    adapter_suite!(Warp, DriverBackend(Memory));
}

mod cookie {
    use super::*;
    adapter_suite!(Warp, CookieBackend);
}
