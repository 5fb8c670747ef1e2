//! `SessionMiddleware::on_error` replaces the default mapping everywhere a session
//! error becomes a response: a failed extractor, a `SessionRejection` returned by a
//! handler, and a failed save.

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use sessionkit_conformance::{DriverBackend, DriverFactory, Harness, Jar};
use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};

struct Memory;

impl DriverFactory for Memory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}

#[handler]
fn set(session: Session, Path(value): Path<String>) -> Result<&'static str, SessionRejection> {
    session.insert("key", &value)?;
    Ok("ok")
}

#[handler]
async fn read(sessions: NamedSessions) -> Result<String, SessionRejection> {
    Ok(sessions
        .get("web")
        .await?
        .get::<String>("key")?
        .unwrap_or_default())
}

async fn send(app: &impl Endpoint, method: &str, path: &str, jar: Option<&Jar>) -> (Response, String) {
    let mut request = Request::builder()
        .method(method.parse().expect("method"))
        .uri_str(path);
    if let Some(jar) = jar {
        request = request.header("cookie", jar.header());
    }
    let mut response = app.get_response(request.finish()).await;
    let body = response.take_body().into_string().await.expect("body");
    (response, body)
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

#[tokio::test]
async fn a_custom_mapping_replaces_every_session_error_response() {
    let harness = Harness::new(&DriverBackend(Memory)).await;
    let app = Route::new()
        .at("/set/:value", post(set))
        .at("/read", get(read))
        .with(
            SessionMiddleware::new(harness.sessions.clone()).on_error(|error| {
                format!("mapped {}", error.status().as_u16())
                    .with_status(StatusCode::IM_A_TEAPOT)
                    .into_response()
            }),
        );

    let mut jar = Jar::default();
    let (r, body) = send(&app, "POST", "/set/ada", None).await;
    assert_eq!((r.status().as_u16(), body.as_str()), (200, "ok"));
    for cookie in set_cookies(&r) {
        jar.apply(&cookie);
    }
    let switch = harness.switch.clone().expect("a server-side store");
    switch.down();
    for (what, method, path, jar) in [
        ("a failed extractor", "POST", "/set/eve", Some(&jar)),
        ("a rejection returned by the handler", "GET", "/read", Some(&jar)),
        ("a failed save", "POST", "/set/eve", None),
    ] {
        let (r, body) = send(&app, method, path, jar).await;
        assert_eq!(
            (r.status().as_u16(), body.as_str()),
            (418, "mapped 503"),
            "{what}"
        );
        assert!(set_cookies(&r).is_empty(), "{what}");
    }
    switch.up();
    let (r, body) = send(&app, "GET", "/read", Some(&jar)).await;
    assert_eq!((r.status().as_u16(), body.as_str()), (200, "ada"));
}
