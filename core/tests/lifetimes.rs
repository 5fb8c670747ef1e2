//! Per-session lifetimes (remember-me, shorter ttl and idle timeout, deadlines, idle-only
//! sessions) and id renewal with a grace window, over sequences of requests.

mod common;

use std::time::Duration;

use common::{World, cookie_def, secret, spec_with, web_def};
use serde_json::json;
use sessionkit_core::{
    Event, ExpiryPolicy, KeyRing, LIFETIME_KEY, LifetimeError, LoadResult, Record, SessionDef, SessionError,
    SessionMachine, Timestamp, Write, WriteResult,
};

const HOUR: Duration = Duration::from_hours(1);

fn world_with(def: SessionDef) -> World {
    World::new(spec_with(def, "app", &KeyRing::new(&secret(1))))
}

fn renewing(def: SessionDef) -> SessionDef {
    let mut def = def;
    def.expiry = def
        .expiry
        .with_renewal(Some(Duration::from_mins(10)), Duration::from_secs(5))
        .expect("valid");
    def
}

fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie
        .split("; ")
        .find_map(|attr| attr.strip_prefix("Max-Age="))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn remember_me_chooses_the_cookie_kind_per_session() {
    for persistent in [false, true] {
        let mut w = world_with(web_def());
        let r = w.request(|s| {
            s.insert("user", "ada").expect("insert");
            s.set_persistent(persistent).expect("set");
            assert_eq!(s.is_persistent().expect("ready"), persistent);
        });
        let cookie = r.set_cookie.expect("created");
        assert_eq!(max_age(&cookie), persistent.then_some(24 * 3600), "{cookie}");
        // The choice is kept: a key-rotation reissue or a renewal keeps the kind.
        let r = w.request(|s| assert_eq!(s.is_persistent().expect("ready"), persistent));
        assert!(r.outcome.is_noop(), "reading costs nothing");
    }
}

#[test]
fn the_default_kind_comes_from_the_config() {
    let mut def = web_def();
    def.cookie.persistent = false;
    let mut w = world_with(def);
    let r = w.request(|s| s.insert("user", "ada").expect("insert"));
    assert_eq!(max_age(&r.set_cookie.expect("created")), None);
}

#[test]
fn changing_the_kind_of_an_existing_session_resends_its_cookie() {
    let mut w = world_with(web_def());
    let first = w.request(|s| s.insert("user", "ada").expect("insert"));
    let pair = w.cookie.clone().expect("cookie");
    w.advance(Duration::from_mins(1));
    let r = w.request(|s| s.set_persistent(false).expect("set"));
    let cookie = r.set_cookie.expect("re-sent");
    assert!(cookie.starts_with(&pair), "same id, new attributes: {cookie}");
    assert_eq!(max_age(&cookie), None);
    assert!(matches!(r.outcome.write(), Some(Write::Patch { .. })));
    assert!(first.set_cookie.is_some());
    // Setting what is already chosen changes nothing.
    let r = w.request(|s| {
        s.set_persistent(false).expect("set");
        assert!(!s.is_modified().expect("ready"));
    });
    assert!(r.outcome.is_noop());
}

#[test]
fn lifetime_choices_alone_do_not_create_a_session() {
    let mut w = world_with(web_def());
    let r = w.request(|s| s.set_persistent(true).expect("set"));
    assert!(r.outcome.is_noop());
    assert!(w.cookie.is_none());
}

#[test]
fn a_shorter_ttl_is_kept_and_enforced() {
    let mut w = world_with(web_def());
    w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_ttl(HOUR).expect("shorter than 24h");
        assert!(matches!(
            s.set_ttl(Duration::from_hours(25)),
            Err(SessionError::Lifetime(LifetimeError::TooLong { what: "ttl", .. }))
        ));
        assert!(matches!(
            s.set_ttl(Duration::ZERO),
            Err(SessionError::Lifetime(LifetimeError::Zero { .. }))
        ));
    });
    let created = w.now;
    for _ in 0..5 {
        w.advance(Duration::from_mins(15));
        let r = w.request(|s| {
            let deadlines = s.deadlines().expect("ready");
            assert_eq!(deadlines.absolute, Some(created.saturating_add(HOUR)));
            assert!(!s.is_new().expect("ready"), "alive before the hour");
        });
        if w.now.saturating_since(created) >= HOUR {
            assert!(r.outcome.is_noop());
        }
        if w.now.saturating_since(created) + Duration::from_mins(15) >= HOUR {
            break;
        }
    }
    w.advance(Duration::from_mins(15));
    assert!(w.begin().is_new().expect("ready"), "expired after its own ttl");
}

