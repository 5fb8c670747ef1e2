//! Fuzz bodies for the core's decoders and state machine. Each takes raw fuzzer bytes
//! and panics only when an invariant breaks.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sessionkit_core::cookies::{MAX_CANDIDATES, MAX_SET_COOKIE_LEN};
use sessionkit_core::internal::{self, SealedRecord};
use sessionkit_core::internal::{cookie_values, values_by_cookie_crate};
use sessionkit_core::{
    DriverChoice, KeyRing, LoadResult, Namespace, Record, Secret, SessionDef, SessionId, SessionMachine,
    SessionName, SessionSpec, StoreKey, Timestamp, Write, WriteResult,
};

const T0: u64 = 1_700_000_000_000;

fn spec(cookie_driver: bool) -> Arc<SessionSpec> {
    static SPECS: OnceLock<[Arc<SessionSpec>; 2]> = OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        let primary = Secret::new(*b"fuzzing primary secret, 32 bytes").expect("32 bytes");
        let previous = Secret::new(*b"fuzzing previous secret, 32 byte").expect("32 bytes");
        let keys = KeyRing::new(&primary).with_previous(&previous);
        let make = |driver: DriverChoice| {
            let mut def = SessionDef::new(SessionName::new("web").expect("name"));
            def.driver = driver;
            Arc::new(SessionSpec::new(def, &Namespace::new("fuzz").expect("ns"), &keys).expect("spec"))
        };
        [make(DriverChoice::Memory), make(DriverChoice::Cookie)]
    });
    specs[usize::from(cookie_driver)].clone()
}

fn split_headers(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n').take(8).collect()
}

/// Arbitrary `Cookie` headers through the parser and into `begin` for both kinds of
/// session: no panic, bounded candidates, and nothing forged is accepted.
pub fn cookie_header(data: &[u8]) {
    let headers = split_headers(data);
    for name in ["__Host-web", "sid", "a"] {
        let values = cookie_values(headers.iter().copied(), name);
        assert!(values.len() <= MAX_CANDIDATES);
        assert_eq!(
            values,
            values_by_cookie_crate(headers.iter().copied(), name),
            "the hand-written pair reader disagrees with the cookie crate's parser"
        );
    }
    let now = Timestamp::from_millis(T0);
    for cookie_driver in [false, true] {
        let mut machine = SessionMachine::begin(spec(cookie_driver), headers.iter().copied(), now);
        assert!(
            machine.load_request().is_none(),
            "a forged signed id was accepted"
        );
        assert!(
            machine.is_new().expect("ready"),
            "a forged sealed cookie was accepted"
        );
        while machine.poll_event().is_some() {}
    }
}

/// The id-cookie verifier: arbitrary strings never verify; any change to a valid value
/// is rejected.
pub fn id_cookie(data: &[u8]) {
    let spec = spec(false);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        assert!(
            internal::verify_id(spec.id_keys(), &text).is_err(),
            "forged id accepted"
        );
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(mode));
    let id = SessionId::generate(&mut rng);
    let valid = internal::sign_id(spec.id_keys(), &id);
    let changed = apply_edits(&valid, rest);
    let result = internal::verify_id(spec.id_keys(), &changed);
    if changed == valid {
        assert_eq!(result.expect("valid value verifies").id, id);
    } else {
        assert!(result.is_err(), "a changed id cookie verified");
    }
}

/// The sealed-cookie opener: arbitrary strings never open; any change to a valid value
/// is rejected; the unchanged value opens to the same record.
pub fn sealed_cookie(data: &[u8]) {
    let spec = spec(true);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        assert!(
            internal::open(spec.seal_keys(), &text).is_err(),
            "forged record opened"
        );
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(mode));
    let mut map = serde_json::Map::new();
    map.insert("k".into(), serde_json::Value::from(u64::from(mode)));
    let record = SealedRecord::new(Timestamp::from_millis(1), Timestamp::from_millis(2), map);
    // Bit 1 of the mode picks the sealed format: the current one or format 1.
    let valid = if mode & 2 == 0 {
        internal::seal(spec.seal_keys(), &record, &mut rng)
    } else {
        internal::seal_v1(spec.seal_keys(), &record, &mut rng)
    }
    .expect("seals");
    let changed = apply_edits(&valid, rest);
    let result = internal::open(spec.seal_keys(), &changed);
    if changed == valid {
        assert_eq!(result.expect("valid value opens").record, record);
    } else {
        assert!(result.is_err(), "a changed sealed cookie opened");
    }
}

