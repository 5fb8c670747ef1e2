//! `SessionMiddleware::on_error` replaces the default mapping everywhere a session
//! error becomes a response: a failed extractor, a `SessionRejection` returned by a
//! handler, and a failed save.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{App, HttpResponse, test, web};
use sessionkit_actix::{NamedSessions, Session, SessionMiddleware, SessionRejection};
use sessionkit_conformance::{DriverBackend, Harness, Jar};
use sessionkit_testkit::MemoryFactory;

async fn set(session: Session, value: web::Path<String>) -> Result<&'static str, SessionRejection> {
    session.insert("key", &value.into_inner())?;
    Ok("ok")
}

async fn read(sessions: NamedSessions) -> Result<String, SessionRejection> {
    Ok(sessions
        .get("web")
        .await?
        .get::<String>("key")?
        .unwrap_or_default())
}

async fn send(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    method: &str,
    path: &str,
    jar: Option<&Jar>,
) -> (u16, String, Vec<String>) {
    let mut request = test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(path);
    if let Some(jar) = jar {
        request = request.insert_header(("cookie", jar.header()));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    let body = test::read_body(response).await;
    (status, String::from_utf8_lossy(&body).into_owned(), cookies)
}

#[tokio::test]
async fn a_custom_mapping_replaces_every_session_error_response() {
    let harness = Harness::new(&DriverBackend(MemoryFactory)).await;
    let app = test::init_service(
        App::new()
            .route("/set/{value}", web::post().to(set))
            .route("/read", web::get().to(read))
            .wrap(
                SessionMiddleware::new(harness.sessions.clone()).on_error(|error| {
                    HttpResponse::build(StatusCode::IM_A_TEAPOT)
                        .body(format!("mapped {}", error.status().as_u16()))
                }),
            ),
    )
    .await;

    let mut jar = Jar::default();
    let (status, body, cookies) = send(&app, "POST", "/set/ada", None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    for cookie in &cookies {
        jar.apply(cookie);
    }
    let switch = harness.switch.clone().expect("a server-side store");
    switch.down();
    for (what, method, path, jar) in [
        ("a failed extractor", "POST", "/set/eve", Some(&jar)),
        ("a rejection returned by the handler", "GET", "/read", Some(&jar)),
        ("a failed save", "POST", "/set/eve", None),
    ] {
        let (status, body, cookies) = send(&app, method, path, jar).await;
        assert_eq!((status, body.as_str()), (418, "mapped 503"), "{what}");
        assert!(cookies.is_empty(), "{what}");
    }
    switch.up();
    let (status, body, _) = send(&app, "GET", "/read", Some(&jar)).await;
    assert_eq!((status, body.as_str()), (200, "ada"));
}

#[tokio::test]
async fn the_default_mapping_is_plain_text() {
    let harness = Harness::new(&DriverBackend(MemoryFactory)).await;
    let app = test::init_service(
        App::new()
            .route("/set/{value}", web::post().to(set))
            .wrap(SessionMiddleware::new(harness.sessions.clone())),
    )
    .await;
    harness.switch.clone().expect("a server-side store").down();
    let request = test::TestRequest::post().uri("/set/eve").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers().get("content-type").map(HeaderValue::as_bytes),
        Some(sessionkit::ERROR_CONTENT_TYPE.as_bytes())
    );
}
