//! The driver contract, case by case. Each case is a public `async fn` taking the
//! driver factory; [`driver_suite!`](crate::driver_suite) turns them into tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sessionkit::core::{Namespace, SessionId, SessionName, USER_KEY, UserBinding, UserKey};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Lookup, LookupNow, ManualClock, Patch, Record, Rotation,
    StoreKey, SystemClock, Timestamp, Write, WriteResult,
};

/// How a driver learns the time, as declared by [`DriverFactory::time`].
///
/// The declaration must match the driver: a driver that reads the system clock but is
/// declared `Manual` never sees the time the suite moves, and one that follows the
/// suite's clock but is declared `Real` sees it stand still while the suite sleeps.
/// Either way the expiry cases fail, and their messages say which declaration to
/// check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// It follows the clock passed to [`DriverFactory::build`]; the suite moves that
    /// clock instead of sleeping, so the expiry cases take no time and can check the
    /// exact instant of expiry. The default, and the right choice for any driver that
    /// takes a [`SharedClock`](sessionkit::SharedClock).
    Manual,
    /// It uses a clock of its own (a store server's); the suite uses short real
    /// lifetimes and sleeps past them (a few seconds in all).
    Real,
}

/// Builds the driver under test. Implement it once; the suite builds a fresh driver
/// per case.
pub trait DriverFactory: Send + Sync + 'static {
    /// The driver type.
    type Driver: Driver;

    /// Builds a fresh driver. Drivers that accept a clock should use `clock`
    /// (`clock.shared()`), and keep the default [`time`](Self::time).
    fn build(&self, clock: &ManualClock) -> impl Future<Output = Self::Driver> + Send;

    /// How the driver learns the time: [`TimeSource::Manual`] (the default) when it
    /// follows the clock given to [`build`](Self::build), [`TimeSource::Real`] when it
    /// reads the system clock or its store's.
    fn time(&self) -> TimeSource {
        TimeSource::Manual
    }

    /// Writes bytes that are not a valid record under `key` (live, not expired), for
    /// the corrupt-record case. Return `false` when the store cannot hold such bytes;
    /// then the case only checks that loading a never-written key is not an error, and
    /// prints a notice that it was skipped. The default returns `false`.
    fn corrupt(&self, driver: &Self::Driver, key: &StoreKey) -> impl Future<Output = bool> + Send {
        let _ = (driver, key);
        async { false }
    }

    /// Whether the driver implements [`Driver::rotate`] with forwards (a grace window
    /// for renewed ids). `false` (the default): the suite checks only what the default
    /// `rotate` promises (the record moves, the old key stops working) and prints a
    /// notice that the grace-window cases were skipped.
    fn grace_window(&self) -> bool {
        false
    }

    /// Whether the driver keeps per-user indexes ([`Driver::user_sessions`]). `false`
    /// (the default): the suite checks that the call answers
    /// [`DriverError::Unsupported`] and prints a notice that the cases were skipped.
    fn user_index(&self) -> bool {
        false
    }

    /// Whether the driver deletes a whole namespace ([`Driver::delete_namespace`]).
    /// `false` (the default): the suite checks that the call answers
    /// [`DriverError::Unsupported`] and prints a notice.
    fn namespace_delete(&self) -> bool {
        false
    }
}

pub use crate::update::update_is_compare_and_set;

/// The short lifetime expiry cases use.
pub const SHORT: Duration = Duration::from_millis(1_500);
/// How long expiry cases wait past [`SHORT`].
pub const PAST_SHORT: Duration = Duration::from_millis(2_100);
const LONG: Duration = Duration::from_secs(3_600);

/// A fresh driver with its clock and a namespace of its own.
pub struct Ctx<D> {
    /// The driver.
    pub driver: D,
    /// The manual clock (moved by [`Ctx::pass`] for [`TimeSource::Manual`] drivers).
    pub clock: ManualClock,
    time: TimeSource,
    namespace: Namespace,
    grace_window: bool,
    user_index: bool,
    namespace_delete: bool,
}

impl<D: Driver> Ctx<D> {
    /// Builds a fresh driver from `factory`.
    pub async fn new<F: DriverFactory<Driver = D>>(factory: &F) -> Self {
        let clock = ManualClock::starting_now();
        let driver = factory.build(&clock).await;
        Ctx {
            driver,
            clock,
            time: factory.time(),
            namespace: unique_namespace(),
            grace_window: factory.grace_window(),
            user_index: factory.user_index(),
            namespace_delete: factory.namespace_delete(),
        }
    }

    /// The current time as the driver sees it.
    pub fn now(&self) -> Timestamp {
        match self.time {
            TimeSource::Manual => self.clock.now(),
            TimeSource::Real => SystemClock.now(),
        }
    }

    /// What a failed expiry check adds to its message: the declared [`TimeSource`],
    /// and the other one to try when the driver reads another clock.
    pub fn time_hint(&self) -> &'static str {
        match self.time {
            TimeSource::Manual => {
                "the factory declares TimeSource::Manual, so the suite moved the clock passed to \
                 DriverFactory::build instead of waiting; if this driver reads the system clock or its store's \
                 own clock, declare TimeSource::Real in DriverFactory::time"
            }
            TimeSource::Real => {
                "the factory declares TimeSource::Real, so the suite lets real time pass and never moves the clock \
                 passed to DriverFactory::build; if this driver follows that clock, declare TimeSource::Manual in \
                 DriverFactory::time (the default)"
            }
        }
    }

    /// `now + by`.
    pub fn later(&self, by: Duration) -> Timestamp {
        self.now().saturating_add(by)
    }

    /// Lets `by` pass: moves the manual clock, or sleeps for real-time drivers.
    pub async fn pass(&self, by: Duration) {
        match self.time {
            TimeSource::Manual => self.clock.advance(by),
            TimeSource::Real => tokio::time::sleep(by).await,
        }
    }

    /// A fresh random key in this context's namespace.
    pub fn key(&self) -> StoreKey {
        SessionId::generate(&mut rand::rng()).store_key(&self.namespace)
    }

    /// A fresh random key for a renewal of `from`: in `from`'s placement group, as the
    /// session layer draws it for a driver that declares a [`Placement`] (any key for
    /// the others).
    ///
    /// [`Placement`]: sessionkit::Placement
    pub fn key_beside(&self, from: &StoreKey) -> StoreKey {
        let placement = self.driver.placement();
        placement
            .draw(
                &mut rand::rng(),
                &self.namespace,
                Some(placement.group_of_key(from)),
            )
            .1
    }

    /// A record created now with `data`.
    pub fn record(&self, data: Value) -> Record {
        let Value::Object(map) = data else {
            panic!("record data must be an object")
        };
        Record::new(self.now(), map)
    }
}

