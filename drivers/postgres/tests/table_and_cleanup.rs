//! The table `migrate` creates, what a row holds, the NUL limitation, corrupt rows,
//! and the cleanup of expired rows (in batches, skipping locked rows, stoppable).

use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Patch, Record, StoreKey, SystemClock, Timestamp, WriteResult,
};
use sessionkit_postgres::{
    CleanupConfig, DEFAULT_TABLE, PostgresDriver, SetupError, StoreError, migration_sql,
};

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("table").expect("namespace"))
}

fn record(data: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = data else {
        panic!("object")
    };
    Record::new(SystemClock.now(), map)
}

fn later() -> Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(600))
}

async fn count(client: &tokio_postgres::Client, table: &str, condition: &str) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{table}\" WHERE {condition}"),
            &[],
        )
        .await
        .expect("count")
        .get(0)
}

use sessionkit_postgres::tokio_postgres;
use sessionkit_testkit::postgres_factory as factory;
use sessionkit_testkit::servers::postgres as common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let factory = factory!();
    let table = common::unique_table();
    let mut drivers = Vec::new();
    for _ in 0..4 {
        drivers.push(
            PostgresDriver::builder(&factory.url)
                .table(&table)
                .pool_size(2)
                .connect()
                .await
                .expect("connect"),
        );
    }
    let runs: Vec<_> = drivers.iter().map(PostgresDriver::migrate).collect();
    for run in runs {
        run.await.expect("concurrent migrate");
    }
    drivers[0].migrate().await.expect("migrate again");

    let raw = common::raw(&factory.url).await;
    let columns: Vec<(String, String, String)> = raw
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
             WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .expect("columns")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let expected = [
        ("namespace", "text"),
        ("store_key", "bytea"),
        ("data", "jsonb"),
        ("created_at", "timestamp with time zone"),
        ("last_seen", "timestamp with time zone"),
        ("expires_at", "timestamp with time zone"),
    ];
    assert_eq!(
        columns,
        expected
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned(), "NO".to_owned()))
            .collect::<Vec<_>>()
    );
    let indexes: Vec<String> = raw
        .query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
            &[&table],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert!(
        indexes
            .iter()
            .any(|i| i.contains("(namespace, store_key)") && i.contains("UNIQUE"))
    );
    assert!(indexes.iter().any(|i| i.contains("(expires_at)")));
}

