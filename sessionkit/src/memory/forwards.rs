//! Forwards of renewed ids: for a grace window, the old store key answers lookups with
//! the new one (the driver contract's "Renewal and its grace window").

use std::collections::{BTreeSet, HashMap};

use sessionkit_core::{StoreKey, Timestamp};

use super::hash::DigestHash;

/// The forwards of one shard, bounded: past the bound the one that ends soonest goes
/// first (its in-flight requests then find nothing, as without a grace window).
#[derive(Debug)]
pub(super) struct Forwards {
    bound: usize,
    to: HashMap<StoreKey, (StoreKey, Timestamp), DigestHash>,
    order: BTreeSet<(Timestamp, StoreKey)>,
}

impl Forwards {
    pub(super) fn new(bound: usize) -> Self {
        Forwards {
            bound: bound.max(1),
            to: HashMap::default(),
            order: BTreeSet::new(),
        }
    }

    /// Where `from` forwards at `now`, if it still does.
    pub(super) fn get(&self, from: &StoreKey, now: Timestamp) -> Option<&StoreKey> {
        self.to
            .get(from)
            .filter(|(_, until)| *until > now)
            .map(|(to, _)| to)
    }

    /// Forwards `from` to `to` until `until`.
    pub(super) fn add(&mut self, from: StoreKey, to: StoreKey, until: Timestamp) {
        self.remove(&from);
        while self.to.len() >= self.bound {
            let Some((_, soonest)) = self.order.pop_first() else {
                break;
            };
            self.to.remove(&soonest);
        }
        self.order.insert((until, from.clone()));
        self.to.insert(from, (to, until));
    }

    pub(super) fn remove(&mut self, from: &StoreKey) {
        if let Some((_, until)) = self.to.remove(from) {
            self.order.remove(&(until, from.clone()));
        }
    }

    /// Drops the forwards whose window ended at `now`.
    pub(super) fn purge(&mut self, now: Timestamp) {
        while let Some((until, _)) = self.order.first()
            && *until <= now
        {
            if let Some((_, from)) = self.order.pop_first() {
                self.to.remove(&from);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.to = HashMap::default();
        self.order = BTreeSet::new();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.to.len()
    }
}

#[cfg(test)]
mod tests {
    use sessionkit_core::Namespace;

    use super::*;

    fn key(n: u8) -> StoreKey {
        StoreKey::from_digest(Namespace::shared(), [n; 32])
    }

    #[test]
    fn a_forward_answers_until_its_window_ends_and_the_bound_holds() {
        let mut forwards = Forwards::new(2);
        let at = Timestamp::from_millis;
        forwards.add(key(1), key(2), at(100));
        assert_eq!(forwards.get(&key(1), at(99)), Some(&key(2)));
        assert_eq!(forwards.get(&key(1), at(100)), None);
        forwards.add(key(3), key(4), at(300));
        forwards.add(key(5), key(6), at(200));
        assert_eq!(forwards.len(), 2, "bounded: the soonest to end went first");
        assert_eq!(forwards.get(&key(1), at(0)), None);
        forwards.purge(at(200));
        assert_eq!(forwards.len(), 1);
        assert_eq!(forwards.get(&key(3), at(250)), Some(&key(4)));
        forwards.remove(&key(3));
        assert_eq!(forwards.len(), 0);
    }
}