#[test]
fn a_shorter_idle_timeout_and_a_deadline_are_enforced() {
    let mut w = world_with(web_def());
    w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_idle_timeout(Duration::from_mins(5))
            .expect("shorter than 30m");
    });
    w.advance(Duration::from_mins(5));
    assert!(w.begin().is_new().expect("ready"), "idle for its own 5 minutes");

    let mut w = world_with(web_def());
    let deadline = w.now.saturating_add(Duration::from_mins(20));
    let r = w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_deadline(deadline).expect("set");
        s.set_deadline(deadline.saturating_add(HOUR))
            .expect("a later one changes nothing");
        assert_eq!(s.deadlines().expect("ready").absolute, Some(deadline));
    });
    assert_eq!(max_age(&r.set_cookie.expect("created")), Some(20 * 60));
    w.advance(Duration::from_mins(19));
    assert!(!w.begin().is_new().expect("ready"));
    w.advance(Duration::from_mins(1));
    assert!(w.begin().is_new().expect("ready"), "ended at its deadline");
}

#[test]
fn idle_only_sessions_live_while_used() {
    let mut def = web_def();
    def.expiry = ExpiryPolicy::idle_only(Duration::from_mins(30)).expect("valid");
    let mut w = world_with(def);
    let r = w.request(|s| {
        s.insert("user", "ada").expect("insert");
        let deadlines = s.deadlines().expect("ready");
        assert_eq!(deadlines.absolute, None);
        assert!(
            deadlines.idle.is_some(),
            "a new session's deadline, before its first save"
        );
    });
    assert_eq!(max_age(&r.set_cookie.expect("created")), Some(400 * 24 * 3600));
    // Three days of use, every 20 minutes: never expires.
    for _ in 0..(3 * 24 * 3) {
        w.advance(Duration::from_mins(20));
        let r = w.request(|s| assert!(!s.is_new().expect("ready")));
        assert!(r.set_cookie.is_none(), "no cookie on reads");
    }
    w.advance(Duration::from_mins(30));
    assert!(w.begin().is_new().expect("ready"), "ended when idle");
}

#[test]
fn readers_and_is_modified() {
    let mut w = world_with(web_def());
    let start = w.now;
    w.request(|s| {
        let deadlines = s.deadlines().expect("ready");
        assert_eq!(
            deadlines.absolute,
            Some(start.saturating_add(Duration::from_hours(24)))
        );
        assert_eq!(
            deadlines.idle,
            Some(start.saturating_add(Duration::from_mins(30)))
        );
        assert_eq!(
            deadlines.expires_at(),
            start.saturating_add(Duration::from_mins(30))
        );
        assert!(!s.is_modified().expect("ready"));
        s.insert("user", "ada").expect("insert");
        assert!(s.is_modified().expect("ready"));
    });
    w.request(|s| {
        assert!(!s.is_modified().expect("ready"));
        s.regenerate().expect("ready");
        assert!(s.is_modified().expect("ready"));
    });
}

#[test]
fn clear_keeps_the_lifetime_choices() {
    let mut w = world_with(web_def());
    w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_persistent(false).expect("set");
    });
    w.request(|s| {
        s.clear().expect("clear");
        s.insert("other", &1).expect("insert");
    });
    w.request(|s| {
        assert!(!s.is_persistent().expect("ready"));
        assert_eq!(s.keys().expect("ready"), ["other"]);
    });
}

#[test]
fn malformed_lifetime_metadata_is_a_corrupt_record() {
    let spec = spec_with(web_def(), "app", &KeyRing::new(&secret(1)));
    let mut w = World::new(spec.clone());
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let cookie = w.cookie.clone().expect("cookie");
    let mut machine = SessionMachine::begin(spec, [cookie.as_bytes()], w.now);
    let key = machine.load_request().expect("a load").clone();
    let mut data = serde_json::Map::new();
    data.insert(LIFETIME_KEY.into(), json!({"ttl": "soon"}));
    machine
        .handle_load(LoadResult::Found(Record::new(w.now, data)), w.now)
        .expect("requested");
    assert!(machine.is_new().expect("ready"));
    assert_eq!(
        machine.poll_event(),
        Some(Event::CorruptRecord {
            session: key.fingerprint()
        })
    );
}