/// The session of the `cookie_chunks` target: sealed in the cookie, split over at most
/// [`CHUNK_CAP`] cookies.
fn chunked_spec() -> Arc<SessionSpec> {
    static SPEC: OnceLock<Arc<SessionSpec>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let keys = KeyRing::new(&Secret::new(*b"fuzzing primary secret, 32 bytes").expect("32 bytes"));
        let mut def = SessionDef::new(SessionName::new("web").expect("name"));
        def.driver = DriverChoice::Cookie;
        def.cookie_chunks = CHUNK_CAP;
        Arc::new(SessionSpec::new(def, &Namespace::new("fuzz").expect("ns"), &keys).expect("spec"))
    })
    .clone()
}

/// How many cookies the `cookie_chunks` target's session may take.
const CHUNK_CAP: u8 = 4;

/// One change to the cookies of a chunked set before they are sent back.
#[derive(Debug, Arbitrary)]
enum ChunkEdit {
    /// Moves a cookie to another place in the header (changes nothing that matters).
    Reorder(u8, u8),
    /// Drops a cookie.
    Drop(u8),
    /// Sends a cookie twice.
    Duplicate(u8),
    /// Swaps the values of two cookies, keeping their names.
    SwapValues(u8, u8),
    /// Replaces a cookie's value by the value of a cookie of the other set.
    FromOther(u8, u8),
    /// Adds a cookie of the other set.
    AddOther(u8),
    /// Renames a cookie to chunk `k` of the set's name.
    Rename(u8, u8),
    /// Edits the value: pairs of (position, replacement), a truncation or an extension.
    Edit(u8, Vec<u8>),
    /// Adds a cookie whose name is the set's name and a suffix of digits, dots and `x`,
    /// with any value.
    Add(Vec<u8>, Vec<u8>),
}

