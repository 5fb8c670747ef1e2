//! The sessionkit demo on axum: `cargo run -p sessionkit-examples --bin demo-axum`.

use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use sessionkit::Sessions;
use sessionkit_axum::{NamedSessions, Session, SessionLayer, SessionRejection};
use sessionkit_examples::demo::{self, DemoError, DemoResponse, DemoResult};

fn respond(result: DemoResult) -> Response {
    match result {
        Ok(reply) | Err(DemoError::BadRequest(reply)) => to_response(reply),
        Err(DemoError::Session(error)) => SessionRejection::from(error).into_response(),
    }
}

fn to_response(reply: DemoResponse) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = reply.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(location) = reply.location {
        headers.insert(header::LOCATION, HeaderValue::from_static(location));
    }
    response
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

async fn admin(sessions: &NamedSessions) -> Result<sessionkit::Session, Response> {
    sessions.get("admin").await.map_err(IntoResponse::into_response)
}

fn app(sessions: Sessions) -> Router {
    Router::new()
        .route(
            "/",
            get(|web: Session, named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::page(&web, &admin).await),
                    Err(response) => response,
                }
            }),
        )
        .route(
            "/login",
            post(|web: Session, headers: HeaderMap, body: Bytes| async move {
                respond(demo::form_login(&web, &body, user_agent(&headers)))
            }),
        )
        .route(
            "/devices/{handle}/end",
            post(|web: Session, Path(handle): Path<String>| async move {
                respond(demo::form_end_device(&web, &handle).await)
            }),
        )
        .route(
            "/logout-everywhere",
            post(|web: Session| async move { respond(demo::form_logout_everywhere(&web).await) }),
        )
        .route("/logout", post(|web: Session| async move { respond(demo::form_logout(&web)) }))
        .route(
            "/admin/enter",
            post(|web: Session, named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::form_admin_enter(&web, &admin)),
                    Err(response) => response,
                }
            }),
        )
        .route(
            "/admin/leave",
            post(|web: Session, named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::form_admin_leave(&web, &admin)),
                    Err(response) => response,
                }
            }),
        )
        .route(
            "/api/session",
            get(|web: Session, named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::api_session(&web, &admin)),
                    Err(response) => response,
                }
            }),
        )
        .route("/api/visit", post(|web: Session| async move { respond(demo::api_visit(&web)) }))
        .route(
            "/api/login",
            post(|web: Session, headers: HeaderMap, body: Bytes| async move {
                respond(demo::api_login(&web, &body, user_agent(&headers)))
            }),
        )
        .route("/api/sessions", get(|web: Session| async move { respond(demo::api_sessions(&web).await) }))
        .route(
            "/api/sessions/revoke-others",
            post(|web: Session| async move { respond(demo::api_revoke_others(&web).await) }),
        )
        .route(
            "/api/sessions/{handle}",
            delete(|web: Session, Path(handle): Path<String>| async move {
                respond(demo::api_end_session(&web, &handle).await)
            }),
        )
        .route(
            "/api/logout-everywhere",
            post(|web: Session| async move { respond(demo::api_logout_everywhere(&web).await) }),
        )
        .route("/api/logout", post(|web: Session| async move { respond(demo::api_logout(&web)) }))
        .route(
            "/api/admin/enter",
            post(|named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::api_admin_enter(&admin)),
                    Err(response) => response,
                }
            }),
        )
        .route(
            "/api/admin/leave",
            post(|named: NamedSessions| async move {
                match admin(&named).await {
                    Ok(admin) => respond(demo::api_admin_leave(&admin)),
                    Err(response) => response,
                }
            }),
        )
        .route(
            "/api/data/{key}",
            get(|web: Session, Path(key): Path<String>| async move { respond(demo::api_data_get(&web, &key)) })
                .put(|web: Session, Path(key): Path<String>, body: Bytes| async move {
                    respond(demo::api_data_put(&web, &key, &body))
                })
                .delete(|web: Session, Path(key): Path<String>| async move { respond(demo::api_data_delete(&web, &key)) }),
        )
        .route(
            "/api/flash",
            get(|web: Session| async move { respond(demo::api_flash_take(&web)) })
                .post(|web: Session, body: Bytes| async move { respond(demo::api_flash_add(&web, &body)) }),
        )
        .fallback(|| async { to_response(DemoResponse::client_error(404, "no such route")) })
        .layer(axum::extract::DefaultBodyLimit::max(demo::MAX_BODY))
        .layer(SessionLayer::new(sessions).with_session("admin"))
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::run("axum", |listener, sessions| {
        axum::serve(listener, app(sessions))
            .with_graceful_shutdown(demo::shutdown())
            .into_future()
    })
    .await
}
