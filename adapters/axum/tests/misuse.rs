//! The mistakes users make most give a clear error that names the fix.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use sessionkit_axum::Session;
use tower::ServiceExt;

#[tokio::test]
async fn extracting_a_session_without_the_layer_names_the_fix() {
    let app: Router = Router::new().route("/", get(|s: Session| async move { format!("{:?}", s.is_new()) }));
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 500);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("SessionLayer::new(sessions)"), "{text}");
}
