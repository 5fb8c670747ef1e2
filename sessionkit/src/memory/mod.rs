//! The embedded default store: sharded, bounded, expiring, flood-resistant, in process
//! memory.

mod forwards;
mod hash;
mod shard;
mod tombstones;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use std::collections::{HashMap, HashSet};

use sessionkit_core::{
    KeyUpdate, LoadResult, Namespace, Patch, Record, Rotation, StoreKey, Timestamp, UpdateResult, UserKey,
    Write, WriteResult,
};

use self::shard::{Limits, Segment, Shard};
use crate::clock::{SharedClock, SystemClock};
use crate::driver::{Driver, DriverError, Lookup, LookupNow};

/// The default maximum number of sessions a [`MemoryDriver`] keeps.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// The default number of shards.
pub const DEFAULT_SHARDS: usize = 32;

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
///   reached). The evicted user simply gets a new session.
/// - **Flood-resistant**: sessions created and never used again cannot evict sessions
///   in use. Each shard is a segmented LRU (as in SLRU, or the main space of
///   W-TinyLFU) with two segments, each ordered by expiry:
///   - *probation* holds sessions created and not used since. Every new session starts
///     here.
///   - *protected* holds sessions that came back: a `load` or `lookup` that finds the
///     session, or a `patch` or `touch` that applies to it, moves it here. So does a
///     `create` whose record has a `created_at` earlier than its `last_seen`: such a
///     record carries over an earlier session, which the core writes only when it
///     regenerates (at sign in) or renews a session it loaded. A fresh session's
///     record has `created_at == last_seen`.
///
///   When a shard is full, `create` evicts an expired session if there is one, else the
///   probation session closest to expiring, and a protected one (the one closest to
///   expiring) only if probation is empty. Protected may fill four fifths of a shard
///   (rounded down; at least one slot is always left to probation), so a flood of
///   sessions that are created and never come back, however large, only churns
///   probation and never evicts a protected session before it expires.
///
///   When a session is promoted into a full protected segment, the protected session
///   closest to expiring (with an idle timeout: the least recently used one) is demoted
///   to probation. There it is evicted in expiry order like any other probation session,
///   unless it is used again first, which promotes it back. So when more sessions are
///   in use than four fifths of `max_sessions`, the least recently used of them go
///   first: raise `max_sessions`.
/// - **Tombstones**: for up to `max_sessions` expired sessions (per shard, as many as
///   the shard holds sessions; oldest first out) it remembers the key and the creation
///   and last-seen times, no data, so [`lookup`](Driver::lookup) can tell an expired
///   session (and the expiry policy why it expired) from an unknown one. A session
///   leaves one however its expiry is noticed: purged, found expired by a call, or
///   taken as an expired entry to make room. Deleting a session drops its tombstone,
///   as does a new record under its key; a live session evicted to make room leaves
///   none, in either segment (the store cannot say why it is gone). Tombstones
///   live beside the segments and take no part in eviction: they neither count
///   against `max_sessions` nor protect a key, so a flood of expiring sessions only
///   turns over the tombstones, never a live session.
/// - **Cost**: O(log n) per call in the shard's two expiry-ordered B-trees (the same
///   index that drives the purge, split in two), plus one hash map lookup; the segment
///   adds one byte (padded to eight) per session. A tombstone costs a store key, two
///   timestamps and a sequence number, in a hash map and a queue, at most
///   `max_sessions` of them.
/// - Time comes from the injected [`Clock`](crate::Clock), so tests run in simulated
///   time. Data is lost when the process exits; use Redis or PostgreSQL to share
///   sessions between processes.
///
/// What it cannot tell apart: a client that keeps its cookie and sends it again is a
/// returning session, whoever runs it. The flood this defends against is the cheap one,
/// one request per session without a cookie.
#[derive(Debug)]
pub struct MemoryDriver {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    clock: SharedClock,
    closed: AtomicBool,
    /// Per-user indexes: the keys of the records bound to each user. Entries are
    /// checked against the record when listed (a key whose record is gone or bound to
    /// someone else is dropped then), so a delete or an expiry needs no index work.
    users: Mutex<HashMap<UserKey, HashSet<StoreKey>>>,
}

/// Past this many keys in one user's index, adding one first drops the keys whose
/// records are gone, so a user who never lists cannot grow it without bound.
const USER_INDEX_PRUNE_AT: usize = 64;

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
        let limits = Limits::new(self.max_sessions.div_ceil(self.shards));
        let shards: Box<[Mutex<Shard>]> = (0..self.shards).map(|_| Mutex::new(Shard::new(limits))).collect();
        MemoryDriver {
            per_shard: limits.capacity(),
            shards,
            clock: self.clock,
            closed: AtomicBool::new(false),
            users: Mutex::default(),
        }
    }
}