#[test]
fn the_readme_documents_the_migration() {
    let readme = include_str!("../README.md");
    let sql = migration_sql(DEFAULT_TABLE).expect("default table");
    assert!(
        readme.contains(sql.trim_end()),
        "README and migrate() differ:\n{sql}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_holds_the_store_key_and_the_data_as_jsonb() {
    let factory = factory!();
    let driver = factory.driver().await;
    let key = key();
    let mut rec = record(json!({"user": "ada", "n": [1, 2.5, null], "nested": {"a": {}}}));
    rec.last_seen = rec.created_at.saturating_add(Duration::from_millis(1_234));
    let expires = later();
    driver.create(&key, &rec, expires).await.expect("create");

    let raw = common::raw(&factory.url).await;
    let row = raw
        .query_one(
            &format!(
                "SELECT namespace, store_key, data::text, \
                 (extract(epoch FROM created_at) * 1000)::bigint, \
                 (extract(epoch FROM last_seen) * 1000)::bigint, \
                 (extract(epoch FROM expires_at) * 1000)::bigint FROM \"{}\"",
                driver.table()
            ),
            &[],
        )
        .await
        .expect("the one row");
    assert_eq!(row.get::<_, String>(0), "table");
    assert_eq!(row.get::<_, Vec<u8>>(1), key.digest().to_vec());
    let data: serde_json::Value = serde_json::from_str(&row.get::<_, String>(2)).expect("json");
    assert_eq!(data, serde_json::Value::Object(rec.data.clone()));
    let millis = |i: usize| u64::try_from(row.get::<_, i64>(i)).expect("after 1970");
    assert_eq!(millis(3), rec.created_at.as_millis());
    assert_eq!(millis(4), rec.last_seen.as_millis());
    assert_eq!(millis(5), expires.as_millis());
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(got, rec),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_a_typed_error_and_write_nothing() {
    let factory = factory!();
    let driver = factory.driver().await;
    let key = key();
    for data in [
        json!({"a": "x\u{0}y"}),
        json!({"a\u{0}": 1}),
        json!({"a": [{"b": "\u{0}"}]}),
    ] {
        let err = driver
            .create(&key, &record(data), later())
            .await
            .expect_err("NUL");
        let DriverError::Backend(source) = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(
                source.downcast_ref::<StoreError>(),
                Some(StoreError::NulCharacter)
            ),
            "{err:?}"
        );
        assert!(source.to_string().contains("NUL"), "{source}");
    }
    assert_eq!(driver.load(&key).await.expect("load"), LoadResult::Missing);

    let rec = record(json!({"a": 1}));
    driver.create(&key, &rec, later()).await.expect("create");
    let bad = Patch {
        set: [("b".to_owned(), json!("\u{0}"))].into_iter().collect(),
        remove: vec!["a".to_owned()],
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    assert!(matches!(
        driver.patch(&key, &bad, later()).await,
        Err(DriverError::Backend(_))
    ));
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(got.data, rec.data, "the failed patch changed nothing"),
        other => panic!("{other:?}"),
    }
    // Removing a key with NUL is a no-op, not an error: no stored key can hold one.
    let remove = Patch {
        remove: vec!["\u{0}".to_owned()],
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&key, &remove, later()).await.expect("patch"),
        WriteResult::Applied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_do_not_decode_are_corrupt_not_errors() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let cases = [
        ("'\"a string\"'::jsonb", "now()"),
        ("'42'::jsonb", "now()"),
        ("'{}'::jsonb", "'infinity'::timestamptz"),
        ("'{}'::jsonb", "'-infinity'::timestamptz"),
        ("'{}'::jsonb", "'1969-12-31 23:59:59+00'::timestamptz"),
    ];
    for (data, created) in cases {
        let key = key();
        raw.execute(
            &format!(
                "INSERT INTO \"{}\" VALUES ($1, $2, {data}, {created}, now(), now() + interval '1 hour')",
                driver.table()
            ),
            &[&key.namespace().as_str(), &&key.digest()[..]],
        )
        .await
        .expect("insert");
        assert_eq!(
            driver.load(&key).await.expect("load"),
            LoadResult::Corrupt,
            "{data} {created}"
        );
        driver.delete(&key).await.expect("delete");
    }
    // Far-future timestamps (beyond what sessionkit writes) still decode.
    let key = key();
    raw.execute(
        &format!(
            "INSERT INTO \"{}\" VALUES ($1, $2, '{{}}', '200000-01-01+00', now(), now() + interval '1 hour')",
            driver.table()
        ),
        &[&key.namespace().as_str(), &&key.digest()[..]],
    )
    .await
    .expect("insert");
    assert!(matches!(
        driver.load(&key).await.expect("load"),
        LoadResult::Found(_)
    ));
}

/// Inserts `n` rows that expired an hour ago.
async fn insert_expired(raw: &tokio_postgres::Client, table: &str, n: i64) {
    raw.execute(
        &format!(
            "INSERT INTO \"{table}\" SELECT 'table', sha256(('expired' || i || random())::bytea), '{{}}', \
             now() - interval '2 hours', now() - interval '2 hours', now() - interval '1 hour' \
             FROM generate_series(1, $1::bigint) AS i"
        ),
        &[&n],
    )
    .await
    .expect("insert expired rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_works_in_batches_and_spares_live_and_locked_rows() {
    let factory = factory!();
    let driver = factory.driver().await;
    let table = driver.table().to_owned();
    let mut raw = common::raw(&factory.url).await;
    let live = key();
    driver
        .create(&live, &record(json!({"a": 1})), later())
        .await
        .expect("create");
    insert_expired(&raw, &table, 2_500).await;
    // An expired row that is not returned even before cleanup.
    let stale = key();
    driver
        .create(
            &stale,
            &record(json!({})),
            SystemClock.now().saturating_add(Duration::from_millis(1)),
        )
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(driver.load(&stale).await.expect("load"), LoadResult::Missing);

    // Another session holds one expired row locked: cleanup skips it without waiting.
    let tx = raw.transaction().await.expect("begin");
    tx.execute(
        &format!("SELECT 1 FROM \"{table}\" WHERE namespace = $1 AND store_key = $2 FOR UPDATE"),
        &[&stale.namespace().as_str(), &&stale.digest()[..]],
    )
    .await
    .expect("lock a row");
    let started = Instant::now();
    let deleted = driver.delete_expired(300).await.expect("cleanup");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cleanup waited for a lock"
    );
    assert_eq!(deleted, 2_500);
    tx.rollback().await.expect("rollback");
    assert_eq!(
        count(&raw, &table, "expires_at <= now()").await,
        1,
        "the locked row is left"
    );
    assert_eq!(driver.delete_expired(300).await.expect("cleanup"), 1);
    assert_eq!(
        count(&raw, &table, "true").await,
        1,
        "only the live session is left"
    );
    assert!(matches!(
        driver.load(&live).await.expect("load"),
        LoadResult::Found(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_task_runs_until_stopped() {
    let factory = factory!();
    let driver = factory.driver().await;
    let table = driver.table().to_owned();
    let raw = common::raw(&factory.url).await;
    insert_expired(&raw, &table, 250).await;
    let cleanup = driver
        .start_cleanup(CleanupConfig {
            interval: Duration::from_millis(100),
            batch_size: 50,
        })
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&raw, &table, "true").await > 0 {
        assert!(
            Instant::now() < deadline,
            "the cleanup task did not delete the expired rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New expired rows are deleted by a later run.
    insert_expired(&raw, &table, 10).await;
    while count(&raw, &table, "true").await > 0 {
        assert!(Instant::now() < deadline, "the cleanup task stopped early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    cleanup.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    insert_expired(&raw, &table, 10).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        count(&raw, &table, "true").await,
        10,
        "a stopped task deletes nothing"
    );

    // Dropping the handle stops the task too.
    let dropped = driver
        .start_cleanup(CleanupConfig {
            interval: Duration::from_secs(3600),
            batch_size: 50,
        })
        .expect("start");
    drop(dropped);
    assert!(matches!(
        driver.start_cleanup(CleanupConfig {
            interval: Duration::ZERO,
            batch_size: 1
        }),
        Err(SetupError::Setting(_))
    ));
}

#[test]
fn the_cleanup_task_needs_a_runtime() {
    let Some(factory) = common::Factory::new() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let driver = runtime.block_on(factory.driver());
    assert!(matches!(
        driver.start_cleanup(CleanupConfig::default()),
        Err(SetupError::NoRuntime)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_closes_the_pool() {
    let factory = factory!();
    let driver = factory.driver().await;
    driver.close().await.expect("close");
    assert!(matches!(driver.load(&key()).await, Err(DriverError::Closed)));
    assert!(!format!("{driver:?}").contains("postgres://"));
}
