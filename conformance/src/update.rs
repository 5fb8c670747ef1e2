//! Atomic updates of one key: the driver's compare-and-set ([`Driver::update`]) and
//! `Session::update` through the session layer. The capability is optional: a driver
//! that answers [`DriverError::Unsupported`] skips these cases with a notice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sessionkit::{Driver, DriverError, Error, KeyUpdate, LoadResult, UpdateResult};

use crate::driver::{Ctx, DriverFactory, PAST_SHORT, SHORT};
use crate::session::{Harness, Jar, SessionBackend};

/// How many increments the concurrency case makes, and how many requests make them at
/// once.
pub const INCREMENTS: usize = 1_000;
/// See [`INCREMENTS`].
pub const IN_FLIGHT: usize = 8;

fn update(ctx: &Ctx<impl Driver>, key: &str, expected: Option<Value>, new: Option<Value>) -> KeyUpdate {
    KeyUpdate {
        key: key.to_owned(),
        expected,
        new,
        last_seen: ctx.now(),
    }
}

fn skipped(case: &str, result: &Result<UpdateResult, DriverError>) -> bool {
    let unsupported = matches!(result, Err(DriverError::Unsupported(_)));
    if unsupported {
        eprintln!("{case}: skipped, the driver has no atomic updates (Driver::update answers Unsupported)");
    }
    unsupported
}

/// A compare-and-set applies over the expected value only, reports the stored value on
/// a conflict, writes nothing then, and finds nothing to update in a missing, deleted
/// or expired session (creating nothing).
pub async fn update_is_compare_and_set<F: DriverFactory>(f: &F) {
    let ctx = Ctx::new(f).await;
    let key = ctx.key();
    let first = ctx
        .driver
        .update(&key, &update(&ctx, "n", None, Some(json!(1))), ctx.later(SHORT))
        .await;
    if skipped("update_is_compare_and_set", &first) {
        return;
    }
    assert_eq!(
        first.expect("update"),
        UpdateResult::Gone,
        "no record: nothing to update"
    );
    assert_eq!(
        ctx.driver.load(&key).await.expect("load"),
        LoadResult::Missing,
        "an update creates nothing"
    );

    let record = ctx.record(json!({"n": 1, "other": "kept"}));
    ctx.driver
        .create(&key, &record, ctx.later(SHORT))
        .await
        .expect("create");
    let stale = update(&ctx, "n", Some(json!(0)), Some(json!(5)));
    assert_eq!(
        ctx.driver
            .update(&key, &stale, ctx.later(SHORT))
            .await
            .expect("update"),
        UpdateResult::Conflict(Some(json!(1))),
        "a stale expectation conflicts and names the stored value"
    );
    let absent = update(&ctx, "missing", Some(json!(1)), Some(json!(5)));
    assert_eq!(
        ctx.driver
            .update(&key, &absent, ctx.later(SHORT))
            .await
            .expect("update"),
        UpdateResult::Conflict(None),
        "an expected value where there is none conflicts"
    );
    let float = ctx.key();
    ctx.driver
        .create(&float, &ctx.record(json!({"f": 1.5, "g": 2.0})), ctx.later(SHORT))
        .await
        .expect("create");
    let integer = update(&ctx, "g", Some(json!(2)), Some(json!(3)));
    assert_eq!(
        ctx.driver
            .update(&float, &integer, ctx.later(SHORT))
            .await
            .expect("update"),
        UpdateResult::Conflict(Some(json!(2.0))),
        "2 and 2.0 are different JSON values"
    );
    let later = ctx.later(Duration::from_secs(3_600));
    let good = update(&ctx, "n", Some(json!(1)), Some(json!({"count": 2})));
    assert_eq!(
        ctx.driver.update(&key, &good, later).await.expect("update"),
        UpdateResult::Applied
    );
    let LoadResult::Found(loaded) = ctx.driver.load(&key).await.expect("load") else {
        panic!("the record is still there");
    };
    assert_eq!(loaded.data["n"], json!({"count": 2}));
    assert_eq!(loaded.data["other"], json!("kept"), "other keys are untouched");
    assert_eq!(loaded.last_seen, good.last_seen, "last_seen moves as for a patch");
    let added = update(&ctx, "fresh", None, Some(json!([1, 2])));
    assert_eq!(
        ctx.driver.update(&key, &added, later).await.expect("update"),
        UpdateResult::Applied,
        "an absent key is set when absent was expected"
    );
    let removed = update(&ctx, "n", Some(json!({"count": 2})), None);
    assert_eq!(
        ctx.driver.update(&key, &removed, later).await.expect("update"),
        UpdateResult::Applied
    );
    let LoadResult::Found(loaded) = ctx.driver.load(&key).await.expect("load") else {
        panic!("the record is still there");
    };
    assert!(
        !loaded.data.contains_key("n"),
        "a `None` new value removes the key"
    );
    assert_eq!(loaded.data["fresh"], json!([1, 2]));

    // One wait for two checks: an update moves the expiry; an expired record is gone.
    let short = ctx.key();
    ctx.driver
        .create(&short, &ctx.record(json!({"n": 1})), ctx.later(SHORT))
        .await
        .expect("create");
    ctx.pass(PAST_SHORT).await;
    assert!(
        matches!(ctx.driver.load(&key).await.expect("load"), LoadResult::Found(_)),
        "an update sets the expiry it is given (if this fails only on a real-time store, check DriverFactory::time)"
    );

    ctx.driver.delete(&key).await.expect("delete");
    let after = update(&ctx, "fresh", Some(json!([1, 2])), Some(json!(0)));
    assert_eq!(
        ctx.driver.update(&key, &after, later).await.expect("update"),
        UpdateResult::Gone,
        "a deleted session is gone"
    );
    assert_eq!(ctx.driver.load(&key).await.expect("load"), LoadResult::Missing);

    let expired = update(&ctx, "n", Some(json!(1)), Some(json!(2)));
    assert_eq!(
        ctx.driver.update(&short, &expired, later).await.expect("update"),
        UpdateResult::Gone,
        "an expired session is gone, never revived"
    );
    assert_eq!(ctx.driver.load(&short).await.expect("load"), LoadResult::Missing);
}

