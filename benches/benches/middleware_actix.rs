//! The in-process overhead of `sessionkit-actix` over bare actix-web: the same three
//! routes as the axum `middleware` bench (`/untouched`, `/read`, `/write`), requests
//! sent through the app's service with `actix_web::test::call_service`, so only the
//! middleware differs. Variants: bare actix-web (sent a cookie header of the same
//! size), sessionkit on the memory driver, sessionkit on the sealed-cookie driver.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, test, web};
use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit_actix::{Session, SessionMiddleware, SessionRejection};
use sessionkit_benches::{Case, SECRET, runtime};

async fn read(s: Session) -> Result<String, SessionRejection> {
    Ok(s.get::<u64>("n")?.unwrap_or(0).to_string())
}

async fn write(s: Session) -> Result<String, SessionRejection> {
    let n = s.get::<u64>("n")?.unwrap_or(0) + 1;
    s.insert("n", &n)?;
    Ok(n.to_string())
}

fn sessions(cookie: bool) -> sessionkit::Sessions {
    let mut registry = sessionkit::Registry::new();
    registry.set_secret(sessionkit::Secret::new(*SECRET).expect("32 bytes"));
    if cookie {
        registry.session_mut("web").expect("built in").driver = sessionkit::DriverChoice::Cookie;
    }
    registry.build_with_env(&|_| None).expect("registry builds")
}

fn request(case: Case, cookie: Option<&str>) -> actix_http::Request {
    let (method, path) = case.route();
    let mut request = test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header((header::COOKIE, cookie));
    }
    request.to_request()
}

/// Benchmarks `case` on `app`; `cookie` is the session cookie pair to send, if any.
fn bench<S>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    app: &S,
    name: &str,
    case: Case,
    cookie: Option<&str>,
) where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let mut group = c.benchmark_group(format!("middleware_actix/{}", case.name()));
    group.bench_function(name, |b| {
        b.iter(|| {
            let status = rt.block_on(async {
                let response = test::call_service(app, request(case, cookie)).await;
                response.status().as_u16()
            });
            assert!(status < 400, "{name} {} answered {status}", case.name());
        });
    });
    group.finish();
}

fn middleware_actix(c: &mut Criterion) {
    let rt = runtime();
    let cases = [Case::Untouched, Case::Read, Case::ReadWrite];
    let bare = rt.block_on(test::init_service(
        App::new()
            .route("/untouched", web::get().to(|| async { "0" }))
            .route(
                "/read",
                web::get().to(|| async { std::hint::black_box(0u64).to_string() }),
            )
            .route(
                "/write",
                web::post().to(|| async { std::hint::black_box(0u64).wrapping_add(1).to_string() }),
            ),
    ));
    let same_size = format!("__Host-web={}", "A".repeat(92));
    for case in cases {
        bench(c, &rt, &bare, "bare", case, Some(&same_size));
    }
    for (name, cookie_driver) in [("sessionkit-memory", false), ("sessionkit-cookie", true)] {
        let app = rt.block_on(test::init_service(
            App::new()
                .route("/untouched", web::get().to(|| async { "0" }))
                .route("/read", web::get().to(read))
                .route("/write", web::post().to(write))
                .wrap(SessionMiddleware::new(sessions(cookie_driver))),
        ));
        let cookie = rt.block_on(async {
            let response = test::call_service(&app, request(Case::ReadWrite, None)).await;
            let set = response
                .headers()
                .get(header::SET_COOKIE)
                .expect("the first write sets a cookie");
            let set = set.to_str().expect("ascii");
            set.split(';').next().expect("pair").to_owned()
        });
        for case in cases {
            bench(c, &rt, &app, name, case, Some(&cookie));
        }
    }
}

criterion_group!(benches, middleware_actix);
criterion_main!(benches);
