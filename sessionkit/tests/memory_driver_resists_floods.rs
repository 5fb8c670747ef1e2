//! An anonymous flood cannot log out real users: on a full memory driver, sessions that
//! came back after their creating request (or were regenerated at sign-in) outlive any
//! number of sessions that were created and never used again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;
use sessionkit::core::{Namespace, SessionId};
use sessionkit::{
    Clock, Driver, LoadResult, ManualClock, MemoryDriver, Record, Registry, Secret, StoreKey, Timestamp,
};

const IDLE: Duration = Duration::from_mins(30);

fn key() -> StoreKey {
    SessionId::generate(&mut rand::rng()).store_key(&Namespace::new("test").expect("ns"))
}

/// A driver in simulated time, used the way the core uses it: every write gives an
/// expiry of the idle timeout after now.
struct Store {
    clock: ManualClock,
    driver: MemoryDriver,
}

impl Store {
    fn new(max_sessions: usize, shards: usize) -> Self {
        let clock = ManualClock::starting_now();
        let driver = MemoryDriver::builder()
            .clock(clock.shared())
            .shards(shards)
            .max_sessions(max_sessions)
            .build();
        Store { clock, driver }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A request without a cookie that writes the session: a new key, a fresh record.
    async fn create(&self) -> StoreKey {
        let key = key();
        let now = self.now();
        self.driver
            .create(&key, &Record::new(now, Map::new()), now.saturating_add(IDLE))
            .await
            .expect("create");
        key
    }

    /// A request that carries the cookie of `key` back.
    async fn found(&self, key: &StoreKey) -> bool {
        matches!(self.driver.load(key).await.expect("load"), LoadResult::Found(_))
    }

    /// A sign-in: the core loads the session, then writes its record (original
    /// `created_at`, `last_seen` now) under a new key and deletes the old one.
    async fn regenerate(&self, old: &StoreKey) -> StoreKey {
        let LoadResult::Found(mut record) = self.driver.load(old).await.expect("load") else {
            panic!("the session to regenerate is stored");
        };
        let now = self.now();
        record.last_seen = now;
        let new = key();
        self.driver
            .create(&new, &record, now.saturating_add(IDLE))
            .await
            .expect("create");
        self.driver.delete(old).await.expect("delete");
        new
    }

    /// An idle refresh write.
    async fn touch(&self, key: &StoreKey) {
        let now = self.now();
        self.driver
            .touch(key, now, now.saturating_add(IDLE))
            .await
            .expect("touch");
    }

    fn tick(&self) {
        self.clock.advance(Duration::from_secs(1));
    }
}

#[tokio::test]
async fn a_flood_of_four_times_capacity_evicts_no_session_that_came_back() {
    const CAPACITY: usize = 100;
    const FLOOD: usize = 4 * CAPACITY;
    let store = Store::new(CAPACITY, 1);
    // Signed in: created, used again to sign in (regenerate), then idle.
    let anonymous = store.create().await;
    store.tick();
    let signed_in = store.regenerate(&anonymous).await;
    // Came back once after its creating request, then idle.
    let returned = store.create().await;
    store.tick();
    assert!(store.found(&returned).await);
    // Keeps being used through the flood (reads, and a touch now and then).
    let active = store.create().await;
    store.tick();
    assert!(store.found(&active).await);

    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        store.tick();
        flood.push(store.create().await);
        assert!(store.driver.len() <= CAPACITY, "bounded after {i} creates");
        if i % 10 == 0 {
            assert!(store.found(&active).await, "the active session, during the flood");
        }
        if i % 100 == 0 {
            store.touch(&active).await;
        }
    }

    // 400 s of flood, well inside the 30 min idle timeout: nobody has expired.
    assert_eq!(store.driver.len(), CAPACITY, "the store stays at its bound");
    assert!(
        store.found(&signed_in).await,
        "the regenerated (signed-in) session survives"
    );
    assert!(
        store.found(&returned).await,
        "the session that came back survives"
    );
    assert!(store.found(&active).await, "the active session survives");
    assert!(!store.found(&anonymous).await, "the pre-sign-in key is gone");
    // Only the flood was evicted, oldest first: the newest CAPACITY - 3 remain.
    let survivors = CAPACITY - 3;
    for key in &flood[..FLOOD - survivors] {
        assert!(!store.found(key).await);
    }
    for key in &flood[FLOOD - survivors..] {
        assert!(store.found(key).await);
    }
}

#[tokio::test]
async fn across_shards_every_returning_session_survives_the_flood() {
    const CAPACITY: usize = 3_200;
    let store = Store::new(CAPACITY, 32);
    let mut users = Vec::new();
    for i in 0..50 {
        let key = store.create().await;
        store.tick();
        users.push(if i % 2 == 0 {
            store.regenerate(&key).await
        } else {
            assert!(store.found(&key).await);
            key
        });
    }
    for _ in 0..4 * CAPACITY {
        store.create().await;
        assert!(store.driver.len() <= CAPACITY);
    }
    assert_eq!(store.driver.len(), CAPACITY, "every shard is full");
    for (i, user) in users.iter().enumerate() {
        assert!(store.found(user).await, "user {i}");
    }
}

