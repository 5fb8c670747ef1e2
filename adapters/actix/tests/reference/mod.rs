//! The reference app of `sessionkit_conformance::adapter`, in actix-web, shared by the
//! adapter-suite test files.

#![allow(dead_code)] // each test file uses part of it

use actix_web::body::BoxBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, VARY};
use actix_web::{App, HttpResponse, HttpServer, web};
use sessionkit::Sessions;
use sessionkit_actix::{NamedSessions, Session, SessionMiddleware, SessionRejection};
use sessionkit_conformance::adapter::{self, AdminAction, Reply, WebAction};
use sessionkit_conformance::{AdapterUnderTest, Server};

type Response = Result<HttpResponse, SessionRejection>;

fn respond(result: Result<Reply, sessionkit::Error>) -> Response {
    let reply = result?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(value) = reply.cache_control {
        response.insert_header((CACHE_CONTROL, value));
    }
    if let Some(value) = reply.vary {
        response.insert_header((VARY, value));
    }
    Ok(response.body(reply.body))
}

#[allow(clippy::unused_async)] // an actix-web handler body, which must be a future
async fn session(s: Session, action: WebAction) -> Response {
    respond(adapter::web(action, &s))
}

async fn admin(n: NamedSessions, action: AdminAction) -> Response {
    respond(adapter::admin(action, &n.get("admin").await?))
}

type Pair = web::Path<(String, String)>;
type One = web::Path<String>;

/// The reference app of `sessionkit_conformance::adapter`, in actix-web.
pub(crate) fn reference_app(
    sessions: Sessions,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .route("/untouched", web::get().to(|| async { "untouched" }))
        .route("/state", web::get().to(|s: Session| session(s, WebAction::State)))
        .route(
            "/web/{key}/{value}",
            web::post().to(|s: Session, p: Pair| {
                let (key, value) = p.into_inner();
                session(s, WebAction::Set { key, value })
            }),
        )
        .service(
            web::resource("/web/{key}")
                .route(web::get().to(|s: Session, p: One| session(s, WebAction::Get { key: p.into_inner() })))
                .route(
                    web::delete()
                        .to(|s: Session, p: One| session(s, WebAction::Remove { key: p.into_inner() })),
                ),
        )
        .route(
            "/clear",
            web::post().to(|s: Session| session(s, WebAction::Clear)),
        )
        .route(
            "/regenerate",
            web::post().to(|s: Session| session(s, WebAction::Regenerate)),
        )
        .route(
            "/login/remember",
            web::post().to(|s: Session| session(s, WebAction::Login { remember: true })),
        )
        .route(
            "/login/forget",
            web::post().to(|s: Session| session(s, WebAction::Login { remember: false })),
        )
        .route(
            "/destroy",
            web::post().to(|s: Session| session(s, WebAction::Destroy)),
        )
        .route(
            "/flash/{message}",
            web::post().to(|s: Session, p: One| {
                session(
                    s,
                    WebAction::Flash {
                        message: p.into_inner(),
                    },
                )
            }),
        )
        .route(
            "/flashes",
            web::get().to(|s: Session| session(s, WebAction::Flashes)),
        )
        .route("/fail", web::post().to(|s: Session| session(s, WebAction::Fail)))
        .route(
            "/own-cache-control",
            web::post().to(|s: Session| session(s, WebAction::OwnCacheControl)),
        )
        .route(
            "/admin/{key}/{value}",
            web::post().to(|n: NamedSessions, p: Pair| {
                let (key, value) = p.into_inner();
                admin(n, AdminAction::Set { key, value })
            }),
        )
        .route(
            "/admin/{key}",
            web::get().to(|n: NamedSessions, p: One| admin(n, AdminAction::Get { key: p.into_inner() })),
        )
        .route(
            "/not-on-layer",
            web::get().to(|n: NamedSessions| async move { n.get("api").await.map(|_| "unreachable") }),
        )
        .route(
            "/unregistered",
            web::get().to(|n: NamedSessions| async move { n.get("nope").await.map(|_| "unreachable") }),
        )
        .wrap(SessionMiddleware::new(sessions).with_session("admin"))
}

/// Stops the actix-web server when the test's server task ends.
struct StopOnDrop(ServerHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // The command is sent now; the server task carries it out.
        drop(self.0.stop(false));
    }
}

/// Serves `app` on `127.0.0.1:0` with one worker, for the conformance harness.
pub(crate) fn serve<F, A>(app: F) -> Server
where
    F: Fn() -> App<A> + Send + Clone + 'static,
    A: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<BoxBody>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = HttpServer::new(app)
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    let task = tokio::spawn(async move {
        let _stop = StopOnDrop(handle);
        std::future::pending::<()>().await;
    });
    Server::new(addr, task)
}

/// The actix-web adapter under test.
pub(crate) struct Actix;

impl AdapterUnderTest for Actix {
    async fn serve(&self, sessions: Sessions) -> Server {
        serve(move || reference_app(sessions.clone()))
    }
}
