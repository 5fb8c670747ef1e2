//! What a server-side session does over a sequence of requests: the write and cookie
//! rules of docs/design.md ("Writes", "Regenerate", "Cookie attributes").

mod common;

use std::time::Duration;

use common::{MIN, World, secret, spec_with, web_def};
use serde_json::json;
use sessionkit_core::{Event, KeyRing, Write};

fn world() -> World {
    World::new(spec_with(web_def(), "app", &KeyRing::new(&secret(1))))
}

#[test]
fn untouched_request_does_nothing() {
    let mut w = world();
    let r = w.request(|_| {});
    assert!(r.outcome.is_noop() && r.set_cookie.is_none());
    assert_eq!(w.store.writes, 0);
}

#[test]
fn new_session_never_written_leaves_no_record_and_no_cookie() {
    let mut w = world();
    let r = w.request(|s| {
        assert!(s.is_new().expect("ready"));
        assert_eq!(s.get::<u32>("n").expect("get"), None);
        s.insert("tmp", &1).expect("insert");
        s.remove("tmp").expect("remove");
        s.regenerate().expect("regenerate");
    });
    assert!(r.outcome.is_noop(), "{:?}", r.outcome);
    assert!(w.store.records.is_empty());
}

#[test]
fn first_write_creates_with_one_cookie_and_no_store_header() {
    let mut w = world();
    let r = w.request(|s| s.insert("user", "ada").expect("insert"));
    let Some(Write::Create {
        record, expires_at, ..
    }) = r.outcome.write()
    else {
        panic!("expected a create, got {:?}", r.outcome.write());
    };
    assert_eq!(record.data["user"], "ada");
    assert_eq!(*expires_at, w.now.saturating_add(Duration::from_secs(30 * 60)));
    let cookie = r.set_cookie.expect("cookie");
    assert!(cookie.starts_with("__Host-web="), "{cookie}");
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=86400"),
        "{cookie}"
    );
    assert_eq!(r.outcome.cache_control(r.result), Some("no-store"));
    assert!(matches!(r.outcome.events(), [Event::Created { .. }]));
}

#[test]
fn cookie_round_trips_and_reads_write_nothing() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    w.advance(Duration::from_secs(60));
    let r = w.request(|s| {
        assert!(!s.is_new().expect("ready"));
        assert_eq!(s.get::<i32>("n").expect("get"), Some(1));
        assert_eq!(s.keys().expect("keys"), ["n"]);
        s.insert("n", &1).expect("same value again");
    });
    assert!(r.outcome.is_noop(), "{:?}", r.outcome);
    assert_eq!(w.store.writes, 1);
}

#[test]
fn patches_name_only_changed_keys_and_send_no_cookie() {
    let mut w = world();
    w.request(|s| {
        s.insert("a", &1).expect("insert");
        s.insert("b", &2).expect("insert");
    });
    let r = w.request(|s| {
        s.insert("a", &10).expect("insert");
        s.remove("b").expect("remove");
        s.insert("c", &3).expect("insert");
    });
    let Some(Write::Patch { patch, .. }) = r.outcome.write() else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(patch.set.keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(patch.remove, ["b"]);
    assert!(!patch.clear);
    assert!(
        r.set_cookie.is_none(),
        "server cookies carry the absolute lifetime; no refresh needed"
    );
}

#[test]
fn concurrent_patches_of_different_keys_both_survive() {
    let mut w = world();
    w.request(|s| s.insert("base", &0).expect("insert"));
    let mut first = w.begin();
    let mut second = w.begin();
    first.insert("x", &1).expect("insert");
    second.insert("y", &2).expect("insert");
    w.finish(first, 200);
    w.finish(second, 200);
    w.request(|s| {
        assert_eq!(s.get::<i32>("x").expect("x"), Some(1));
        assert_eq!(s.get::<i32>("y").expect("y"), Some(2));
        assert_eq!(s.get::<i32>("base").expect("base"), Some(0));
    });
}

#[test]
fn touch_is_throttled_and_sends_no_cookie() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    // 20% of a 30 minute idle budget is 6 minutes.
    w.advance(Duration::from_secs(5 * 60));
    let r = w.request(|s| drop(s.get::<i32>("n")));
    assert!(r.outcome.is_noop());
    w.advance(Duration::from_secs(60));
    let r = w.request(|s| drop(s.get::<i32>("n")));
    assert!(
        matches!(r.outcome.write(), Some(Write::Touch { .. })),
        "{:?}",
        r.outcome
    );
    assert!(r.set_cookie.is_none());
    // The touch moved last-seen: 29 more minutes later the session is alive.
    w.advance(Duration::from_secs(29 * 60));
    w.request(|s| assert!(!s.is_new().expect("ready")));
}

