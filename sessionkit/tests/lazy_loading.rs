//! Loading is lazy: no parsing and no driver call until a handler asks, one load per
//! session per request however often it asks.

use std::sync::Arc;

use sessionkit::{ManualClock, MemoryDriver, Registry, RequestSessions, Secret, Session, Sessions};
use sessionkit_conformance::wrappers::{CountingDriver, Counts};

fn setup() -> (Sessions, Arc<Counts>) {
    let clock = ManualClock::starting_now();
    let counting = CountingDriver::new(Arc::new(MemoryDriver::builder().clock(clock.shared()).build()));
    let counts = counting.counts();
    let mut registry = Registry::with_clock(clock.shared());
    registry.set_secret(Secret::new(*b"lazy loading test secret 32 byte").expect("long"));
    registry
        .register_driver("memory", counting)
        .expect("replace memory");
    (registry.build_with_env(&|_| None).expect("builds"), counts)
}

async fn cookie_for(sessions: &Sessions) -> String {
    let request = sessions.request([""]);
    request
        .session("web")
        .await
        .expect("web")
        .insert("n", &1)
        .expect("insert");
    request
        .session("admin")
        .await
        .expect("admin")
        .insert("n", &1)
        .expect("insert");
    let saved = request.save(200).await.expect("save");
    saved
        .set_cookies()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn nothing_is_loaded_until_asked_and_only_once() {
    let (sessions, counts) = setup();
    let cookie = cookie_for(&sessions).await;
    let before = counts.loads();

    let request = sessions.request([cookie.as_str()]);
    assert!(!request.any_loaded());
    assert!(request.save(200).await.expect("save").is_empty());
    assert_eq!(counts.loads(), before, "a request that never asks loads nothing");

    let request = sessions.request([cookie.as_str()]);
    let a = request.session("web").await.expect("web");
    let b = request.default_session().await.expect("web again");
    a.insert("x", &1).expect("insert");
    assert_eq!(b.get::<i32>("x").expect("same session"), Some(1));
    assert_eq!(
        counts.loads(),
        before + 1,
        "one load however often it is asked for"
    );
    request.session("admin").await.expect("admin");
    assert_eq!(counts.loads(), before + 2);
    request.save(200).await.expect("save");
}

#[tokio::test]
async fn concurrent_first_asks_load_once() {
    let (sessions, counts) = setup();
    let cookie = cookie_for(&sessions).await;
    let before = counts.loads();
    let request: RequestSessions = sessions.request([cookie.as_str()]);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move { request.session("web").await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("loads");
    }
    assert_eq!(counts.loads(), before + 1);
}

#[test]
fn handles_are_send_sync_and_cheap_to_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Session>();
    assert_traits::<RequestSessions>();
    assert_traits::<Sessions>();
}

#[tokio::test]
async fn enabled_sessions_limit_what_a_route_may_ask_for() {
    let (sessions, _) = setup();
    let web = sessions.session_name("web").expect("registered").clone();
    let request = sessions.request_with_enabled(&http::HeaderMap::new(), Arc::from(vec![web]));
    request.session("web").await.expect("enabled");
    let err = request.session("admin").await.expect_err("not enabled");
    assert!(
        err.to_string().contains("not enabled on this route") && err.to_string().contains("it carries: web"),
        "{err}"
    );
}

/// Sessions are saved, and their cookies sent, in the registry's order, whatever order
/// the handler asked for them in (the default session's slot is kept apart, but not
/// saved first).
#[tokio::test]
async fn sessions_are_saved_in_the_registrys_order() {
    let (sessions, _) = setup();
    let names: Vec<&str> = sessions.info().iter().map(|info| info.name.as_str()).collect();
    assert!(
        names.iter().position(|n| *n == "admin") < names.iter().position(|n| *n == "web"),
        "admin is registered before web: {names:?}"
    );
    let request = sessions.request([""]);
    for name in ["web", "admin"] {
        request
            .session(name)
            .await
            .expect("loads")
            .insert("n", &1)
            .expect("insert");
    }
    let saved = request.save(200).await.expect("save");
    let cookie_names: Vec<&str> = saved
        .set_cookies()
        .map(|c| c.split('=').next().expect("name"))
        .collect();
    assert_eq!(cookie_names, ["__Host-admin", "__Host-web"]);
}
