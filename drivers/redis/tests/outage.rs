//! Redis going away mid-run: calls fail fast with `Unavailable` (503 through the
//! session layer), and the same driver works again once Redis is back, without being
//! rebuilt.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, DriverError, LoadResult, Patch, Record, Registry, Secret, StoreKey, SystemClock,
    WriteResult,
};
use sessionkit_redis::RedisDriver;
use sessionkit_testkit::servers::redis as common;

/// How long any call may take while Redis is down or frozen.
const PROMPT: Duration = Duration::from_secs(3);

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("outage").expect("namespace"))
}

fn record() -> Record {
    let mut record = Record::new(SystemClock.now(), serde_json::Map::new());
    record.data.insert("user".into(), json!("ada"));
    record
}

fn later() -> sessionkit::Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(600))
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

async fn every_call_fails_fast(driver: &RedisDriver, live: &StoreKey) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_then_restarted_redis_recovers_without_a_new_driver() {
    let Some(mut server) = common::own_server() else {
        return;
    };
    let driver = RedisDriver::builder(&server.url())
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let live = key();
    driver.create(&live, &record(), later()).await.expect("create");
    assert!(matches!(driver.load(&live).await, Ok(LoadResult::Found(_))));

    server.kill();
    every_call_fails_fast(&driver, &live).await;
    // Still down a little later (the reconnect attempts in between must not wedge it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    every_call_fails_fast(&driver, &live).await;
    // Let every reconnect attempt started by those calls give up before Redis returns,
    // so the driver holds only failed connections when it does.
    tokio::time::sleep(Duration::from_secs(1)).await;

    server.launch().expect("restart on the same port");
    // The very first call after the restart succeeds (the server kept no data).
    assert_eq!(
        driver.load(&live).await.expect("load after restart"),
        LoadResult::Missing
    );
    let fresh = key();
    driver
        .create(&fresh, &record(), later())
        .await
        .expect("create after restart");
    assert_eq!(found(&driver, &fresh).await.data["user"], "ada");
    assert_eq!(
        driver
            .touch(&fresh, SystemClock.now(), later())
            .await
            .expect("touch"),
        WriteResult::Applied
    );
}

async fn found(driver: &RedisDriver, key: &StoreKey) -> Record {
    match driver.load(key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_times_out_then_recovers() {
    let Some(server) = common::own_server() else {
        return;
    };
    let driver = RedisDriver::builder(&server.url())
        .response_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let live = key();
    driver.create(&live, &record(), later()).await.expect("create");

    server.freeze();
    fails_fast("load from a frozen server", driver.load(&live)).await;
    fails_fast(
        "touch of a frozen server",
        driver.touch(&live, SystemClock.now(), later()),
    )
    .await;
    server.thaw();

    // Data survived (the process only paused); the same driver reads it again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match driver.load(&live).await {
            Ok(LoadResult::Found(record)) => {
                assert_eq!(record.data["user"], "ada");
                break;
            }
            other => assert!(Instant::now() < deadline, "no recovery after thaw: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Through the session layer: an outage is a 503-class error, never a silent logout,
/// and requests work again afterwards with the same registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_get_503_during_the_outage_and_work_after() {
    let Some(mut server) = common::own_server() else {
        return;
    };
    let driver = RedisDriver::builder(&server.url())
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let driver = Arc::new(driver);
    let mut registry = Registry::new();
    registry.set_secret(Secret::new(*b"outage test secret of 32 bytes!!").expect("secret"));
    registry
        .register_shared_driver("redis", driver.clone())
        .expect("register");
    registry
        .apply_toml("[session.sessions.web]\ndriver = \"redis\"\n")
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

    server.kill();
    let started = Instant::now();
    let err = sessions
        .request([cookie.clone()])
        .session("web")
        .await
        .expect_err("Redis is down");
    assert!(err.is_store_unavailable() && err.status() == 503, "{err}");
    assert!(started.elapsed() < PROMPT);

    server.launch().expect("restart");
    // The session was in memory only, so it is gone: a fresh session, not an error.
    let request = sessions.request([cookie]);
    let session = request.session("web").await.expect("works again");
    assert!(session.is_new().expect("ready"));
    session.insert("user", "bob").expect("insert");
    request.save(200).await.expect("save after restart");
}
