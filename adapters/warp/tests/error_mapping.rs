//! `SessionFilters::on_error` replaces the default mapping everywhere a session error
//! becomes a response: a rejected `session()` filter (through `recover`), an `Err`
//! handed to `SessionContext::respond`, and a failed save.

use std::convert::Infallible;

use http::StatusCode;
use sessionkit_conformance::http::request;
use sessionkit_conformance::{DriverBackend, DriverFactory, Harness, Jar};
use sessionkit_warp::{SessionContext, SessionFilters};
use warp::Filter;
use warp::reply::Reply;

struct Memory;

impl DriverFactory for Memory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}

#[tokio::test]
async fn a_custom_mapping_replaces_every_session_error_response() {
    let harness = Harness::new(&DriverBackend(Memory)).await;
    let filters = SessionFilters::new(harness.sessions.clone()).on_error(|error| {
        warp::reply::with_status(
            format!("mapped {}", error.status().as_u16()),
            StatusCode::IM_A_TEAPOT,
        )
        .into_response()
    });
    let set = warp::post()
        .and(warp::path!("set" / String))
        .and(filters.session())
        .and_then(
            |value: String, context: SessionContext, session: sessionkit::Session| async move {
                let result = session.insert("key", &value).map(|()| "ok");
                Ok::<_, Infallible>(context.respond(result).await)
            },
        );
    let read = warp::get()
        .and(warp::path!("read"))
        .and(filters.context())
        .and_then(|context: SessionContext| async move {
            let result = match context.session().await {
                Ok(session) => session.get::<String>("key").map(Option::unwrap_or_default),
                Err(error) => Err(error),
            };
            Ok::<_, Infallible>(context.respond(result).await)
        });
    let routes = set.or(read).recover(sessionkit_warp::recover);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(warp::serve(routes).incoming(listener).run());

    let mut jar = Jar::default();
    let r = request(addr, "POST", "/set/ada", None, None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    for cookie in r.set_cookies() {
        jar.apply(cookie);
    }
    let switch = harness.switch.clone().expect("a server-side store");
    switch.down();
    let cookie = jar.header();
    for (what, method, path, cookie) in [
        (
            "a rejected session() filter",
            "POST",
            "/set/eve",
            Some(cookie.as_str()),
        ),
        ("an Err handed to respond", "GET", "/read", Some(cookie.as_str())),
        ("a failed save", "POST", "/set/eve", None),
    ] {
        let r = request(addr, method, path, cookie, None).await;
        assert_eq!((r.status, r.body.as_str()), (418, "mapped 503"), "{what}: {r:?}");
        assert!(r.set_cookies().is_empty(), "{what}: {r:?}");
    }
    switch.up();
    let r = request(addr, "GET", "/read", Some(&cookie), None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ada"));
    server.abort();
}
