//! The embedded default store: sharded, bounded, expiring, in process memory.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use sessionkit_core::{LoadResult, Patch, Record, StoreKey, Timestamp, WriteResult};

use crate::clock::{SharedClock, SystemClock};
use crate::driver::{Driver, DriverError, Lookup};

/// The default maximum number of sessions a [`MemoryDriver`] keeps.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// The default number of shards.
pub const DEFAULT_SHARDS: usize = 32;
/// How many expired entries one call removes at most, so no call holds a shard lock for
/// long; the rest go on later calls (and are invisible to `load` meanwhile).
const PURGE_BATCH: usize = 32;

/// Sessions in process memory.
///
/// - **Sharded**: keys are spread over independent shards (32 by default), each behind
///   its own lock, so concurrent requests rarely wait on each other. Every call is
///   atomic per session because a session lives in exactly one shard.
/// - **Expiring**: each shard keeps its entries ordered by expiry. Every call first
///   drops up to 32 expired entries from the front of that order, so expired sessions
///   are removed without ever scanning a shard, and `load` never returns one.
/// - **Bounded**: at most `max_sessions` (100,000 by default), split evenly across
///   shards (so the fullest shard starts evicting a little before the total is
///   reached). When a shard is full, `create` first drops expired entries, then evicts
///   the session closest to expiring. With an idle timeout that is the least recently
///   used session; the evicted user simply gets a new session.
/// - **Tombstones**: for up to `max_sessions` expired sessions (per shard, oldest
///   first out) it remembers the key and the creation and last-seen times, no data, so
///   [`lookup`](Driver::lookup) can tell an expired session from an unknown one.
///   Deleting a session drops its tombstone; an evicted session leaves none.
/// - Time comes from the injected [`Clock`](crate::Clock), so tests run in simulated
///   time. Data is lost when the process exits; use Redis or PostgreSQL to share
///   sessions between processes.
#[derive(Debug)]
pub struct MemoryDriver {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    clock: SharedClock,
    closed: AtomicBool,
}

/// Hashes store keys cheaply. Keys are SHA-256 digests of ids this process minted (a
/// request cannot choose them: a cookie must carry a valid MAC before its key is ever
/// looked up), so a DoS-resistant keyed hash buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
struct DigestHash;

#[derive(Debug, Default)]
struct DigestHasher(u64);

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<StoreKey, Entry, DigestHash>,
    by_expiry: BTreeSet<(Timestamp, StoreKey)>,
    tombstones: Tombstones,
}

/// The creation and last-seen times of recently expired sessions, oldest first out.
#[derive(Debug, Default)]
struct Tombstones {
    times: HashMap<StoreKey, (Timestamp, Timestamp), DigestHash>,
    /// Insertion order. May still name keys whose tombstone was dropped since; those
    /// count against the bound too, which keeps both collections bounded.
    order: VecDeque<StoreKey>,
}

impl Tombstones {
    fn add(&mut self, key: StoreKey, record: &Record, bound: usize) {
        while self.order.len() >= bound.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.times.remove(&old);
            }
        }
        self.times
            .insert(key.clone(), (record.created_at, record.last_seen));
        self.order.push_back(key);
    }
}

#[derive(Debug)]
struct Entry {
    record: Record,
    expires_at: Timestamp,
}

impl Shard {
    fn purge(&mut self, now: Timestamp, tombstones: usize) {
        for _ in 0..PURGE_BATCH {
            match self.by_expiry.first() {
                Some((expires, _)) if *expires <= now => {
                    if let Some((_, key)) = self.by_expiry.pop_first()
                        && let Some(entry) = self.entries.remove(&key)
                    {
                        self.tombstones.add(key, &entry.record, tombstones);
                    }
                }
                _ => break,
            }
        }
    }

    fn live(&mut self, key: &StoreKey, now: Timestamp, tombstones: usize) -> Option<&mut Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired && let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires_at, key.clone()));
            self.tombstones.add(key.clone(), &entry.record, tombstones);
        }
        self.entries.get_mut(key)
    }

    fn remove(&mut self, key: &StoreKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires_at, key.clone()));
        }
        self.tombstones.times.remove(key);
    }

    fn set_expiry(&mut self, key: &StoreKey, expires_at: Timestamp) {
        if let Some(entry) = self.entries.get_mut(key) {
            let old = std::mem::replace(&mut entry.expires_at, expires_at);
            if old != expires_at {
                self.by_expiry.remove(&(old, key.clone()));
                self.by_expiry.insert((expires_at, key.clone()));
            }
        }
    }
}