#[test]
fn an_old_id_is_renewed_keeping_data_and_creation() {
    let mut w = world_with(renewing(web_def()));
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let old = w.cookie.clone().expect("cookie");
    let created = w.now;
    w.advance(Duration::from_mins(9));
    assert!(w.request(|_| {}).set_cookie.is_none(), "younger than renew_after");
    w.advance(Duration::from_mins(1));
    let r = w.request(|s| s.insert("n", &1).expect("insert"));
    let Some(Write::Rotate(rotation)) = r.outcome.write() else {
        panic!("renewed: {:?}", r.outcome)
    };
    assert_eq!(rotation.record.created_at, created);
    assert_eq!(rotation.grace_until, w.now.saturating_add(Duration::from_secs(5)));
    assert!(matches!(r.outcome.events(), [Event::Renewed { .. }]));
    let new = w.cookie.clone().expect("cookie");
    assert_ne!(old, new);
    w.request(|s| {
        assert_eq!(s.get::<String>("user").expect("ready").as_deref(), Some("ada"));
        assert_eq!(s.get::<i32>("n").expect("ready"), Some(1));
    });

    // A request in flight with the old id, within the grace window: same session, its
    // write lands in the renewed one, and it sends no cookie.
    w.advance(Duration::from_secs(2));
    let mut m = w.begin_with(Some(&old));
    assert_eq!(m.get::<String>("user").expect("ready").as_deref(), Some("ada"));
    m.insert("late", &true).expect("insert");
    let r = w.finish(m, 200);
    assert_eq!(r.result, WriteResult::Applied);
    assert!(r.set_cookie.is_none(), "never the old id again");
    assert_eq!(w.cookie.as_deref(), Some(new.as_str()));
    w.request(|s| assert_eq!(s.get::<bool>("late").expect("ready"), Some(true)));

    // After the window the old id is anonymous, even if the store still forwards it
    // (its own clock, coarse expiry): the machine decides the window too.
    w.advance(Duration::from_secs(3));
    for (until, _) in w.store.forwards.values_mut().map(|(to, until)| (until, to)) {
        *until = Timestamp::MAX;
    }
    assert!(w.begin_with(Some(&old)).is_new().expect("ready"));
    assert!(!w.begin().is_new().expect("ready"));
    // And the renewed id is renewed again only after renew_after.
    w.advance(Duration::from_mins(9));
    assert!(w.request(|_| {}).set_cookie.is_none());
}

#[test]
fn regenerate_has_no_grace_window() {
    let mut w = world_with(renewing(web_def()));
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let old = w.cookie.clone().expect("cookie");
    let r = w.request(|s| s.regenerate().expect("ready"));
    assert!(matches!(r.outcome.write(), Some(Write::Create { .. })));
    assert!(r.outcome.delete().is_some());
    assert!(w.store.forwards.is_empty());
    assert!(
        w.begin_with(Some(&old)).is_new().expect("ready"),
        "the old id dies at once"
    );
    // The regenerated id's renewal clock starts again.
    w.advance(Duration::from_mins(9));
    assert!(w.request(|_| {}).set_cookie.is_none());
}

#[test]
fn cookie_sessions_keep_their_lifetimes_sealed_and_renew_by_resealing() {
    let mut w = world_with(renewing(cookie_def()));
    let r = w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_idle_timeout(Duration::from_mins(5)).expect("shorter");
        s.set_persistent(false).expect("set");
    });
    assert_eq!(max_age(&r.set_cookie.expect("sealed")), None);
    w.advance(Duration::from_mins(4));
    let r = w.request(|s| assert!(!s.is_new().expect("ready")));
    assert!(r.set_cookie.is_some(), "the touch re-seals (share of 5 minutes)");
    w.advance(Duration::from_mins(5));
    assert!(w.begin().is_new().expect("ready"), "idle for its own 5 minutes");

    let mut w = world_with(renewing(cookie_def()));
    w.request(|s| s.insert("user", "ada").expect("insert"));
    let old = w.cookie.clone().expect("cookie");
    w.advance(Duration::from_mins(6));
    let r = w.request(|_| {});
    assert!(r.set_cookie.is_some(), "the idle refresh re-seals");
    let before_renewal = w.cookie.clone().expect("cookie");
    w.advance(Duration::from_mins(4));
    let r = w.request(|_| {});
    assert!(r.set_cookie.is_some(), "renewed: re-sealed");
    assert_ne!(w.cookie.as_deref(), Some(before_renewal.as_str()));
    assert_ne!(w.cookie.as_deref(), Some(old.as_str()));
    w.request(|s| assert_eq!(s.get::<String>("user").expect("ready").as_deref(), Some("ada")));
}

#[test]
fn a_deadline_already_passed_ends_the_session() {
    let mut w = world_with(web_def());
    let r = w.request(|s| {
        s.insert("user", "ada").expect("insert");
        s.set_deadline(Timestamp::EPOCH).expect("set");
    });
    assert!(
        r.outcome.write().is_none(),
        "a new session past its deadline is not created"
    );
    assert!(w.cookie.is_none());

    w.request(|s| s.insert("user", "ada").expect("insert"));
    let r = w.request(|s| s.set_deadline(Timestamp::EPOCH).expect("set"));
    assert!(
        r.outcome.write().is_none() && r.outcome.delete().is_some(),
        "{:?}",
        r.outcome
    );
    assert!(w.begin().is_new().expect("ready"), "the session is over");
}