#[test]
fn idle_and_absolute_expiry_give_a_fresh_session_with_a_new_id() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let old_cookie = w.cookie.clone();
    w.advance(Duration::from_millis(30 * MIN));
    let mut m = w.begin();
    assert!(m.is_new().expect("ready"), "idle-expired at exactly idle_timeout");
    // The store has dropped the record by now, as the driver contract requires.
    assert!(matches!(m.poll_event(), Some(Event::Unknown { .. })));
    m.insert("n", &2).expect("insert");
    let r = w.finish(m, 200);
    assert!(matches!(r.outcome.write(), Some(Write::Create { .. })));
    assert_ne!(w.cookie, old_cookie, "a presented id is never adopted");

    // Keep it alive with writes every 20 minutes; it still ends after 24 h.
    let mut alive = 0;
    for _ in 0..80 {
        w.advance(Duration::from_millis(20 * MIN));
        let r = w.request(|s| {
            if !s.is_new().expect("ready") {
                alive += 1;
            }
            s.insert("tick", &alive).expect("insert");
        });
        if matches!(r.outcome.write(), Some(Write::Create { .. })) && alive > 0 {
            break;
        }
    }
    assert_eq!(alive, 71, "24h / 20min = 72 requests; the 72nd finds it expired");
}

#[test]
fn regenerate_keeps_data_and_creation_time_and_kills_the_old_cookie() {
    let mut w = world();
    w.request(|s| s.insert("cart", &json!([1, 2])).expect("insert"));
    let old_cookie = w.cookie.clone().expect("cookie");
    let created = w.store.records.values().next().expect("record").0.created_at;
    w.advance(Duration::from_secs(10));
    let r = w.request(|s| {
        s.regenerate().expect("regenerate");
        s.insert("user", "ada").expect("insert");
        assert_eq!(s.get::<String>("user").expect("get").as_deref(), Some("ada"));
    });
    let Some(Write::Create { record, .. }) = r.outcome.write() else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(record.created_at, created);
    assert_eq!(record.data["cart"], json!([1, 2]));
    assert!(r.outcome.delete().is_some());
    assert!(matches!(r.outcome.events(), [Event::Regenerated { .. }]));
    assert_ne!(w.cookie.as_deref(), Some(old_cookie.as_str()));
    assert_eq!(w.store.records.len(), 1);
    let mut m = w.begin_with(Some(&old_cookie));
    assert!(m.is_new().expect("ready"), "the old cookie loads nothing");
    assert!(matches!(m.poll_event(), Some(Event::Unknown { .. })));
}

