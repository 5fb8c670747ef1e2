//! The counters a security team alerts on, with their exact names and labels: created,
//! regenerated, destroyed, expired (idle, absolute, unknown) on the memory and the
//! cookie driver, rejected cookies by reason, store errors by kind and operation, and
//! saves dropped by the no-resurrection rule. The `metrics` feature is on for every
//! test build (a dev-dependency feature).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use sessionkit::core::DriverChoice;
use sessionkit::{ManualClock, MemoryDriver, Registry, Secret, Sessions};
use sessionkit_conformance::wrappers::SwitchableDriver;

/// Counter values by `name{label=value,...}`, labels sorted.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<BTreeMap<String, u64>>>);

impl Recording {
    /// The counts so far, cleared.
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

struct Cell {
    key: String,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        *self
            .counts
            .lock()
            .expect("lock")
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.counts.lock().expect("lock").insert(self.key.clone(), value);
    }
}

impl Recorder for Recording {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Counter::from_arc(Arc::new(Cell {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            counts: self.0.clone(),
        }))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Runs `test` on a current-thread runtime with `recording` as this thread's recorder.
fn recorded<F: Future<Output = ()>>(recording: &Recording, test: impl FnOnce() -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(recording, || runtime.block_on(test()));
}

fn counts<const N: usize>(expected: [(&str, u64); N]) -> BTreeMap<String, u64> {
    expected.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

const SECRET: &[u8; 32] = b"a secret for the counters tests!";

/// `web` on the memory driver, `jar` on the cookie driver; both 24 h / 30 min idle.
fn registry(clock: &ManualClock) -> Registry {
    let mut registry = Registry::with_clock(clock.shared());
    registry.set_secret(Secret::new(*SECRET).expect("long"));
    registry.add_session("jar").expect("new session").driver = DriverChoice::Cookie;
    registry
}

/// The `name=value` pair of the response's cookie for `session`, if it set one.
fn cookie_of(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// One request presenting `cookie`, running `handler` on session `name`; returns the
/// response's cookie pair, if any.
async fn request(
    sessions: &Sessions,
    name: &str,
    cookie: Option<&str>,
    handler: impl FnOnce(&sessionkit::Session),
) -> Option<String> {
    let request = sessions.request(cookie);
    handler(&request.session(name).await.expect("loads"));
    let saved = request.save(200).await.expect("saves");
    let set: Vec<String> = saved.set_cookies().map(str::to_owned).collect();
    let cookie_name = if name == "web" { "__Host-web" } else { "__Host-jar" };
    cookie_of(&set, cookie_name)
}

fn login(session: &sessionkit::Session) {
    session.insert("user", "ada").expect("insert");
}

fn read(session: &sessionkit::Session) {
    let _ = session.get::<String>("user").expect("get");
}

/// Keeps the session alive with a request every 20 minutes until its 24 h lifetime has
/// passed; the last request finds it expired. Returns the number of live requests.
async fn outlive(sessions: &Sessions, clock: &ManualClock, name: &str, mut cookie: String) -> usize {
    for live in 0..100 {
        clock.advance(Duration::from_secs(20 * 60));
        let request = sessions.request([cookie.as_str()]);
        let session = request.session(name).await.expect("loads");
        let is_new = session.is_new().expect("loaded");
        let saved = request.save(200).await.expect("saves");
        if is_new {
            return live;
        }
        let set: Vec<String> = saved.set_cookies().map(str::to_owned).collect();
        if let Some(resealed) = cookie_of(&set, &format!("__Host-{name}")) {
            cookie = resealed;
        }
    }
    panic!("the session outlived its lifetime");
}

#[test]
fn lifecycle_on_the_memory_driver() {
    let recording = Recording::default();
    recorded(&recording, || async {
        let clock = ManualClock::starting_now();
        let sessions = registry(&clock).build().expect("builds");
        let web = |name: &str| format!("sessionkit_sessions_{name}_total{{driver=memory,session=web}}");
        let expired = |reason: &str| {
            format!("sessionkit_sessions_expired_total{{driver=memory,reason={reason},session=web}}")
        };

        let first = request(&sessions, "web", None, login).await.expect("created");
        let second = request(&sessions, "web", Some(&first), |s| {
            s.regenerate().expect("regenerate");
        })
        .await
        .expect("regenerated");
        assert!(request(&sessions, "web", Some(&second), read).await.is_none());
        request(&sessions, "web", Some(&second), |s| s.destroy().expect("destroy")).await;
        assert_eq!(
            recording.take(),
            counts([
                (&web("created"), 1),
                (&web("regenerated"), 1),
                (&web("destroyed"), 1)
            ])
        );

        // Ended sessions are not expiries: the store cannot say why the id is gone.
        request(&sessions, "web", Some(&first), read).await;
        request(&sessions, "web", Some(&second), read).await;
        assert_eq!(recording.take(), counts([(&expired("unknown"), 2)]));

        // Idle: 31 minutes unused. The memory driver's tombstone tells why.
        let idle = request(&sessions, "web", None, login).await.expect("created");
        clock.advance(Duration::from_secs(31 * 60));
        request(&sessions, "web", Some(&idle), read).await;
        assert_eq!(
            recording.take(),
            counts([(&web("created"), 1), (&expired("idle"), 1)])
        );

        // Absolute: used every 20 minutes, still gone after 24 hours.
        let kept = request(&sessions, "web", None, login).await.expect("created");
        assert_eq!(outlive(&sessions, &clock, "web", kept).await, 71);
        assert_eq!(
            recording.take(),
            counts([(&web("created"), 1), (&expired("absolute"), 1)])
        );
    });
}

#[test]
fn lifecycle_on_the_cookie_driver() {
    let recording = Recording::default();
    recorded(&recording, || async {
        let clock = ManualClock::starting_now();
        let sessions = registry(&clock).build().expect("builds");
        let jar = |name: &str| format!("sessionkit_sessions_{name}_total{{driver=cookie,session=jar}}");
        let expired = |reason: &str| {
            format!("sessionkit_sessions_expired_total{{driver=cookie,reason={reason},session=jar}}")
        };

        let first = request(&sessions, "jar", None, login).await.expect("created");
        request(&sessions, "jar", Some(&first), |s| s.destroy().expect("destroy")).await;
        assert_eq!(
            recording.take(),
            counts([(&jar("created"), 1), (&jar("destroyed"), 1)])
        );

        let idle = request(&sessions, "jar", None, login).await.expect("created");
        clock.advance(Duration::from_secs(31 * 60));
        request(&sessions, "jar", Some(&idle), read).await;
        assert_eq!(
            recording.take(),
            counts([(&jar("created"), 1), (&expired("idle"), 1)])
        );

        let kept = request(&sessions, "jar", None, login).await.expect("created");
        assert_eq!(outlive(&sessions, &clock, "jar", kept).await, 71);
        assert_eq!(
            recording.take(),
            counts([(&jar("created"), 1), (&expired("absolute"), 1)])
        );
    });
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Replaces the character at `at` of the cookie value in `pair` with `f` of its 6 bits.
fn edit(pair: &str, at: usize, f: impl Fn(usize) -> usize) -> String {
    let (name, value) = pair.split_once('=').expect("a pair");
    let mut bytes = value.as_bytes().to_vec();
    let index = B64.iter().position(|&c| c == bytes[at]).expect("base64");
    bytes[at] = B64[f(index) % 64];
    format!("{name}={}", String::from_utf8(bytes).expect("ascii"))
}

#[test]
fn rejected_cookies_by_reason() {
    let recording = Recording::default();
    recorded(&recording, || async {
        let clock = ManualClock::starting_now();
        let sessions = registry(&clock).build().expect("builds");
        let web = request(&sessions, "web", None, login).await.expect("created");
        let jar = request(&sessions, "jar", None, login).await.expect("created");
        recording.take();
        let rejected = |session: &str, driver: &str, reason: &str| {
            format!("sessionkit_cookies_rejected_total{{driver={driver},reason={reason},session={session}}}")
        };

        // Malformed: not an envelope at all.
        request(&sessions, "web", Some("__Host-web=not-a-session-id"), read).await;
        request(&sessions, "jar", Some("__Host-jar=!!"), read).await;
        // Bad MAC / AEAD tag: one character of the tag changed.
        request(&sessions, "web", Some(&edit(&web, 80, |i| i + 1)), read).await;
        request(
            &sessions,
            "jar",
            Some(&edit(&jar, jar.len() - 20, |i| i + 1)),
            read,
        )
        .await;
        // Wrong binding: `web`'s cookie value presented as `admin`'s.
        let moved = web.replacen("__Host-web=", "__Host-admin=", 1);
        let admin = sessions.request([moved.as_str()]);
        read(&admin.session("admin").await.expect("loads"));
        // Unsupported version: the version byte's low bits live in the 2nd character.
        request(&sessions, "web", Some(&edit(&web, 1, |i| i + 16)), read).await;
        request(&sessions, "jar", Some(&edit(&jar, 1, |i| i + 16)), read).await;

        // Unknown key: the secret was rotated away (not kept as a previous secret).
        let mut rotated = registry(&clock);
        rotated.set_secret(Secret::new(*b"another secret for the counters!").expect("long"));
        let rotated = rotated.build().expect("builds");
        request(&rotated, "web", Some(&web), read).await;
        request(&rotated, "jar", Some(&jar), read).await;
        // Kept as a previous secret, it still verifies: re-issued, not rejected.
        let mut kept = registry(&clock);
        kept.set_secret(Secret::new(*b"another secret for the counters!").expect("long"));
        kept.add_previous_secret(Secret::new(*SECRET).expect("long"));
        let kept = kept.build().expect("builds");
        assert!(
            request(&kept, "jar", Some(&jar), read).await.is_some(),
            "re-issued"
        );

        assert_eq!(
            recording.take(),
            counts([
                (&rejected("admin", "memory", "bad_tag"), 1),
                (&rejected("jar", "cookie", "bad_tag"), 1),
                (&rejected("jar", "cookie", "malformed"), 1),
                (&rejected("jar", "cookie", "unknown_key"), 1),
                (&rejected("jar", "cookie", "unsupported_version"), 1),
                (&rejected("web", "memory", "bad_tag"), 1),
                (&rejected("web", "memory", "malformed"), 1),
                (&rejected("web", "memory", "unknown_key"), 1),
                (&rejected("web", "memory", "unsupported_version"), 1),
            ])
        );
    });
}

#[test]
fn store_errors_by_kind_and_operation() {
    let recording = Recording::default();
    recorded(&recording, || async {
        let clock = ManualClock::starting_now();
        let memory = Arc::new(MemoryDriver::builder().clock(clock.shared()).build());
        let (store, switch) = SwitchableDriver::new(memory);
        let mut registry = registry(&clock);
        registry
            .register_driver("memory", Arc::new(store))
            .expect("replaces the built-in memory driver");
        let sessions = registry.build().expect("builds");
        let cookie = request(&sessions, "web", None, login).await.expect("created");
        recording.take();
        let error = |operation: &str, kind: &str| {
            format!(
                "sessionkit_store_errors_total{{driver=memory,kind={kind},operation={operation},session=web}}"
            )
        };

        switch.fail();
        let failing = sessions.request([""]);
        login(&failing.session("web").await.expect("nothing to load"));
        assert!(failing.save(200).await.is_err());
        switch.down();
        assert!(sessions.request([cookie.as_str()]).session("web").await.is_err());
        switch.up();
        let request = sessions.request([cookie.as_str()]);
        let session = request.session("web").await.expect("loads");
        session.insert("cart", &1).expect("insert");
        sessions.close().await.expect("closes");
        assert!(request.save(200).await.is_err(), "patch after close");
        assert!(sessions.request([cookie.as_str()]).session("web").await.is_err());

        assert_eq!(
            recording.take(),
            counts([
                (&error("create", "backend"), 1),
                (&error("load", "closed"), 1),
                (&error("load", "unavailable"), 1),
                (&error("patch", "closed"), 1),
            ])
        );
    });
}

#[test]
fn a_save_dropped_by_a_concurrent_logout_is_counted() {
    let recording = Recording::default();
    recorded(&recording, || async {
        let clock = ManualClock::starting_now();
        let sessions = registry(&clock).build().expect("builds");
        let cookie = request(&sessions, "web", None, login).await.expect("created");
        recording.take();

        let logout = sessions.request([cookie.as_str()]);
        let patch = sessions.request([cookie.as_str()]);
        logout
            .session("web")
            .await
            .expect("loads")
            .destroy()
            .expect("destroy");
        patch
            .session("web")
            .await
            .expect("loads")
            .insert("cart", &3)
            .expect("insert");
        logout.save(200).await.expect("saves");
        let saved = patch.save(200).await.expect("saves");
        assert_eq!(saved.dropped().len(), 1);

        assert_eq!(
            recording.take(),
            counts([
                ("sessionkit_saves_dropped_total{driver=memory,session=web}", 1),
                (
                    "sessionkit_sessions_destroyed_total{driver=memory,session=web}",
                    1
                ),
            ])
        );
    });
}
