//! Renewal in PostgreSQL: what a rotation leaves in the table (the moved row, the
//! forward row), that a forward is never taken for a session, that the migration adds
//! `forward_to` to a table of the previous version, that cleanup purges forwards, and
//! that a rotation is atomic against concurrent patches.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Lookup, Patch, Record, Rotation, StoreKey, SystemClock,
    Timestamp, WriteResult,
};
use sessionkit_postgres::{PostgresDriver, StoreError, tokio_postgres};
use sessionkit_testkit::postgres_factory as factory;
use sessionkit_testkit::servers::postgres as common;

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

async fn found(driver: &PostgresDriver, key: &StoreKey) -> Record {
    match driver.load(key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    }
}

/// The stored row of `key`: `data` as text, `forward_to`, `expires_at` in milliseconds.
async fn row(
    raw: &tokio_postgres::Client,
    table: &str,
    key: &StoreKey,
) -> Option<(String, Option<Vec<u8>>, u64)> {
    raw.query_opt(
        &format!(
            "SELECT data::text, forward_to, (extract(epoch FROM expires_at) * 1000)::bigint \
             FROM \"{table}\" WHERE namespace = $1 AND store_key = $2"
        ),
        &[&key.namespace().as_str(), &&key.digest()[..]],
    )
    .await
    .expect("select")
    .map(|row| {
        let millis: i64 = row.get(2);
        (row.get(0), row.get(1), u64::try_from(millis).expect("after 1970"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_moves_the_row_and_leaves_a_forward_row_for_the_grace_window() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let table = driver.table().to_owned();
    let from = key();
    let rec = record(json!({"user": "ada", "gone\u{0}": 1, "cart": [1]}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    // Another request changes the session after the renewing one loaded it.
    driver
        .patch(&from, &set(json!({"theme": "dark"})), in_secs(600))
        .await
        .expect("patch");

    // Keys with NUL are set and removed by their stored form, as a patch does.
    let mut change = set(json!({"cart": [1, 2], "n\u{0}": "x\u{0}y"}));
    change.remove = vec!["gone\u{0}".to_owned()];
    let rotation = rotation(&from, &rec, change, in_secs(30));
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );

    let moved = found(&driver, &rotation.to).await;
    assert_eq!(
        serde_json::Value::Object(moved.data),
        json!({"user": "ada", "cart": [1, 2], "theme": "dark", "n\u{0}": "x\u{0}y"})
    );
    assert_eq!(moved.created_at, rec.created_at);
    assert_eq!(moved.last_seen, rotation.patch.last_seen);
    let (_, forward, expires) = row(&raw, &table, &rotation.to).await.expect("moved row");
    assert_eq!(forward, None);
    assert_eq!(expires, rotation.expires_at.as_millis());

    // The old row is a forward: the new store key's digest, no data, the grace window.
    let (data, forward, expires) = row(&raw, &table, &from).await.expect("forward row");
    assert_eq!(data, "[]");
    assert_eq!(forward, Some(rotation.to.digest().to_vec()));
    assert_eq!(expires, rotation.grace_until.as_millis());

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
    assert_eq!(
        row(&raw, &table, &again.to).await,
        None,
        "a refused rotation writes nothing"
    );
    assert_eq!(
        row(&raw, &table, &from).await,
        Some((
            "[]".to_owned(),
            Some(rotation.to.digest().to_vec()),
            rotation.grace_until.as_millis()
        )),
        "the forward is untouched"
    );

    // A delete removes the forward.
    driver.delete(&from).await.expect("delete");
    assert_eq!(row(&raw, &table, &from).await, None);
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Loaded(LoadResult::Missing)
    );
}

fn rotation_from(from: &StoreKey, rec: &Record) -> Rotation {
    rotation(from, rec, set(json!({})), in_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_window_already_over_deletes_the_old_row() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let from = key();
    let rec = record(json!({"a": 1}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let rotation = rotation(&from, &rec, set(json!({})), Timestamp::from_millis(1));
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(row(&raw, driver.table(), &from).await, None);
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

    // An expired row under the new key is replaced, as by a create.
    let from = key();
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let rotation = rotation_from(&from, &rec);
    driver
        .create(&rotation.to, &other, Timestamp::from_millis(1))
        .await
        .expect("create expired");
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(found(&driver, &rotation.to).await.data, rec.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_across_namespaces_is_refused() {
    let factory = factory!();
    let driver = factory.driver().await;
    let from = key();
    let rec = record(json!({"a": 1}));
    driver.create(&from, &rec, in_secs(600)).await.expect("create");
    let mut rotation = rotation_from(&from, &rec);
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
async fn a_forward_that_does_not_decode_is_corrupt() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let key = key();
    raw.execute(
        &format!(
            "INSERT INTO \"{}\" VALUES ($1, $2, '[]', now(), now(), now() + interval '1 hour', '\\x0102')",
            driver.table()
        ),
        &[&key.namespace().as_str(), &&key.digest()[..]],
    )
    .await
    .expect("insert");
    assert_eq!(driver.load(&key).await.expect("load"), LoadResult::Corrupt);
    assert_eq!(
        driver.lookup(&key).await.expect("lookup"),
        Lookup::Loaded(LoadResult::Corrupt)
    );
    assert_eq!(
        driver
            .touch(&key, SystemClock.now(), in_secs(60))
            .await
            .expect("touch"),
        WriteResult::Gone
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_forwards_whose_grace_window_ended() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let table = driver.table().to_owned();
    let rec = record(json!({"a": 1}));
    let (ended, open) = (key(), key());
    for from in [&ended, &open] {
        driver.create(from, &rec, in_secs(600)).await.expect("create");
    }
    let short = rotation(
        &ended,
        &rec,
        set(json!({})),
        SystemClock.now().saturating_add(Duration::from_millis(200)),
    );
    let long = rotation_from(&open, &rec);
    for rotation in [&short, &long] {
        assert_eq!(
            driver.rotate(rotation).await.expect("rotate"),
            WriteResult::Applied
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        driver.lookup(&ended).await.expect("lookup"),
        Lookup::Loaded(LoadResult::Missing),
        "no forward after its window, even before cleanup"
    );
    assert_eq!(driver.delete_expired(100).await.expect("cleanup"), 1);
    assert_eq!(row(&raw, &table, &ended).await, None);
    assert!(row(&raw, &table, &open).await.is_some());
    assert!(matches!(
        driver.lookup(&open).await.expect("lookup"),
        Lookup::Forwarded { .. }
    ));
}

/// A table made by the previous version's migration (no `forward_to`) keeps its rows
/// through `migrate`, and then supports renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_adds_forward_to_to_a_table_of_the_previous_version() {
    let factory = factory!();
    let table = common::unique_table();
    let raw = common::raw(&factory.url).await;
    raw.batch_execute(&format!(
        "CREATE TABLE \"{table}\" (
    namespace  text        NOT NULL,
    store_key  bytea       NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, store_key)
);
CREATE INDEX \"{table}_expires_at_idx\" ON \"{table}\" (expires_at);"
    ))
    .await
    .expect("the previous version's table");
    let from = key();
    raw.execute(
        &format!(
            "INSERT INTO \"{table}\" VALUES ($1, $2, '{{\"user\": \"ada\"}}', now(), now(), now() + interval '1 hour')"
        ),
        &[&from.namespace().as_str(), &&from.digest()[..]],
    )
    .await
    .expect("a session of the previous version");

    let driver = PostgresDriver::builder(&factory.url)
        .table(&table)
        .pool_size(2)
        .connect()
        .await
        .expect("connect");
    driver.migrate().await.expect("migrate");
    driver.migrate().await.expect("migrate again");
    let rec = found(&driver, &from).await;
    assert_eq!(rec.data["user"], "ada");
    let rotation = rotation_from(&from, &rec);
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(found(&driver, &rotation.to).await.data, rec.data);
    assert_eq!(
        driver.lookup(&from).await.expect("lookup"),
        Lookup::Forwarded { to: rotation.to }
    );
}

/// Every pair of a rotation and a concurrent patch of the old key ends one of two
/// ways: the patch landed first and moved with the record, or it found the forward and
/// wrote nothing. Likewise two concurrent rotations of one key: exactly one applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_and_rotations_are_atomic() {
    let factory = factory!();
    let driver = Arc::new(factory.driver().await);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let driver = driver.clone();
        tasks.push(tokio::spawn(async move {
            let from = key();
            let rec = record(json!({"a": 1}));
            driver.create(&from, &rec, in_secs(600)).await.expect("create");
            let first = rotation(&from, &rec, set(json!({"r": 1})), in_secs(30));
            let second = rotation(&from, &rec, set(json!({"r": 2})), in_secs(30));
            let patching = {
                let (driver, from) = (driver.clone(), from.clone());
                tokio::spawn(async move {
                    driver
                        .patch(&from, &set(json!({"p": 1})), in_secs(600))
                        .await
                        .expect("patch")
                })
            };
            let racing = {
                let (driver, second) = (driver.clone(), second.clone());
                tokio::spawn(async move { driver.rotate(&second).await.expect("rotate") })
            };
            let one = driver.rotate(&first).await.expect("rotate");
            let two = racing.await.expect("task");
            let patched = patching.await.expect("task");
            let (winner, loser) = match (one, two) {
                (WriteResult::Applied, WriteResult::Gone) => (&first, &second),
                (WriteResult::Gone, WriteResult::Applied) => (&second, &first),
                other => panic!("exactly one rotation applies: {other:?}"),
            };
            let moved = found(&driver, &winner.to).await;
            assert_eq!(
                moved.data.contains_key("p"),
                patched == WriteResult::Applied,
                "{patched:?} {moved:?}"
            );
            assert_eq!(driver.load(&loser.to).await.expect("load"), LoadResult::Missing);
            assert_eq!(driver.load(&from).await.expect("load"), LoadResult::Missing);
            assert_eq!(
                driver.lookup(&from).await.expect("lookup"),
                Lookup::Forwarded {
                    to: winner.to.clone()
                }
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}