#[test]
fn destroy_deletes_and_removes_the_cookie_with_its_path_and_domain() {
    let mut def = web_def();
    def.cookie.name = "__Secure-sid".into();
    def.cookie.domain = Some("example.com".into());
    def.cookie.path = "/app".into();
    let mut w = World::new(spec_with(def, "app", &KeyRing::new(&secret(1))));
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let old = w.cookie.clone().expect("cookie");
    let r = w.request(|s| s.destroy().expect("destroy"));
    assert!(r.outcome.write().is_none() && r.outcome.delete().is_some());
    let removal = r.set_cookie.expect("removal cookie");
    assert!(removal.starts_with("__Secure-sid=;"), "{removal}");
    assert!(
        removal.contains("Path=/app") && removal.contains("Domain=example.com"),
        "{removal}"
    );
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(r.outcome.cache_control(r.result), Some("no-store"));
    assert!(w.store.records.is_empty() && w.cookie.is_none());
    assert!(w.begin_with(Some(&old)).is_new().expect("ready"));
    // Destroying with no cookie presented has nothing to remove.
    let r = w.request(|s| s.destroy().expect("destroy"));
    assert!(r.outcome.is_noop(), "{:?}", r.outcome);
}

#[test]
fn writes_after_destroy_start_a_new_session() {
    let mut w = world();
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let r = w.request(|s| {
        s.destroy().expect("destroy");
        assert_eq!(s.keys().expect("keys").len(), 0);
        s.flash("signed out").expect("flash");
    });
    assert!(matches!(r.outcome.write(), Some(Write::Create { .. })));
    assert!(r.outcome.delete().is_some());
    assert!(!r.set_cookie.expect("new cookie").contains("Max-Age=0"));
    w.request(|s| assert_eq!(s.take_flashes::<String>().expect("take"), ["signed out"]));
}

#[test]
fn a_patch_that_finds_the_session_gone_sends_no_cookie() {
    let mut w = World::new(spec_with(
        web_def(),
        "app",
        &KeyRing::new(&secret(2)).with_previous(&secret(1)),
    ));
    // A cookie signed with the previous key, so the response would re-issue it.
    let mut old = World::new(spec_with(web_def(), "app", &KeyRing::new(&secret(1))));
    old.request(|s| s.insert("n", &1).expect("insert"));
    w.store = std::mem::take(&mut old.store);
    w.cookie = old.cookie.clone();
    let mut m = w.begin();
    m.insert("n", &2).expect("insert");
    w.store.records.clear(); // a concurrent logout
    let r = w.finish(m, 200);
    assert_eq!(r.result, sessionkit_core::WriteResult::Gone);
    assert!(
        r.set_cookie.is_none() && w.store.records.is_empty(),
        "nothing resurrected"
    );
}

#[test]
fn server_errors_drop_the_changes() {
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let mut m = w.begin();
    m.insert("n", &2).expect("insert");
    m.destroy().expect("destroy");
    let r = w.finish(m, 500);
    assert!(r.outcome.is_noop());
    assert!(matches!(
        r.outcome.events(),
        [Event::ChangesDropped { status: 500 }]
    ));
    w.request(|s| assert_eq!(s.get::<i32>("n").expect("get"), Some(1)));
}

#[test]
fn flash_is_read_exactly_once_and_hidden_from_keys() {
    let mut w = world();
    w.request(|s| {
        s.flash("saved").expect("flash");
        s.flash(&json!({"level": "info"})).expect("flash");
        assert!(s.keys().expect("keys").is_empty());
    });
    w.request(|s| {
        let all: Vec<serde_json::Value> = s.take_flashes().expect("take");
        assert_eq!(all, [json!("saved"), json!({"level": "info"})]);
    });
    w.request(|s| assert!(s.take_flashes::<String>().expect("take").is_empty()));
}

#[test]
fn reserved_keys_are_refused() {
    let mut w = world();
    w.request(|s| {
        assert!(s.insert("__sessionkit.flash", &1).is_err());
        assert!(s.get::<i32>("__sessionkit.x").is_err());
        assert!(s.remove("__sessionkit.flash").is_err());
    });
}

