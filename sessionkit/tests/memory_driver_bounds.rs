//! The memory driver's own promises beyond the contract: bounded with a documented
//! eviction order, expired entries purged without scans, closed means closed.

use std::time::Duration;

use serde_json::Map;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{Driver, DriverError, LoadResult, ManualClock, MemoryDriver, Record, StoreKey, Timestamp};

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("test").expect("ns"))
}

fn record(clock: &ManualClock) -> Record {
    use sessionkit::Clock;
    Record::new(clock.now(), Map::new())
}

fn at(clock: &ManualClock, secs: u64) -> Timestamp {
    use sessionkit::Clock;
    clock.now().saturating_add(Duration::from_secs(secs))
}

#[tokio::test]
async fn when_full_the_session_closest_to_expiry_is_evicted() {
    let clock = ManualClock::starting_now();
    let driver = MemoryDriver::builder()
        .clock(clock.shared())
        .shards(1)
        .max_sessions(3)
        .build();
    let keys: Vec<StoreKey> = (0..4).map(|_| key()).collect();
    // Expiries: 300 s, 100 s, 200 s.
    for (k, secs) in keys.iter().zip([300, 100, 200]) {
        driver
            .create(k, &record(&clock), at(&clock, secs))
            .await
            .expect("create");
    }
    assert_eq!(driver.len(), 3);
    driver
        .create(&keys[3], &record(&clock), at(&clock, 400))
        .await
        .expect("create when full");
    assert_eq!(driver.len(), 3);
    assert_eq!(
        driver.load(&keys[1]).await.expect("load"),
        LoadResult::Missing,
        "the soonest to expire goes"
    );
    for i in [0, 2, 3] {
        assert!(
            matches!(driver.load(&keys[i]).await.expect("load"), LoadResult::Found(_)),
            "key {i}"
        );
    }
}

#[tokio::test]
async fn expired_entries_are_purged_by_later_calls() {
    let clock = ManualClock::starting_now();
    let driver = MemoryDriver::builder().clock(clock.shared()).shards(1).build();
    for _ in 0..20 {
        driver
            .create(&key(), &record(&clock), at(&clock, 10))
            .await
            .expect("create");
    }
    let keeper = key();
    driver
        .create(&keeper, &record(&clock), at(&clock, 1000))
        .await
        .expect("create");
    assert_eq!(driver.len(), 21);
    clock.advance(Duration::from_secs(11));
    // Any call on the shard purges expired entries from the front of the expiry order.
    driver.load(&keeper).await.expect("load");
    assert_eq!(driver.len(), 1);
}

#[tokio::test]
async fn capacity_is_split_across_shards() {
    let driver = MemoryDriver::builder().shards(8).max_sessions(100).build();
    assert_eq!(driver.capacity(), 104, "100 rounded up to 13 per shard");
    let clock = ManualClock::starting_now();
    let driver = MemoryDriver::builder()
        .clock(clock.shared())
        .shards(4)
        .max_sessions(400)
        .build();
    for _ in 0..1000 {
        driver
            .create(&key(), &record(&clock), at(&clock, 60))
            .await
            .expect("create");
    }
    assert!(
        driver.len() <= 400 && driver.len() >= 390,
        "bounded, and the shards fill evenly: {}",
        driver.len()
    );
}

#[tokio::test]
async fn closed_driver_refuses_calls() {
    let driver = MemoryDriver::new();
    let clock = ManualClock::starting_now();
    let k = key();
    driver
        .create(&k, &record(&clock), at(&clock, 60))
        .await
        .expect("create");
    driver.close().await.expect("close");
    assert!(driver.is_empty());
    assert!(matches!(driver.load(&k).await, Err(DriverError::Closed)));
}
