//! A user's sessions in Redis: the index set each write keeps (its key, members and
//! expiry), listing in one round trip that prunes dead members, a renewal racing a
//! rebinding, and no user id in any key.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::{Map, Value, json};
use sessionkit::core::{Namespace, SessionId, SessionName, USER_KEY, UserBinding};
use sessionkit::{
    Clock, Driver, Patch, Record, Rotation, StoreKey, SystemClock, Timestamp, UserKey, WriteResult,
};
use sessionkit_redis::RedisDriver;
use sessionkit_testkit::redis_factory as factory;
use sessionkit_testkit::servers::redis as common;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn namespace() -> Namespace {
    Namespace::new("users").expect("namespace")
}

fn web() -> SessionName {
    SessionName::new("web").expect("session name")
}

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&namespace())
}

fn user(id: &str) -> UserKey {
    UserKey::new(&namespace(), &web(), id)
}

fn binding(id: &str) -> Value {
    UserBinding::new(&namespace(), &web(), id)
        .expect("binding")
        .to_value()
}

fn in_secs(secs: u64) -> Timestamp {
    SystemClock.now().saturating_add(Duration::from_secs(secs))
}

fn bound_record(id: &str) -> Record {
    let mut data = Map::new();
    data.insert("n".into(), json!(1));
    data.insert(USER_KEY.into(), binding(id));
    Record::new(SystemClock.now(), data)
}

fn set(key: &str, value: Value) -> Patch {
    Patch {
        set: [(key.to_owned(), value)].into_iter().collect(),
        last_seen: SystemClock.now(),
        ..Patch::default()
    }
}

async fn listed(driver: &RedisDriver, id: &str) -> BTreeSet<StoreKey> {
    driver
        .user_sessions(&user(id))
        .await
        .expect("user_sessions")
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

async fn members(raw: &mut redis::aio::MultiplexedConnection, index: &str) -> BTreeSet<String> {
    raw.smembers(index).await.expect("SMEMBERS")
}

async fn pexpiretime(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PEXPIRETIME")
}

fn hexes(keys: &[&StoreKey]) -> BTreeSet<String> {
    keys.iter().map(|key| key.to_hex()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_a_set_of_store_keys_that_lives_as_long_as_its_longest_session() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let index = driver.user_index_key(&user("ada"));
    assert_eq!(
        index,
        format!(
            "{}users:u:{}",
            driver.prefix(),
            StoreKey::from_digest(namespace(), *user("ada").digest()).to_hex()
        )
    );

    let (long, short, longer, unbound) = (key(), key(), key(), key());
    let expiry = in_secs(600);
    driver
        .create(&long, &bound_record("ada"), expiry)
        .await
        .expect("create");
    assert_eq!(members(&mut raw, &index).await, hexes(&[&long]));
    let first = u64::try_from(pexpiretime(&mut raw, &index).await).expect("an expiry");
    assert_eq!(first, expiry.as_millis());

    // A shorter session does not shorten the set's life; a longer one extends it.
    driver
        .create(&short, &bound_record("ada"), in_secs(60))
        .await
        .expect("create");
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &index).await).expect("expiry"),
        first
    );
    driver
        .create(&unbound, &Record::new(SystemClock.now(), Map::new()), in_secs(60))
        .await
        .expect("create");
    let until = in_secs(1_200);
    driver
        .patch(&unbound, &set(USER_KEY, binding("ada")), until)
        .await
        .expect("bind");
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &index).await).expect("expiry"),
        until.as_millis()
    );
    // A patch that leaves the binding, and a touch, add nothing to another user's index.
    driver
        .create(&longer, &bound_record("bob"), in_secs(60))
        .await
        .expect("create");
    driver
        .patch(&longer, &set("x", json!(1)), in_secs(60))
        .await
        .expect("patch");
    driver
        .touch(&longer, SystemClock.now(), in_secs(60))
        .await
        .expect("touch");
    assert_eq!(members(&mut raw, &index).await, hexes(&[&long, &short, &unbound]));
    assert_eq!(
        members(&mut raw, &driver.user_index_key(&user("bob"))).await,
        hexes(&[&longer])
    );
    // A touch or patch that keeps a bound session alive past its index's expiry keeps
    // the index alive with it (idle sessions are extended long after their creation).
    let later = in_secs(3_600);
    driver
        .touch(&short, SystemClock.now(), later)
        .await
        .expect("touch");
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &index).await).expect("expiry"),
        later.as_millis()
    );
    let latest = in_secs(7_200);
    driver
        .patch(&long, &set("x", json!(2)), latest)
        .await
        .expect("patch");
    assert_eq!(
        u64::try_from(pexpiretime(&mut raw, &index).await).expect("expiry"),
        latest.as_millis()
    );

    // No key holds a user id. (Besides sessions and indexes: each create's marker for
    // a re-sent copy of it, which lives a minute.)
    let keys: Vec<String> = raw.keys(format!("{}*", driver.prefix())).await.expect("KEYS");
    let (markers, keys): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| k.contains(":op:"));
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(markers.len(), 4, "{markers:?}");
    for marker in &markers {
        let ttl: i64 = raw.pttl(marker).await.expect("PTTL");
        assert!((1..=60_000).contains(&ttl), "{marker}: {ttl}");
    }
    // (By segment: "ada" is hex, so a digest may contain it by chance.)
    assert!(
        keys.iter()
            .flat_map(|k| k.split(':'))
            .all(|segment| segment != "ada" && segment != "bob" && !segment.contains("bob")),
        "{keys:?}"
    );
}