#[test]
fn clear_then_identical_values_is_no_write_and_clear_is_a_patch() {
    let mut w = world();
    w.request(|s| s.insert("a", &1).expect("insert"));
    let r = w.request(|s| {
        s.clear().expect("clear");
        s.insert("a", &1).expect("insert");
    });
    assert!(r.outcome.is_noop());
    let r = w.request(|s| s.clear().expect("clear"));
    let Some(Write::Patch { patch, .. }) = r.outcome.write() else {
        panic!("{:?}", r.outcome)
    };
    assert!(patch.clear && patch.set.is_empty());
}

#[test]
fn loads_are_requested_only_for_valid_cookies() {
    let mut w = world();
    w.request(|s| s.insert("a", &1).expect("insert"));
    let good = w.cookie.clone().expect("cookie");
    let tampered = format!("{}A", &good[..good.len() - 1]);
    for header in [good.as_str(), "__Host-web=garbage", &tampered, "other=1"] {
        let m = sessionkit_core::SessionMachine::begin(w.spec.clone(), [header.as_bytes()], w.now);
        assert_eq!(m.load_request().is_some(), header == good, "{header}");
    }
    // A bad cookie before a good one (cookie tossing): the good one still wins.
    let both = format!("__Host-web=junk; {good}");
    let m = sessionkit_core::SessionMachine::begin(w.spec.clone(), [both.as_bytes()], w.now);
    assert!(m.load_request().is_some());
}

#[test]
fn corrupt_records_are_a_fresh_session() {
    let mut w = world();
    w.request(|s| s.insert("a", &1).expect("insert"));
    let mut m = sessionkit_core::SessionMachine::begin(
        w.spec.clone(),
        [w.cookie.as_deref().expect("cookie").as_bytes()],
        w.now,
    );
    m.handle_load(sessionkit_core::LoadResult::Corrupt, w.now)
        .expect("load");
    assert!(m.is_new().expect("ready"));
    assert!(matches!(m.poll_event(), Some(Event::CorruptRecord { .. })));
    assert!(matches!(
        m.handle_load(sessionkit_core::LoadResult::Missing, w.now),
        Err(sessionkit_core::SessionError::UnexpectedLoad)
    ));
}

#[test]
fn api_before_load_is_a_typed_error() {
    let mut w = world();
    w.request(|s| s.insert("a", &1).expect("insert"));
    let mut m = sessionkit_core::SessionMachine::begin(
        w.spec.clone(),
        [w.cookie.as_deref().expect("cookie").as_bytes()],
        w.now,
    );
    assert!(matches!(
        m.get::<i32>("a"),
        Err(sessionkit_core::SessionError::NotLoaded)
    ));
    assert!(matches!(
        m.insert("a", &2),
        Err(sessionkit_core::SessionError::NotLoaded)
    ));
    // Finishing without loading writes nothing.
    assert!(m.finish(200, w.now, &mut w.rng).expect("finish").is_noop());
}

#[test]
fn core_enforces_expiry_even_when_a_store_returns_the_record() {
    use sessionkit_core::{ExpiredBy, LoadResult, SessionMachine};
    let mut w = world();
    w.request(|s| s.insert("n", &1).expect("insert"));
    let (record, _) = w.store.records.values().next().expect("record").clone();
    let cookie = w.cookie.clone().expect("cookie");
    let cases = [
        (29 * MIN, None),
        (30 * MIN, Some(ExpiredBy::Idle)),
        (24 * 60 * MIN, Some(ExpiredBy::Absolute)),
    ];
    for (after, expected) in cases {
        let now = sessionkit_core::Timestamp::from_millis(common::T0 + after);
        let mut m = SessionMachine::begin(w.spec.clone(), [cookie.as_bytes()], now);
        m.handle_load(LoadResult::Found(record.clone()), now)
            .expect("load");
        assert_eq!(m.is_new().expect("ready"), expected.is_some(), "after {after} ms");
        if let Some(by) = expected {
            assert!(matches!(m.poll_event(), Some(Event::Expired { by: b, .. }) if b == by));
            assert_eq!(
                m.get::<i32>("n").expect("get"),
                None,
                "an expired session is never returned"
            );
        }
    }
}