/// A namespace no other run uses, so suites can share one store server.
pub fn unique_namespace() -> Namespace {
    let mut bytes = [0u8; 8];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    Namespace::new(&format!("conformance-{:016x}", u64::from_le_bytes(bytes))).expect("valid namespace")
}

async fn load<D: Driver>(ctx: &Ctx<D>, key: &StoreKey) -> LoadResult {
    ctx.driver.load(key).await.expect("load must not fail")
}

async fn found<D: Driver>(ctx: &Ctx<D>, key: &StoreKey) -> Record {
    match load(ctx, key).await {
        LoadResult::Found(record) => record,
        other => panic!("expected a record, got {other:?}"),
    }
}

async fn missing<D: Driver>(ctx: &Ctx<D>, key: &StoreKey, why: &str) {
    let result = load(ctx, key).await;
    assert_eq!(result, LoadResult::Missing, "{why}");
}

/// `missing` after time passed: the message names the declared time source.
async fn expired<D: Driver>(ctx: &Ctx<D>, key: &StoreKey, why: &str) {
    let result = load(ctx, key).await;
    assert_eq!(result, LoadResult::Missing, "{why} ({})", ctx.time_hint());
}

/// `found` after time passed: the message names the declared time source.
async fn still_live<D: Driver>(ctx: &Ctx<D>, key: &StoreKey, why: &str) -> Record {
    match load(ctx, key).await {
        LoadResult::Found(record) => record,
        other => panic!("{why}: expected a record, got {other:?} ({})", ctx.time_hint()),
    }
}

/// Asserts that a write after time passed answered `expected`, naming the declared time
/// source when it did not.
fn after_time<D: Driver>(ctx: &Ctx<D>, got: WriteResult, expected: WriteResult, why: &str) {
    assert_eq!(got, expected, "{why} ({})", ctx.time_hint());
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("expected an object"),
    }
}

fn patch(set: Value, remove: &[&str], clear: bool, last_seen: Timestamp) -> Patch {
    let mut p = Patch {
        clear,
        set: map(set).into_iter().collect::<BTreeMap<_, _>>(),
        remove: remove.iter().map(|s| (*s).to_owned()).collect(),
        ..Patch::default()
    };
    p.last_seen = last_seen;
    p
}

/// A key never written loads as missing.
pub async fn load_missing_is_missing<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    missing(&ctx, &ctx.key(), "a key never written").await;
}

/// A created record loads back exactly: timestamps and every JSON type.
pub async fn create_then_load_round_trips<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let mut record = ctx.record(json!({
        "user": "ada", "n": 42, "neg": -7, "big": u64::MAX, "pi": 1.5, "yes": true, "none": null,
        "list": [1, "two", [3], {"four": 4}], "nested": {"a": {"b": {"c": []}}}, "empty": {}
    }));
    record.last_seen = record.created_at.saturating_add(Duration::from_millis(1_234));
    ctx.driver
        .create(&key, &record, ctx.later(LONG))
        .await
        .expect("create");
    assert_eq!(found(&ctx, &key).await, record);
}

/// `create` never overwrites: a second create of a live key is `Duplicate` and leaves
/// the first record as it was.
pub async fn create_is_insert_if_absent<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let first = ctx.record(json!({"v": 1}));
    ctx.driver
        .create(&key, &first, ctx.later(LONG))
        .await
        .expect("create");
    let second = ctx.record(json!({"v": 2}));
    let err = ctx
        .driver
        .create(&key, &second, ctx.later(LONG))
        .await
        .expect_err("duplicate create");
    assert!(
        matches!(err, DriverError::Duplicate),
        "expected Duplicate, got {err:?}"
    );
    assert_eq!(found(&ctx, &key).await, first);
}

/// An expired record does not block a new create under the same key.
pub async fn create_after_expiry_succeeds<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    ctx.driver
        .create(&key, &ctx.record(json!({"v": 1})), ctx.later(SHORT))
        .await
        .expect("create");
    ctx.pass(PAST_SHORT).await;
    let fresh = ctx.record(json!({"v": 2}));
    if let Err(err) = ctx.driver.create(&key, &fresh, ctx.later(LONG)).await {
        panic!(
            "a create over an expired record must succeed, got {err:?} ({})",
            ctx.time_hint()
        );
    }
    assert_eq!(found(&ctx, &key).await, fresh);
}

/// Of many concurrent creates of one key, exactly one succeeds.
pub async fn concurrent_creates_of_one_key_admit_one<F: DriverFactory>(f: &F) {
    let ctx = Arc::new(Ctx::new(f).await);
    let key = ctx.key();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ctx = ctx.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let record = ctx.record(json!({ "writer": i }));
            ctx.driver.create(&key, &record, ctx.later(LONG)).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(DriverError::Duplicate) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one create wins");
}

/// A patch clears (if asked), removes, sets, and moves last-seen; other keys stay.
pub async fn patch_applies_clear_remove_set_and_last_seen<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let mut expected = ctx.record(json!({"a": 1, "b": 2, "c": 3}));
    ctx.driver
        .create(&key, &expected, ctx.later(LONG))
        .await
        .expect("create");
    let seen = ctx.later(Duration::from_secs(5));
    let p = patch(
        json!({"a": 10, "d": {"x": [1]}}),
        &["b", "never-set"],
        false,
        seen,
    );
    assert_eq!(
        ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch"),
        WriteResult::Applied
    );
    p.apply_to(&mut expected);
    let got = found(&ctx, &key).await;
    assert_eq!(got, expected);
    assert_eq!(got.data.keys().collect::<Vec<_>>(), ["a", "c", "d"]);
    assert_eq!(got.last_seen, seen);

    let cleared = patch(json!({"only": true}), &[], true, seen);
    assert_eq!(
        ctx.driver
            .patch(&key, &cleared, ctx.later(LONG))
            .await
            .expect("patch"),
        WriteResult::Applied
    );
    assert_eq!(found(&ctx, &key).await.data, map(json!({"only": true})));
}