/// Listing skips and removes members whose session was deleted, expired, renewed
/// (the old key holds a forward), rebound to another user, or that are not store keys
/// or name a key of another type; the live ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_prunes_dead_members() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let index = driver.user_index_key(&user("ada"));
    let (live, deleted, expired, renewed, rebound, unbound, other_type) =
        (key(), key(), key(), key(), key(), key(), key());
    for k in [&live, &deleted, &renewed, &rebound, &unbound, &other_type] {
        driver
            .create(k, &bound_record("ada"), in_secs(600))
            .await
            .expect("create");
    }
    driver
        .create(&expired, &bound_record("ada"), in_secs(1))
        .await
        .expect("create");
    driver.delete(&deleted).await.expect("delete");
    driver
        .patch(&rebound, &set(USER_KEY, binding("bob")), in_secs(600))
        .await
        .expect("rebind");
    let unbind = Patch {
        remove: vec![USER_KEY.to_owned()],
        last_seen: SystemClock.now(),
        ..Patch::default()
    };
    driver
        .patch(&unbound, &unbind, in_secs(600))
        .await
        .expect("unbind");
    let () = raw
        .set(driver.redis_key(&other_type), "a string")
        .await
        .expect("SET");
    let rotation = Rotation {
        from: renewed.clone(),
        to: key(),
        record: bound_record("ada"),
        patch: set("x", json!(1)),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    // The rotation swapped the old key for the new one already.
    assert!(!members(&mut raw, &index).await.contains(&renewed.to_hex()));
    // Members the driver never writes.
    let strays = vec!["not a store key".to_owned(), "A".repeat(64), "0".repeat(64)];
    let _: i64 = raw.sadd(&index, strays).await.expect("SADD");
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    assert_eq!(
        listed(&driver, "ada").await,
        [live.clone(), rotation.to.clone()].into_iter().collect()
    );
    assert_eq!(members(&mut raw, &index).await, hexes(&[&live, &rotation.to]));
    assert_eq!(listed(&driver, "bob").await, [rebound].into_iter().collect());

    // With every session gone, the set goes too.
    driver.delete(&live).await.expect("delete");
    driver.delete(&rotation.to).await.expect("delete");
    assert!(listed(&driver, "ada").await.is_empty());
    let exists: bool = raw.exists(&index).await.expect("EXISTS");
    assert!(!exists);
}