impl MemoryDriver {
    /// A lookup, answered at once: the live record is lent, not copied.
    fn look(&self, key: &StoreKey) -> Result<LookupNow, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key, now)?;
        let Some(entry) = shard.live(key, now) else {
            if let Some(to) = shard.forwards.get(key, now) {
                return Ok(LookupNow::Lookup(Lookup::Forwarded { to: to.clone() }));
            }
            return Ok(LookupNow::Lookup(match shard.tombstone(key) {
                Some(tombstone) => Lookup::Expired {
                    created_at: tombstone.created_at,
                    last_seen: tombstone.last_seen,
                },
                None => Lookup::Loaded(LoadResult::Missing),
            }));
        };
        let record = Arc::clone(&entry.record);
        if !entry.is_protected() {
            // It came back after the request that created it.
            let expires_at = entry.expires_at();
            shard.used(key, expires_at);
        }
        Ok(LookupNow::Shared(record))
    }

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
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of sessions.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    fn shard(&self, key: &StoreKey, now: Timestamp) -> Result<MutexGuard<'_, Shard>, DriverError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DriverError::Closed);
        }
        let mut shard = lock(&self.shards[self.index(key)]);
        shard.purge(now);
        Ok(shard)
    }

    /// Adds `key` to the index of `user`.
    fn index_user(&self, user: UserKey, key: &StoreKey) {
        let now = self.clock.now();
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = users.entry(user).or_default();
        if keys.len() >= USER_INDEX_PRUNE_AT {
            keys.retain(|k| {
                self.shard(k, now)
                    .is_ok_and(|mut shard| shard.live(k, now).is_some())
            });
        }
        keys.insert(key.clone());
    }

    fn index(&self, key: &StoreKey) -> usize {
        let digest = key.digest();
        let bits = u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        // The digest is uniformly distributed, so its low bits pick a shard evenly.
        usize::try_from(bits % self.shards.len() as u64).unwrap_or(0)
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
        Ok(match self.lookup(key).await? {
            Lookup::Loaded(loaded) => loaded,
            Lookup::Expired { .. } | Lookup::Forwarded { .. } => LoadResult::Missing,
        })
    }

    /// `load`, with the tombstone of an expired session. A hit promotes the session
    /// exactly as `load` does: the session layer calls this one, not `load`.
    async fn lookup(&self, key: &StoreKey) -> Result<Lookup, DriverError> {
        Ok(match self.look(key)? {
            LookupNow::Shared(record) => Lookup::Loaded(LoadResult::Found(Record::clone(&record))),
            LookupNow::Lookup(lookup) => lookup,
        })
    }

    fn lookup_now(&self, key: &StoreKey) -> Option<Result<LookupNow, DriverError>> {
        Some(self.look(key))
    }

    fn write_now(&self, write: &Write) -> Option<Result<WriteResult, DriverError>> {
        // The memory driver's calls never wait: each completes on its first poll.
        ready(async {
            match write {
                Write::Create {
                    key,
                    record,
                    expires_at,
                } => self
                    .create(key, record, *expires_at)
                    .await
                    .map(|()| WriteResult::Applied),
                Write::Patch {
                    key,
                    patch,
                    expires_at,
                } => self.patch(key, patch, *expires_at).await,
                Write::Touch {
                    key,
                    last_seen,
                    expires_at,
                } => self.touch(key, *last_seen, *expires_at).await,
                Write::Rotate(rotation) => self.rotate(rotation).await,
            }
        })
    }

    async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        expires_at: Timestamp,
    ) -> Result<(), DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key, now)?;
        if shard.live(key, now).is_some() {
            return Err(DriverError::Duplicate);
        }
        if expires_at <= now {
            return Ok(());
        }
        // A record older than its last use carries over an earlier session (regenerate).
        let segment = if record.created_at < record.last_seen {
            Segment::Protected
        } else {
            Segment::Probation
        };
        shard.insert(key, Arc::new(record.clone()), expires_at, segment, now);
        drop(shard);
        if let Some(user) = UserKey::of_record(key, record) {
            self.index_user(user, key);
        }
        Ok(())
    }

    async fn patch(
        &self,
        key: &StoreKey,
        patch: &Patch,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key, now)?;
        let Some(entry) = shard.live(key, now) else {
            return Ok(WriteResult::Gone);
        };
        patch.apply_to(Arc::make_mut(&mut entry.record));
        shard.used(key, expires_at);
        drop(shard);
        if let Some(Some(user)) = UserKey::of_patch(key, patch) {
            self.index_user(user, key);
        }
        Ok(WriteResult::Applied)
    }

    async fn update(
        &self,
        key: &StoreKey,
        update: &KeyUpdate,
        expires_at: Timestamp,
    ) -> Result<UpdateResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key, now)?;
        let Some(entry) = shard.live(key, now) else {
            return Ok(UpdateResult::Gone);
        };
        let result = update.apply_to(Arc::make_mut(&mut entry.record));
        if result == UpdateResult::Applied {
            shard.used(key, expires_at);
        }
        Ok(result)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: Timestamp,
        expires_at: Timestamp,
    ) -> Result<WriteResult, DriverError> {
        let now = self.clock.now();
        let mut shard = self.shard(key, now)?;
        let Some(entry) = shard.live(key, now) else {
            return Ok(WriteResult::Gone);
        };
        Arc::make_mut(&mut entry.record).last_seen = last_seen;
        shard.used(key, expires_at);
        Ok(WriteResult::Applied)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), DriverError> {
        self.shard(key, self.clock.now())?.remove(key);
        Ok(())
    }

    /// Atomic: both shards are locked (in index order, so two renewals cannot
    /// deadlock) while the record moves and the forward is written.
    async fn rotate(&self, rotation: &Rotation) -> Result<WriteResult, DriverError> {
        let now = self.clock.now();
        let (from, to) = (self.index(&rotation.from), self.index(&rotation.to));
        let moved = if from == to {
            let mut shard = self.shard(&rotation.from, now)?;
            move_record(&mut shard, None, rotation, now)
        } else {
            let (mut first, mut second) = if from < to {
                let first = self.shard(&rotation.from, now)?;
                (first, self.shard(&rotation.to, now)?)
            } else {
                let second = self.shard(&rotation.to, now)?;
                (self.shard(&rotation.from, now)?, second)
            };
            move_record(&mut first, Some(&mut second), rotation, now)
        };
        let Moved::To(user) = moved else {
            return Ok(WriteResult::Gone);
        };
        if let Some(user) = user {
            self.index_user(user, &rotation.to);
        }
        Ok(WriteResult::Applied)
    }

    async fn delete_namespace(&self, namespace: &Namespace) -> Result<u64, DriverError> {
        let now = self.clock.now();
        let mut ended = 0;
        for index in 0..self.shards.len() {
            if self.closed.load(Ordering::Acquire) {
                return Err(DriverError::Closed);
            }
            let mut shard = lock(&self.shards[index]);
            shard.purge(now);
            ended += shard.remove_namespace(namespace);
        }
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|user, _| user.namespace() != namespace);
        Ok(ended)
    }

    async fn user_sessions(&self, user: &UserKey) -> Result<Vec<(StoreKey, Record)>, DriverError> {
        let now = self.clock.now();
        let keys: Vec<StoreKey> = {
            let users = self
                .users
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            users
                .get(user)
                .map(|keys| keys.iter().cloned().collect())
                .unwrap_or_default()
        };
        let mut found = Vec::with_capacity(keys.len());
        let mut dead = Vec::new();
        for key in keys {
            let mut shard = self.shard(&key, now)?;
            match shard.live(&key, now) {
                Some(entry) if UserKey::of_record(&key, &entry.record).as_ref() == Some(user) => {
                    found.push((key, Record::clone(&entry.record)));
                }
                _ => dead.push(key),
            }
        }
        if !dead.is_empty() {
            let mut users = self
                .users
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(keys) = users.get_mut(user) {
                for key in &dead {
                    keys.remove(key);
                }
                if keys.is_empty() {
                    users.remove(user);
                }
            }
        }
        Ok(found)
    }

    async fn close(&self) -> Result<(), DriverError> {
        self.closed.store(true, Ordering::Release);
        for shard in &self.shards {
            lock(shard).clear();
        }
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        Ok(())
    }
}