/// Patching a key that does not exist reports `Gone` and creates nothing.
pub async fn patch_of_missing_is_gone_and_creates_nothing<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let p = patch(json!({"a": 1}), &[], false, ctx.now());
    assert_eq!(
        ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch"),
        WriteResult::Gone
    );
    missing(&ctx, &key, "a patch must not create a record").await;
}

/// A touch moves last-seen and nothing else.
pub async fn touch_moves_last_seen_only<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let record = ctx.record(json!({"a": 1}));
    ctx.driver
        .create(&key, &record, ctx.later(LONG))
        .await
        .expect("create");
    let seen = ctx.later(Duration::from_secs(9));
    assert_eq!(
        ctx.driver
            .touch(&key, seen, ctx.later(LONG))
            .await
            .expect("touch"),
        WriteResult::Applied
    );
    let got = found(&ctx, &key).await;
    assert_eq!(got.last_seen, seen);
    assert_eq!(got.created_at, record.created_at);
    assert_eq!(got.data, record.data);
}

/// Touching a key that does not exist reports `Gone` and creates nothing.
pub async fn touch_of_missing_is_gone_and_creates_nothing<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    assert_eq!(
        ctx.driver
            .touch(&key, ctx.now(), ctx.later(LONG))
            .await
            .expect("touch"),
        WriteResult::Gone
    );
    missing(&ctx, &key, "a touch must not create a record").await;
}

/// After a delete (a logout), a late patch or touch from a request that loaded the
/// session before it is `Gone` and brings nothing back.
pub async fn patch_and_touch_after_delete_are_gone<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    ctx.driver
        .create(&key, &ctx.record(json!({"user": "ada"})), ctx.later(LONG))
        .await
        .expect("create");
    ctx.driver.delete(&key).await.expect("delete");
    let p = patch(json!({"cart": [1]}), &[], false, ctx.now());
    assert_eq!(
        ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch"),
        WriteResult::Gone
    );
    assert_eq!(
        ctx.driver
            .touch(&key, ctx.now(), ctx.later(LONG))
            .await
            .expect("touch"),
        WriteResult::Gone
    );
    missing(&ctx, &key, "a deleted session must stay deleted").await;
}

/// Deleting twice, or deleting a key never written, is fine.
pub async fn delete_is_idempotent<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    ctx.driver.delete(&key).await.expect("delete of a missing key");
    ctx.driver
        .create(&key, &ctx.record(json!({"a": 1})), ctx.later(LONG))
        .await
        .expect("create");
    ctx.driver.delete(&key).await.expect("delete");
    ctx.driver.delete(&key).await.expect("second delete");
    missing(&ctx, &key, "deleted").await;
}

/// A record is never returned once its expiry has passed.
pub async fn load_never_returns_expired<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let short = ctx.key();
    let long = ctx.key();
    ctx.driver
        .create(&short, &ctx.record(json!({"a": 1})), ctx.later(SHORT))
        .await
        .expect("create");
    ctx.driver
        .create(&long, &ctx.record(json!({"a": 2})), ctx.later(LONG))
        .await
        .expect("create");
    found(&ctx, &short).await;
    ctx.pass(PAST_SHORT).await;
    expired(&ctx, &short, "an expired record must not be returned").await;
    still_live(&ctx, &long, "a record whose expiry is an hour away").await;
}

/// Expired means `now >= expires_at`: a record is live up to the millisecond before
/// its expiry and expired at that very instant. There `load` says `Missing` (and
/// `lookup` finds no record), `patch` and `touch` are `Gone` and revive nothing, and a
/// `create` under the key succeeds.
///
/// With [`TimeSource::Manual`] the case stops the clock one millisecond before the
/// expiry and then exactly at it. A real clock cannot be stopped, so with
/// [`TimeSource::Real`] the records expire at the instant they are written, which
/// has been reached by the time they are read back.
pub async fn expired_at_the_expiry_instant<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let (loaded, patched, touched) = (ctx.key(), ctx.key(), ctx.key());
    let expires_at = match ctx.time {
        TimeSource::Manual => ctx.later(SHORT),
        TimeSource::Real => ctx.now(),
    };
    for key in [&loaded, &patched, &touched] {
        ctx.driver
            .create(key, &ctx.record(json!({"a": 1})), expires_at)
            .await
            .expect("create");
    }
    if ctx.time == TimeSource::Manual {
        ctx.pass(SHORT.saturating_sub(Duration::from_millis(1))).await;
        for key in [&loaded, &patched, &touched] {
            still_live(&ctx, key, "one millisecond before its expiry a record is live").await;
        }
        ctx.pass(Duration::from_millis(1)).await;
        assert_eq!(ctx.now(), expires_at, "the suite's clock stands at the expiry");
    }
    let at = match ctx.time {
        TimeSource::Manual => "at now == expires_at",
        TimeSource::Real => "once now >= expires_at",
    };
    expired(
        &ctx,
        &loaded,
        &format!("{at} a record has expired (expired means now >= expires_at) and must not be returned"),
    )
    .await;
    let lookup = ctx.driver.lookup(&loaded).await.expect("lookup");
    assert!(
        !matches!(
            lookup,
            Lookup::Loaded(LoadResult::Found(_)) | Lookup::Forwarded { .. }
        ),
        "{at} lookup must not find the record, got {lookup:?} ({})",
        ctx.time_hint()
    );
    let p = patch(json!({"b": 2}), &[], false, ctx.now());
    let result = ctx
        .driver
        .patch(&patched, &p, ctx.later(LONG))
        .await
        .expect("patch");
    after_time(
        &ctx,
        result,
        WriteResult::Gone,
        &format!("{at} a patch finds the record expired"),
    );
    let result = ctx
        .driver
        .touch(&touched, ctx.now(), ctx.later(LONG))
        .await
        .expect("touch");
    after_time(
        &ctx,
        result,
        WriteResult::Gone,
        &format!("{at} a touch finds the record expired"),
    );
    for key in [&patched, &touched] {
        expired(&ctx, key, "a write at the expiry instant revives nothing").await;
    }
    let fresh = ctx.record(json!({"v": 2}));
    if let Err(err) = ctx.driver.create(&loaded, &fresh, ctx.later(LONG)).await {
        panic!(
            "{at} an expired record must not block a create, got {err:?} ({})",
            ctx.time_hint()
        );
    }
    assert_eq!(found(&ctx, &loaded).await, fresh);
}

