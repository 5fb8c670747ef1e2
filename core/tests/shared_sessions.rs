//! `shared = true` drops the app namespace from store keys and cookie binding, so two
//! apps with the same secret share a session; otherwise they never do.

mod common;

use common::{World, secret, spec_with, web_def};
use sessionkit_core::{KeyRing, SessionMachine};

fn accepted_across_apps(shared: bool) -> bool {
    let mut def = web_def();
    def.shared = shared;
    let mut shop = World::new(spec_with(def.clone(), "shop", &KeyRing::new(&secret(1))));
    shop.request(|s| s.insert("user", "ada").expect("insert"));
    let blog = spec_with(def, "blog", &KeyRing::new(&secret(1)));
    let cookie = shop.cookie.clone().expect("cookie");
    let mut m = SessionMachine::begin(blog, [cookie.as_bytes()], shop.now);
    if let Some(key) = m.load_request().cloned() {
        m.handle_load(shop.store.load(&key, shop.now), shop.now)
            .expect("load");
    }
    !m.is_new().expect("ready")
}

#[test]
fn shared_sessions_cross_apps() {
    assert!(accepted_across_apps(true));
}

#[test]
fn unshared_sessions_do_not() {
    assert!(!accepted_across_apps(false));
}
