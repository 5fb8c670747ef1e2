//! The sessionkit demo on warp: `cargo run -p sessionkit-examples --bin demo-warp`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::pin;
use std::process::ExitCode;

use bytes::{Buf, BufMut, Bytes};
use futures_core::Stream;
use sessionkit::{Session, Sessions};
use sessionkit_examples::demo::{self, DemoError, DemoResponse, DemoResult};
use sessionkit_warp::{SessionContext, SessionFilters};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

fn to_response(reply: DemoResponse) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = warp::reply::with_status(reply.body, status).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = reply.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(location) = reply.location {
        headers.insert(header::LOCATION, HeaderValue::from_static(location));
    }
    response
}

/// Ends a handler: saves the sessions and writes their cookies. A session error goes
/// through the adapter's error mapping.
async fn finish(context: SessionContext, result: DemoResult) -> Result<Response, Infallible> {
    let result = match result {
        Ok(reply) | Err(DemoError::BadRequest(reply)) => Ok(to_response(reply)),
        Err(DemoError::Session(error)) => Err(error),
    };
    Ok(context.respond(result).await)
}

/// Runs `handler` with the `admin` session, then ends like [`finish`].
async fn with_admin(
    context: SessionContext,
    handler: impl FnOnce(&Session) -> DemoResult,
) -> Result<Response, Infallible> {
    let result = match context.named("admin").await {
        Ok(admin) => handler(&admin),
        Err(error) => Err(DemoError::Session(error)),
    };
    finish(context, result).await
}

/// Why a request body was refused.
#[derive(Debug)]
enum BodyRejection {
    TooLarge,
    Unreadable,
}

impl warp::reject::Reject for BodyRejection {}

impl BodyRejection {
    fn response(&self) -> DemoResponse {
        match self {
            BodyRejection::TooLarge => {
                DemoResponse::client_error(413, &format!("request body over {} bytes", demo::MAX_BODY))
            }
            BodyRejection::Unreadable => {
                DemoResponse::client_error(400, "the request body could not be read")
            }
        }
    }
}

/// The request body, at most [`demo::MAX_BODY`] bytes. warp's only limit is
/// `content_length_limit`, which refuses chunked (and HTTP/2) bodies without a
/// `Content-Length`; so the body is read as a stream and refused as soon as it is too
/// large, whatever the headers say.
/// The request's `User-Agent`, if it has one.
fn user_agent() -> BoxedFilter<(Option<String>,)> {
    warp::header::optional::<String>("user-agent").boxed()
}

fn body() -> BoxedFilter<(Bytes,)> {
    warp::body::stream().and_then(collect).boxed()
}

async fn collect<B: Buf>(stream: impl Stream<Item = Result<B, warp::Error>>) -> Result<Bytes, Rejection> {
    let mut stream = pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(|_| warp::reject::custom(BodyRejection::Unreadable))?;
        if body.len() + chunk.remaining() > demo::MAX_BODY {
            return Err(warp::reject::custom(BodyRejection::TooLarge));
        }
        body.put(chunk);
    }
    Ok(Bytes::from(body))
}

/// Answers what no route took: the session mapping for a session that failed to load,
/// JSON errors for a refused body and for an unknown path, warp's own response for the
/// rest (405 for a known path with the wrong method).
async fn recover(rejection: Rejection) -> Result<Response, Rejection> {
    if let Some(body) = rejection.find::<BodyRejection>() {
        return Ok(to_response(body.response()));
    }
    if rejection.is_not_found() {
        return Ok(to_response(DemoResponse::client_error(404, "no such route")));
    }
    sessionkit_warp::recover(rejection).await
}

/// `GET`, and `HEAD` the way axum and poem answer it (hyper drops the body).
fn get() -> BoxedFilter<()> {
    warp::get().or(warp::head()).unify().boxed()
}

