//! Cookie sessions split over several cookies (`cookie_chunks`): round trips at every
//! chunk boundary, the 4096-byte line limit with real attributes, the cap, stale chunk
//! removal, and sets that are partial, mixed, reordered, duplicated or extended failing
//! closed.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{T0, cookie_def, secret, spec_with};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sessionkit_core::cookies::{MAX_COOKIE_CHUNKS, MAX_SET_COOKIE_LEN};
use sessionkit_core::{
    DefError, Event, FinishError, KeyRing, Outcome, Rejection, SessionDef, SessionMachine, SessionSpec,
    SetCookie, Timestamp, WriteResult,
};

const NAME: &str = "__Host-web";
/// How far apart the sizes probed for chunk boundaries are (then narrowed to the byte).
const STEP: usize = 500;

fn now() -> Timestamp {
    Timestamp::from_millis(T0)
}

fn keys() -> KeyRing {
    KeyRing::new(&secret(7))
}

fn chunked_def(chunks: u8) -> SessionDef {
    let mut def = cookie_def();
    def.cookie_chunks = chunks;
    def
}

fn spec(chunks: u8) -> Arc<SessionSpec> {
    spec_with(chunked_def(chunks), "app", &keys())
}

/// A browser's cookies, in the order they were first set.
#[derive(Debug, Clone, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn apply(&mut self, outcome: &Outcome) {
        for line in outcome.set_cookies(WriteResult::Applied) {
            let pair = line.as_str().split(';').next().expect("a pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if line.as_str().contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

fn begin(spec: &Arc<SessionSpec>, header: &str) -> SessionMachine {
    SessionMachine::begin(spec.clone(), [header.as_bytes()], now())
}

/// Stores `blob` in a session and returns the outcome.
fn write(
    spec: &Arc<SessionSpec>,
    jar: &Jar,
    blob: &str,
    rng: &mut ChaCha20Rng,
) -> Result<Outcome, FinishError> {
    let mut machine = begin(spec, &jar.header());
    machine.insert("blob", blob).expect("ready");
    machine.finish(200, now(), rng)
}

fn read(spec: &Arc<SessionSpec>, header: &str) -> (Option<String>, Vec<Event>) {
    let mut machine = begin(spec, header);
    let mut events = Vec::new();
    while let Some(event) = machine.poll_event() {
        events.push(event);
    }
    (machine.get::<String>("blob").expect("ready"), events)
}

/// How many cookies a blob of `len` bytes takes, checking every line on the way.
fn chunks_for(spec: &Arc<SessionSpec>, len: usize, rng: &mut ChaCha20Rng) -> Option<usize> {
    let blob = "x".repeat(len);
    let outcome = write(spec, &Jar::default(), &blob, rng).ok()?;
    let lines: Vec<_> = outcome.set_cookies(WriteResult::Applied).collect();
    for line in &lines {
        assert!(
            line.as_str().len() <= MAX_SET_COOKIE_LEN,
            "{len}: {}",
            line.as_str().len()
        );
    }
    let mut jar = Jar::default();
    jar.apply(&outcome);
    assert_eq!(
        read(spec, &jar.header()).0.as_deref(),
        Some(blob.as_str()),
        "{len}"
    );
    Some(lines.len())
}

#[test]
fn round_trips_on_both_sides_of_every_chunk_boundary() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut long_attributes = chunked_def(MAX_COOKIE_CHUNKS);
    long_attributes.cookie.name = "__Secure-web".into();
    long_attributes.cookie.domain = Some(format!("{}.example.com", "sub".repeat(60)));
    long_attributes.cookie.path = format!("/{}", "p".repeat(300));
    long_attributes.cookie.partitioned = true;
    let mut browser_session = chunked_def(MAX_COOKIE_CHUNKS);
    browser_session.cookie.persistent = false;
    for spec in [
        spec(MAX_COOKIE_CHUNKS),
        spec_with(long_attributes, "app", &keys()),
        spec_with(browser_session, "app", &keys()),
    ] {
        let mut boundaries = Vec::new();
        let mut last = chunks_for(&spec, 1, &mut rng);
        assert_eq!(last, Some(1), "a small session is one cookie");
        let mut len = 1;
        while last.is_some() {
            let count = chunks_for(&spec, len + STEP, &mut rng);
            if count != last {
                // Narrow down to the exact byte, then check both sides of it.
                let (mut fits, mut over) = (len, len + STEP);
                while over - fits > 1 {
                    let mid = usize::midpoint(fits, over);
                    if chunks_for(&spec, mid, &mut rng) == last {
                        fits = mid;
                    } else {
                        over = mid;
                    }
                }
                assert_eq!(chunks_for(&spec, over, &mut rng), count, "{over}");
                let expected = last
                    .map(|n| n + 1)
                    .filter(|n| *n <= usize::from(MAX_COOKIE_CHUNKS));
                assert_eq!(count, expected, "one more chunk at a time, then the cap");
                boundaries.push(over);
                last = count;
            }
            len += STEP;
        }
        // Every chunk filled, then the typed error, never a broken cookie.
        assert_eq!(boundaries.len(), usize::from(MAX_COOKIE_CHUNKS), "{boundaries:?}");
    }
}

#[test]
fn full_chunks_use_the_whole_line() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let spec = spec(4);
    let outcome = write(&spec, &Jar::default(), &"x".repeat(8_000), &mut rng).expect("fits");
    let lines: Vec<&str> = outcome
        .set_cookies(WriteResult::Applied)
        .map(SetCookie::as_str)
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        outcome.set_cookie(WriteResult::Applied).map(SetCookie::as_str),
        Some(lines[0])
    );
    for (i, line) in lines.iter().enumerate() {
        let name = if i == 0 {
            NAME.to_owned()
        } else {
            format!("{NAME}.{i}")
        };
        assert!(line.starts_with(&format!("{name}=")), "{line}");
        let attributes = line.split_once(';').expect("attributes").1;
        assert_eq!(
            attributes,
            lines[0].split_once(';').expect("attributes").1,
            "every chunk has the same attributes"
        );
        if i + 1 < lines.len() {
            // Base64 comes in 4-character groups of 3 bytes: at most 3 characters spare.
            assert!(
                line.len() > MAX_SET_COOKIE_LEN - 4,
                "chunk {i} is {} bytes",
                line.len()
            );
        }
    }
    assert_eq!(outcome.cache_control(WriteResult::Applied), Some("no-store"));
    assert!(
        !format!("{outcome:?}").contains(
            lines[1]
                .split(';')
                .next()
                .expect("pair")
                .split_once('=')
                .expect("value")
                .1
        )
    );
}

