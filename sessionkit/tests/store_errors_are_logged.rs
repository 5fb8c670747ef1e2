//! A store failure's log line carries the whole source chain (the driver's own message),
//! at `error` for a store that answered with an error (500) and at `warn` for an
//! unreachable one (503), and the mapping logs before it maps.

mod common;

use std::sync::Arc;

use sessionkit::{Error, ErrorMapping, ManualClock, Registry, Secret};
use sessionkit_conformance::wrappers::{FAILING_STORE_MESSAGE, SwitchableDriver};

#[test]
fn store_failures_are_logged_with_their_cause() {
    let (statuses, logs) = common::capture_logs(async {
        let clock = ManualClock::starting_now();
        let memory = Arc::new(sessionkit::MemoryDriver::builder().clock(clock.shared()).build());
        let (store, switch) = SwitchableDriver::new(memory);
        let mut registry = Registry::with_clock(clock.shared());
        registry
            .register_driver("memory", Arc::new(store))
            .expect("replaces the built-in memory driver");
        registry.set_secret(Secret::new(*b"a secret for the store error log").expect("long"));
        let sessions = registry.build().expect("builds");
        let mapping: ErrorMapping<http::Response<String>> = ErrorMapping::new(Error::response);
        let mut statuses = Vec::new();
        for fail in [
            |s: &sessionkit_conformance::wrappers::Switch| s.fail(),
            |s: &sessionkit_conformance::wrappers::Switch| s.down(),
        ] {
            fail(&switch);
            let request = sessions.request([""]);
            request
                .default_session()
                .await
                .expect("no cookie: nothing to load")
                .insert("user", "ada")
                .expect("insert");
            let response = request
                .finish_http(http::Response::new(String::from("ok")), &mapping)
                .await;
            statuses.push((response.status().as_u16(), response.into_body()));
        }
        statuses
    });
    assert_eq!(
        statuses,
        [
            (500, "session store error\n".to_owned()),
            (503, "session store unavailable, please retry\n".to_owned())
        ],
        "a failed save replaces the response"
    );
    let failing = logs
        .lines()
        .find(|l| l.contains(FAILING_STORE_MESSAGE))
        .unwrap_or_else(|| panic!("the store's own message is logged: {logs}"));
    assert!(failing.contains("ERROR") && failing.contains("500"), "{failing}");
    assert!(failing.contains("session `web`: create failed"), "{failing}");
    let down = logs
        .lines()
        .find(|l| l.contains("connection refused"))
        .unwrap_or_else(|| panic!("the unreachable store's cause is logged: {logs}"));
    assert!(down.contains("WARN") && down.contains("503"), "{down}");
}