/// The output of a future that completes on its first poll (`None` if it did not; the
/// memory driver's never wait on anything).
fn ready<T>(future: impl Future<Output = T>) -> Option<T> {
    let future = std::pin::pin!(future);
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// What [`move_record`] did.
enum Moved {
    /// There was no live record to move.
    Gone,
    /// Moved; the record is bound to this user, if any.
    To(Option<UserKey>),
}

/// Moves a rotation's record from the `from` shard to the `to` shard (`None`: the same
/// one), applying its patch and leaving a forward for the grace window.
fn move_record(from: &mut Shard, to: Option<&mut Shard>, rotation: &Rotation, now: Timestamp) -> Moved {
    if from.live(&rotation.from, now).is_none() {
        return Moved::Gone;
    }
    let Some(mut record) = from.take(&rotation.from) else {
        return Moved::Gone;
    };
    rotation.patch.apply_to(Arc::make_mut(&mut record));
    if rotation.grace_until > now {
        from.forwards
            .add(rotation.from.clone(), rotation.to.clone(), rotation.grace_until);
    }
    let target = match to {
        Some(to) => to,
        None => from,
    };
    let user = UserKey::of_record(&rotation.to, &record);
    if rotation.expires_at > now && target.live(&rotation.to, now).is_none() {
        // A renewed session is in use: it starts protected from eviction.
        target.insert(&rotation.to, record, rotation.expires_at, Segment::Protected, now);
    }
    Moved::To(user)
}