/// A rotation whose request saw the session unbound, while another request has bound
/// it since: the moved session still lands in its user's index (the script refuses
/// the stale index and the driver retries with the stored one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_follows_the_stored_binding_not_the_requests_view() {
    let factory = factory!();
    let driver = factory.driver().await;
    let from = key();
    let view = Record::new(SystemClock.now(), Map::new());
    driver.create(&from, &view, in_secs(600)).await.expect("create");
    driver
        .patch(&from, &set(USER_KEY, binding("ada")), in_secs(600))
        .await
        .expect("bind");
    let rotation = Rotation {
        from: from.clone(),
        to: key(),
        record: view.clone(),
        patch: set("x", json!(1)),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert_eq!(
        listed(&driver, "ada").await,
        [rotation.to.clone()].into_iter().collect()
    );

    // The other way round: the request saw it bound to bob, the store has no binding.
    let from = key();
    driver.create(&from, &view, in_secs(600)).await.expect("create");
    let rotation = Rotation {
        from,
        to: key(),
        record: bound_record("bob"),
        patch: set("x", json!(1)),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    assert_eq!(
        driver.rotate(&rotation).await.expect("rotate"),
        WriteResult::Applied
    );
    assert!(listed(&driver, "bob").await.is_empty());
    let mut raw = factory.raw().await;
    let exists: bool = raw
        .exists(driver.user_index_key(&user("bob")))
        .await
        .expect("EXISTS");
    assert!(!exists, "no index was written for bob");
}

/// The commands a client sends, read from `MONITOR` on a raw connection until the
/// `ECHO` of `marker`: commands scripts run are tagged `lua` and left out.
async fn client_commands_until(port: u16, run: impl Future<Output = ()>, marker: &str) -> Vec<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(b"MONITOR\r\n").await.expect("MONITOR");
    let mut lines = BufReader::new(stream).lines();
    assert_eq!(lines.next_line().await.expect("read").as_deref(), Some("+OK"));
    run.await;
    let mut commands = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("MONITOR output")
            .expect("read")
            .expect("a line");
        if line.contains(marker) {
            return commands;
        }
        if line.contains(" lua] ") {
            continue;
        }
        // `+<time> [<db> <addr>] "COMMAND" ...`
        if let Some(command) = line.split('"').nth(1) {
            commands.push(command.to_ascii_uppercase());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_one_round_trip_whatever_the_number_of_sessions() {
    // MONITOR sees every client: use a server no other test talks to.
    let Some(server) = common::own_server() else {
        return;
    };
    let url = server.url();
    let port: u16 = url
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .expect("port");
    let driver = RedisDriver::connect(&url).await.expect("connect");
    let mut raw = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw");
    let mut keys = Vec::new();
    for _ in 0..50 {
        let k = key();
        driver
            .create(&k, &bound_record("ada"), in_secs(600))
            .await
            .expect("create");
        keys.push(k);
    }
    driver.delete(&keys[0]).await.expect("delete");
    // Warm up: the first listing also loads the script.
    assert_eq!(listed(&driver, "ada").await.len(), 49);

    let marker = "sessionkit-listing-done";
    let (fresh, unbound) = (key(), key());
    driver
        .create(
            &unbound,
            &Record::new(SystemClock.now(), Map::new()),
            in_secs(600),
        )
        .await
        .expect("create");
    let rotation = Rotation {
        from: fresh.clone(),
        to: key(),
        record: bound_record("ada"),
        patch: set("x", json!(1)),
        expires_at: in_secs(600),
        grace_until: in_secs(30),
    };
    let commands = client_commands_until(
        port,
        async {
            // The writes that keep the index cost what they did: one EVALSHA each.
            driver
                .create(&fresh, &bound_record("ada"), in_secs(600))
                .await
                .expect("create");
            driver
                .patch(&unbound, &set(USER_KEY, binding("ada")), in_secs(600))
                .await
                .expect("bind");
            driver.rotate(&rotation).await.expect("rotate");
            let found = driver.user_sessions(&user("ada")).await.expect("list");
            assert_eq!(found.len(), 51);
            let _: String = redis::cmd("ECHO")
                .arg(marker)
                .query_async(&mut raw)
                .await
                .expect("ECHO");
        },
        marker,
    )
    .await;
    assert_eq!(
        commands, ["EVALSHA"; 4],
        "create, patch, rotate and a listing are one EVALSHA each"
    );
}
