//! Renewal in Redis: what a rotation leaves under both keys (the moved hash, the
//! forward hash and their expiries), that a forward is never taken for a session, that
//! rotate and lookup cost one round trip each, and that a rotation is atomic against
//! concurrent patches.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Lookup, Patch, Record, Rotation, StoreKey, SystemClock,
    Timestamp, WriteResult,
};
use sessionkit_redis::codec::{Entry, FORWARD_FIELD, decode_entry_fields};
use sessionkit_redis::{RedisDriver, StoreError};
use sessionkit_testkit::redis_factory as factory;
use sessionkit_testkit::servers::redis as common;

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("renew").expect("namespace"))
}

fn record(data: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = data else {
        panic!("object")
    };
    Record::new(SystemClock.now(), map)
}

fn in_secs(secs: u64) -> Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(secs))
}

fn rotation(from: &StoreKey, record: &Record, patch: Patch, grace_until: Timestamp) -> Rotation {
    let mut moved = record.clone();
    patch.apply_to(&mut moved);
    Rotation {
        from: from.clone(),
        to: key(),
        record: moved,
        patch,
        expires_at: in_secs(600),
        grace_until,
    }
}

fn set(data: serde_json::Value) -> Patch {
    let serde_json::Value::Object(map) = data else {
        panic!("object")
    };
    Patch {
        set: map.into_iter().collect(),
        last_seen: SystemClock.now(),
        ..Patch::default()
    }
}

async fn pexpiretime(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PEXPIRETIME")
}

async fn found(driver: &RedisDriver, key: &StoreKey) -> Record {
    match driver.load(key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_moves_the_hash_and_leaves_a_forward_hash_for_the_grace_window() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let from = key();
    let rec = record(json!({"user": "ada", "cart": [1]}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    // Another request changes the session after the renewing one loaded it.
    let other = set(json!({"theme": "dark"}));
    driver.patch(&from, &other, in_secs(600)).await.expect("patch");

    let mut change = set(json!({"cart": [1, 2], "n": "x\u{0}y"}));
    change.remove = vec!["missing".to_owned()];
    let rotation = rotation(&from, &rec, change, in_secs(30));
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );

    // The new key holds the record as stored, with the rotation's patch.
    let moved = found(&driver, &rotation.to).await;
    assert_eq!(
        serde_json::Value::Object(moved.data),
        json!({"user": "ada", "cart": [1, 2], "theme": "dark", "n": "x\u{0}y"})
    );
    assert_eq!(moved.created_at, rec.created_at);
    assert_eq!(moved.last_seen, rotation.patch.last_seen);
    let to_key = driver.redis_key(&rotation.to);
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &to_key).await).expect("expiry"),
        rotation.expires_at.as_millis()
    );

    // The old key holds exactly one field: the new store key, never an id.
    let from_key = driver.redis_key(&from);
    let fields: BTreeMap<String, String> = raw.hgetall(&from_key).await.expect("HGETALL");
    assert_eq!(
        fields,
        [(FORWARD_FIELD.to_owned(), rotation.to.to_hex())]
            .into_iter()
            .collect()
    );
    assert_eq!(
        decode_entry_fields(fields).expect("a forward"),
        Entry::Forward(*rotation.to.digest())
    );
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &from_key).await).expect("expiry"),
        rotation.grace_until.as_millis()
    );

    // A forward is not a session.
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Forwarded {
            to: rotation.to.clone()
        }
    );
    assert_eq!(driver.load(&from).await.expect("load"), LoadResult::Missing);
    assert_eq!(
        driver
            .patch(&from, &set(json!({"late": 1})), in_secs(600))
            .await
            .expect("patch"),
        WriteResult::Gone
    );
    assert_eq!(
        driver
            .touch(&from, SystemClock.now(), in_secs(600))
            .await
            .expect("touch"),
        WriteResult::Gone
    );
    let again = rotation_from(&from, &rec);
    assert_eq!(driver.rotate(&again).await.expect("rotate"), WriteResult::Gone);
    let exists: bool = raw.exists(driver.redis_key(&again.to)).await.expect("EXISTS");
    assert!(!exists, "a refused rotation writes nothing");
    // Nothing was written into the forward, nor its expiry moved.
    let after: BTreeMap<String, String> = raw.hgetall(&from_key).await.expect("HGETALL");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &from_key).await).expect("expiry"),
        rotation.grace_until.as_millis()
    );

    // A delete removes the forward.
    driver.delete(&from).await.expect("delete");
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Loaded(LoadResult::Missing)
    );
}