/// An expiry as late as [`Timestamp::MAX`] ("never") is kept, through create, patch
/// and touch: a store whose expiry type is narrower (signed 64-bit milliseconds, a SQL
/// timestamp) clamps it to its latest instant, never fails or wraps it into the past.
pub async fn never_expiring_records_are_kept<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let beyond_i64 = Timestamp::from_millis(1 << 63);
    for far in [Timestamp::MAX, beyond_i64] {
        let key = ctx.key();
        let record = ctx.record(json!({"a": 1}));
        ctx.driver
            .create(&key, &record, far)
            .await
            .unwrap_or_else(|err| panic!("create expiring at {far:?}: {err:?}"));
        assert_eq!(found(&ctx, &key).await, record, "expiring at {far:?}");
        let p = patch(json!({"b": 2}), &[], false, ctx.now());
        assert_eq!(
            ctx.driver.patch(&key, &p, far).await.expect("patch"),
            WriteResult::Applied,
            "a patch with the expiry {far:?}"
        );
        assert_eq!(
            ctx.driver.touch(&key, ctx.now(), far).await.expect("touch"),
            WriteResult::Applied,
            "a touch with the expiry {far:?}"
        );
        assert_eq!(found(&ctx, &key).await.data["b"], 2, "expiring at {far:?}");
        ctx.driver.delete(&key).await.expect("delete");
    }
}

/// Patch and touch move the expiry to what they are given.
pub async fn patch_and_touch_extend_expiry<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let patched = ctx.key();
    let touched = ctx.key();
    for key in [&patched, &touched] {
        ctx.driver
            .create(key, &ctx.record(json!({"a": 1})), ctx.later(SHORT))
            .await
            .expect("create");
    }
    let p = patch(json!({"b": 2}), &[], false, ctx.now());
    ctx.driver
        .patch(&patched, &p, ctx.later(LONG))
        .await
        .expect("patch");
    ctx.driver
        .touch(&touched, ctx.now(), ctx.later(LONG))
        .await
        .expect("touch");
    ctx.pass(PAST_SHORT).await;
    let patched = still_live(&ctx, &patched, "a patch moves the expiry").await;
    assert_eq!(patched.data["b"], 2);
    still_live(&ctx, &touched, "a touch moves the expiry").await;
}

/// A patch or touch after expiry is `Gone`: an expired session is not revived.
pub async fn patch_after_expiry_is_gone<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    ctx.driver
        .create(&key, &ctx.record(json!({"a": 1})), ctx.later(SHORT))
        .await
        .expect("create");
    ctx.pass(PAST_SHORT).await;
    let p = patch(json!({"b": 2}), &[], false, ctx.now());
    let patched = ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch");
    after_time(&ctx, patched, WriteResult::Gone, "a patch of an expired record");
    let touched = ctx
        .driver
        .touch(&key, ctx.now(), ctx.later(LONG))
        .await
        .expect("touch");
    after_time(&ctx, touched, WriteResult::Gone, "a touch of an expired record");
    expired(&ctx, &key, "an expired session must not be revived").await;
}

/// Values of 1 MiB round-trip through create and patch.
pub async fn large_values_round_trip<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let big: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).expect("< 26")))
        .collect();
    let record = ctx.record(json!({ "blob": big }));
    ctx.driver
        .create(&key, &record, ctx.later(LONG))
        .await
        .expect("create 1 MiB");
    assert_eq!(
        found(&ctx, &key).await.data["blob"].as_str().map(str::len),
        Some(1024 * 1024)
    );
    let other: String = big.chars().rev().collect();
    let p = patch(json!({ "blob2": other }), &[], false, ctx.now());
    ctx.driver
        .patch(&key, &p, ctx.later(LONG))
        .await
        .expect("patch 1 MiB");
    let got = found(&ctx, &key).await;
    assert_eq!(got.data["blob"], Value::String(big));
    assert_eq!(got.data["blob2"], Value::String(other));
}

/// Every value the core accepts loads back identically, through create and through
/// patch: the named hard cases of [`crate::values`] (deep, wide, unicode, NUL in strings
/// and keys, big and tiny numbers, empty keys) and 200 arbitrary JSON trees.
pub async fn accepted_values_round_trip<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let mut data: Map<String, Value> = crate::values::tricky().into_iter().collect();
    for (i, value) in crate::values::generated(0x5e55_10c4, 200).into_iter().enumerate() {
        data.insert(format!("generated {i}"), value);
    }
    let created = ctx.key();
    ctx.driver
        .create(
            &created,
            &ctx.record(Value::Object(data.clone())),
            ctx.later(LONG),
        )
        .await
        .expect("create");
    let patched = ctx.key();
    ctx.driver
        .create(&patched, &ctx.record(json!({ "seed": 1 })), ctx.later(LONG))
        .await
        .expect("create");
    let p = patch(Value::Object(data.clone()), &["seed"], false, ctx.now());
    assert_eq!(
        ctx.driver
            .patch(&patched, &p, ctx.later(LONG))
            .await
            .expect("patch"),
        WriteResult::Applied
    );
    for (how, key) in [("create", &created), ("patch", &patched)] {
        let got = found(&ctx, key).await;
        for (name, value) in &data {
            assert_eq!(got.data.get(name), Some(value), "{name:?} through {how}");
        }
        assert_eq!(got.data.len(), data.len(), "through {how}");
    }
}

/// Keys and values in any script, with characters stores like to treat specially.
pub async fn unicode_keys_and_values_round_trip<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let data = json!({
        "ключ": "значение", "鍵": "値", "🔑": "🚪", "a.b": 1, "$where": 2, "key with spaces": 3,
        "'; DROP TABLE sessions; --": 4, "\"quoted\"": "\\back\\slash", "": "empty key", "tab\tnew\nline": "é\u{301}",
    });
    let record = ctx.record(data.clone());
    ctx.driver
        .create(&key, &record, ctx.later(LONG))
        .await
        .expect("create");
    assert_eq!(found(&ctx, &key).await, record);
    let p = patch(json!({"🔑": "🗝️", "ключ2": "x"}), &["鍵", ""], false, ctx.now());
    ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch");
    let mut expected = record;
    p.apply_to(&mut expected);
    assert_eq!(found(&ctx, &key).await, expected);
}

