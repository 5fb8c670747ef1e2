//! The mistakes the types cannot rule out give a clear message that names the fix.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use sessionkit_conformance::http::request;
use sessionkit_conformance::{DriverBackend, DriverFactory, Harness, Jar};
use sessionkit_warp::{SessionContext, SessionFilters};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use warp::Filter;

/// Collects the text of every event.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(format!("{} ", event.metadata().level()));
        event.record(&mut text);
        self.0.lock().expect("not poisoned").push(text.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

struct Memory;

impl DriverFactory for Memory {
    type Driver = sessionkit::MemoryDriver;
    async fn build(&self, clock: &sessionkit::ManualClock) -> sessionkit::MemoryDriver {
        sessionkit::MemoryDriver::builder().clock(clock.shared()).build()
    }
}

/// Runs `test` on a single-threaded runtime (so the server's tasks run on this thread)
/// with `events` as the subscriber.
fn run_with_events<F: Future>(events: &Events, test: impl FnOnce() -> F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(events.clone(), || runtime.block_on(test()))
}

#[test]
fn a_context_dropped_unfinished_logs_that_nothing_was_saved() {
    let events = Events::default();
    let response = run_with_events(&events, || async {
        let harness = Harness::new(&DriverBackend(Memory)).await;
        let filters = SessionFilters::new(harness.sessions.clone());
        let forgetful =
            warp::path!("forgot")
                .and(filters.context())
                .and_then(|context: SessionContext| async move {
                    let session = context.session().await.expect("memory store is up");
                    session.insert("user", "ada").expect("insert");
                    // The handler forgets `context.finish(reply)`.
                    Ok::<_, Infallible>("forgot to finish")
                });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(warp::serve(forgetful).incoming(listener).run());
        let response = request(addr, "POST", "/forgot", None, None).await;
        server.abort();
        response
    });
    assert_eq!(response.status, 200);
    assert!(
        response.set_cookies().is_empty(),
        "nothing was saved: {response:?}"
    );
    let events = events.all();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("ERROR") && e.contains("SessionContext::finish")),
        "{events:#?}"
    );
}

#[test]
fn a_finished_or_untouched_context_logs_nothing() {
    let events = Events::default();
    run_with_events(&events, || async {
        let harness = Harness::new(&DriverBackend(Memory)).await;
        let filters = SessionFilters::new(harness.sessions.clone());
        let finished = warp::path!("finished").and(filters.session()).and_then(
            |context: SessionContext, session: sessionkit::Session| async move {
                session.insert("user", "ada").expect("insert");
                Ok::<_, Infallible>(context.finish("saved").await)
            },
        );
        let untouched = warp::path!("untouched")
            .and(filters.context())
            .map(|_context: SessionContext| "untouched");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(warp::serve(finished.or(untouched)).incoming(listener).run());
        let saved = request(addr, "POST", "/finished", None, None).await;
        assert_eq!(saved.set_cookies().len(), 1, "{saved:?}");
        assert_eq!(
            request(addr, "GET", "/untouched", None, None).await.body,
            "untouched"
        );
        server.abort();
    });
    let events = events.all();
    assert!(
        !events.iter().any(|e| e.contains("SessionContext::finish")),
        "{events:#?}"
    );
}

#[test]
fn a_session_rejection_without_recover_names_the_fix() {
    let events = Events::default();
    let response = run_with_events(&events, || async {
        let harness = Harness::new(&DriverBackend(Memory)).await;
        let filters = SessionFilters::new(harness.sessions.clone());
        let route = warp::path!("user" / String).and(filters.session()).and_then(
            |user: String, context: SessionContext, session: sessionkit::Session| async move {
                let result = session.insert("user", &user).map(|()| "ok");
                Ok::<_, Infallible>(context.respond(result).await)
            },
        );
        // No `.recover(sessionkit_warp::recover)`.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(warp::serve(route).incoming(listener).run());
        let mut jar = Jar::default();
        let first = request(addr, "POST", "/user/ada", None, None).await;
        for cookie in first.set_cookies() {
            jar.apply(cookie);
        }
        harness.switch.as_ref().expect("a server-side store").down();
        let response = request(addr, "POST", "/user/eve", Some(&jar.header()), None).await;
        server.abort();
        response
    });
    assert_eq!(response.status, 500, "{response:?}");
    assert!(
        response.body.contains(".recover(sessionkit_warp::recover)"),
        "{}",
        response.body
    );
    let events = events.all();
    assert!(
        events.iter().any(|e| e.contains("session store failure")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("SessionContext::finish")),
        "{events:#?}"
    );
}