fn rotation_from(from: &StoreKey, rec: &Record) -> Rotation {
    rotation(from, rec, set(json!({})), in_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_window_already_over_leaves_nothing_under_the_old_key() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let from = key();
    let rec = record(json!({"a": 1}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let rotation = rotation(&from, &rec, set(json!({})), Timestamp::from_millis(1));
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    let exists: bool = raw.exists(driver.redis_key(&from)).await.expect("EXISTS");
    assert!(!exists);
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Loaded(LoadResult::Missing)
    );
    assert_eq!(found(&driver, &rotation.to).await.data, rec.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_new_key_is_a_duplicate_and_nothing_moves() {
    let factory = factory!();
    let driver = factory.driver().await;
    let from = key();
    let rec = record(json!({"a": 1}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let rotation = rotation(&from, &rec, set(json!({"b": 2})), in_secs(30));
    let other = record(json!({"someone": "else"}));
    driver
        .create(&rotation.to, &other, in_secs(600))
        .await
        .expect("create");
    assert!(matches!(
        driver.rotate(&rotation).await,
        Err(DriverError::Duplicate)
    ));
    assert_eq!(found(&driver, &from).await, rec);
    assert_eq!(found(&driver, &rotation.to).await, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_across_namespaces_is_refused() {
    let factory = factory!();
    let driver = factory.driver().await;
    let from = key();
    let rec = record(json!({"a": 1}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let mut rotation = rotation(&from, &rec, set(json!({})), in_secs(30));
    rotation.to = SessionId::generate(&mut rand::rng()).store_key(&Namespace::shared());
    match driver.rotate(&rotation).await {
        Err(DriverError::Backend(source)) => assert!(matches!(
            source.downcast_ref::<StoreError>(),
            Some(StoreError::CrossNamespaceRotation)
        )),
        other => panic!("{other:?}"),
    }
    assert_eq!(found(&driver, &from).await, rec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_that_do_not_decode_are_corrupt_and_never_overwritten() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let hex = key().to_hex();
    let cases: [&[(&str, &str)]; 4] = [
        &[("fwd", "not hex")],
        &[("fwd", &hex[..62])],
        &[("fwd", &hex.to_uppercase())],
        &[("fwd", &hex), ("seen", "1")],
    ];
    for fields in cases {
        let key = key();
        let redis_key = driver.redis_key(&key);
        let () = raw.hset_multiple(&redis_key, fields).await.expect("HSET");
        assert_eq!(
            driver.load(&key).await.expect("load"),
            LoadResult::Corrupt,
            "{fields:?}"
        );
        assert_eq!(
            driver.lookup(&key).await.expect("lookup"),
            Lookup::Loaded(LoadResult::Corrupt),
            "{fields:?}"
        );
        assert_eq!(
            driver
                .touch(&key, SystemClock.now(), in_secs(60))
                .await
                .expect("touch"),
            WriteResult::Gone
        );
        let rotation = rotation_from(&key, &record(json!({})));
        assert_eq!(driver.rotate(&rotation).await.expect("rotate"), WriteResult::Gone);
        let stored: BTreeMap<String, String> = raw.hgetall(&redis_key).await.expect("HGETALL");
        assert_eq!(stored.len(), fields.len(), "untouched: {stored:?}");
    }
}

/// Every pair of a rotation and a concurrent patch of the old key ends one of two
/// ways: the patch landed first and moved with the record, or it found the forward and
/// wrote nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_patch_moves_with_the_record_or_is_gone() {
    let factory = factory!();
    let driver = std::sync::Arc::new(factory.driver().await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let driver = driver.clone();
        tasks.push(tokio::spawn(async move {
            let from = key();
            let rec = record(json!({"a": 1}));
            driver.create(&from, &rec, in_secs(600)).await.expect("create");
            let rotation = rotation(&from, &rec, set(json!({"r": 1})), in_secs(30));
            let patching = {
                let (driver, from) = (driver.clone(), from.clone());
                tokio::spawn(async move {
                    driver
                        .patch(&from, &set(json!({"p": 1})), in_secs(600))
                        .await
                        .expect("patch")
                })
            };
            assert_eq!(
                driver.rotate(&rotation).await.expect("rotate"),
                WriteResult::Applied
            );
            let patched = patching.await.expect("task");
            let moved = found(&driver, &rotation.to).await;
            assert_eq!(
                moved.data.contains_key("p"),
                patched == WriteResult::Applied,
                "{patched:?} {moved:?}"
            );
            assert_eq!(driver.load(&from).await.expect("load"), LoadResult::Missing);
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

/// Reads `INFO commandstats` as command name -> calls.
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .expect("INFO");
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_is_one_round_trip_and_a_lookup_of_a_forward_too() {
    // Statistics are server-wide: use a server no other test talks to.
    let Some(server) = common::own_server() else {
        return;
    };
    let driver = RedisDriver::connect(&server.url()).await.expect("connect");
    let mut raw = redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw");
    let from = key();
    let rec = record(json!({"a": 1}));
    // Warm up: the first script call also loads the script.
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let big = Patch {
        set: (0..300).map(|i| (format!("k{i}"), json!(i))).collect(),
        remove: (0..300).map(|i| format!("gone{i}")).collect(),
        clear: false,
        last_seen: SystemClock.now(),
    };
    let rotation = rotation(&from, &rec, big, in_secs(30));

    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .expect("RESETSTAT");
    let before = command_calls(&mut raw).await;
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Forwarded {
            to: rotation.to.clone()
        }
    );
    let after = command_calls(&mut raw).await;
    let client_commands: BTreeMap<&str, u64> = ["evalsha", "eval", "script|load", "hgetall"]
        .into_iter()
        .map(|name| {
            let calls = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
            (name, calls)
        })
        .collect();
    assert_eq!(
        client_commands,
        [("eval", 0), ("evalsha", 1), ("hgetall", 1), ("script|load", 0)]
            .into_iter()
            .collect(),
        "rotate is one EVALSHA, a lookup one HGETALL: {after:?}"
    );
    assert_eq!(found(&driver, &rotation.to).await.data.len(), 301);
}
