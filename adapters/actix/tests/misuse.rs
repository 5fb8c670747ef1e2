//! The mistakes users make most give a clear error that names the fix.

use actix_web::{App, test, web};
use sessionkit_actix::{NamedSessions, Session};

#[tokio::test]
async fn extracting_a_session_without_the_middleware_names_the_fix() {
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|s: Session| async move { format!("{:?}", s.is_new()) }),
            )
            .route(
                "/named",
                web::get()
                    .to(|n: NamedSessions| async move { format!("{:?}", n.get("admin").await.is_ok()) }),
            ),
    )
    .await;
    for path in ["/", "/named"] {
        let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), 500, "{path}");
        let body = test::read_body(response).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(".wrap(SessionMiddleware::new(sessions))"),
            "{path}: {text}"
        );
    }
}
