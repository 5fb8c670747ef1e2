//! A store failure's log line carries the whole source chain (the driver's own message),
//! at `error` for a store that answered with an error (500) and at `warn` for an
//! unreachable one (503), and the mapping logs before it maps.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sessionkit::{Error, ErrorMapping, ManualClock, Registry, Secret};
use sessionkit_conformance::wrappers::{FAILING_STORE_MESSAGE, SwitchableDriver};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn store_failures_are_logged_with_their_cause() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let statuses = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
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
        })
    });
    assert_eq!(
        statuses,
        [
            (500, "session store error\n".to_owned()),
            (503, "session store unavailable, please retry\n".to_owned())
        ],
        "a failed save replaces the response"
    );
    let logs = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
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