/// 10,000 sessions coexist and stay independent.
pub async fn ten_thousand_sessions<F: DriverFactory>(f: &F) {
    let ctx = Arc::new(Ctx::new(f).await);
    let keys: Vec<StoreKey> = (0..10_000).map(|_| ctx.key()).collect();
    let keys = Arc::new(keys);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (ctx, keys) = (ctx.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            for (i, key) in keys.iter().enumerate().skip(worker).step_by(8) {
                ctx.driver
                    .create(key, &ctx.record(json!({ "i": i })), ctx.later(LONG))
                    .await
                    .expect("create");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    for i in (0..10_000).step_by(97).chain([9_999]) {
        assert_eq!(found(&ctx, &keys[i]).await.data["i"], i);
    }
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (ctx, keys) = (ctx.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            for key in keys.iter().skip(worker).step_by(8) {
                ctx.driver.delete(key).await.expect("delete");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    missing(&ctx, &keys[5_000], "deleted").await;
}

/// 50 concurrent patches of one session, each setting its own key, all survive.
pub async fn concurrent_patches_of_different_keys_all_survive<F: DriverFactory>(f: &F) {
    let ctx = Arc::new(Ctx::new(f).await);
    let key = ctx.key();
    ctx.driver
        .create(&key, &ctx.record(json!({"base": true})), ctx.later(LONG))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (ctx, key) = (ctx.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let p = patch(json!({ format!("k{i}"): i }), &[], false, ctx.now());
            ctx.driver.patch(&key, &p, ctx.later(LONG)).await.expect("patch")
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), WriteResult::Applied);
    }
    let got = found(&ctx, &key).await;
    for i in 0..50 {
        assert_eq!(
            got.data.get(&format!("k{i}")),
            Some(&json!(i)),
            "patch {i} was lost"
        );
    }
    assert_eq!(got.data["base"], true);
}

/// The same digest in two namespaces is two sessions.
pub async fn namespaces_are_separate<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let other = StoreKey::from_digest(unique_namespace(), *key.digest());
    ctx.driver
        .create(&key, &ctx.record(json!({"app": "one"})), ctx.later(LONG))
        .await
        .expect("create");
    missing(&ctx, &other, "another namespace must not see the record").await;
    ctx.driver
        .create(&other, &ctx.record(json!({"app": "two"})), ctx.later(LONG))
        .await
        .expect("create");
    ctx.driver.delete(&other).await.expect("delete");
    assert_eq!(found(&ctx, &key).await.data["app"], "one");
}

/// Bytes that are not a record load as `Corrupt` (or `Missing`), never as an error.
pub async fn corrupt_record_is_not_an_error<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    if !f.corrupt(&ctx.driver, &key).await {
        // This store holds typed records only; nothing can be corrupt. Loading a key
        // never written must still not be an error.
        eprintln!(
            "corrupt_record_is_not_an_error: skipped, the factory has no corrupt hook (DriverFactory::corrupt \
             returned false), so only a load of a never-written key was checked; implement it to store bytes \
             that are not a record"
        );
        missing(&ctx, &key, "never written").await;
        return;
    }
    match ctx.driver.load(&key).await {
        Ok(LoadResult::Corrupt | LoadResult::Missing) => {}
        other => panic!("a corrupt record must load as Corrupt or Missing, got {other:?}"),
    }
    // A patch or touch that meets it (the record went bad after a request loaded it) is
    // `Gone`, or, from a store that writes without reading back, `Applied`; never an
    // error, and the record still does not load as an error.
    let p = patch(json!({"after": 1}), &[], false, ctx.now());
    let patched = ctx.driver.patch(&key, &p, ctx.later(LONG)).await;
    assert!(
        matches!(patched, Ok(WriteResult::Gone | WriteResult::Applied)),
        "a patch of an undecodable record must be Gone (or Applied), never an error, got {patched:?}"
    );
    let touched = ctx.driver.touch(&key, ctx.now(), ctx.later(LONG)).await;
    assert!(
        matches!(touched, Ok(WriteResult::Gone | WriteResult::Applied)),
        "a touch of an undecodable record must be Gone (or Applied), never an error, got {touched:?}"
    );
    let reloaded = ctx.driver.load(&key).await;
    assert!(
        reloaded.is_ok(),
        "loading a corrupt record after a write must not fail, got {reloaded:?}"
    );
    // A corrupt record must not block the session layer: delete works.
    ctx.driver.delete(&key).await.expect("delete of a corrupt record");
    missing(&ctx, &key, "a deleted corrupt record").await;
}

/// `close` succeeds and can be called twice.
pub async fn close_is_clean<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    ctx.driver
        .create(&key, &ctx.record(json!({"a": 1})), ctx.later(LONG))
        .await
        .expect("create");
    ctx.driver.close().await.expect("close");
    ctx.driver.close().await.expect("second close");
    if let Ok(result) = ctx.driver.load(&key).await {
        // Drivers may keep working after close (pooled clients) or fail with Closed;
        // they must not return garbage.
        assert!(
            matches!(result, LoadResult::Found(_) | LoadResult::Missing),
            "{result:?}"
        );
    }
}

fn rotation<D: Driver>(
    ctx: &Ctx<D>,
    from: &StoreKey,
    record: &Record,
    set: Value,
    grace: Duration,
) -> Rotation {
    let mut record = record.clone();
    let change = patch(set, &[], false, ctx.now());
    change.apply_to(&mut record);
    Rotation {
        from: from.clone(),
        to: ctx.key_beside(from),
        record,
        patch: change,
        expires_at: ctx.later(LONG),
        grace_until: ctx.later(grace),
    }
}

/// What `lookup_now` answered, in `lookup`'s terms (`None`: it did not answer).
fn now_as_lookup<D: Driver>(ctx: &Ctx<D>, key: &StoreKey) -> Option<Lookup> {
    match ctx.driver.lookup_now(key)? {
        Ok(LookupNow::Shared(record)) => Some(Lookup::Loaded(LoadResult::Found(Record::clone(&record)))),
        Ok(LookupNow::Lookup(lookup)) => Some(lookup),
        Ok(other) => panic!("an answer this suite does not know: {other:?}"),
        Err(err) => panic!("lookup_now must not fail: {err}"),
    }
}