#[tokio::test]
async fn when_protected_is_full_its_least_recently_used_session_is_demoted_then_evicted() {
    // One shard of 10: protected may hold 8.
    let store = Store::new(10, 1);
    let mut users = Vec::new();
    for _ in 0..9 {
        let key = store.create().await;
        assert!(store.found(&key).await);
        users.push(key);
        store.tick();
    }
    // Promoting the ninth demoted the first (the protected session closest to expiry).
    for _ in 0..40 {
        store.tick();
        store.create().await;
    }
    assert_eq!(store.driver.len(), 10);
    assert!(
        !store.found(&users[0]).await,
        "demoted, then evicted by the flood"
    );
    for (i, user) in users.iter().enumerate().skip(1) {
        assert!(store.found(user).await, "user {i}");
    }
}

#[tokio::test]
async fn a_demoted_session_used_again_is_promoted_back() {
    let store = Store::new(10, 1);
    let mut users = Vec::new();
    for _ in 0..9 {
        let key = store.create().await;
        assert!(store.found(&key).await);
        users.push(key);
        store.tick();
    }
    // users[0] is on probation now; a use (and its idle refresh) promotes it back and
    // demotes the next least recently used, users[1].
    store.touch(&users[0]).await;
    for _ in 0..40 {
        store.tick();
        store.create().await;
    }
    assert_eq!(store.driver.len(), 10);
    assert!(!store.found(&users[1]).await, "demoted in its turn, then evicted");
    for i in [0, 2, 3, 4, 5, 6, 7, 8] {
        assert!(store.found(&users[i]).await, "user {i}");
    }
}

/// One request with `cookie`: runs `work` on the default session, saves, and returns
/// the new cookie pair, if one was set.
async fn request(
    sessions: &sessionkit::Sessions,
    cookie: &str,
    work: impl FnOnce(&sessionkit::Session),
) -> Option<String> {
    let request = sessions.request([cookie]);
    let session = request.default_session().await.expect("session");
    work(&session);
    let saved = request.save(200).await.expect("save");
    saved
        .set_cookies()
        .next()
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The same through the registry and the core: the signal for "signed in" is the record
/// the core writes when it regenerates, not anything the test makes up.
#[tokio::test]
async fn through_the_registry_a_flood_signs_nobody_out() {
    const CAPACITY: usize = 100;
    let clock = ManualClock::starting_now();
    let driver = Arc::new(
        MemoryDriver::builder()
            .clock(clock.shared())
            .shards(1)
            .max_sessions(CAPACITY)
            .build(),
    );
    let mut registry = Registry::with_clock(clock.shared());
    registry.set_secret(Secret::new([7u8; 32]).expect("32 bytes"));
    registry
        .register_driver("memory", driver.clone())
        .expect("register");
    let sessions = registry.build_with_env(&|_| None).expect("builds");

    // Anonymous visit, then sign-in on the next request (regenerate).
    let cookie = request(&sessions, "", |s| s.insert("cart", &1u32).expect("insert"))
        .await
        .expect("a new session sets a cookie");
    clock.advance(Duration::from_secs(1));
    let signed_in = request(&sessions, &cookie, |s| {
        s.insert("user", &"ada").expect("insert");
        s.regenerate().expect("regenerate");
    })
    .await
    .expect("a regenerated session sets a cookie");

    for _ in 0..4 * CAPACITY {
        clock.advance(Duration::from_secs(1));
        request(&sessions, "", |s| s.insert("n", &1u32).expect("insert")).await;
    }
    assert_eq!(driver.len(), CAPACITY);

    let mut user = None;
    request(&sessions, &signed_in, |s| {
        user = s.get::<String>("user").expect("get");
    })
    .await;
    assert_eq!(user.as_deref(), Some("ada"), "still signed in");
}

/// The session layer reads through `Driver::lookup` (for the tombstones of expired
/// sessions), so a session that only comes back to read, and writes nothing, is
/// promoted by that lookup exactly as by `load`.
#[tokio::test]
async fn through_the_registry_a_session_that_only_reads_survives_the_flood() {
    const CAPACITY: usize = 100;
    let clock = ManualClock::starting_now();
    let driver = Arc::new(
        MemoryDriver::builder()
            .clock(clock.shared())
            .shards(1)
            .max_sessions(CAPACITY)
            .build(),
    );
    let mut registry = Registry::with_clock(clock.shared());
    registry.set_secret(Secret::new([7u8; 32]).expect("32 bytes"));
    registry
        .register_driver("memory", driver.clone())
        .expect("register");
    let sessions = registry.build_with_env(&|_| None).expect("builds");

    let cookie = request(&sessions, "", |s| s.insert("cart", &3u32).expect("insert"))
        .await
        .expect("a new session sets a cookie");
    clock.advance(Duration::from_secs(1));
    let mut cart = None;
    let rewritten = request(&sessions, &cookie, |s| cart = s.get::<u32>("cart").expect("get")).await;
    assert_eq!(cart, Some(3));
    assert_eq!(rewritten, None, "a read one second later writes nothing");

    for _ in 0..4 * CAPACITY {
        clock.advance(Duration::from_secs(1));
        request(&sessions, "", |s| s.insert("n", &1u32).expect("insert")).await;
    }
    assert_eq!(driver.len(), CAPACITY);

    cart = None;
    request(&sessions, &cookie, |s| cart = s.get::<u32>("cart").expect("get")).await;
    assert_eq!(cart, Some(3), "the cart outlived the flood");
}
