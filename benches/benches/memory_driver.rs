//! The memory driver's own calls, without the registry or the core around them: a load
//! hit, a patch, a touch, and a create into a full driver (the eviction path), the last
//! one both with only never-used sessions stored and with half of them used again.
//!
//! The driver's futures never wait, so each call is polled once with a no-op waker:
//! no runtime cost is measured.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{Clock, Driver, LoadResult, ManualClock, MemoryDriver, Patch, Record, StoreKey, Timestamp};

/// Sessions stored (the driver's maximum) in every case.
const CAPACITY: usize = 10_000;
/// Expiry is an hour after the (simulated) last use.
const IDLE: Duration = Duration::from_secs(3600);

/// Runs a future that never waits.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory driver never waits"),
    }
}

fn keys(n: usize, seed: u64) -> Vec<StoreKey> {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let namespace = Namespace::new("app").expect("ns");
    (0..n)
        .map(|_| SessionId::generate(&mut rng).store_key(&namespace))
        .collect()
}

fn data() -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("user".into(), Value::from("ada lovelace"));
    data.insert("visits".into(), Value::from(42));
    data
}

/// A full driver (`CAPACITY` sessions, created one simulated millisecond apart), its
/// clock and its keys; the first `used_again` of them are loaded once more.
fn full(used_again: usize) -> (MemoryDriver, ManualClock, Vec<StoreKey>) {
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    let driver = MemoryDriver::builder()
        .clock(clock.shared())
        .max_sessions(CAPACITY)
        .build();
    // A little short of the maximum, so no shard is already evicting.
    let stored = keys(CAPACITY * 9 / 10, 1);
    for key in &stored {
        clock.advance(Duration::from_millis(1));
        let now = clock.now();
        ready(driver.create(key, &Record::new(now, data()), now.saturating_add(IDLE))).expect("create");
    }
    for key in &stored[..used_again] {
        assert!(matches!(
            ready(driver.load(key)).expect("load"),
            LoadResult::Found(_)
        ));
    }
    (driver, clock, stored)
}

fn memory_driver(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory-driver");

    let (driver, clock, stored) = full(0);
    let mut i = 0;
    group.bench_function("load-hit", |b| {
        b.iter(|| {
            i = (i + 1) % stored.len();
            ready(driver.load(&stored[i])).expect("load")
        });
    });
    let mut patch = Patch::default();
    patch.set.insert("visits".into(), Value::from(43));
    group.bench_function("patch", |b| {
        b.iter(|| {
            i = (i + 1) % stored.len();
            let now = clock.now();
            patch.last_seen = now;
            ready(driver.patch(&stored[i], &patch, now.saturating_add(IDLE))).expect("patch")
        });
    });
    group.bench_function("touch", |b| {
        b.iter(|| {
            i = (i + 1) % stored.len();
            clock.advance(Duration::from_millis(1));
            let now = clock.now();
            ready(driver.touch(&stored[i], now, now.saturating_add(IDLE))).expect("touch")
        });
    });

    // Creates of never-seen keys into a full driver: every one evicts. The new keys
    // come from a pool far larger than the driver, used in order, so a key is long
    // evicted before it comes round again.
    for (name, used_again) in [
        ("create-when-full", 0),
        ("create-when-full/half-used-again", CAPACITY / 2),
    ] {
        let (driver, clock, _) = full(used_again);
        let pool = keys(CAPACITY * 4, 2);
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    n = (n + 1) % pool.len();
                    clock.advance(Duration::from_millis(1));
                    let now = clock.now();
                    (
                        pool[n].clone(),
                        Record::new(now, data()),
                        now.saturating_add(IDLE),
                    )
                },
                |(key, record, expires)| {
                    ready(driver.create(key, record, *expires)).expect("create");
                },
                BatchSize::SmallInput,
            );
        });
        assert!(driver.len() <= driver.capacity());
    }
    group.finish();
}

criterion_group!(benches, memory_driver);
criterion_main!(benches);
