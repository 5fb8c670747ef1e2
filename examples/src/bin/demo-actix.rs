//! The sessionkit demo on actix-web: `cargo run -p sessionkit-examples --bin demo-actix`.

use std::process::ExitCode;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use actix_web::web::{self, Bytes, Path};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use sessionkit::Sessions;
use sessionkit_actix::{NamedSessions, Session, SessionMiddleware, SessionRejection};
use sessionkit_examples::demo::{self, DemoError, DemoResponse, DemoResult};

type Reply = Result<HttpResponse, SessionRejection>;

fn respond(result: DemoResult) -> Reply {
    match result {
        Ok(reply) | Err(DemoError::BadRequest(reply)) => Ok(to_response(reply)),
        // As an error, so the middleware's mapping answers it.
        Err(DemoError::Session(error)) => Err(error.into()),
    }
}

fn to_response(reply: DemoResponse) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = reply.content_type {
        response.insert_header((CONTENT_TYPE, content_type));
    }
    if let Some(location) = reply.location {
        response.insert_header((LOCATION, location));
    }
    response.body(reply.body)
}

fn user_agent(request: &HttpRequest) -> Option<&str> {
    request.headers().get(USER_AGENT).and_then(|v| v.to_str().ok())
}

async fn admin(named: &NamedSessions) -> Result<sessionkit::Session, SessionRejection> {
    named.get("admin").await
}

async fn page(web: Session, named: NamedSessions) -> Reply {
    respond(demo::page(&web, &admin(&named).await?).await)
}

async fn form_login(web: Session, request: HttpRequest, body: Bytes) -> Reply {
    respond(demo::form_login(&web, &body, user_agent(&request)))
}

async fn form_end_device(web: Session, handle: Path<String>) -> Reply {
    respond(demo::form_end_device(&web, &handle).await)
}

async fn form_logout_everywhere(web: Session) -> Reply {
    respond(demo::form_logout_everywhere(&web).await)
}

async fn form_logout(web: Session) -> Reply {
    respond(demo::form_logout(&web))
}

async fn form_admin_enter(web: Session, named: NamedSessions) -> Reply {
    respond(demo::form_admin_enter(&web, &admin(&named).await?))
}

async fn form_admin_leave(web: Session, named: NamedSessions) -> Reply {
    respond(demo::form_admin_leave(&web, &admin(&named).await?))
}

async fn api_session(web: Session, named: NamedSessions) -> Reply {
    respond(demo::api_session(&web, &admin(&named).await?))
}

async fn api_visit(web: Session) -> Reply {
    respond(demo::api_visit(&web))
}

async fn api_login(web: Session, request: HttpRequest, body: Bytes) -> Reply {
    respond(demo::api_login(&web, &body, user_agent(&request)))
}

async fn api_sessions(web: Session) -> Reply {
    respond(demo::api_sessions(&web).await)
}

async fn api_revoke_others(web: Session) -> Reply {
    respond(demo::api_revoke_others(&web).await)
}

async fn api_end_session(web: Session, handle: Path<String>) -> Reply {
    respond(demo::api_end_session(&web, &handle).await)
}

async fn api_logout_everywhere(web: Session) -> Reply {
    respond(demo::api_logout_everywhere(&web).await)
}

async fn api_logout(web: Session) -> Reply {
    respond(demo::api_logout(&web))
}

async fn api_admin_enter(named: NamedSessions) -> Reply {
    respond(demo::api_admin_enter(&admin(&named).await?))
}

async fn api_admin_leave(named: NamedSessions) -> Reply {
    respond(demo::api_admin_leave(&admin(&named).await?))
}

async fn api_data_get(web: Session, key: Path<String>) -> Reply {
    respond(demo::api_data_get(&web, &key))
}

async fn api_data_put(web: Session, key: Path<String>, body: Bytes) -> Reply {
    respond(demo::api_data_put(&web, &key, &body))
}

async fn api_data_delete(web: Session, key: Path<String>) -> Reply {
    respond(demo::api_data_delete(&web, &key))
}

async fn api_flash_take(web: Session) -> Reply {
    respond(demo::api_flash_take(&web))
}

async fn api_flash_add(web: Session, body: Bytes) -> Reply {
    respond(demo::api_flash_add(&web, &body))
}

async fn not_found() -> HttpResponse {
    to_response(DemoResponse::client_error(404, "no such route"))
}

fn app(
    sessions: Sessions,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        // Bodies over the limit are refused with 413 before a handler runs. Every path is
        // a resource, so a known path with another method is a 405, not a 404.
        .app_data(web::PayloadConfig::new(demo::MAX_BODY))
        .service(web::resource("/").route(web::get().to(page)))
        .service(web::resource("/login").route(web::post().to(form_login)))
        .service(web::resource("/devices/{handle}/end").route(web::post().to(form_end_device)))
        .service(web::resource("/logout-everywhere").route(web::post().to(form_logout_everywhere)))
        .service(web::resource("/logout").route(web::post().to(form_logout)))
        .service(web::resource("/admin/enter").route(web::post().to(form_admin_enter)))
        .service(web::resource("/admin/leave").route(web::post().to(form_admin_leave)))
        .service(web::resource("/api/session").route(web::get().to(api_session)))
        .service(web::resource("/api/visit").route(web::post().to(api_visit)))
        .service(web::resource("/api/login").route(web::post().to(api_login)))
        .service(web::resource("/api/sessions").route(web::get().to(api_sessions)))
        .service(web::resource("/api/sessions/revoke-others").route(web::post().to(api_revoke_others)))
        .service(web::resource("/api/sessions/{handle}").route(web::delete().to(api_end_session)))
        .service(web::resource("/api/logout-everywhere").route(web::post().to(api_logout_everywhere)))
        .service(web::resource("/api/logout").route(web::post().to(api_logout)))
        .service(web::resource("/api/admin/enter").route(web::post().to(api_admin_enter)))
        .service(web::resource("/api/admin/leave").route(web::post().to(api_admin_leave)))
        .service(
            web::resource("/api/data/{key}")
                .route(web::get().to(api_data_get))
                .route(web::put().to(api_data_put))
                .route(web::delete().to(api_data_delete)),
        )
        .service(
            web::resource("/api/flash")
                .route(web::get().to(api_flash_take))
                .route(web::post().to(api_flash_add)),
        )
        .default_service(web::to(not_found))
        .wrap(SessionMiddleware::new(sessions).with_session("admin"))
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::run("actix-web", |listener, sessions| async move {
        let server = HttpServer::new(move || app(sessions.clone()))
            .disable_signals()
            .listen(listener.into_std()?)?
            .run();
        let handle = server.handle();
        let mut server = server;
        tokio::select! {
            result = &mut server => result,
            () = demo::shutdown() => {
                // Sends the command now; the server future carries it out.
                drop(handle.stop(true));
                server.await
            }
        }
    })
    .await
}
