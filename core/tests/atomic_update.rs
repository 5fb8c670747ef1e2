//! The machine's side of an atomic update: where it goes, and taking in what the store
//! applied so the save does not write it again.

mod common;

use common::{World, secret, spec_with, web_def};
use serde_json::json;
use sessionkit_core::{KeyRing, SessionError, Write};

fn world() -> World {
    World::new(spec_with(web_def(), "app", &KeyRing::new(&secret(1))))
}

#[test]
fn a_stored_session_is_updated_in_the_store_and_not_written_again() {
    let mut w = world();
    let created = w.request(|s| s.insert("n", &1).expect("insert"));
    let Some(Write::Create { key, .. }) = created.outcome.write() else {
        panic!("created");
    };
    let key = key.clone();
    let now = w.now;
    let r = w.request(|s| {
        let target = s.update_target("n", now).expect("ready").expect("stored");
        assert_eq!(target.key, key);
        assert_eq!(target.current, Some(json!(1)));
        assert!(target.expires_at > now);
        // What the store applied (another request had made it 5 meanwhile).
        s.absorb_update("n", Some(json!(6)), now).expect("absorb");
        assert_eq!(s.get::<i32>("n").expect("ready"), Some(6));
        let again = s.update_target("n", now).expect("ready").expect("stored");
        assert_eq!(again.current, Some(json!(6)), "the next update compares with it");
    });
    assert!(r.outcome.is_noop(), "nothing left to write: {:?}", r.outcome);
}

#[test]
fn a_key_this_request_changed_or_cleared_is_updated_locally() {
    let mut w = world();
    w.request(|s| {
        s.insert("n", &1).expect("insert");
        s.insert("x", &1).expect("insert");
    });
    let now = w.now;
    w.request(|s| {
        s.insert("n", &100).expect("insert");
        assert_eq!(s.update_target("n", now).expect("ready"), None, "builds on 100");
        assert!(
            s.update_target("x", now).expect("ready").is_some(),
            "other keys go to the store"
        );
    });
    w.request(|s| {
        s.clear().expect("clear");
        assert_eq!(
            s.update_target("x", now).expect("ready"),
            None,
            "cleared: nothing to compare with"
        );
    });
}

#[test]
fn a_change_made_while_the_update_ran_wins_and_a_destroyed_session_takes_nothing() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let now = w.now;
    let r = w.request(|s| {
        assert!(s.update_target("n", now).expect("ready").is_some());
        // A clone of the handle changed the key while the driver call was in flight.
        s.insert("n", &50).expect("insert");
        s.absorb_update("n", Some(json!(2)), now).expect("absorb");
        assert_eq!(s.get::<i32>("n").expect("ready"), Some(50));
    });
    let Some(Write::Patch { patch, .. }) = r.outcome.write() else {
        panic!("a patch: {:?}", r.outcome);
    };
    assert_eq!(patch.set.get("n"), Some(&json!(50)));

    let r = w.request(|s| {
        assert!(s.update_target("n", now).expect("ready").is_some());
        s.destroy().expect("destroy");
        s.absorb_update("n", Some(json!(51)), now).expect("absorb");
        assert_eq!(s.get::<i32>("n").expect("ready"), None, "not in the next session");
    });
    assert!(
        !matches!(r.outcome.write(), Some(Write::Create { .. })),
        "no session is created from it: {:?}",
        r.outcome
    );
}

#[test]
fn new_sessions_and_reserved_keys_have_no_target() {
    let mut w = world();
    let now = w.now;
    w.request(|s| {
        assert_eq!(
            s.update_target("n", now).expect("ready"),
            None,
            "nothing stored yet"
        );
        assert!(matches!(
            s.update_target("__sessionkit.x", now),
            Err(SessionError::ReservedKey { .. })
        ));
        assert!(s.check_value("n", &json!("fine")).is_ok());
    });
}