// Each route matches its path before its method, so an unknown path is a 404 rather
// than a 405 from the first route's method filter; and it reads the body before it
// starts the session context, so a refused request never opens one.
fn app(sessions: Sessions) -> BoxedFilter<(Response,)> {
    let filters = SessionFilters::new(sessions).with_session("admin");
    let web = filters.session();
    let context = filters.context();
    let routes: Vec<BoxedFilter<(Response,)>> = vec![
        warp::path::end()
            .and(get())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| async move {
                let result = match c.named("admin").await {
                    Ok(admin) => demo::page(&web, &admin).await,
                    Err(error) => Err(DemoError::Session(error)),
                };
                finish(c, result).await
            })
            .boxed(),
        warp::path!("login")
            .and(warp::post())
            .and(body())
            .and(user_agent())
            .and(web.clone())
            .and_then(
                |form: Bytes, ua: Option<String>, c: SessionContext, web: Session| {
                    finish(c, demo::form_login(&web, &form, ua.as_deref()))
                },
            )
            .boxed(),
        warp::path!("devices" / String / "end")
            .and(warp::post())
            .and(web.clone())
            .and_then(|handle: String, c: SessionContext, web: Session| async move {
                let result = demo::form_end_device(&web, &handle).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("logout-everywhere")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| async move {
                let result = demo::form_logout_everywhere(&web).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("logout")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| finish(c, demo::form_logout(&web)))
            .boxed(),
        warp::path!("admin" / "enter")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| {
                with_admin(c, move |admin| demo::form_admin_enter(&web, admin))
            })
            .boxed(),
        warp::path!("admin" / "leave")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| {
                with_admin(c, move |admin| demo::form_admin_leave(&web, admin))
            })
            .boxed(),
        warp::path!("api" / "session")
            .and(get())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| {
                with_admin(c, move |admin| demo::api_session(&web, admin))
            })
            .boxed(),
        warp::path!("api" / "visit")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| finish(c, demo::api_visit(&web)))
            .boxed(),
        warp::path!("api" / "login")
            .and(warp::post())
            .and(body())
            .and(user_agent())
            .and(web.clone())
            .and_then(
                |body: Bytes, ua: Option<String>, c: SessionContext, web: Session| {
                    finish(c, demo::api_login(&web, &body, ua.as_deref()))
                },
            )
            .boxed(),
        warp::path!("api" / "sessions")
            .and(get())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| async move {
                let result = demo::api_sessions(&web).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("api" / "sessions" / "revoke-others")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| async move {
                let result = demo::api_revoke_others(&web).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("api" / "sessions" / String)
            .and(warp::delete())
            .and(web.clone())
            .and_then(|handle: String, c: SessionContext, web: Session| async move {
                let result = demo::api_end_session(&web, &handle).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("api" / "logout-everywhere")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| async move {
                let result = demo::api_logout_everywhere(&web).await;
                finish(c, result).await
            })
            .boxed(),
        warp::path!("api" / "logout")
            .and(warp::post())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| finish(c, demo::api_logout(&web)))
            .boxed(),
        warp::path!("api" / "admin" / "enter")
            .and(warp::post())
            .and(context.clone())
            .and_then(|c: SessionContext| with_admin(c, demo::api_admin_enter))
            .boxed(),
        warp::path!("api" / "admin" / "leave")
            .and(warp::post())
            .and(context)
            .and_then(|c: SessionContext| with_admin(c, demo::api_admin_leave))
            .boxed(),
        warp::path!("api" / "data" / String)
            .and(get())
            .and(web.clone())
            .and_then(|key: String, c: SessionContext, web: Session| {
                finish(c, demo::api_data_get(&web, &decode_segment(&key)))
            })
            .boxed(),
        warp::path!("api" / "data" / String)
            .and(warp::put())
            .and(body())
            .and(web.clone())
            .and_then(|key: String, body: Bytes, c: SessionContext, web: Session| {
                finish(c, demo::api_data_put(&web, &decode_segment(&key), &body))
            })
            .boxed(),
        warp::path!("api" / "data" / String)
            .and(warp::delete())
            .and(web.clone())
            .and_then(|key: String, c: SessionContext, web: Session| {
                finish(c, demo::api_data_delete(&web, &decode_segment(&key)))
            })
            .boxed(),
        warp::path!("api" / "flash")
            .and(get())
            .and(web.clone())
            .and_then(|c: SessionContext, web: Session| finish(c, demo::api_flash_take(&web)))
            .boxed(),
        warp::path!("api" / "flash")
            .and(warp::post())
            .and(body())
            .and(web)
            .and_then(|body: Bytes, c: SessionContext, web: Session| {
                finish(c, demo::api_flash_add(&web, &body))
            })
            .boxed(),
    ];
    routes
        .into_iter()
        .reduce(|a, b| a.or(b).unify().boxed())
        .expect("the route table is not empty")
        .recover(recover)
        .unify()
        .boxed()
}

/// A path segment, percent-decoded the way axum and poem decode theirs (warp hands
/// segments over raw). A segment that does not decode to UTF-8 stays raw, and the
/// demo's key check then refuses its `%`.
fn decode_segment(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_or_else(|_| raw.to_owned(), Cow::into_owned)
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::run("warp", |listener, sessions| async move {
        warp::serve(app(sessions))
            .incoming(listener)
            .graceful(demo::shutdown())
            .run()
            .await;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::decode_segment;

    #[test]
    fn segments_decode_like_axum_and_poem() {
        assert_eq!(decode_segment("k%2Dx"), "k-x");
        assert_eq!(decode_segment("bad%20key"), "bad key");
        assert_eq!(decode_segment("%C3%A9"), "é");
        // Not an escape, or not UTF-8: left raw, so the key check refuses the `%`.
        assert_eq!(decode_segment("bad%zzkey"), "bad%zzkey");
        assert_eq!(decode_segment("%FF"), "%FF");
    }
}