/// `(name, value)` pairs of the cookies a response set, or `None` when the session did
/// not fit.
fn chunked_pairs(len: usize, fill: &str, rng: &mut ChaCha20Rng) -> Option<(String, Vec<(String, String)>)> {
    let blob = fill.repeat(len);
    let now = Timestamp::from_millis(T0);
    let mut machine = SessionMachine::begin(chunked_spec(), std::iter::empty::<&[u8]>(), now);
    machine.insert("blob", &blob).expect("insert");
    let outcome = machine.finish(200, now, rng).ok()?;
    let pairs = outcome
        .set_cookies(WriteResult::Applied)
        .map(|line| {
            assert!(
                line.as_str().len() <= MAX_SET_COOKIE_LEN,
                "an oversized chunk line"
            );
            let pair = line.as_str().split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect::<Vec<_>>();
    assert!(!pairs.is_empty() && pairs.len() <= usize::from(CHUNK_CAP));
    Some((blob, pairs))
}

/// Chunk reassembly: a chunked cookie session's set, edited by the fuzzer (dropped,
/// duplicated, swapped, renamed, edited cookies, cookies of a second set, arbitrary
/// extras) and split over up to three `Cookie` headers, or raw header bytes. No panic;
/// what opens is exactly one of the two sets that were sealed, never a mix; the
/// unedited set in any order opens; the next write's lines are at most 4096 bytes and
/// remove only chunk cookies the request carried.
pub fn cookie_chunks(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(raw) = u.arbitrary::<bool>() else {
        return;
    };
    let spec = chunked_spec();
    let now = Timestamp::from_millis(T0);
    if raw {
        let headers = split_headers(u.take_rest());
        let mut machine = SessionMachine::begin(spec, headers.iter().copied(), now);
        assert!(machine.is_new().expect("ready"), "forged chunks were accepted");
        while machine.poll_event().is_some() {}
        return;
    }
    let (Ok(len_a), Ok(len_b), Ok(seed)) = (u.arbitrary::<u16>(), u.arbitrary::<u16>(), u.arbitrary::<u8>())
    else {
        return;
    };
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let max = usize::from(CHUNK_CAP) * 3_200;
    let (Some((blob_a, mut pairs)), Some((blob_b, other))) = (
        chunked_pairs(usize::from(len_a) % max, "a", &mut rng),
        chunked_pairs(usize::from(len_b) % max, "b", &mut rng),
    ) else {
        return;
    };
    let name = spec.def().cookie.name.clone();
    let mut changed = false;
    for _ in 0..8 {
        let Ok(edit) = u.arbitrary::<ChunkEdit>() else {
            break;
        };
        let at = |i: u8, len: usize| usize::from(i) % len.max(1);
        let len = pairs.len();
        changed |= !matches!(edit, ChunkEdit::Reorder(..));
        match edit {
            ChunkEdit::Reorder(i, j) if len > 0 => {
                let pair = pairs.remove(at(i, len));
                pairs.insert(at(j, len), pair);
            }
            ChunkEdit::Drop(i) if len > 0 => drop(pairs.remove(at(i, len))),
            ChunkEdit::Duplicate(i) if len > 0 => pairs.push(pairs[at(i, len)].clone()),
            ChunkEdit::SwapValues(i, j) if len > 0 => {
                let (i, j) = (at(i, len), at(j, len));
                let value = std::mem::take(&mut pairs[i].1);
                pairs[i].1 = std::mem::replace(&mut pairs[j].1, value);
            }
            ChunkEdit::FromOther(i, j) if len > 0 => {
                pairs[at(i, len)].1 = other[at(j, other.len())].1.clone();
            }
            ChunkEdit::AddOther(j) => pairs.push(other[at(j, other.len())].clone()),
            ChunkEdit::Rename(i, k) if len > 0 => {
                pairs[at(i, len)].0 = spec.def().cookie.chunk_name(usize::from(k % 9)).into_owned();
            }
            ChunkEdit::Edit(i, edits) if len > 0 => {
                let i = at(i, len);
                pairs[i].1 = apply_edits(&pairs[i].1, &edits);
            }
            ChunkEdit::Add(suffix, value) => pairs.push((
                suffix.iter().fold(name.clone(), |mut name, b| {
                    name.push(char::from(b"0123456789.x"[usize::from(*b) % 12]));
                    name
                }),
                String::from_utf8_lossy(&value).into_owned(),
            )),
            // An edit of an empty list changes nothing; marking it changed only
            // weakens the check for this input.
            _ => {}
        }
    }
    let split = u.arbitrary::<u8>().unwrap_or(0);
    let mut headers = vec![String::new(); 1 + usize::from(split % 3)];
    let count = headers.len();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let header = &mut headers[(i + usize::from(split / 3)) % count];
        if !header.is_empty() {
            header.push_str("; ");
        }
        header.push_str(name);
        header.push('=');
        header.push_str(value);
    }
    let mut machine = SessionMachine::begin(spec.clone(), headers.iter().map(String::as_bytes), now);
    let read = machine.get::<String>("blob").expect("ready");
    match &read {
        Some(blob) => assert!(
            *blob == blob_a || *blob == blob_b,
            "a mixed or forged set was accepted"
        ),
        None => assert!(changed, "an unedited set in another order was refused"),
    }
    if !changed {
        assert_eq!(read.as_deref(), Some(blob_a.as_str()));
        assert_eq!(machine.poll_event(), None);
    }
    while machine.poll_event().is_some() {}
    machine.insert("n", &1).expect("insert");
    let Ok(outcome) = machine.finish(200, now, &mut rng) else {
        return;
    };
    // What the request carried, as the parser sees it (edited values may hold `;`).
    let carried = |cookie: &str| !cookie_values(headers.iter().map(String::as_bytes), cookie).is_empty();
    for line in outcome.set_cookies(WriteResult::Applied) {
        let text = line.as_str();
        assert!(text.len() <= MAX_SET_COOKIE_LEN);
        if text.contains("Max-Age=0") {
            let removed = text.split('=').next().unwrap_or_default();
            assert!(
                removed != name && carried(removed),
                "removed {removed}, which was not sent"
            );
        }
    }
}

/// Edits a string with fuzzer bytes: pairs of (position, replacement), a truncation or
/// an extension.
fn apply_edits(valid: &str, edits: &[u8]) -> String {
    let mut bytes = valid.as_bytes().to_vec();
    let mut chunks = edits.chunks_exact(2);
    for pair in &mut chunks {
        match pair[0] {
            0 => bytes.truncate(usize::from(pair[1]) % (bytes.len() + 1)),
            1 => bytes.push(pair[1]),
            at => {
                let i = usize::from(at) % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(i) {
                    *b = pair[1];
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The config parser: arbitrary text never panics; what parses applies to a session
/// definition without panicking, and errors never quote the secret.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match sessionkit_core::config::parse(text) {
        Ok(config) => {
            for (name, overrides) in &config.sessions {
                let Ok(name) = SessionName::new(name) else {
                    continue;
                };
                let mut def = SessionDef::new(name);
                if overrides.apply_to(&mut def).is_ok() {
                    def.validate().expect("apply validates");
                }
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
}

#[derive(Debug, Arbitrary)]
enum CookieChoice {
    Browser,
    NoCookie,
    Stale(u8),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(u8, i32),
    InsertBig(u16),
    Remove(u8),
    Get(u8),
    Keys,
    Clear,
    Flash(u8),
    Take,
    Regenerate,
    Destroy,
    Persist(bool),
    Ttl(u16),
    Idle(u16),
    Deadline(u16),
}

impl Op {
    fn mutates(&self) -> bool {
        !matches!(self, Op::Get(_) | Op::Keys)
    }
}

#[derive(Debug, Arbitrary)]
struct Request {
    cookie: CookieChoice,
    ops: Vec<Op>,
    server_error: bool,
    advance_secs: u16,
    concurrent_delete: bool,
}

/// The state machine driven by arbitrary request sequences against a contract-keeping
/// store. Invariants: no panic; no Set-Cookie over 4096 bytes; no expired session is
/// ever handed to a handler; a request that changed nothing writes nothing (apart from
/// a due touch).
pub fn state_machine(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(cookie_driver) = u.arbitrary::<bool>() else {
        return;
    };
    let spec = spec(cookie_driver);
    let expiry = spec.def().expiry;
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let mut store: std::collections::HashMap<StoreKey, (Record, Timestamp)> =
        std::collections::HashMap::new();
    let mut now = Timestamp::from_millis(T0);
    let mut browser: Option<String> = None;
    let mut issued: std::collections::HashMap<String, Timestamp> = std::collections::HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..16 {
        let Ok(request) = u.arbitrary::<Request>() else {
            return;
        };
        now = now.saturating_add(Duration::from_secs(u64::from(request.advance_secs) * 8));
        let header: Option<Vec<u8>> = match &request.cookie {
            CookieChoice::Browser => browser.clone().map(String::into_bytes),
            CookieChoice::NoCookie => None,
            CookieChoice::Stale(i) => {
                (!seen.is_empty()).then(|| seen[usize::from(*i) % seen.len()].clone().into_bytes())
            }
            CookieChoice::Raw(raw) => Some(raw.clone()),
        };
        let headers: Vec<&[u8]> = header.as_deref().into_iter().collect();
        let mut machine = SessionMachine::begin(spec.clone(), headers, now);
        if let Some(key) = machine.load_request().cloned() {
            let result = match store.get(&key) {
                Some((record, expires)) if *expires > now => LoadResult::Found(record.clone()),
                _ => LoadResult::Missing,
            };
            machine.handle_load(result, now).expect("load requested");
        }
        if let Some(expires) = machine.expires_at().expect("ready") {
            assert!(expires > now, "an expired session was handed out");
        }
        let was_new = machine.is_new().expect("ready");
        for op in &request.ops {
            let key = |k: &u8| format!("k{}", k % 4);
            match op {
                Op::Insert(k, v) => machine.insert(key(k), v).expect("insert"),
                Op::InsertBig(n) => machine
                    .insert("big", &"x".repeat(usize::from(*n) % 6000))
                    .expect("insert"),
                Op::Remove(k) => drop(machine.remove(&key(k)).expect("remove")),
                Op::Get(k) => drop(machine.get::<serde_json::Value>(&key(k)).expect("get")),
                Op::Keys => drop(machine.keys().expect("keys")),
                Op::Clear => machine.clear().expect("clear"),
                Op::Flash(m) => machine.flash(m).expect("flash"),
                Op::Take => drop(machine.take_flashes::<u8>().expect("take")),
                Op::Regenerate => machine.regenerate().expect("regenerate"),
                Op::Destroy => machine.destroy().expect("destroy"),
                Op::Persist(on) => machine.set_persistent(*on).expect("persist"),
                // Out-of-bounds lifetimes are typed errors, never a panic.
                Op::Ttl(mins) => drop(machine.set_ttl(Duration::from_secs(u64::from(*mins) * 60))),
                Op::Idle(secs) => drop(machine.set_idle_timeout(Duration::from_secs(u64::from(*secs)))),
                Op::Deadline(secs) => machine
                    .set_deadline(now.saturating_add(Duration::from_secs(u64::from(*secs))))
                    .expect("deadline"),
            }
        }
        let read_only = !request.ops.iter().any(Op::mutates);
        let life = machine.lifetime().expect("ready");
        let status = if request.server_error { 500 } else { 200 };
        let Ok(outcome) = machine.finish(status, now, &mut rng) else {
            // Only an oversize cookie session may fail, and it writes nothing.
            assert!(cookie_driver, "only cookie sessions can be too large");
            continue;
        };
        if read_only {
            assert!(
                matches!(outcome.write(), None | Some(Write::Touch { .. })) && outcome.delete().is_none(),
                "a request that changed nothing wrote {:?}",
                outcome.write()
            );
            if cookie_driver && outcome.set_cookie(WriteResult::Applied).is_some() {
                let presented = header.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let last = *issued
                    .get(presented.as_ref())
                    .expect("only cookies we issued open");
                assert!(
                    !was_new && expiry.touch_due_for(last, now, &life),
                    "an unchanged cookie session was resealed"
                );
            }
            if !cookie_driver {
                assert!(
                    outcome.set_cookie(WriteResult::Applied).is_none(),
                    "an unchanged session set a cookie"
                );
            }
        }
        if request.concurrent_delete
            && let Some(write) = outcome.write()
        {
            store.remove(write.key());
        }
        let mut result = WriteResult::Applied;
        match outcome.write() {
            Some(Write::Create {
                key,
                record,
                expires_at,
            }) => {
                assert!(*expires_at > now);
                assert!(
                    store.insert(key.clone(), (record.clone(), *expires_at)).is_none(),
                    "id collision"
                );
            }
            Some(Write::Patch {
                key,
                patch,
                expires_at,
            }) => match store.get_mut(key) {
                Some((record, exp)) => {
                    patch.apply_to(record);
                    *exp = *expires_at;
                }
                None => result = WriteResult::Gone,
            },
            Some(Write::Touch {
                key,
                last_seen,
                expires_at,
            }) => match store.get_mut(key) {
                Some((record, exp)) => {
                    record.last_seen = *last_seen;
                    *exp = *expires_at;
                }
                None => result = WriteResult::Gone,
            },
            Some(Write::Rotate(rotation)) => match store.remove(&rotation.from) {
                Some((mut record, _)) => {
                    rotation.patch.apply_to(&mut record);
                    assert!(rotation.expires_at > now);
                    store.insert(rotation.to.clone(), (record, rotation.expires_at));
                }
                None => result = WriteResult::Gone,
            },
            None => {}
        }
        if let Some(key) = outcome.delete() {
            store.remove(key);
        }
        if let Some(cookie) = outcome.set_cookie(result) {
            assert!(cookie.as_str().len() <= MAX_SET_COOKIE_LEN);
            let pair = cookie.as_str().split(';').next().unwrap_or_default().to_owned();
            if pair.ends_with('=') {
                browser = None;
            } else {
                if let Some(old) = browser.replace(pair.clone()) {
                    seen.push(old);
                }
                issued.insert(pair, now);
            }
        }
    }
}
