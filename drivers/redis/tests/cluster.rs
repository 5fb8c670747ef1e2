//! The public conformance suites against a real Redis Cluster (three primaries with a
//! replica each, started by the test on loopback), and the cluster's key layout: every
//! call in one slot, a user's sessions beside their index, sessions spread over every
//! primary.

use std::collections::BTreeSet;

use sessionkit::core::{Namespace, SessionId, SessionName, USER_KEY, UserBinding};
use sessionkit::{Clock, Driver, Placement, Record, SystemClock, UserKey};
use sessionkit_conformance::{DriverBackend, driver_suite, session_suite};
use sessionkit_redis::{CLUSTER_PLACEMENT_BITS, RedisDriver, codec};
use sessionkit_testkit::redis_cluster_factory as factory;

driver_suite!(factory!());
session_suite!(DriverBackend(factory!()));

fn namespace() -> Namespace {
    Namespace::new("spread").expect("namespace")
}

fn slot(key: &str) -> u16 {
    codec::key_slot(key.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_the_hash_tag_of_their_group() {
    let factory = factory!();
    let driver: RedisDriver = factory.driver().await;
    assert!(driver.is_cluster());
    assert_eq!(
        driver.placement(),
        Placement::groups(CLUSTER_PLACEMENT_BITS).expect("bits")
    );
    let placement = driver.placement();
    let key = SessionId::generate(&mut rand::rng()).store_key(&namespace());
    let group = placement.group_of_key(&key);
    assert_eq!(
        driver.redis_key(&key),
        format!("{}spread:{{spread.{group}}}:{}", driver.prefix(), key.to_hex())
    );
    let user = UserKey::new(&namespace(), &SessionName::new("web").expect("name"), "ada");
    let index = driver.user_index_key(&user);
    assert!(index.ends_with(&format!(
        "{{spread.{}}}:u:{}",
        placement.group_of_user(&user),
        sessionkit::StoreKey::from_digest(namespace(), *user.digest()).to_hex()
    )));
    // A key placed in the user's group shares the index's slot.
    let (_, placed) = placement.draw(
        &mut rand::rng(),
        &namespace(),
        Some(placement.group_of_user(&user)),
    );
    assert_eq!(slot(&driver.redis_key(&placed)), slot(&index));
    // Our slot function agrees with the server's.
    let mut raw = factory.raw().await;
    for k in [driver.redis_key(&key), index] {
        let server: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .expect("CLUSTER KEYSLOT");
        assert_eq!(server, slot(&k), "{k}");
    }
}

/// Sessions spread over every primary: the 1024 groups of a namespace hash to slots
/// all over the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_every_primary() {
    let factory = factory!();
    let driver = factory.driver().await;
    let mut raw = factory.raw().await;
    let mut owners = BTreeSet::new();
    let shards: redis::Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut raw)
        .await
        .expect("CLUSTER SLOTS");
    let ranges: Vec<(u16, u16, String)> = match shards {
        redis::Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let redis::Value::Array(parts) = item else {
                    return None;
                };
                let start: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
                let end: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
                let redis::Value::Array(primary) = parts.get(2)? else {
                    return None;
                };
                let port: u16 = redis::from_redis_value(primary.get(1)?.clone()).ok()?;
                Some((start, end, port.to_string()))
            })
            .collect(),
        other => panic!("CLUSTER SLOTS: {other:?}"),
    };
    assert!(ranges.len() >= 3, "{ranges:?}");
    for _ in 0..64 {
        let key = SessionId::generate(&mut rand::rng()).store_key(&namespace());
        let record = Record::new(SystemClock.now(), serde_json::Map::new());
        driver
            .create(
                &key,
                &record,
                SystemClock
                    .now()
                    .saturating_add(std::time::Duration::from_secs(60)),
            )
            .await
            .expect("create");
        let at = slot(&driver.redis_key(&key));
        let owner = ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&at))
            .map(|(_, _, port)| port.clone())
            .expect("every slot has an owner");
        owners.insert(owner);
    }
    assert_eq!(owners.len(), 3, "64 sessions on {owners:?}");
}

/// A session bound without a new id (its key outside its user's group) is still
/// indexed, listed and ended: the index step and the listing take a second round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_outside_its_users_group_is_still_listed() {
    let factory = factory!();
    let driver = factory.driver().await;
    let placement = driver.placement();
    let web = SessionName::new("web").expect("name");
    let user = UserKey::new(&namespace(), &web, "grace");
    let mut outside = Vec::new();
    while outside.len() < 3 {
        let key = SessionId::generate(&mut rand::rng()).store_key(&namespace());
        if placement.group_of_key(&key) != placement.group_of_user(&user) {
            outside.push(key);
        }
    }
    let (_, inside) = placement.draw(
        &mut rand::rng(),
        &namespace(),
        Some(placement.group_of_user(&user)),
    );
    let binding = UserBinding::new(&namespace(), &web, "grace")
        .expect("binding")
        .to_value();
    let until = SystemClock
        .now()
        .saturating_add(std::time::Duration::from_secs(60));
    for key in outside.iter().chain([&inside]) {
        let mut record = Record::new(SystemClock.now(), serde_json::Map::new());
        record.data.insert(USER_KEY.into(), binding.clone());
        driver.create(key, &record, until).await.expect("create");
    }
    let listed: BTreeSet<_> = driver
        .user_sessions(&user)
        .await
        .expect("list")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let expected: BTreeSet<_> = outside.iter().cloned().chain([inside.clone()]).collect();
    assert_eq!(listed, expected);
    // A deleted one is pruned from the index (in another slot) on the next listing.
    driver.delete(&outside[0]).await.expect("delete");
    assert_eq!(driver.user_sessions(&user).await.expect("list").len(), 3);
    let mut raw = factory.raw().await;
    let members: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg(driver.user_index_key(&user))
        .query_async(&mut raw)
        .await
        .expect("SMEMBERS");
    assert_eq!(members.len(), 3);
    assert!(!members.contains(&outside[0].to_hex()));
    assert!(driver.delete_namespace(&namespace()).await.expect("delete all") >= 4);
    assert!(driver.user_sessions(&user).await.expect("list").is_empty());
}
