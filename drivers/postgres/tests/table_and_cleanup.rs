//! The table `migrate` creates, what a row holds, how NUL is escaped, numbers, rows of
//! the previous version, corrupt rows,
//! and the cleanup of expired rows (in batches, skipping locked rows, stoppable).

use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Patch, Record, StoreKey, SystemClock, Timestamp, WriteResult,
};
use sessionkit_postgres::{CleanupConfig, DEFAULT_TABLE, PostgresDriver, SetupError, migration_sql};

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
        ("namespace", "text", "NO"),
        ("store_key", "bytea", "NO"),
        ("data", "jsonb", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
        ("last_seen", "timestamp with time zone", "NO"),
        ("expires_at", "timestamp with time zone", "NO"),
        ("forward_to", "bytea", "YES"),
    ];
    assert_eq!(
        columns,
        expected
            .iter()
            .map(|(n, t, nullable)| ((*n).to_owned(), (*t).to_owned(), (*nullable).to_owned()))
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

async fn stored_text(client: &tokio_postgres::Client, table: &str, key: &StoreKey) -> String {
    client
        .query_one(
            &format!("SELECT data::text FROM \"{table}\" WHERE store_key = $1"),
            &[&&key.digest()[..]],
        )
        .await
        .expect("the row")
        .get(0)
}

/// U+10FFFD, the escape marker.
const M: char = '\u{10FFFD}';

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_round_trips_escaped_and_ordinary_strings_are_stored_as_they_are() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let key = key();
    let rec = record(json!({
        "plain": "x",
        "a": "x\u{0}y",
        "a\u{0}": [{"b": "\u{0}"}],
        "marker": format!("{M}starts"),
        "inside": format!("in{M}side"),
    }));
    driver.create(&key, &rec, later()).await.expect("create");
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(got.data, rec.data),
        other => panic!("{other:?}"),
    }
    // Ordinary strings stay queryable; only the exotic ones change form.
    let row = raw
        .query_one(
            &format!(
                "SELECT data->>'plain', data->>'inside', data->>'a', data->>'marker' FROM \"{}\" \
                 WHERE store_key = $1",
                driver.table()
            ),
            &[&&key.digest()[..]],
        )
        .await
        .expect("the row");
    assert_eq!(row.get::<_, String>(0), "x");
    assert_eq!(row.get::<_, String>(1), format!("in{M}side"));
    assert_eq!(row.get::<_, String>(2), format!("{M}x{M}0y"));
    assert_eq!(row.get::<_, String>(3), format!("{M}{M}{M}starts"));

    // A patch sets and removes keys holding NUL, by their stored form.
    let patch = Patch {
        set: [("b\u{0}".to_owned(), json!("\u{0}\u{0}"))].into_iter().collect(),
        remove: vec!["a\u{0}".to_owned(), "marker".to_owned()],
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&key, &patch, later()).await.expect("patch"),
        WriteResult::Applied
    );
    let mut expected = rec.clone();
    patch.apply_to(&mut expected);
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(got.data, expected.data),
        other => panic!("{other:?}"),
    }
    let text = stored_text(&raw, driver.table(), &key).await;
    assert!(text.contains(&format!("\"{M}b{M}0\": \"{M}{M}0{M}0\"")), "{text}");
    assert!(
        !text.contains(&format!("{M}a{M}0")) && !text.contains("marker"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_without_escapes_load_as_they_are() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let insert = |key: &StoreKey, data: String| {
        let (raw, table) = (&raw, driver.table().to_owned());
        let (namespace, digest) = (key.namespace().as_str().to_owned(), key.digest().to_vec());
        async move {
            raw.execute(
                &format!(
                    "INSERT INTO \"{table}\" VALUES ($1, $2, $3::text::jsonb, now(), now(), now() + interval '1 hour')"
                ),
                &[&namespace, &digest, &data],
            )
            .await
            .expect("insert");
        }
    };
    // As the previous driver version wrote them: no marker at the start of a string.
    let legacy =
        json!({"user": "ada", "in": format!("x{M}"), "n": [1, 2.5, 1e300, -0.0], "": {"k": "\u{1}"}});
    let key = key();
    insert(&key, legacy.to_string()).await;
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(serde_json::Value::Object(got.data), legacy),
        other => panic!("{other:?}"),
    }
    // The one ambiguity: a string starting with the marker reads as an escape, and a
    // row holding an invalid one is corrupt.
    let key = self::key();
    insert(&key, json!({"k": format!("{M}{M}{M}x")}).to_string()).await;
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => assert_eq!(got.data["k"], format!("{M}x")),
        other => panic!("{other:?}"),
    }
    for bad in [
        json!({"k": format!("{M}x")}),
        json!({format!("{M}"): 1}),
        json!({"k": [format!("{M}{M}0{M}")]}),
    ] {
        let key = self::key();
        insert(&key, bad.to_string()).await;
        assert_eq!(
            driver.load(&key).await.expect("load"),
            LoadResult::Corrupt,
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_come_back_as_the_same_json_values() {
    let factory = factory!();
    let driver = factory.driver().await;
    let raw = common::raw(&factory.url).await;
    let key = key();
    let numbers = json!([
        u64::MAX,
        i64::MIN,
        0,
        -1,
        1.797_693_134_862_315_7e308,
        5e-324,
        -0.0,
        0.1,
        1e18,
        1.5e17,
        -1e19,
        1e-7,
        1.0,
        123_456_789.123_456_79
    ]);
    let rec = record(json!({"n": numbers}));
    driver.create(&key, &rec, later()).await.expect("create");
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => {
            assert_eq!(got.data, rec.data);
            // Floats stay floats, integers integers.
            let got = got.data["n"].as_array().expect("array").clone();
            for (got, sent) in got.iter().zip(numbers.as_array().expect("array")) {
                assert_eq!(got.is_f64(), sent.is_f64(), "{sent}");
            }
        }
        other => panic!("{other:?}"),
    }
    // And they are `numeric` in the database.
    let sum: String = raw
        .query_one(
            &format!(
                "SELECT (data->'n'->>8)::numeric::text FROM \"{}\" WHERE store_key = $1",
                driver.table()
            ),
            &[&&key.digest()[..]],
        )
        .await
        .expect("the row")
        .get(0);
    assert_eq!(sum, "1000000000000000000.0");
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