/// [`INCREMENTS`] increments of one counter by [`IN_FLIGHT`] concurrent requests of
/// one session give exactly [`INCREMENTS`]: no update is lost. (A request whose update
/// lost the race every time answers [`Error::UpdateContended`], having written
/// nothing; it is sent again.) On cookie sessions an
/// update is a change of this request (checked), with nothing shared to race on.
pub async fn concurrent_updates_lose_nothing<B: SessionBackend>(b: &B) {
    let h = Arc::new(Harness::new(b).await);
    let mut jar = Jar::default();
    h.with_session(&mut jar, "web", |s| s.insert("n", &0).expect("insert"))
        .await;
    if !h.server_side() {
        let request = h.request(&jar);
        let session = request.session("web").await.expect("load");
        let new = session
            .update::<u64, _>("n", |n| Some(n.unwrap_or(0) + 1))
            .await
            .expect("a local update");
        assert_eq!(new, Some(1));
        h.save(&request, &mut jar, 200).await.expect("save");
        h.with_session(&mut jar, "web", |s| {
            assert_eq!(s.get::<u64>("n").expect("get"), Some(1));
        })
        .await;
        return;
    }
    let probe = h.request(&jar);
    let session = probe.session("web").await.expect("load");
    if let Err(Error::Store {
        source: DriverError::Unsupported(_),
        ..
    }) = session.update::<u64, _>("n", |n| n).await
    {
        eprintln!(
            "concurrent_updates_lose_nothing: skipped, the driver has no atomic updates (Driver::update answers Unsupported)"
        );
        return;
    }
    h.save(&probe, &mut jar.clone(), 200).await.expect("save");

    let mut workers = Vec::new();
    for worker in 0..IN_FLIGHT {
        let (h, jar) = (h.clone(), jar.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut n = worker;
            while n < INCREMENTS {
                let request = h.request(&jar);
                let session = request.session("web").await.expect("load");
                match session.update::<u64, _>("n", |n| Some(n.unwrap_or(0) + 1)).await {
                    Ok(new) => {
                        seen.push(new.expect("a value"));
                        n += IN_FLIGHT;
                    }
                    // Lost the race every time it tried (a 503): nothing was written,
                    // and the client tries again, as a browser's retry would.
                    Err(Error::UpdateContended { .. }) => {}
                    Err(err) => panic!("update: {err}"),
                }
                request.save(200).await.expect("save");
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    all.sort_unstable();
    let seen = all.len();
    all.dedup();
    assert_eq!(
        (seen, all.len(), all.last().copied()),
        (INCREMENTS, INCREMENTS, Some(INCREMENTS as u64)),
        "(updates, distinct values they stored, highest): every increment must store a value of its own"
    );
    h.with_session(&mut jar, "web", |s| {
        assert_eq!(s.get::<u64>("n").expect("get"), Some(INCREMENTS as u64));
    })
    .await;
}

/// An update by a request still holding the old id of a session that a concurrent
/// request just renewed follows the renewal's forward: it lands in the renewed session
/// (never in a resurrected old one), and the renewed session reads it.
pub async fn an_update_follows_a_renewal<B: SessionBackend>(b: &B) {
    let h = Harness::new(b).await;
    if !(h.server_side() && h.grace_window) {
        eprintln!("an_update_follows_a_renewal: skipped (no grace window for this backend)");
        return;
    }
    let mut jar = Jar::default();
    h.with_session(&mut jar, "api", |s| s.insert("n", &0).expect("insert"))
        .await;
    h.clock.advance(crate::session::RENEW_AFTER);
    // In flight with the old id, loaded before the renewal.
    let slow = h.request(&jar);
    let slow_session = slow.session("api").await.expect("load");
    let mut renewed = jar.clone();
    let out = h
        .with_session(&mut renewed, "api", |s| assert!(!s.is_new().expect("ready")))
        .await;
    assert_eq!(out.set_cookies().count(), 1, "the other request renewed the id");
    let probe = slow_session
        .update::<u64, _>("n", |n| Some(n.unwrap_or(0) + 1))
        .await;
    if let Err(Error::Store {
        source: DriverError::Unsupported(_),
        ..
    }) = probe
    {
        eprintln!("an_update_follows_a_renewal: skipped, the driver has no atomic updates");
        return;
    }
    assert_eq!(probe.expect("the update follows the forward"), Some(1));
    h.save(&slow, &mut jar.clone(), 200).await.expect("save");
    h.with_session(&mut renewed, "api", |s| {
        assert_eq!(
            s.get::<u64>("n").expect("get"),
            Some(1),
            "the renewed session has it"
        );
    })
    .await;
}
