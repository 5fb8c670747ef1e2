//! PostgreSQL going away mid-run: calls fail fast with `Unavailable` (503 through the
//! session layer), and the same driver works again once the database is back, without
//! being rebuilt. A call stuck behind a lock ends at the operation timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::timeouts::TimedOut;
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Patch, Record, Registry, Secret, StoreKey, SystemClock,
    Timestamp, WriteResult,
};
use sessionkit_postgres::PostgresDriver;
use sessionkit_postgres::tokio_postgres;
use sessionkit_testkit::postgres_factory as factory;
use sessionkit_testkit::servers::postgres as common;

/// How long any call may take while the database is down.
const PROMPT: Duration = Duration::from_secs(3);

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("outage").expect("namespace"))
}

fn record() -> Record {
    let mut record = Record::new(SystemClock.now(), serde_json::Map::new());
    record.data.insert("user".into(), json!("ada"));
    record
}

fn later() -> Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(600))
}

async fn driver(url: &str) -> PostgresDriver {
    let table = common::unique_table();
    let mut config: tokio_postgres::Config = url.parse().expect("url");
    // Lets a test find this driver's connections on a shared server.
    config.application_name(&table);
    let driver = PostgresDriver::builder_with_config(config)
        .table(table)
        .connect_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    driver.migrate().await.expect("migrate");
    driver
}

/// Awaits `call`, checks it failed with `Unavailable` promptly.
async fn fails_fast<T: std::fmt::Debug>(what: &str, call: impl Future<Output = Result<T, DriverError>>) {
    let started = Instant::now();
    let result = tokio::time::timeout(PROMPT * 2, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let took = started.elapsed();
    assert!(
        matches!(result, Err(DriverError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(took < PROMPT, "{what} took {took:?}");
}

async fn every_call_fails_fast(driver: &PostgresDriver, live: &StoreKey) {
    let patch = Patch {
        set: [("n".to_owned(), json!(1))].into_iter().collect(),
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    fails_fast("load", driver.load(live)).await;
    fails_fast("create", driver.create(&key(), &record(), later())).await;
    fails_fast("patch", driver.patch(live, &patch, later())).await;
    fails_fast("touch", driver.touch(live, SystemClock.now(), later())).await;
    fails_fast("delete", driver.delete(live)).await;
    fails_fast("delete_expired", driver.delete_expired(100)).await;
}

async fn found(driver: &PostgresDriver, key: &StoreKey) -> Record {
    match driver.load(key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_then_restarted_postgres_recovers_without_a_new_driver() {
    let Some(mut server) = common::own_server() else {
        return;
    };
    let driver = driver(&server.url()).await;
    let live = key();
    driver.create(&live, &record(), later()).await.expect("create");
    // Several pooled connections, all of which die with the server.
    let loads: Vec<_> = (0..4).map(|_| driver.load(&live)).collect();
    for load in loads {
        assert!(matches!(load.await, Ok(LoadResult::Found(_))));
    }

    server.stop();
    every_call_fails_fast(&driver, &live).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    every_call_fails_fast(&driver, &live).await;

    server.launch().expect("restart on the same port");
    // The very first call after the restart succeeds, and the data survived.
    assert_eq!(found(&driver, &live).await.data["user"], "ada");
    let patch = Patch {
        set: [("n".to_owned(), json!(2))].into_iter().collect(),
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&live, &patch, later()).await.expect("patch"),
        WriteResult::Applied
    );
    let fresh = key();
    driver
        .create(&fresh, &record(), later())
        .await
        .expect("create after restart");
    assert_eq!(found(&driver, &fresh).await.data["user"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stuck_behind_a_lock_times_out() {
    let factory = factory!();
    let driver = driver(&factory.url).await;
    let live = key();
    driver.create(&live, &record(), later()).await.expect("create");

    let mut blocker = common::raw(&factory.url).await;
    let tx = blocker.transaction().await.expect("begin");
    tx.batch_execute(&format!(
        "LOCK TABLE \"{}\" IN ACCESS EXCLUSIVE MODE",
        driver.table()
    ))
    .await
    .expect("lock");
    let started = Instant::now();
    match driver.load(&live).await {
        Err(DriverError::Unavailable(source)) => {
            assert!(
                source
                    .downcast_ref::<TimedOut>()
                    .is_some_and(|t| t.store() == "PostgreSQL"),
                "{source}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
    tx.rollback().await.expect("rollback");
    assert_eq!(found(&driver, &live).await.data["user"], "ada");
}

/// Through the session layer: an outage is a 503-class error, never a silent logout,
/// and the same session works again afterwards with the same registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_get_503_during_the_outage_and_work_after() {
    let Some(mut server) = common::own_server() else {
        return;
    };
    let driver = Arc::new(driver(&server.url()).await);
    let mut registry = Registry::new();
    registry.set_secret(Secret::new(*b"outage test secret of 32 bytes!!").expect("secret"));
    registry
        .register_shared_driver("postgres", driver.clone())
        .expect("register");
    registry
        .apply_toml("[session.sessions.web]\ndriver = \"postgres\"\n")
        .expect("config");
    let sessions = registry.build().expect("build");

    let request = sessions.request(Vec::<String>::new());
    request
        .session("web")
        .await
        .expect("new session")
        .insert("user", "ada")
        .expect("insert");
    let outcome = request.save(200).await.expect("save");
    let cookie = outcome
        .set_cookies()
        .next()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();

    server.stop();
    let started = Instant::now();
    let err = sessions
        .request([cookie.clone()])
        .session("web")
        .await
        .expect_err("PostgreSQL is down");
    assert!(err.is_store_unavailable() && err.status() == 503, "{err}");
    assert!(started.elapsed() < PROMPT);

    server.launch().expect("restart");
    let request = sessions.request([cookie]);
    let session = request.session("web").await.expect("works again");
    assert_eq!(
        session.get::<String>("user").expect("get").as_deref(),
        Some("ada"),
        "the session survived"
    );
    session.insert("theme", "dark").expect("insert");
    request.save(200).await.expect("save after restart");
}

/// Connections the server kills (an administrator, a restarted pooler) are replaced
/// without a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_by_the_server_are_replaced() {
    let factory = factory!();
    let driver = driver(&factory.url).await;
    let live = key();
    driver.create(&live, &record(), later()).await.expect("create");
    let admin = common::raw(&factory.url).await;
    for round in 0..5 {
        // Warm several pooled connections, then kill every one of them.
        let loads: Vec<_> = (0..4).map(|_| driver.load(&live)).collect();
        for load in loads {
            assert!(matches!(load.await, Ok(LoadResult::Found(_))));
        }
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&driver.table()],
            )
            .await
            .expect("terminate")
            .get(0);
        assert!(killed >= 1, "round {round}: nothing to kill");
        assert_eq!(found(&driver, &live).await.data["user"], "ada", "round {round}");
    }
}