/// A driver that answers [`Driver::lookup_now`] answers what `lookup` answers, in every
/// state a key can be in (live, patched, missing, deleted, renewed, expired), and a
/// record it lends stays as it was lent when the store's copy is written. A driver
/// that never answers (the default) passes with a notice.
pub async fn lookup_now_answers_as_lookup<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    if ctx.driver.lookup_now(&key).is_none() {
        eprintln!("lookup_now_answers_as_lookup: skipped, the driver does not answer lookup_now (optional)");
        return;
    }
    let agree = |key: &StoreKey, state: &'static str| {
        let key = key.clone();
        let ctx = &ctx;
        async move {
            let now = now_as_lookup(ctx, &key).expect("a driver that answers once answers always");
            let later = ctx.driver.lookup(&key).await.expect("lookup");
            assert_eq!(now, later, "lookup_now and lookup disagree for a {state} key");
        }
    };
    agree(&key, "never written").await;
    let record = ctx.record(json!({"n": 1, "user": "ada"}));
    ctx.driver
        .create(&key, &record, ctx.later(LONG))
        .await
        .expect("create");
    agree(&key, "live").await;
    let Some(Ok(LookupNow::Shared(lent))) = ctx.driver.lookup_now(&key) else {
        panic!("a live record is lent (LookupNow::Shared)");
    };
    assert_eq!(*lent, record, "the lent record is the stored one");
    let change = patch(json!({"n": 2}), &["user"], false, ctx.now());
    assert_eq!(
        ctx.driver
            .patch(&key, &change, ctx.later(LONG))
            .await
            .expect("patch"),
        WriteResult::Applied
    );
    assert_eq!(
        *lent, record,
        "a lent record does not change when the store's copy is written"
    );
    agree(&key, "patched").await;
    assert_eq!(found(&ctx, &key).await.data["n"], json!(2));
    ctx.driver.delete(&key).await.expect("delete");
    agree(&key, "deleted").await;

    let from = ctx.key();
    ctx.driver
        .create(&from, &record, ctx.later(LONG))
        .await
        .expect("create");
    let renewal = rotation(&ctx, &from, &record, json!({}), LONG);
    ctx.driver.rotate(&renewal).await.expect("rotate");
    agree(&from, "renewed").await;
    agree(&renewal.to, "renewed-to").await;

    let short = ctx.key();
    ctx.driver
        .create(&short, &record, ctx.later(SHORT))
        .await
        .expect("create");
    ctx.pass(PAST_SHORT).await;
    agree(&short, "expired").await;
}

/// A driver that answers [`Driver::write_now`] does what `create`, `patch`, `touch`
/// and `rotate` do and answers what they answer: a create is insert-if-absent, a patch
/// or touch of a missing key is `Gone` and creates nothing, a rotation moves the
/// record. A driver that never answers (the default) passes with a notice.
pub async fn write_now_answers_as_the_calls<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let touch = |key: &StoreKey| Write::Touch {
        key: key.clone(),
        last_seen: ctx.now(),
        expires_at: ctx.later(LONG),
    };
    let Some(first) = ctx.driver.write_now(&touch(&key)) else {
        eprintln!("write_now_answers_as_the_calls: skipped, the driver does not answer write_now (optional)");
        return;
    };
    let now = |write: &Write| {
        ctx.driver
            .write_now(write)
            .expect("a driver that answers once answers every write")
    };
    assert_eq!(
        first.expect("touch"),
        WriteResult::Gone,
        "a touch of a missing key"
    );
    missing(&ctx, &key, "a touch of a missing key creates nothing").await;
    let patch_of = |key: &StoreKey, set: Value| Write::Patch {
        key: key.clone(),
        patch: patch(set, &[], false, ctx.now()),
        expires_at: ctx.later(LONG),
    };
    assert_eq!(
        now(&patch_of(&key, json!({"n": 1}))).expect("patch"),
        WriteResult::Gone
    );
    missing(&ctx, &key, "a patch of a missing key creates nothing").await;

    let record = ctx.record(json!({"n": 1}));
    let create = Write::Create {
        key: key.clone(),
        record: record.clone(),
        expires_at: ctx.later(LONG),
    };
    assert_eq!(now(&create).expect("create"), WriteResult::Applied);
    assert_eq!(found(&ctx, &key).await, record, "the created record loads back");
    assert!(
        matches!(now(&create), Err(DriverError::Duplicate)),
        "a second create of a live key is a duplicate"
    );
    assert_eq!(
        now(&patch_of(&key, json!({"n": 2}))).expect("patch"),
        WriteResult::Applied
    );
    assert_eq!(
        found(&ctx, &key).await.data["n"],
        json!(2),
        "the patch is applied"
    );
    ctx.pass(Duration::from_millis(5)).await;
    let touched = touch(&key);
    assert_eq!(now(&touched).expect("touch"), WriteResult::Applied);
    let Write::Touch { last_seen, .. } = touched else {
        unreachable!("built as a touch")
    };
    assert_eq!(
        found(&ctx, &key).await.last_seen,
        last_seen,
        "the touch moved last-seen"
    );

    let renewal = rotation(&ctx, &key, &found(&ctx, &key).await, json!({"n": 3}), LONG);
    assert_eq!(
        now(&Write::Rotate(renewal.clone())).expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(
        found(&ctx, &renewal.to).await.data["n"],
        json!(3),
        "the rotation moved the record"
    );
    missing(&ctx, &key, "the renewed key holds no record").await;
}

fn grace_skipped<D>(ctx: &Ctx<D>, case: &str) -> bool {
    if !ctx.grace_window {
        eprintln!(
            "{case}: skipped, the factory says the driver keeps no grace window (DriverFactory::grace_window)"
        );
    }
    !ctx.grace_window
}

