//! Fuzz body for the actix-web adapter: arbitrary `Cookie` headers and request sequences
//! through the middleware, in process (`actix_web::test::call_service`). Invariants: no
//! panic, and no 5xx from cookie bytes (the routes used here never fail on their own
//! and the memory store is always up).

use std::cell::OnceCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;

use super::adapter_steps::{self, Reply};

use actix_web::http::Method;
use actix_web::http::header::{self, COOKIE, SET_COOKIE};
use actix_web::{App, test, web};
use http::HeaderValue;
use sessionkit_actix::{NamedSessions, Session, SessionMiddleware, SessionRejection};

async fn read(s: Session) -> Result<String, SessionRejection> {
    Ok(format!("{:?}", s.get::<u32>("n")?))
}

async fn write(s: Session) -> Result<&'static str, SessionRejection> {
    let n = s.get::<u32>("n")?.unwrap_or(0).wrapping_add(1);
    s.insert("n", &n)?;
    Ok("ok")
}

async fn regenerate(s: Session) -> Result<&'static str, SessionRejection> {
    s.regenerate()?;
    Ok("ok")
}

async fn destroy(s: Session) -> Result<&'static str, SessionRejection> {
    s.destroy()?;
    Ok("ok")
}

async fn admin(n: NamedSessions) -> Result<&'static str, SessionRejection> {
    n.get("admin").await?.insert("on", &true)?;
    Ok("ok")
}

/// Sends one request through an app: method, path and `Cookie` values.
type Send = Rc<dyn Fn(Method, &'static str, Vec<HeaderValue>) -> Pin<Box<dyn Future<Output = Reply>>>>;

async fn build(sealed: bool) -> Send {
    let app = App::new()
        .route("/untouched", web::get().to(|| async { "ok" }))
        .route("/read", web::get().to(read))
        .route("/write", web::post().to(write))
        .route("/regenerate", web::post().to(regenerate))
        .route("/destroy", web::post().to(destroy))
        .route("/admin", web::post().to(admin))
        .wrap(SessionMiddleware::new(adapter_steps::sessions(sealed)).with_session("admin"));
    let app = Rc::new(test::init_service(app).await);
    Rc::new(move |method, path, cookies| {
        let app = Rc::clone(&app);
        Box::pin(async move {
            let mut request = test::TestRequest::default().method(method).uri(path);
            for value in cookies {
                request = request.append_header((COOKIE, value.as_bytes()));
            }
            let response = test::call_service(&*app, request.to_request()).await;
            let cookies = response
                .headers()
                .get_all(SET_COOKIE)
                .map(header::HeaderValue::as_bytes);
            Reply::with_set_cookies(response.status().as_u16(), cookies)
        })
    })
}

thread_local! {
    // actix-web services are not `Send`: one pair of apps per thread. Never dropped:
    // dropping an app returns its pooled requests to actix-web's own thread-locals,
    // which may be gone by then at thread exit.
    static APPS: OnceCell<ManuallyDrop<[Send; 2]>> = const { OnceCell::new() };
}

fn app(sealed: bool) -> Send {
    APPS.with(|apps| {
        let apps = apps.get_or_init(|| {
            ManuallyDrop::new(
                adapter_steps::runtime().block_on(async { [build(false).await, build(true).await] }),
            )
        });
        Rc::clone(&apps[usize::from(sealed)])
    })
}

/// Runs up to 8 requests from `data`.
pub fn actix_requests(data: &[u8]) {
    adapter_steps::run(data, |sealed, method, path, cookies| {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
        adapter_steps::runtime().block_on(app(sealed)(method, path, cookies))
    });
}
