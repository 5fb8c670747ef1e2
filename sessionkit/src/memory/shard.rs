//! One shard of the memory driver: its entries, the two expiry-ordered segments
//! (probation and protected) that decide what is purged and what is evicted, and the
//! tombstones of the entries that expired.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sessionkit_core::{Namespace, Record, StoreKey, Timestamp};

use super::forwards::Forwards;
use super::hash::DigestHash;
use super::tombstones::{Tombstone, Tombstones};

/// How many expired entries one call removes at most, so no call holds a shard lock for
/// long; the rest go on later calls (and are invisible to `load` meanwhile).
const PURGE_BATCH: usize = 32;

/// Where an entry stands in the eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment {
    /// Created and not used since (or demoted): evicted first.
    Probation,
    /// Used again after its creating request, or carried over from an earlier session
    /// by a regenerate: evicted only when probation is empty.
    Protected,
}

/// How many entries a shard holds, and how many of them may be protected.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    capacity: usize,
    protected: usize,
}

impl Limits {
    /// Limits for a shard of `capacity` entries (at least one): protected may fill four
    /// fifths of it, rounded down, so at least a fifth (and at least one entry) stays
    /// for probation and a new session never has to evict a protected one.
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Limits {
            capacity,
            protected: capacity - capacity.div_ceil(5),
        }
    }

    /// The most entries the shard holds.
    pub(super) fn capacity(self) -> usize {
        self.capacity
    }
}

#[derive(Debug)]
pub(super) struct Entry {
    /// Lent to loads (`Driver::lookup_now`); writes change the store's own copy
    /// (`Arc::make_mut`), which is this one unless a request still holds it.
    pub(super) record: Arc<Record>,
    expires_at: Timestamp,
    segment: Segment,
}

#[derive(Debug)]
pub(super) struct Shard {
    limits: Limits,
    entries: HashMap<StoreKey, Entry, DigestHash>,
    probation: BTreeSet<(Timestamp, StoreKey)>,
    protected: BTreeSet<(Timestamp, StoreKey)>,
    /// Entries that expired (purged, found expired, or evicted as expired); as many as
    /// the shard holds entries. An entry evicted alive, or deleted, leaves none.
    tombstones: Tombstones,
    /// Renewed ids' forwards (bounded like the tombstones).
    pub(super) forwards: Forwards,
}