#[test]
fn the_default_is_one_cookie_and_a_typed_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let spec = spec(1);
    assert_eq!(chunks_for(&spec, 2_000, &mut rng), Some(1));
    let err = write(&spec, &Jar::default(), &"x".repeat(5_000), &mut rng).expect_err("too large");
    assert!(matches!(err, FinishError::CookieTooLarge { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("`web`") && text.contains("4096"), "{text}");
}

#[test]
fn past_the_cap_is_a_typed_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let spec = spec(2);
    assert_eq!(chunks_for(&spec, 5_000, &mut rng), Some(2));
    let err = write(&spec, &Jar::default(), &"x".repeat(7_000), &mut rng).expect_err("too large");
    match &err {
        FinishError::TooManyChunks { session, size, max } => {
            assert_eq!((session.as_str(), *max), ("web", 2));
            assert!(*size > 2 * 4_000, "{size}");
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("`web`") && text.contains("4096") && text.contains("cookie_chunks = 2"),
        "{text}"
    );
}

#[test]
fn the_cap_is_validated() {
    for chunks in [0, MAX_COOKIE_CHUNKS + 1, u8::MAX] {
        let err = chunked_def(chunks).validate().expect_err("out of range");
        assert!(matches!(err, DefError::CookieChunks { chunks: c, .. } if c == chunks));
        let text = err.to_string();
        assert!(text.contains("`web`") && text.contains("cookie_chunks"), "{text}");
        assert!(
            SessionSpec::new(
                chunked_def(chunks),
                &sessionkit_core::Namespace::new("app").expect("ns"),
                &keys()
            )
            .is_err()
        );
    }
    for chunks in 1..=MAX_COOKIE_CHUNKS {
        chunked_def(chunks).validate().expect("in range");
    }
}

/// A jar holding a 3-chunk session, and another generation of the same size.
fn two_generations(rng: &mut ChaCha20Rng) -> (Jar, Jar, Arc<SessionSpec>) {
    let spec = spec(4);
    let mut first = Jar::default();
    first.apply(&write(&spec, &Jar::default(), &"a".repeat(8_000), rng).expect("fits"));
    let mut second = Jar::default();
    second.apply(&write(&spec, &Jar::default(), &"b".repeat(8_000), rng).expect("fits"));
    assert_eq!(first.names(), [NAME, "__Host-web.1", "__Host-web.2"]);
    (first, second, spec)
}

fn assert_anonymous(spec: &Arc<SessionSpec>, what: &str, header: &str, reason: Rejection) {
    let (blob, events) = read(spec, header);
    assert_eq!(blob, None, "{what} must give a fresh session");
    assert_eq!(events, [Event::CookieRejected { reason }], "{what}");
    let mut machine = begin(spec, header);
    assert!(machine.is_new().expect("ready"), "{what}");
    while machine.poll_event().is_some() {}
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    assert!(
        machine.finish(200, now(), &mut rng).expect("finishes").is_noop(),
        "{what}: a refused set is ignored, not cleared"
    );
}

#[test]
fn sets_that_are_not_whole_fail_closed() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (good, other, spec) = two_generations(&mut rng);
    assert_eq!(read(&spec, &good.header()).0, Some("a".repeat(8_000)));
    let pair = |name: &str, jar: &Jar| format!("{name}={}", jar.0[name]);
    let (c0, c1, c2) = (NAME, "__Host-web.1", "__Host-web.2");
    let cases = [
        (
            "the first chunk missing",
            format!("{}; {}", pair(c1, &good), pair(c2, &good)),
        ),
        (
            "a middle chunk missing",
            format!("{}; {}", pair(c0, &good), pair(c2, &good)),
        ),
        (
            "the last chunk missing",
            format!("{}; {}", pair(c0, &good), pair(c1, &good)),
        ),
        (
            "mixed generations",
            format!("{}; {}; {}", pair(c0, &good), pair(c1, &other), pair(c2, &good)),
        ),
        (
            "reordered",
            format!("{}; {c1}={}; {c2}={}", pair(c0, &good), good.0[c2], good.0[c1]),
        ),
        (
            "a chunk duplicated",
            format!("{}; {}", good.header(), pair(c1, &good)),
        ),
        (
            "a chunk duplicated from another generation",
            format!("{}; {}", good.header(), pair(c2, &other)),
        ),
        (
            "an extra chunk of the same generation",
            format!("{}; __Host-web.3={}", good.header(), good.0[c2]),
        ),
        (
            "a garbage chunk",
            format!("{}; {}; {c2}=%%%", pair(c0, &good), pair(c1, &good)),
        ),
        (
            "an empty chunk",
            format!("{}; {}; {c2}=", pair(c0, &good), pair(c1, &good)),
        ),
    ];
    for (what, header) in &cases {
        assert_anonymous(&spec, what, header, Rejection::ChunkSet);
    }
    // A chunk whose bytes were changed is caught by the tag.
    let mut edited = good.clone();
    let value = edited.0.get_mut(c1).expect("chunk");
    let mid = value.len() / 2;
    let replacement = if &value[mid..=mid] == "A" { "B" } else { "A" };
    value.replace_range(mid..=mid, replacement);
    assert_anonymous(&spec, "an edited chunk", &edited.header(), Rejection::BadTag);
    // Order on the wire and the split over headers do not matter.
    let reversed: Vec<String> = good.0.iter().rev().map(|(k, v)| format!("{k}={v}")).collect();
    let mut machine = SessionMachine::begin(spec.clone(), reversed.iter().map(String::as_bytes), now());
    assert_eq!(
        machine.get::<String>("blob").expect("ready"),
        Some("a".repeat(8_000))
    );
    assert_eq!(machine.poll_event(), None);
    // A leftover of another generation beyond the set is outside it: ignored.
    let (blob, events) = read(&spec, &format!("{}; __Host-web.3={}", good.header(), other.0[c2]));
    assert_eq!((blob, events), (Some("a".repeat(8_000)), Vec::new()));
}

