//! The sessionkit demo on poem: `cargo run -p sessionkit-examples --bin demo-poem`.

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use std::process::ExitCode;

use poem::error::{NotFoundError, ReadBodyError};
use poem::http::{HeaderMap, StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::web::Path;
use poem::{Body, Endpoint, EndpointExt, Response, Route, Server, get, handler, post};
use sessionkit::Sessions;
use sessionkit_examples::demo::{self, DemoError, DemoResponse, DemoResult};
use sessionkit_poem::{NamedSessions, Session, SessionMiddleware, SessionRejection};

fn respond(result: DemoResult) -> poem::Result<Response> {
    match result {
        Ok(reply) | Err(DemoError::BadRequest(reply)) => Ok(to_response(reply)),
        // As an error, so the middleware's mapping answers it.
        Err(DemoError::Session(error)) => Err(SessionRejection::from(error).into()),
    }
}

fn to_response(reply: DemoResponse) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::builder().status(status);
    if let Some(content_type) = reply.content_type {
        response = response.content_type(content_type);
    }
    if let Some(location) = reply.location {
        response = response.header(header::LOCATION, location);
    }
    response.body(reply.body)
}

/// The request body, at most [`demo::MAX_BODY`] bytes (chunked bodies included).
async fn read(body: Body) -> Result<Vec<u8>, DemoError> {
    match body.into_bytes_limit(demo::MAX_BODY).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(ReadBodyError::PayloadTooLarge) => Err(DemoError::BadRequest(DemoResponse::client_error(
            413,
            &format!("request body over {} bytes", demo::MAX_BODY),
        ))),
        Err(_) => Err(DemoError::BadRequest(DemoResponse::client_error(
            400,
            "the request body could not be read",
        ))),
    }
}

async fn admin(named: &NamedSessions) -> Result<sessionkit::Session, SessionRejection> {
    named.get("admin").await
}

#[handler]
async fn page(web: Session, named: NamedSessions) -> poem::Result<Response> {
    respond(demo::page(&web, &admin(&named).await?).await)
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

#[handler]
async fn form_login(web: Session, headers: &HeaderMap, body: Body) -> poem::Result<Response> {
    respond(
        read(body)
            .await
            .and_then(|form| demo::form_login(&web, &form, user_agent(headers))),
    )
}

#[handler]
async fn form_end_device(web: Session, Path(handle): Path<String>) -> poem::Result<Response> {
    respond(demo::form_end_device(&web, &handle).await)
}

#[handler]
async fn form_logout_everywhere(web: Session) -> poem::Result<Response> {
    respond(demo::form_logout_everywhere(&web).await)
}

#[handler]
async fn api_sessions(web: Session) -> poem::Result<Response> {
    respond(demo::api_sessions(&web).await)
}

#[handler]
async fn api_end_session(web: Session, Path(handle): Path<String>) -> poem::Result<Response> {
    respond(demo::api_end_session(&web, &handle).await)
}

#[handler]
async fn api_revoke_others(web: Session) -> poem::Result<Response> {
    respond(demo::api_revoke_others(&web).await)
}

#[handler]
async fn api_logout_everywhere(web: Session) -> poem::Result<Response> {
    respond(demo::api_logout_everywhere(&web).await)
}

#[handler]
fn form_logout(web: Session) -> poem::Result<Response> {
    respond(demo::form_logout(&web))
}

#[handler]
async fn form_admin_enter(web: Session, named: NamedSessions) -> poem::Result<Response> {
    respond(demo::form_admin_enter(&web, &admin(&named).await?))
}

#[handler]
async fn form_admin_leave(web: Session, named: NamedSessions) -> poem::Result<Response> {
    respond(demo::form_admin_leave(&web, &admin(&named).await?))
}

#[handler]
async fn api_session(web: Session, named: NamedSessions) -> poem::Result<Response> {
    respond(demo::api_session(&web, &admin(&named).await?))
}

#[handler]
fn api_visit(web: Session) -> poem::Result<Response> {
    respond(demo::api_visit(&web))
}

#[handler]
async fn api_login(web: Session, headers: &HeaderMap, body: Body) -> poem::Result<Response> {
    respond(
        read(body)
            .await
            .and_then(|body| demo::api_login(&web, &body, user_agent(headers))),
    )
}

#[handler]
fn api_logout(web: Session) -> poem::Result<Response> {
    respond(demo::api_logout(&web))
}

#[handler]
async fn api_admin_enter(named: NamedSessions) -> poem::Result<Response> {
    respond(demo::api_admin_enter(&admin(&named).await?))
}

#[handler]
async fn api_admin_leave(named: NamedSessions) -> poem::Result<Response> {
    respond(demo::api_admin_leave(&admin(&named).await?))
}

#[handler]
fn api_data_get(web: Session, Path(key): Path<String>) -> poem::Result<Response> {
    respond(demo::api_data_get(&web, &key))
}

#[handler]
async fn api_data_put(web: Session, Path(key): Path<String>, body: Body) -> poem::Result<Response> {
    respond(
        read(body)
            .await
            .and_then(|body| demo::api_data_put(&web, &key, &body)),
    )
}

#[handler]
fn api_data_delete(web: Session, Path(key): Path<String>) -> poem::Result<Response> {
    respond(demo::api_data_delete(&web, &key))
}

#[handler]
fn api_flash_take(web: Session) -> poem::Result<Response> {
    respond(demo::api_flash_take(&web))
}

#[handler]
async fn api_flash_add(web: Session, body: Body) -> poem::Result<Response> {
    respond(read(body).await.and_then(|body| demo::api_flash_add(&web, &body)))
}

fn app(sessions: Sessions) -> impl Endpoint {
    Route::new()
        .at("/", get(page))
        .at("/login", post(form_login))
        .at("/devices/:handle/end", post(form_end_device))
        .at("/logout-everywhere", post(form_logout_everywhere))
        .at("/logout", post(form_logout))
        .at("/admin/enter", post(form_admin_enter))
        .at("/admin/leave", post(form_admin_leave))
        .at("/api/session", get(api_session))
        .at("/api/visit", post(api_visit))
        .at("/api/login", post(api_login))
        .at("/api/logout", post(api_logout))
        .at("/api/sessions", get(api_sessions))
        .at("/api/sessions/revoke-others", post(api_revoke_others))
        .at("/api/sessions/:handle", poem::delete(api_end_session))
        .at("/api/logout-everywhere", post(api_logout_everywhere))
        .at("/api/admin/enter", post(api_admin_enter))
        .at("/api/admin/leave", post(api_admin_leave))
        .at(
            "/api/data/:key",
            get(api_data_get).put(api_data_put).delete(api_data_delete),
        )
        .at("/api/flash", get(api_flash_take).post(api_flash_add))
        .catch_error(|_: NotFoundError| async {
            to_response(DemoResponse::client_error(404, "no such route"))
        })
        .with(SessionMiddleware::new(sessions).with_session("admin"))
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::run("poem", |listener, sessions| async move {
        Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
            .run_with_graceful_shutdown(app(sessions), demo::shutdown(), None)
            .await
    })
    .await
}
