//! Tombstones of expired sessions: the key and the record's creation and last-seen
//! times (no data) of a shard's most recently expired sessions, so a lookup can tell an
//! expired session (and why it expired) from one the store never had.

use std::collections::{HashMap, VecDeque};

use sessionkit_core::{Record, StoreKey, Timestamp};

use super::hash::DigestHash;

/// What a tombstone remembers of an expired record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tombstone {
    /// When the expired session was created.
    pub(super) created_at: Timestamp,
    /// When it was last used, as last written.
    pub(super) last_seen: Timestamp,
}

/// At most `bound` tombstones, oldest first out.
#[derive(Debug)]
pub(super) struct Tombstones {
    bound: usize,
    /// Each tombstone with the sequence number it was added under.
    times: HashMap<StoreKey, (u64, Tombstone), DigestHash>,
    /// Insertion order. May still name tombstones dropped since (a delete, or a create
    /// reusing the key); those count against the bound too, which keeps both
    /// collections bounded without searching the queue. The sequence number tells a
    /// stale slot from the key's current tombstone, so dropping the one never drops the
    /// other.
    order: VecDeque<(u64, StoreKey)>,
    next: u64,
}

impl Tombstones {
    /// Room for `bound` tombstones (at least one).
    pub(super) fn new(bound: usize) -> Self {
        Tombstones {
            bound: bound.max(1),
            times: HashMap::default(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    /// Remembers that the record under `key` expired, dropping the oldest tombstones
    /// beyond the bound.
    pub(super) fn add(&mut self, key: StoreKey, record: &Record) {
        while self.order.len() >= self.bound {
            if let Some((seq, old)) = self.order.pop_front()
                && self.times.get(&old).is_some_and(|(current, _)| *current == seq)
            {
                self.times.remove(&old);
            }
        }
        let seq = self.next;
        self.next += 1;
        let tombstone = Tombstone {
            created_at: record.created_at,
            last_seen: record.last_seen,
        };
        self.times.insert(key.clone(), (seq, tombstone));
        self.order.push_back((seq, key));
    }

    /// The tombstone under `key`, if one is kept.
    pub(super) fn get(&self, key: &StoreKey) -> Option<Tombstone> {
        self.times.get(key).map(|(_, tombstone)| *tombstone)
    }

    /// Forgets the tombstone under `key`, if any.
    pub(super) fn remove(&mut self, key: &StoreKey) {
        self.times.remove(key);
    }

    /// Forgets every tombstone.
    pub(super) fn clear(&mut self) {
        self.times = HashMap::default();
        self.order = VecDeque::new();
    }

    /// The number of tombstones kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.times.len()
    }

    /// The queue never outgrows the bound, and every kept tombstone has its slot.
    #[cfg(test)]
    pub(super) fn check(&self) {
        assert!(self.order.len() <= self.bound);
        assert!(self.times.len() <= self.order.len());
        for (key, (seq, _)) in &self.times {
            assert!(self.order.contains(&(*seq, key.clone())), "{key:?} has its slot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit_core::Namespace;

    fn key(n: u8) -> StoreKey {
        StoreKey::from_digest(Namespace::new("test").expect("ns"), [n; 32])
    }

    fn record(created: u64, seen: u64) -> Record {
        let mut record = Record::new(Timestamp::from_millis(created), serde_json::Map::new());
        record.last_seen = Timestamp::from_millis(seen);
        record
    }

    #[test]
    fn the_oldest_go_first_beyond_the_bound() {
        let mut tombstones = Tombstones::new(3);
        for n in 0..5 {
            tombstones.add(key(n), &record(u64::from(n), u64::from(n) + 10));
            tombstones.check();
        }
        assert_eq!(tombstones.len(), 3);
        assert_eq!(tombstones.get(&key(0)), None);
        assert_eq!(tombstones.get(&key(1)), None);
        assert_eq!(
            tombstones.get(&key(4)),
            Some(Tombstone {
                created_at: Timestamp::from_millis(4),
                last_seen: Timestamp::from_millis(14),
            })
        );
    }

    #[test]
    fn a_stale_slot_does_not_drop_the_keys_newer_tombstone() {
        let mut tombstones = Tombstones::new(2);
        tombstones.add(key(0), &record(0, 1));
        // The key is reused (created again), then expires again.
        tombstones.remove(&key(0));
        tombstones.add(key(0), &record(5, 6));
        // The full queue drops the stale first slot of key 0, not its current tombstone.
        tombstones.add(key(1), &record(7, 8));
        tombstones.check();
        assert_eq!(
            tombstones.get(&key(0)).map(|t| t.created_at),
            Some(Timestamp::from_millis(5))
        );
        assert!(tombstones.get(&key(1)).is_some());
    }

    #[test]
    fn removed_tombstones_still_count_until_their_slot_leaves() {
        let mut tombstones = Tombstones::new(2);
        tombstones.add(key(0), &record(0, 0));
        tombstones.remove(&key(0));
        tombstones.add(key(1), &record(1, 1));
        tombstones.add(key(2), &record(2, 2));
        tombstones.check();
        assert_eq!(tombstones.len(), 2);
        assert!(tombstones.get(&key(1)).is_some() && tombstones.get(&key(2)).is_some());
    }
}
