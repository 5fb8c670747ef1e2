//! Key placement for sharded stores: a renewal's new id lands in its old id's group, a
//! bound session's in its user's, and without a placement nothing changes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{World, secret, web_def};
use sessionkit_core::{KeyRing, Namespace, Placement, SessionDef, SessionSpec, StoreKey, UserKey, Write};

const BITS: u8 = 10;

fn placement() -> Placement {
    Placement::groups(BITS).expect("bits")
}

fn world(placement: Placement) -> World {
    let mut def: SessionDef = web_def();
    def.expiry = def
        .expiry
        .with_renewal(Some(Duration::from_mins(10)), Duration::from_secs(5))
        .expect("valid");
    let spec = SessionSpec::new(
        def,
        &Namespace::new("app").expect("ns"),
        &KeyRing::new(&secret(1)),
    )
    .expect("valid")
    .with_placement(placement);
    World::new(Arc::new(spec))
}

fn user_group(world: &World, user: &str) -> u16 {
    let key = UserKey::new(world.spec.store_namespace(), world.spec.name(), user);
    placement().group_of_user(&key)
}

fn created_key(write: Option<&Write>) -> StoreKey {
    match write {
        Some(Write::Create { key, .. }) => key.clone(),
        other => panic!("a create: {other:?}"),
    }
}

#[test]
fn a_session_bound_at_creation_lands_beside_its_users_index() {
    for user in ["ada", "grace", "linus", "barbara"] {
        let mut w = world(placement());
        let r = w.request(|s| s.set_user(user).expect("bind"));
        let key = created_key(r.outcome.write());
        assert_eq!(placement().group_of_key(&key), user_group(&w, user), "{user}");
    }
}

#[test]
fn sign_in_regenerates_into_the_users_group() {
    let mut w = world(placement());
    w.request(|s| s.insert("cart", &1).expect("insert"));
    for user in ["ada", "grace", "linus"] {
        let r = w.request(|s| {
            s.regenerate().expect("regenerate");
            s.set_user(user).expect("bind");
        });
        let key = created_key(r.outcome.write());
        assert_eq!(placement().group_of_key(&key), user_group(&w, user), "{user}");
    }
}

#[test]
fn a_renewal_stays_in_the_old_ids_group() {
    let mut w = world(placement());
    let first = w.request(|s| s.insert("cart", &1).expect("insert"));
    let mut key = created_key(first.outcome.write());
    for _ in 0..4 {
        w.advance(Duration::from_mins(11));
        let r = w.request(|s| assert_eq!(s.get::<i32>("cart").expect("ready"), Some(1)));
        let Some(Write::Rotate(rotation)) = r.outcome.write() else {
            panic!("renewed: {:?}", r.outcome);
        };
        assert_eq!(rotation.from, key);
        assert_ne!(rotation.to, key);
        assert_eq!(
            placement().group_of_key(&rotation.to),
            placement().group_of_key(&key)
        );
        key = rotation.to.clone();
    }
}

#[test]
fn with_a_placement_a_bound_session_is_drawn_into_its_group() {
    // (That no placement draws once is a unit test of `Placement::draw`.)
    let mut placed = world(placement());
    let c = placed.request(|s| s.set_user("ada").expect("bind"));
    assert_eq!(
        placement().group_of_key(&created_key(c.outcome.write())),
        user_group(&placed, "ada")
    );
}
