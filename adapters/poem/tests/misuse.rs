//! The mistakes users make most give a clear error that names the fix.

#![allow(
    clippy::needless_pass_by_value,
    reason = "poem handlers take their extractors by value"
)]

use poem::http::StatusCode;
use poem::{Endpoint, Request, Route, get, handler};
use sessionkit_poem::{NamedSessions, Session};

#[handler]
fn default_session(s: Session) -> String {
    format!("{:?}", s.is_new())
}

#[handler]
async fn named_session(n: NamedSessions) -> String {
    format!("{:?}", n.get("admin").await.is_ok())
}

#[tokio::test]
async fn extracting_a_session_without_the_middleware_names_the_fix() {
    let app = Route::new()
        .at("/", get(default_session))
        .at("/named", get(named_session));
    for path in ["/", "/named"] {
        let response = app.get_response(Request::builder().uri_str(path).finish()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let text = response.into_body().into_string().await.expect("body");
        assert!(
            text.contains(".with(SessionMiddleware::new(sessions))"),
            "{path}: {text}"
        );
    }
}
