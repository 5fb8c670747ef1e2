//! Sealed cookie sessions: the record lives in the cookie; the same rules apply.

mod common;

use std::time::Duration;

use common::{World, cookie_def, secret, spec_with};
use serde_json::json;
use sessionkit_core::{Event, FinishError, KeyRing, SessionMachine};

fn world() -> World {
    World::new(spec_with(cookie_def(), "app", &KeyRing::new(&secret(1))))
}

#[test]
fn round_trip_without_any_store() {
    let mut w = world();
    let r = w.request(|s| s.insert("user", "ada").expect("insert"));
    assert!(r.outcome.write().is_none() && r.outcome.delete().is_none());
    let cookie = r.set_cookie.expect("sealed cookie");
    assert!(cookie.contains("Max-Age=1800"), "{cookie}");
    assert_eq!(r.outcome.cache_control(r.result), Some("no-store"));
    w.advance(Duration::from_secs(60));
    let r = w.request(|s| assert_eq!(s.get::<String>("user").expect("get").as_deref(), Some("ada")));
    assert!(r.outcome.is_noop(), "an unchanged read re-seals nothing");
    assert_eq!(w.store.writes, 0);
}

#[test]
fn the_value_is_opaque() {
    let mut w = world();
    let r = w.request(|s| s.insert("user", "very-visible-name").expect("insert"));
    assert!(!r.set_cookie.expect("cookie").contains("very-visible"));
}

#[test]
fn writes_and_due_touches_reseal() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let first = w.cookie.clone();
    w.advance(Duration::from_secs(7 * 60));
    let r = w.request(|s| drop(s.get::<i32>("n")));
    assert!(r.set_cookie.is_some(), "touch due after 20% of the idle budget");
    assert_ne!(w.cookie, first);
    w.advance(Duration::from_secs(29 * 60));
    w.request(|s| assert_eq!(s.get::<i32>("n").expect("get"), Some(1)));
}

#[test]
fn expiry_is_enforced_from_the_sealed_timestamps() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    w.advance(Duration::from_secs(30 * 60));
    let mut m = w.begin();
    assert!(m.is_new().expect("ready"));
    assert!(matches!(
        m.poll_event(),
        Some(Event::Expired {
            by: sessionkit_core::ExpiredBy::Idle,
            ..
        })
    ));
    assert_eq!(m.get::<i32>("n").expect("get"), None);
    let r = w.finish(m, 200);
    assert!(
        r.set_cookie.is_none(),
        "an expired cookie is ignored, not cleared"
    );
}

#[test]
fn destroy_sends_a_removal() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let r = w.request(|s| s.destroy().expect("destroy"));
    let removal = r.set_cookie.expect("removal");
    assert!(
        removal.starts_with("__Host-web=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    assert!(w.cookie.is_none());
    // Destroying without a cookie sends nothing.
    let r = w.request(|s| s.destroy().expect("destroy"));
    assert!(r.outcome.is_noop());
}

#[test]
fn oversize_sessions_are_a_typed_error_naming_session_and_size() {
    let mut w = world();
    let mut m = w.begin();
    m.insert("blob", &"x".repeat(4000)).expect("insert");
    let err = m.finish(200, w.now, &mut w.rng).expect_err("too large");
    let FinishError::CookieTooLarge { session, source } = &err else {
        panic!("{err}")
    };
    assert_eq!(session.as_str(), "web");
    assert!(source.size > 4096);
    let text = err.to_string();
    assert!(
        text.contains("session `web`") && text.contains(&source.size.to_string()),
        "{text}"
    );
}

#[test]
fn largest_fitting_session_fits() {
    let mut w = world();
    let mut size = 2900;
    loop {
        let mut m = w.begin();
        m.insert("blob", &"x".repeat(size)).expect("insert");
        match m.finish(200, w.now, &mut w.rng) {
            Ok(outcome) => {
                let c = outcome
                    .set_cookie(sessionkit_core::WriteResult::Applied)
                    .expect("cookie");
                assert!(c.as_str().len() <= 4096);
                size += 1;
            }
            Err(_) => break,
        }
    }
    assert!(size > 2900, "about 2.9 KiB of JSON fits in a sealed cookie");
}

#[test]
fn sealed_cookies_do_not_move_between_sessions_or_apps() {
    let mut w = world();
    w.request(|s| s.insert("n", &json!(1)).expect("insert"));
    let value = w.cookie.clone().expect("cookie");
    let mut admin = cookie_def();
    admin.name = sessionkit_core::SessionName::new("admin").expect("name");
    let specs = [
        spec_with(admin, "app", &KeyRing::new(&secret(1))),
        spec_with(cookie_def(), "other-app", &KeyRing::new(&secret(1))),
        spec_with(cookie_def(), "app", &KeyRing::new(&secret(2))),
    ];
    for spec in specs {
        let m = SessionMachine::begin(spec, [value.as_bytes()], w.now);
        assert!(m.is_new().expect("ready"));
    }
}