/// A rotation moves the record (with the rotation's changes, keeping `created_at`)
/// to the new key; the old key loads nothing, and a patch or touch of it is `Gone`.
pub async fn rotate_moves_the_record<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let from = ctx.key();
    let record = ctx.record(json!({"user": "ada", "n": 1}));
    ctx.driver
        .create(&from, &record, ctx.later(LONG))
        .await
        .expect("create");
    ctx.pass(Duration::from_millis(10)).await;
    let rotation = rotation(&ctx, &from, &record, json!({"n": 2}), SHORT);
    let result = ctx.driver.rotate(&rotation).await.expect("rotate");
    assert_eq!(result, WriteResult::Applied);
    let moved = found(&ctx, &rotation.to).await;
    assert_eq!(moved.data, map(json!({"user": "ada", "n": 2})));
    assert_eq!(moved.created_at, record.created_at, "the creation time is kept");
    assert_eq!(moved.last_seen, rotation.patch.last_seen);
    missing(&ctx, &from, "the old key is not a record any more").await;
    let gone = ctx
        .driver
        .patch(
            &from,
            &patch(json!({"x": 1}), &[], false, ctx.now()),
            ctx.later(LONG),
        )
        .await
        .expect("patch");
    assert_eq!(
        gone,
        WriteResult::Gone,
        "a patch of the old key must not land there"
    );
    let gone = ctx
        .driver
        .touch(&from, ctx.now(), ctx.later(LONG))
        .await
        .expect("touch");
    assert_eq!(gone, WriteResult::Gone);
    missing(&ctx, &from, "nothing was resurrected under the old key").await;
    assert_eq!(found(&ctx, &rotation.to).await.data, moved.data);
}

/// Within the grace window the old key forwards to the new one; after it, it is
/// unknown. The forward is not a record, and a delete removes it.
pub async fn rotate_forwards_for_the_grace_window<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    if grace_skipped(&ctx, "rotate_forwards_for_the_grace_window") {
        return;
    }
    let from = ctx.key();
    let record = ctx.record(json!({"user": "ada"}));
    ctx.driver
        .create(&from, &record, ctx.later(LONG))
        .await
        .expect("create");
    let rotation = rotation(&ctx, &from, &record, json!({}), SHORT);
    assert_eq!(
        ctx.driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    let lookup = ctx.driver.lookup(&from).await.expect("lookup");
    assert_eq!(
        lookup,
        Lookup::Forwarded {
            to: rotation.to.clone()
        },
        "the old key forwards within the grace window"
    );
    missing(&ctx, &from, "a forward is not a record").await;
    ctx.pass(PAST_SHORT).await;
    let lookup = ctx.driver.lookup(&from).await.expect("lookup");
    assert_eq!(
        lookup,
        Lookup::Loaded(LoadResult::Missing),
        "no forward after the window ({})",
        ctx.time_hint()
    );
    found(&ctx, &rotation.to).await;

    // A delete of the old key ends its forward at once.
    let from = ctx.key();
    ctx.driver
        .create(&from, &record, ctx.later(LONG))
        .await
        .expect("create");
    let rotation = super::driver::rotation(&ctx, &from, &record, json!({}), LONG);
    ctx.driver.rotate(&rotation).await.expect("rotate");
    ctx.driver.delete(&from).await.expect("delete");
    let lookup = ctx.driver.lookup(&from).await.expect("lookup");
    assert_eq!(lookup, Lookup::Loaded(LoadResult::Missing));
}

/// A rotation applies its changes to the record as stored, so a concurrent request's
/// change made after the renewing request loaded is kept; a rotation of a missing,
/// deleted or already rotated key is `Gone` and writes nothing.
pub async fn rotate_keeps_concurrent_changes_and_never_resurrects<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    if grace_skipped(&ctx, "rotate_keeps_concurrent_changes_and_never_resurrects") {
        return;
    }
    let from = ctx.key();
    let record = ctx.record(json!({"a": 1}));
    ctx.driver
        .create(&from, &record, ctx.later(LONG))
        .await
        .expect("create");
    // Another request of the session writes after the renewing one loaded.
    let other = patch(json!({"b": 2}), &[], false, ctx.now());
    ctx.driver
        .patch(&from, &other, ctx.later(LONG))
        .await
        .expect("patch");
    let rotation = rotation(&ctx, &from, &record, json!({"c": 3}), SHORT);
    assert_eq!(
        ctx.driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(
        found(&ctx, &rotation.to).await.data,
        map(json!({"a": 1, "b": 2, "c": 3})),
        "the concurrent change survives the renewal"
    );
    let again = super::driver::rotation(&ctx, &from, &record, json!({}), SHORT);
    assert_eq!(
        ctx.driver.rotate(&again).await.expect("rotate"),
        WriteResult::Gone,
        "a second renewal of the same id finds a forward, not a record"
    );
    missing(&ctx, &again.to, "a refused rotation creates nothing").await;
    let never = ctx.key();
    let lost = super::driver::rotation(&ctx, &never, &record, json!({}), SHORT);
    assert_eq!(ctx.driver.rotate(&lost).await.expect("rotate"), WriteResult::Gone);
    missing(&ctx, &lost.to, "a rotation of a missing key resurrects nothing").await;
}

const SESSION: &str = "web";

fn bound(ctx_ns: &Namespace, user: &str, label: Option<&str>) -> Value {
    let mut binding =
        UserBinding::new(ctx_ns, &SessionName::new(SESSION).expect("valid"), user).expect("valid user");
    if let Some(label) = label {
        binding.set_label(label);
    }
    binding.to_value()
}

impl<D: Driver> Ctx<D> {
    fn user(&self, user: &str) -> UserKey {
        UserKey::new(&self.namespace, &SessionName::new(SESSION).expect("valid"), user)
    }

    fn bound_record(&self, user: &str, label: Option<&str>) -> Record {
        let mut data = Map::new();
        data.insert("n".into(), json!(1));
        data.insert(USER_KEY.into(), bound(&self.namespace, user, label));
        Record::new(self.now(), data)
    }

    async fn listed(&self, user: &str) -> Vec<StoreKey> {
        let mut keys: Vec<StoreKey> = self
            .driver
            .user_sessions(&self.user(user))
            .await
            .expect("user_sessions must not fail")
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        keys
    }
}

async fn user_index_skipped<D: Driver>(ctx: &Ctx<D>, case: &str) -> bool {
    if ctx.user_index {
        return false;
    }
    let answer = ctx.driver.user_sessions(&ctx.user("ada")).await;
    assert!(
        matches!(answer, Err(DriverError::Unsupported(_))),
        "a driver without per-user indexes answers Unsupported, got {answer:?}"
    );
    eprintln!(
        "{case}: skipped, the factory says the driver keeps no per-user index (DriverFactory::user_index)"
    );
    true
}