#[test]
fn a_lowered_cap_refuses_longer_sets() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (good, _, _) = two_generations(&mut rng);
    assert_anonymous(
        &spec(2),
        "a set over the cap",
        &good.header(),
        Rejection::ChunkSet,
    );
    assert_anonymous(
        &spec(1),
        "a set on a session without chunks",
        &good.header(),
        Rejection::UnsupportedVersion,
    );
    assert_eq!(read(&spec(3), &good.header()).0, Some("a".repeat(8_000)));
}

#[test]
fn stale_chunks_are_removed_with_the_same_attributes() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut def = chunked_def(MAX_COOKIE_CHUNKS);
    def.cookie.name = "__Secure-web".into();
    def.cookie.path = "/app".into();
    def.cookie.domain = Some("example.com".into());
    let spec = spec_with(def, "app", &keys());
    let mut jar = Jar::default();
    jar.apply(&write(&spec, &jar, &"x".repeat(14_000), &mut rng).expect("fits"));
    assert_eq!(jar.0.len(), 5);
    let removals = |outcome: &Outcome| -> Vec<String> {
        outcome
            .set_cookies(WriteResult::Applied)
            .filter(|line| line.as_str().contains("Max-Age=0"))
            .map(|line| {
                let text = line.as_str();
                assert!(
                    text.contains("Path=/app") && text.contains("Domain=example.com"),
                    "{text}"
                );
                assert!(text.contains("Secure") && text.contains("HttpOnly"), "{text}");
                text.split('=').next().expect("name").to_owned()
            })
            .collect()
    };
    // Shrinking to three chunks removes the fourth and fifth.
    let outcome = write(&spec, &jar, &"y".repeat(8_000), &mut rng).expect("fits");
    assert_eq!(removals(&outcome), ["__Secure-web.3", "__Secure-web.4"]);
    jar.apply(&outcome);
    assert_eq!(jar.names(), ["__Secure-web", "__Secure-web.1", "__Secure-web.2"]);
    assert_eq!(read(&spec, &jar.header()).0, Some("y".repeat(8_000)));
    // Down to a single cookie.
    let outcome = write(&spec, &jar, "small", &mut rng).expect("fits");
    assert_eq!(removals(&outcome), ["__Secure-web.1", "__Secure-web.2"]);
    jar.apply(&outcome);
    assert_eq!(jar.names(), ["__Secure-web"]);
    assert_eq!(read(&spec, &jar.header()).0.as_deref(), Some("small"));
    // Growing again, then destroying: every cookie the request carried is removed.
    jar.apply(&write(&spec, &jar, &"z".repeat(5_000), &mut rng).expect("fits"));
    assert_eq!(jar.0.len(), 2);
    let mut machine = begin(&spec, &jar.header());
    machine.destroy().expect("ready");
    let outcome = machine.finish(200, now(), &mut rng).expect("finishes");
    assert_eq!(removals(&outcome), ["__Secure-web", "__Secure-web.1"]);
    assert!(outcome.set_cookie(WriteResult::Applied).is_some());
    jar.apply(&outcome);
    assert!(jar.0.is_empty());
    // A read-only request never sends anything, whatever leftovers it carries.
    let mut small = Jar::default();
    small.apply(&write(&spec, &small, "small", &mut rng).expect("fits"));
    let header = format!("{}; __Secure-web.3=leftover", small.header());
    let machine = begin(&spec, &header);
    assert_eq!(
        machine.get::<String>("blob").expect("ready").as_deref(),
        Some("small")
    );
    assert!(machine.finish(200, now(), &mut rng).expect("finishes").is_noop());
    // The next write removes them.
    let outcome = write(&spec, &small, "changed", &mut rng);
    assert!(
        removals(&outcome.expect("fits")).is_empty(),
        "the jar had no leftover"
    );
    let mut machine = begin(&spec, &header);
    machine.insert("blob", "changed").expect("ready");
    let outcome = machine.finish(200, now(), &mut rng).expect("finishes");
    assert_eq!(removals(&outcome), ["__Secure-web.3"]);
    // A lone chunk without the first is refused, and removed by a destroy.
    let mut machine = begin(&spec, "__Secure-web.2=orphan");
    assert_eq!(
        machine.poll_event(),
        Some(Event::CookieRejected {
            reason: Rejection::ChunkSet
        })
    );
    machine.destroy().expect("ready");
    let outcome = machine.finish(200, now(), &mut rng).expect("finishes");
    assert!(
        outcome.set_cookie(WriteResult::Applied).is_none(),
        "no own cookie to remove"
    );
    assert_eq!(removals(&outcome), ["__Secure-web.2"]);
}