/// Builds a [`MemoryDriver`].
#[derive(Debug)]
pub struct MemoryDriverBuilder {
    max_sessions: usize,
    shards: usize,
    clock: SharedClock,
}

impl MemoryDriverBuilder {
    /// The most sessions kept (at least one per shard is always allowed).
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// The number of shards (at least 1).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// The clock that decides expiry.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the driver.
    pub fn build(self) -> MemoryDriver {
        let shards: Box<[Mutex<Shard>]> = (0..self.shards).map(|_| Mutex::new(Shard::default())).collect();
        MemoryDriver {
            per_shard: self.max_sessions.div_ceil(self.shards).max(1),
            shards,
            clock: self.clock,
            closed: AtomicBool::new(false),
        }
    }
}

impl MemoryDriver {
    /// A driver with the defaults and the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder with the defaults (100,000 sessions, 32 shards, the system clock).
    pub fn builder() -> MemoryDriverBuilder {
        MemoryDriverBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
            shards: DEFAULT_SHARDS,
            clock: std::sync::Arc::new(SystemClock),
        }
    }

    /// The number of live and not yet purged sessions.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of sessions.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    fn shard(&self, key: &StoreKey) -> Result<MutexGuard<'_, Shard>, DriverError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DriverError::Closed);
        }
        let digest = key.digest();
        let bits = u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        // The digest is uniformly distributed, so its low bits pick a shard evenly.
        let index = usize::try_from(bits % self.shards.len() as u64).unwrap_or(0);
        let mut shard = lock(&self.shards[index]);
        shard.purge(self.clock.now(), self.per_shard);
        Ok(shard)
    }
}

impl Default for MemoryDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// Locks a shard. A poisoned lock (a panic in another thread while holding it) leaves
/// a shard whose maps are still consistent: every mutation here completes before any
/// call that could panic, so the data is recovered rather than failing every request.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Driver for MemoryDriver {
    async fn load(&self, key: &StoreKey) -> Result<LoadResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key)?;
        Ok(match shard.live(key, now, self.per_shard) {
            Some(entry) => LoadResult::Found(entry.record.clone()),
            None => LoadResult::Missing,
        })
    }

    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key)?;
        if let Some(entry) = shard.live(key, now, self.per_shard) {
            return Ok(Lookup::Loaded(LoadResult::Found(entry.record.clone())));
        }
        Ok(match shard.tombstones.times.get(key) {
            Some(&(created_at, last_seen)) => Lookup::Expired {
                created_at,
                last_seen,
            },
            None => Lookup::Loaded(LoadResult::Missing),
        })
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key)?;
        if shard.live(key, now, self.per_shard).is_some() {
            return Err(DriverError::Duplicate);
        }
        shard.tombstones.times.remove(key);
        if expires_at <= now {
            return Ok(());
        }
        while shard.entries.len() >= self.per_shard {
            // Full of live sessions: evict the one closest to expiring.
            let Some((_, victim)) = shard.by_expiry.pop_first() else {
                break;
            };
            shard.entries.remove(&victim);
        }
        shard.entries.insert(
            key.clone(),
            Entry {
                record: record.clone(),
                expires_at,
            },
        );
        shard.by_expiry.insert((expires_at, key.clone()));
        Ok(())
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key)?;
        let Some(entry) = shard.live(key, now, self.per_shard) else {
            return Ok(WriteResult::Gone);
        };
        patch.apply_to(&mut entry.record);
        shard.set_expiry(key, expires_at);
        Ok(WriteResult::Applied)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key)?;
        let Some(entry) = shard.live(key, now, self.per_shard) else {
            return Ok(WriteResult::Gone);
        };
        entry.record.last_seen = last_seen;
        shard.set_expiry(key, expires_at);
        Ok(WriteResult::Applied)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        self.shard(key)?.remove(key);
        Ok(())
    }

    async fn close(&self) -> Result<(), DriverError> {
        self.closed.store(true, Ordering::Release);
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.entries = HashMap::default();
            shard.by_expiry = BTreeSet::new();
            shard.tombstones = Tombstones::default();
        }
        Ok(())
    }
}