fn sorted(mut keys: Vec<StoreKey>) -> Vec<StoreKey> {
    keys.sort();
    keys
}

/// A user's index lists exactly the live records bound to that user, with their data,
/// in the namespace of the key: created bound, bound later by a patch, moved by a
/// rotation; not after a delete, an expiry, or a rebinding to someone else.
pub async fn user_sessions_follow_every_write<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    if user_index_skipped(&ctx, "user_sessions_follow_every_write").await {
        return;
    }
    let (a1, a2, b1, unbound) = (ctx.key(), ctx.key(), ctx.key(), ctx.key());
    for (key, record) in [
        (&a1, ctx.bound_record("ada", Some("Firefox"))),
        (&a2, ctx.bound_record("ada", None)),
        (&b1, ctx.bound_record("bob", None)),
        (&unbound, ctx.record(json!({"n": 1}))),
    ] {
        ctx.driver
            .create(key, &record, ctx.later(LONG))
            .await
            .expect("create");
    }
    assert_eq!(ctx.listed("ada").await, sorted(vec![a1.clone(), a2.clone()]));
    assert_eq!(ctx.listed("bob").await, vec![b1.clone()]);
    assert!(ctx.listed("nobody").await.is_empty());
    let records = ctx.driver.user_sessions(&ctx.user("ada")).await.expect("list");
    let first = records.iter().find(|(k, _)| *k == a1).expect("listed");
    assert_eq!(
        first.1.data.get(USER_KEY),
        Some(&bound(&ctx.namespace, "ada", Some("Firefox")))
    );

    // Bound later by a patch (sign-in on an existing session).
    let mut set = Map::new();
    set.insert(USER_KEY.to_owned(), bound(&ctx.namespace, "ada", None));
    let bind = Patch {
        set: set.into_iter().collect(),
        last_seen: ctx.now(),
        ..Patch::default()
    };
    assert_eq!(
        ctx.driver
            .patch(&unbound, &bind, ctx.later(LONG))
            .await
            .expect("patch"),
        WriteResult::Applied
    );
    assert_eq!(
        ctx.listed("ada").await,
        sorted(vec![a1.clone(), a2.clone(), unbound.clone()])
    );

    // Deleted, and rebound to someone else.
    ctx.driver.delete(&a2).await.expect("delete");
    let mut set = Map::new();
    set.insert(USER_KEY.to_owned(), bound(&ctx.namespace, "bob", None));
    let rebind = Patch {
        set: set.into_iter().collect(),
        last_seen: ctx.now(),
        ..Patch::default()
    };
    ctx.driver
        .patch(&unbound, &rebind, ctx.later(LONG))
        .await
        .expect("patch");
    assert_eq!(ctx.listed("ada").await, vec![a1.clone()]);
    assert_eq!(ctx.listed("bob").await, sorted(vec![b1.clone(), unbound.clone()]));

    // Moved by a rotation (renewal).
    let record = ctx.bound_record("ada", Some("Firefox"));
    let rotation = rotation(&ctx, &a1, &record, json!({}), SHORT);
    assert_eq!(
        ctx.driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(ctx.listed("ada").await, vec![rotation.to.clone()]);

    // Expired.
    let short = ctx.key();
    ctx.driver
        .create(&short, &ctx.bound_record("carol", None), ctx.later(SHORT))
        .await
        .expect("create");
    assert_eq!(ctx.listed("carol").await, vec![short]);
    ctx.pass(PAST_SHORT).await;
    assert!(
        ctx.listed("carol").await.is_empty(),
        "an expired session is not listed ({})",
        ctx.time_hint()
    );
}

/// Indexes are per namespace and per named session: the same user id elsewhere is
/// another index, and a user id is never the index key itself.
pub async fn user_indexes_are_separate<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    if user_index_skipped(&ctx, "user_indexes_are_separate").await {
        return;
    }
    let elsewhere = unique_namespace();
    let here = ctx.key();
    let there = SessionId::generate(&mut rand::rng()).store_key(&elsewhere);
    ctx.driver
        .create(&here, &ctx.bound_record("ada", None), ctx.later(LONG))
        .await
        .expect("create");
    let mut data = Map::new();
    data.insert(USER_KEY.into(), bound(&elsewhere, "ada", None));
    ctx.driver
        .create(&there, &Record::new(ctx.now(), data), ctx.later(LONG))
        .await
        .expect("create");
    assert_eq!(ctx.listed("ada").await, vec![here]);
    let admin = UserKey::new(&ctx.namespace, &SessionName::new("admin").expect("valid"), "ada");
    assert!(
        ctx.driver.user_sessions(&admin).await.expect("list").is_empty(),
        "another named session's index"
    );
}

/// Deleting a namespace ends every session in it (with its forwards and user indexes)
/// and nothing in any other namespace.
pub async fn delete_namespace_ends_only_that_namespace<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let answer = ctx.driver.delete_namespace(&ctx.namespace).await;
    if !ctx.namespace_delete {
        assert!(
            matches!(answer, Err(DriverError::Unsupported(_))),
            "a driver without namespace deletion answers Unsupported, got {answer:?}"
        );
        eprintln!("delete_namespace_ends_only_that_namespace: skipped (DriverFactory::namespace_delete)");
        return;
    }
    answer.expect("deleting an empty namespace");
    let keys: Vec<StoreKey> = (0..5).map(|_| ctx.key()).collect();
    for key in &keys {
        ctx.driver
            .create(key, &ctx.bound_record("ada", None), ctx.later(LONG))
            .await
            .expect("create");
    }
    let elsewhere = unique_namespace();
    let kept = SessionId::generate(&mut rand::rng()).store_key(&elsewhere);
    ctx.driver
        .create(&kept, &ctx.record(json!({"n": 1})), ctx.later(LONG))
        .await
        .expect("create");
    let ended = ctx
        .driver
        .delete_namespace(&ctx.namespace)
        .await
        .expect("delete namespace");
    assert!(
        ended == 0 || ended >= 5,
        "ended {ended}: at least the 5 sessions (with their forwards and indexes), or 0 when the store cannot count"
    );
    for key in &keys {
        missing(&ctx, key, "every session of the namespace is gone").await;
    }
    if ctx.user_index {
        assert!(ctx.listed("ada").await.is_empty());
    }
    found(&ctx, &kept).await;
    ctx.driver.delete(&kept).await.expect("delete");
}