#[test]
fn a_set_sealed_with_a_previous_key_is_reissued_chunked() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let old = spec(4);
    let mut jar = Jar::default();
    jar.apply(&write(&old, &jar, &"x".repeat(5_000), &mut rng).expect("fits"));
    assert_eq!(jar.0.len(), 2);
    let rotated = spec_with(
        chunked_def(4),
        "app",
        &KeyRing::new(&secret(8)).with_previous(&secret(7)),
    );
    let machine = begin(&rotated, &jar.header());
    assert_eq!(
        machine.get::<String>("blob").expect("ready"),
        Some("x".repeat(5_000))
    );
    let outcome = machine.finish(200, now(), &mut rng).expect("finishes");
    assert_eq!(outcome.events(), [Event::Reissued { session: None }]);
    jar.apply(&outcome);
    assert_eq!(jar.0.len(), 2);
    let fresh = spec_with(chunked_def(4), "app", &KeyRing::new(&secret(8)));
    assert_eq!(read(&fresh, &jar.header()).0, Some("x".repeat(5_000)));
    // Expiry holds for chunked sessions as for single cookies.
    let later = now().saturating_add(Duration::from_hours(2));
    let mut machine = SessionMachine::begin(fresh, [jar.header().as_bytes()], later);
    assert!(machine.is_new().expect("ready"));
    assert!(matches!(machine.poll_event(), Some(Event::Expired { .. })));
}

#[test]
fn chunks_are_bound_to_their_session() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (good, _, spec) = two_generations(&mut rng);
    // The same cookies under another session's names do not open.
    let mut admin = chunked_def(4);
    admin.name = sessionkit_core::SessionName::new("admin").expect("name");
    admin.cookie.name = "__Host-admin".into();
    let admin = spec_with(admin, "app", &keys());
    let renamed = good.header().replace("__Host-web", "__Host-admin");
    assert_anonymous(&admin, "another session's chunks", &renamed, Rejection::BadTag);
    // Nor in another app.
    let other_app = spec_with(chunked_def(4), "other", &keys());
    assert_anonymous(
        &other_app,
        "another app's chunks",
        &good.header(),
        Rejection::BadTag,
    );
    assert_eq!(read(&spec, &good.header()).0, Some("a".repeat(8_000)));
}
