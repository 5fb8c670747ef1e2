//! Lifecycle events are logged, and no log line ever holds a cookie value, an id or a
//! secret.

mod common;

use std::sync::Arc;

use sessionkit::{ManualClock, Registry, Secret};

const OLD: &[u8; 32] = b"old secret for the logging test!";
const NEW: &[u8; 32] = b"new secret for the logging test!";

#[test]
fn events_are_logged_without_secrets() {
    let mut cookies = Vec::new();
    let ((), logs) = common::capture_logs(async {
        let clock = ManualClock::starting_now();
        let store = Arc::new(sessionkit::MemoryDriver::builder().clock(clock.shared()).build());
        let build = |primary: &[u8; 32], previous: Option<&[u8; 32]>| {
            let mut registry = Registry::with_clock(clock.shared());
            registry
                .register_driver("memory", store.clone())
                .expect("shared store");
            registry.set_secret(Secret::new(*primary).expect("long"));
            if let Some(p) = previous {
                registry.add_previous_secret(Secret::new(*p).expect("long"));
            }
            registry.build_with_env(&|_| None).expect("builds")
        };
        let old = build(OLD, None);
        let request = old.request([""]);
        request
            .default_session()
            .await
            .expect("web")
            .insert("user", "ada")
            .expect("insert");
        let set = request
            .save(200)
            .await
            .expect("save")
            .set_cookies()
            .next()
            .expect("cookie")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        cookies.push(cookie.clone());
        // Rotation re-issue, regenerate, destroy, and a rejected cookie.
        let new = build(NEW, Some(OLD));
        let request = new.request([cookie.as_str()]);
        request
            .default_session()
            .await
            .expect("web")
            .get::<String>("user")
            .expect("read");
        let set = request
            .save(200)
            .await
            .expect("save")
            .set_cookies()
            .next()
            .expect("re-issued")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        cookies.push(cookie.clone());
        let request = new.request([cookie.as_str()]);
        request
            .default_session()
            .await
            .expect("web")
            .regenerate()
            .expect("regenerate");
        let set = request
            .save(200)
            .await
            .expect("save")
            .set_cookies()
            .next()
            .expect("cookie")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        cookies.push(cookie.clone());
        let request = new.request([cookie.as_str()]);
        request
            .default_session()
            .await
            .expect("web")
            .destroy()
            .expect("destroy");
        request.save(200).await.expect("save");
        let request = new.request(["__Host-web=forged-value-123"]);
        request.default_session().await.expect("web");
        // Idle expiry.
        let request = new.request([""]);
        request
            .default_session()
            .await
            .expect("web")
            .insert("n", &1)
            .expect("insert");
        let set = request
            .save(200)
            .await
            .expect("save")
            .set_cookies()
            .next()
            .expect("cookie")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        cookies.push(cookie.clone());
        // A cookie session reports why it expired.
        let mut registry = Registry::with_clock(clock.shared());
        registry.set_secret(Secret::new(*NEW).expect("long"));
        registry.session_mut("api").expect("api").driver = sessionkit::DriverChoice::Cookie;
        let sealed = registry.build_with_env(&|_| None).expect("builds");
        let request = sealed.request([""]);
        request
            .session("api")
            .await
            .expect("api")
            .insert("n", &1)
            .expect("insert");
        let set = request
            .save(200)
            .await
            .expect("save")
            .set_cookies()
            .next()
            .expect("cookie")
            .to_owned();
        let cookie = set.split(';').next().expect("pair").to_owned();
        cookies.push(cookie.clone());
        clock.advance(std::time::Duration::from_secs(2 * 3600));
        let request = sealed.request([cookie.as_str()]);
        assert!(
            request
                .session("api")
                .await
                .expect("api")
                .is_new()
                .expect("ready")
        );
    });
    for event in [
        "session created",
        "session id regenerated",
        "session destroyed",
        "session cookie rejected",
        "sessionkit started",
        "re-issued with the primary key",
        "session expired",
        "by=Idle",
    ] {
        assert!(logs.contains(event), "missing {event:?} in:\n{logs}");
    }
    for cookie in &cookies {
        let value = cookie.split_once('=').expect("pair").1;
        assert!(!logs.contains(value), "a cookie value leaked into the logs");
        assert!(
            !logs.contains(&value[..16]),
            "part of a cookie value leaked into the logs"
        );
    }
    for secret in [OLD, NEW] {
        assert!(
            !logs.contains(std::str::from_utf8(secret).expect("ascii")),
            "a secret leaked"
        );
    }
    assert!(
        !logs.contains("forged-value"),
        "rejected cookie values are not logged either"
    );
}
