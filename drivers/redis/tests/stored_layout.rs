//! What lands in Redis: one hash per session under `{prefix}{namespace}:{hex}`, the
//! documented fields, the expiry set in the same call, one round trip per load and per
//! save, and foreign keys under our names treated as corrupt, never as errors.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{Clock, Driver, DriverError, LoadResult, Patch, Record, StoreKey, SystemClock, WriteResult};
use sessionkit_redis::RedisDriver;
use sessionkit_redis::codec::{decode_fields, encode_fields};
use sessionkit_testkit::redis_factory as factory;
use sessionkit_testkit::servers::redis as common;

fn key(namespace: &str) -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new(namespace).expect("namespace"))
}

fn record(data: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = data else {
        panic!("object")
    };
    Record::new(SystemClock.now(), map)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_one_hash_with_the_documented_fields_and_expiry() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let key = key("layout");
    let redis_key = driver.redis_key(&key);
    assert_eq!(redis_key, format!("{}layout:{}", driver.prefix(), key.to_hex()));
    assert!(driver.prefix().starts_with("sessionkit-test:"));

    let rec = record(json!({"user": "ada", "cart": [1, 2]}));
    let expires = SystemClock.now().saturating_add(Duration::from_secs(600));
    driver.create(&key, &rec, expires).await.expect("create");

    let kind: String = redis::cmd("TYPE")
        .arg(&redis_key)
        .query_async(&mut raw)
        .await
        .expect("TYPE");
    assert_eq!(kind, "hash");
    let fields: BTreeMap<String, String> = raw.hgetall(&redis_key).await.expect("HGETALL");
    let expected: BTreeMap<String, String> = [
        ("v", "1".to_owned()),
        ("created", rec.created_at.as_millis().to_string()),
        ("seen", rec.last_seen.as_millis().to_string()),
        ("d:user", "\"ada\"".to_owned()),
        ("d:cart", "[1,2]".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(fields, expected);
    let expire_at: i64 = redis::cmd("PEXPIRETIME")
        .arg(&redis_key)
        .query_async(&mut raw)
        .await
        .expect("PEXPIRETIME");
    assert_eq!(
        u64::try_from(expire_at).expect("has an expiry"),
        expires.as_millis()
    );

    // The codec's view matches what the driver wrote.
    let stored: Vec<(Vec<u8>, Vec<u8>)> = raw.hgetall(&redis_key).await.expect("HGETALL");
    assert_eq!(decode_fields(stored).expect("decodes"), rec);
    assert_eq!(encode_fields(&rec).len(), 5);

    // A patch moves the expiry and changes only the touched fields.
    let later = expires.saturating_add(Duration::from_secs(60));
    let patch = Patch {
        set: [("theme".to_owned(), json!("dark"))].into_iter().collect(),
        remove: vec!["cart".to_owned()],
        last_seen: rec.last_seen.saturating_add(Duration::from_secs(1)),
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&key, &patch, later).await.expect("patch"),
        WriteResult::Applied
    );
    let names: Vec<String> = raw.hkeys(&redis_key).await.expect("HKEYS");
    let mut names = names;
    names.sort();
    assert_eq!(names, ["created", "d:theme", "d:user", "seen", "v"]);
    let expire_at: i64 = redis::cmd("PEXPIRETIME")
        .arg(&redis_key)
        .query_async(&mut raw)
        .await
        .expect("PEXPIRETIME");
    assert_eq!(
        u64::try_from(expire_at).expect("has an expiry"),
        later.as_millis()
    );

    // A patch that clears keeps the metadata.
    let clear = Patch {
        clear: true,
        last_seen: patch.last_seen,
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&key, &clear, later).await.expect("clear"),
        WriteResult::Applied
    );
    let mut names: Vec<String> = raw.hkeys(&redis_key).await.expect("HKEYS");
    names.sort();
    assert_eq!(names, ["created", "seen", "v"]);
    match driver.load(&key).await.expect("load") {
        LoadResult::Found(got) => {
            assert!(got.data.is_empty());
            assert_eq!(got.created_at, rec.created_at);
        }
        other => panic!("{other:?}"),
    }
    driver.delete(&key).await.expect("delete");
    let exists: bool = raw.exists(&redis_key).await.expect("EXISTS");
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_is_corrupt_and_never_overwritten() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let key = key("foreign");
    let redis_key = driver.redis_key(&key);
    let () = raw.set(&redis_key, "someone else's string").await.expect("SET");
    let later = SystemClock.now().saturating_add(Duration::from_secs(60));

    assert_eq!(driver.load(&key).await.expect("load"), LoadResult::Corrupt);
    let patch = Patch {
        set: [("a".to_owned(), json!(1))].into_iter().collect(),
        ..Patch::default()
    };
    assert_eq!(
        driver.patch(&key, &patch, later).await.expect("patch"),
        WriteResult::Gone
    );
    assert_eq!(
        driver.touch(&key, SystemClock.now(), later).await.expect("touch"),
        WriteResult::Gone
    );
    assert!(matches!(
        driver.create(&key, &record(json!({})), later).await,
        Err(DriverError::Duplicate)
    ));
    let value: String = raw.get(&redis_key).await.expect("GET");
    assert_eq!(value, "someone else's string");
    driver.delete(&key).await.expect("delete");

    // A hash with a field outside the layout is corrupt too.
    let () = raw
        .hset_multiple(
            &redis_key,
            &[("v", "1"), ("created", "1"), ("seen", "1"), ("extra", "x")],
        )
        .await
        .expect("HSET");
    assert_eq!(driver.load(&key).await.expect("load"), LoadResult::Corrupt);
    driver.delete(&key).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_expiries_and_past_expiries_are_handled() {
    let factory = factory!();
    let driver = factory.driver().await;
    let key = key("expiry");
    driver
        .create(&key, &record(json!({"a": 1})), sessionkit::Timestamp::MAX)
        .await
        .expect("create far future");
    assert!(matches!(
        driver.load(&key).await.expect("load"),
        LoadResult::Found(_)
    ));
    let past = sessionkit::Timestamp::from_millis(1);
    assert_eq!(
        driver.touch(&key, SystemClock.now(), past).await.expect("touch"),
        WriteResult::Applied
    );
    assert_eq!(
        driver.load(&key).await.expect("load"),
        LoadResult::Missing,
        "expired by the touch"
    );
    driver
        .create(&key, &record(json!({"a": 2})), past)
        .await
        .expect("create already expired");
    assert_eq!(driver.load(&key).await.expect("load"), LoadResult::Missing);
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
async fn one_round_trip_to_load_and_one_to_save_whatever_the_patch_size() {
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
    let key = key("trips");
    let later = SystemClock.now().saturating_add(Duration::from_secs(600));
    // Warm up: the first script call also loads the script.
    driver
        .create(&key, &record(json!({"a": 1})), later)
        .await
        .expect("create");

    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .expect("RESETSTAT");
    let before = command_calls(&mut raw).await;
    let big = Patch {
        set: (0..300).map(|i| (format!("k{i}"), json!(i))).collect(),
        remove: (0..300).map(|i| format!("gone{i}")).collect(),
        clear: false,
        last_seen: SystemClock.now(),
    };
    assert_eq!(
        driver.patch(&key, &big, later).await.expect("patch"),
        WriteResult::Applied
    );
    let record = match driver.load(&key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    };
    assert_eq!(record.data.len(), 301);
    assert_eq!(
        driver.touch(&key, SystemClock.now(), later).await.expect("touch"),
        WriteResult::Applied
    );
    let after = command_calls(&mut raw).await;

    let client_commands: BTreeMap<&str, u64> = ["evalsha", "eval", "script|load", "hgetall", "del"]
        .into_iter()
        .map(|name| {
            let calls = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
            (name, calls)
        })
        .collect();
    assert_eq!(
        client_commands,
        [
            ("del", 0),
            ("eval", 0),
            ("evalsha", 2),
            ("hgetall", 1),
            ("script|load", 0)
        ]
        .into_iter()
        .collect(),
        "patch and touch are one EVALSHA each, load one HGETALL: {after:?}"
    );
}

/// A client that lost the answer of a create or a renewal may send it again (the
/// cluster client does): the script recognises its own first run and answers "done"
/// again, while another create of the same key is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_create_or_rotate_is_recognised_and_applied_once() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let script = redis::Script::new(include_str!("../src/save.lua"));
    let (from, to) = (key("resend"), key("resend"));
    let (from_key, to_key) = (driver.redis_key(&from), driver.redis_key(&to));
    let later = SystemClock.now().saturating_add(Duration::from_secs(600));
    let ms = |t: sessionkit::Timestamp| t.as_millis().to_string();
    let create = |nonce: &str| {
        let mut call = script.prepare_invoke();
        call.key(&from_key)
            .arg("create")
            .arg(ms(later))
            .arg("1000")
            .arg("0")
            .arg("1000")
            .arg(nonce)
            .arg("d:n")
            .arg("1");
        call
    };
    assert_eq!(answer(&create("aa"), &mut raw).await, redis::Value::Int(1));
    assert_eq!(
        answer(&create("aa"), &mut raw).await,
        redis::Value::Int(1),
        "the same create again"
    );
    assert_eq!(
        answer(&create("bb"), &mut raw).await,
        redis::Value::Int(0),
        "another create: a duplicate"
    );
    assert_eq!(found(&driver, &from).await.data["n"], json!(1));

    let forward = sessionkit_redis::codec::forward_value(&to);
    let rotate = || {
        let mut call = script.prepare_invoke();
        call.key(&from_key)
            .key(&to_key)
            .arg("rotate")
            .arg(ms(later))
            .arg("2000")
            .arg("0")
            .arg(ms(later))
            .arg(forward.as_slice())
            .arg("0")
            .arg("0");
        call
    };
    assert_eq!(answer(&rotate(), &mut raw).await, redis::Value::Int(1));
    assert_eq!(
        answer(&rotate(), &mut raw).await,
        redis::Value::Int(1),
        "the same rotation again"
    );
    assert_eq!(found(&driver, &to).await.data["n"], json!(1));
    let _: () = raw.del(&to_key).await.expect("DEL");
}

async fn answer(
    call: &redis::ScriptInvocation<'_>,
    raw: &mut redis::aio::MultiplexedConnection,
) -> redis::Value {
    call.invoke_async(raw).await.expect("EVALSHA")
}

async fn found(driver: &RedisDriver, key: &StoreKey) -> Record {
    match driver.load(key).await.expect("load") {
        LoadResult::Found(record) => record,
        other => panic!("{other:?}"),
    }
}
