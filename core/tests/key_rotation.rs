//! Rotating the secret logs nobody out: cookies made with a previous secret verify and
//! are re-issued with the primary on that response.

mod common;

use common::{World, cookie_def, secret, spec_with, web_def};
use sessionkit_core::{Event, KeyRing, SessionDef};

fn rotate(def: SessionDef) {
    let mut old = World::new(spec_with(def.clone(), "app", &KeyRing::new(&secret(1))));
    old.request(|s| s.insert("user", "ada").expect("insert"));

    let mut new = World::new(spec_with(
        def.clone(),
        "app",
        &KeyRing::new(&secret(2)).with_previous(&secret(1)),
    ));
    new.store = std::mem::take(&mut old.store);
    new.cookie = old.cookie.clone();
    let r = new.request(|s| assert_eq!(s.get::<String>("user").expect("get").as_deref(), Some("ada")));
    assert!(
        r.outcome.write().is_none(),
        "re-issue needs no store write: {:?}",
        r.outcome
    );
    let reissued = r.set_cookie.expect("re-issued cookie");
    assert!(
        r.outcome
            .events()
            .iter()
            .any(|e| matches!(e, Event::Reissued { .. }))
    );
    assert_ne!(
        Some(reissued.split(';').next().expect("pair")),
        old.cookie.as_deref()
    );

    // The re-issued cookie verifies with the new secret alone.
    let mut only_new = World::new(spec_with(def, "app", &KeyRing::new(&secret(2))));
    only_new.store = std::mem::take(&mut new.store);
    only_new.cookie = new.cookie.clone();
    let r = only_new.request(|s| assert_eq!(s.get::<String>("user").expect("get").as_deref(), Some("ada")));
    assert!(r.outcome.is_noop());
}

#[test]
fn signed_id_cookies_rotate() {
    rotate(web_def());
}

#[test]
fn sealed_cookies_rotate() {
    rotate(cookie_def());
}

#[test]
fn without_the_previous_secret_old_cookies_are_anonymous() {
    let mut old = World::new(spec_with(web_def(), "app", &KeyRing::new(&secret(1))));
    old.request(|s| s.insert("user", "ada").expect("insert"));
    let mut new = World::new(spec_with(web_def(), "app", &KeyRing::new(&secret(2))));
    new.store = std::mem::take(&mut old.store);
    new.cookie = old.cookie.clone();
    let mut m = new.begin();
    assert!(m.is_new().expect("ready"));
    assert!(matches!(
        m.poll_event(),
        Some(Event::CookieRejected {
            reason: sessionkit_core::Rejection::UnknownKey
        })
    ));
}