impl Shard {
    pub(super) fn new(limits: Limits) -> Self {
        Shard {
            limits,
            entries: HashMap::default(),
            probation: BTreeSet::new(),
            protected: BTreeSet::new(),
            tombstones: Tombstones::new(limits.capacity),
            forwards: Forwards::new(limits.capacity),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes every entry (and tombstone and forward) whose key is in `namespace`;
    /// returns how many sessions went.
    pub(super) fn remove_namespace(&mut self, namespace: &Namespace) -> u64 {
        let keys: Vec<StoreKey> = self
            .entries
            .keys()
            .filter(|key| key.namespace() == namespace)
            .cloned()
            .collect();
        for key in &keys {
            self.remove(key);
        }
        u64::try_from(keys.len()).unwrap_or(u64::MAX)
    }

    /// Forgets everything (the driver was closed).
    pub(super) fn clear(&mut self) {
        self.entries = HashMap::default();
        self.probation = BTreeSet::new();
        self.protected = BTreeSet::new();
        self.tombstones.clear();
        self.forwards.clear();
    }

    /// The tombstone of an expired entry under `key`, if one is kept.
    pub(super) fn tombstone(&self, key: &StoreKey) -> Option<Tombstone> {
        self.tombstones.get(key)
    }

    /// Removes the entry under `key` because it expired, leaving a tombstone.
    fn expire(&mut self, key: &StoreKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order(entry.segment).remove(&(entry.expires_at, key.clone()));
            self.tombstones.add(key.clone(), &entry.record);
        }
    }

    fn order(&mut self, segment: Segment) -> &mut BTreeSet<(Timestamp, StoreKey)> {
        match segment {
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    /// The segment whose first entry has expired at `now`, if any.
    fn expired_front(&self, now: Timestamp) -> Option<Segment> {
        let expired =
            |order: &BTreeSet<(Timestamp, StoreKey)>| order.first().is_some_and(|(at, _)| *at <= now);
        if expired(&self.probation) {
            Some(Segment::Probation)
        } else if expired(&self.protected) {
            Some(Segment::Protected)
        } else {
            None
        }
    }

    /// Removes up to [`PURGE_BATCH`] expired entries from the fronts of the two orders.
    pub(super) fn purge(&mut self, now: Timestamp) {
        self.forwards.purge(now);
        for _ in 0..PURGE_BATCH {
            let Some(segment) = self.expired_front(now) else {
                break;
            };
            if let Some((_, key)) = self.order(segment).pop_first()
                && let Some(entry) = self.entries.remove(&key)
            {
                self.tombstones.add(key, &entry.record);
            }
        }
    }

    /// The entry under `key` unless it has expired (an expired one is removed, leaving a
    /// tombstone).
    pub(super) fn live(&mut self, key: &StoreKey, now: Timestamp) -> Option<&mut Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired {
            self.expire(key);
        }
        self.entries.get_mut(key)
    }

    /// Removes the entry under `key`, its tombstone and its forward (a delete: the
    /// session ended, it did not expire).
    pub(super) fn remove(&mut self, key: &StoreKey) {
        self.take(key);
        self.tombstones.remove(key);
        self.forwards.remove(key);
    }

    /// Removes the entry under `key` and returns its record (a renewal moves it).
    pub(super) fn take(&mut self, key: &StoreKey) -> Option<Arc<Record>> {
        let entry = self.entries.remove(key)?;
        self.order(entry.segment).remove(&(entry.expires_at, key.clone()));
        Some(entry.record)
    }

    /// Stores a new entry, evicting first if the shard is full, and drops the key's
    /// tombstone (a key is live or a tombstone, never both). `key` must not be stored
    /// already (the caller checked).
    pub(super) fn insert(
        &mut self,
        key: &StoreKey,
        record: Arc<Record>,
        expires_at: Timestamp,
        segment: Segment,
        now: Timestamp,
    ) {
        while self.entries.len() >= self.limits.capacity {
            if !self.evict_one(now) {
                break;
            }
        }
        let segment = self.make_room(segment);
        self.tombstones.remove(key);
        self.entries.insert(
            key.clone(),
            Entry {
                record,
                expires_at,
                segment,
            },
        );
        self.order(segment).insert((expires_at, key.clone()));
    }

    /// Evicts one entry: an expired one if there is one (it leaves a tombstone, as if
    /// purged), else the probation entry closest to expiring, else (probation is empty)
    /// the protected one closest to expiring (a live entry evicted leaves none).
    /// Returns whether anything was evicted.
    fn evict_one(&mut self, now: Timestamp) -> bool {
        let expired = self.expired_front(now);
        let segment = expired.unwrap_or(if self.probation.is_empty() {
            Segment::Protected
        } else {
            Segment::Probation
        });
        let Some((_, victim)) = self.order(segment).pop_first() else {
            return false;
        };
        if let Some(entry) = self.entries.remove(&victim)
            && expired.is_some()
        {
            self.tombstones.add(victim, &entry.record);
        }
        true
    }

    /// The segment an entry headed for `wanted` actually joins: when protected is full,
    /// its entry closest to expiring is demoted to probation to make room; a shard that
    /// protects nothing keeps everything in probation.
    fn make_room(&mut self, wanted: Segment) -> Segment {
        if wanted == Segment::Probation || self.limits.protected == 0 {
            return Segment::Probation;
        }
        if self.protected.len() >= self.limits.protected
            && let Some(demoted) = self.protected.pop_first()
        {
            if let Some(entry) = self.entries.get_mut(&demoted.1) {
                entry.segment = Segment::Probation;
            }
            self.probation.insert(demoted);
        }
        Segment::Protected
    }

    /// Records a use of the stored entry under `key` (a load hit, an applied patch or
    /// touch): it moves to protected, with `expires_at` as its new expiry.
    pub(super) fn used(&mut self, key: &StoreKey, expires_at: Timestamp) {
        let Some(&Entry {
            expires_at: old,
            segment,
            ..
        }) = self.entries.get(key)
        else {
            return;
        };
        if segment == Segment::Protected && old == expires_at {
            return;
        }
        let ordered = self
            .order(segment)
            .take(&(old, key.clone()))
            .map_or_else(|| key.clone(), |(_, key)| key);
        let segment = match segment {
            Segment::Protected => Segment::Protected,
            Segment::Probation => self.make_room(Segment::Protected),
        };
        if let Some(entry) = self.entries.get_mut(key) {
            entry.expires_at = expires_at;
            entry.segment = segment;
        }
        self.order(segment).insert((expires_at, ordered));
    }
}

impl Entry {
    pub(super) fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    pub(super) fn is_protected(&self) -> bool {
        self.segment == Segment::Protected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit_core::Namespace;

    fn key(n: u32) -> StoreKey {
        let mut digest = [0u8; 32];
        digest[..4].copy_from_slice(&n.to_le_bytes());
        StoreKey::from_digest(Namespace::new("test").expect("ns"), digest)
    }

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn fresh(created: u64) -> Arc<Record> {
        Arc::new(Record::new(at(created), serde_json::Map::new()))
    }

    impl Shard {
        /// Every entry is in exactly the order its segment names, under its expiry, and
        /// the bounds hold.
        fn check(&self) {
            assert_eq!(self.probation.len() + self.protected.len(), self.entries.len());
            assert!(self.entries.len() <= self.limits.capacity);
            assert!(self.protected.len() <= self.limits.protected);
            self.tombstones.check();
            assert!(self.tombstones.len() <= self.limits.capacity);
            for key in self.entries.keys() {
                assert!(self.tombstone(key).is_none(), "{key:?} is live, not a tombstone");
            }
            for (key, entry) in &self.entries {
                let order = match entry.segment {
                    Segment::Probation => &self.probation,
                    Segment::Protected => &self.protected,
                };
                assert!(
                    order.contains(&(entry.expires_at, key.clone())),
                    "{key:?} in its order"
                );
            }
        }

        fn segment(&self, n: u32) -> Option<Segment> {
            self.entries.get(&key(n)).map(|e| e.segment)
        }
    }

    #[test]
    fn limits_leave_a_fifth_and_at_least_one_slot_to_probation() {
        for (capacity, protected) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (5, 4),
            (6, 4),
            (100, 80),
            (3125, 2500),
        ] {
            let limits = Limits::new(capacity);
            assert_eq!(limits.protected, protected, "capacity {capacity}");
            assert!(limits.protected < limits.capacity);
        }
    }

    #[test]
    fn a_use_promotes_and_a_full_protected_segment_demotes_its_soonest_to_expire() {
        let mut shard = Shard::new(Limits::new(5)); // 4 protected at most
        let now = at(0);
        for n in 0..5 {
            shard.insert(&key(n), fresh(0), at(100 + u64::from(n)), Segment::Probation, now);
        }
        for n in 0..4 {
            shard.used(&key(n), at(200 + u64::from(n)));
        }
        shard.check();
        assert_eq!(shard.protected.len(), 4);
        assert_eq!(shard.segment(4), Some(Segment::Probation));
        // Promoting a fifth demotes key 0, the protected one closest to expiring.
        shard.used(&key(4), at(300));
        shard.check();
        assert_eq!(shard.segment(0), Some(Segment::Probation));
        assert_eq!(shard.segment(4), Some(Segment::Protected));
        // A new session evicts from probation: key 0, the only one there.
        shard.insert(&key(5), fresh(0), at(400), Segment::Probation, now);
        shard.check();
        assert_eq!(shard.segment(0), None);
        assert_eq!(shard.len(), 5);
    }

    #[test]
    fn a_shard_of_one_protects_nothing() {
        let mut shard = Shard::new(Limits::new(1));
        shard.insert(&key(0), fresh(0), at(100), Segment::Protected, at(0));
        shard.used(&key(0), at(150));
        assert_eq!(shard.segment(0), Some(Segment::Probation));
        shard.insert(&key(1), fresh(0), at(200), Segment::Probation, at(0));
        shard.check();
        assert_eq!(shard.segment(0), None);
        assert_eq!(shard.segment(1), Some(Segment::Probation));
    }

    #[test]
    fn expired_entries_go_before_live_ones_whatever_their_segment() {
        let mut shard = Shard::new(Limits::new(3));
        shard.insert(&key(0), fresh(0), at(10), Segment::Protected, at(0));
        shard.insert(&key(1), fresh(0), at(100), Segment::Probation, at(0));
        shard.insert(&key(2), fresh(0), at(100), Segment::Protected, at(0));
        // At 50 key 0 (protected) has expired: it goes, not the live probation key 1.
        shard.insert(&key(3), fresh(50), at(150), Segment::Probation, at(50));
        shard.check();
        assert_eq!(shard.segment(0), None);
        assert_eq!(shard.segment(1), Some(Segment::Probation));
        // The purge takes expired entries from both segments.
        shard.purge(at(100));
        shard.check();
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.segment(3), Some(Segment::Probation));
    }

    #[test]
    fn expiry_leaves_a_tombstone_and_live_eviction_or_delete_none() {
        let mut shard = Shard::new(Limits::new(3));
        let mut used = fresh(0);
        Arc::make_mut(&mut used).last_seen = at(5);
        shard.insert(&key(0), used, at(10), Segment::Protected, at(0));
        shard.insert(&key(1), fresh(0), at(20), Segment::Probation, at(0));
        shard.insert(&key(2), fresh(0), at(30), Segment::Protected, at(0));
        // Full at 15 with key 0 expired: making room takes it, as an expiry.
        shard.insert(&key(3), fresh(15), at(100), Segment::Probation, at(15));
        let tombstone = shard.tombstone(&key(0)).expect("expired, so remembered");
        assert_eq!((tombstone.created_at, tombstone.last_seen), (at(0), at(5)));
        // Full again, nothing expired: probation's key 1 is evicted alive, no tombstone.
        shard.insert(&key(4), fresh(15), at(100), Segment::Probation, at(15));
        assert_eq!(shard.segment(1), None);
        assert!(shard.tombstone(&key(1)).is_none());
        // Found expired by a call.
        assert!(shard.live(&key(2), at(30)).is_none());
        assert!(shard.tombstone(&key(2)).is_some());
        // Purged.
        shard.purge(at(100));
        assert!(shard.tombstone(&key(3)).is_some() && shard.tombstone(&key(4)).is_some());
        shard.check();
        // A delete drops the tombstone; so does a new record under the key.
        shard.remove(&key(3));
        assert!(shard.tombstone(&key(3)).is_none());
        shard.insert(&key(4), fresh(100), at(200), Segment::Probation, at(100));
        assert!(shard.tombstone(&key(4)).is_none());
        shard.remove(&key(4));
        // Bounded by the shard's capacity, oldest first out.
        for n in 10..14 {
            shard.insert(&key(n), fresh(100), at(101), Segment::Probation, at(100));
            shard.purge(at(101));
        }
        shard.check();
        assert!(shard.tombstone(&key(0)).is_none() && shard.tombstone(&key(2)).is_none());
        assert!(shard.tombstone(&key(11)).is_some() && shard.tombstone(&key(13)).is_some());
        shard.clear();
        assert!(shard.tombstone(&key(13)).is_none());
    }

    #[test]
    fn any_sequence_of_calls_keeps_the_indexes_consistent_and_bounded() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for capacity in [1, 2, 5, 17] {
            let mut shard = Shard::new(Limits::new(capacity));
            let mut now = 0;
            for _ in 0..5_000 {
                now += next(3);
                let n = u32::try_from(next(40)).expect("small");
                let expires = at(now + 1 + next(50));
                match next(5) {
                    0 | 1 => {
                        if shard.live(&key(n), at(now)).is_none() {
                            let segment = if next(4) == 0 {
                                Segment::Protected
                            } else {
                                Segment::Probation
                            };
                            shard.insert(&key(n), fresh(now), expires, segment, at(now));
                        }
                    }
                    2 | 3 => {
                        if shard.live(&key(n), at(now)).is_some() {
                            shard.used(&key(n), expires);
                        }
                    }
                    _ => shard.remove(&key(n)),
                }
                shard.purge(at(now));
                shard.check();
            }
        }
    }
}
