//! The change set of one request over the session as it was loaded.
//!
//! Like a cookie jar's delta, the original data is never copied or modified: reads look
//! at the delta first and fall back to the original, writes go to the delta. At the end
//! the delta is reduced to a [`Patch`] that names only the keys whose value really
//! changed, so setting a key to the value it already had writes nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::record::Patch;
use crate::time::Timestamp;

#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    cleared: bool,
    /// Keys set, with their new values. A key is in `set` or `removed`, never both.
    set: BTreeMap<String, Value>,
    /// Keys removed.
    removed: Vec<String>,
}

impl Delta {
    /// The value of `key` as things stand: the change if there is one, else the
    /// original (unless cleared).
    pub(crate) fn get<'a>(&'a self, original: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
        if let Some(value) = self.set.get(key) {
            return Some(value);
        }
        if self.cleared || self.removed.iter().any(|k| k == key) {
            return None;
        }
        original.get(key)
    }

    pub(crate) fn set(&mut self, key: String, value: Value) {
        self.removed.retain(|k| *k != key);
        self.set.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.set.remove(key);
        if !self.removed.iter().any(|k| k == key) {
            self.removed.push(key.to_owned());
        }
    }

    /// Whether this request set or removed `key`.
    pub(crate) fn changes_key(&self, key: &str) -> bool {
        self.set.contains_key(key) || self.removed.iter().any(|k| k == key)
    }

    pub(crate) fn is_cleared(&self) -> bool {
        self.cleared
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.set.clear();
        self.removed.clear();
    }

    /// Every key as things stand, sorted.
    pub(crate) fn keys<'a>(&'a self, original: &'a Map<String, Value>) -> impl Iterator<Item = &'a str> {
        let kept = original
            .keys()
            .filter(move |k| !self.cleared && !self.changes_key(k.as_str()));
        let mut all: Vec<&str> = kept.chain(self.set.keys()).map(String::as_str).collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// The data as things stand, as one map (for writing a whole record).
    pub(crate) fn view(&self, original: &Map<String, Value>) -> Map<String, Value> {
        let mut out = self.kept(original);
        out.extend(self.set.iter().map(|(key, value)| (key.clone(), value.clone())));
        out
    }

    /// [`view`](Self::view), consuming the delta: its keys and values move into the map.
    pub(crate) fn into_view(self, original: &Map<String, Value>) -> Map<String, Value> {
        let mut out = self.kept(original);
        out.extend(self.set);
        out
    }

    /// What is kept of the original: nothing after a clear, else all but the removed keys.
    fn kept(&self, original: &Map<String, Value>) -> Map<String, Value> {
        if self.cleared {
            return Map::new();
        }
        let mut out = original.clone();
        for key in &self.removed {
            out.remove(key);
        }
        out
    }

    /// Whether the data as things stand has a key other than `except`, without
    /// listing the keys.
    pub(crate) fn has_key_other_than(&self, original: &Map<String, Value>, except: &str) -> bool {
        self.set.keys().any(|key| key != except)
            || (!self.cleared && original.keys().any(|key| key != except && !self.changes_key(key)))
    }

    /// Whether the data as things stand differs from the original.
    pub(crate) fn changes(&self, original: &Map<String, Value>) -> bool {
        if self.cleared {
            !self.cleared_view_equals(original)
        } else {
            self.effective_sets(original).next().is_some()
                || self.effective_removals(original).next().is_some()
        }
    }

    fn cleared_view_equals(&self, original: &Map<String, Value>) -> bool {
        self.set.len() == original.len() && self.set.iter().all(|(k, v)| original.get(k) == Some(v))
    }

    fn effective_sets<'a>(
        &'a self,
        original: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.set
            .iter()
            .filter(move |(key, value)| original.get(key.as_str()) != Some(*value))
    }

    fn effective_removals<'a>(
        &'a self,
        original: &'a Map<String, Value>,
    ) -> impl Iterator<Item = &'a String> {
        self.removed
            .iter()
            .filter(move |key| original.contains_key(key.as_str()))
    }

    /// The per-key patch of the changes that really change something: keys set to the
    /// value they already had and removals of absent keys are left out. `None` when
    /// nothing changes.
    #[cfg(test)]
    pub(crate) fn patch(&self, original: &Map<String, Value>, last_seen: Timestamp) -> Option<Patch> {
        self.clone().into_patch(original, last_seen)
    }

    /// [`patch`](Self::patch), consuming the delta: its keys and values move into the
    /// patch, nothing is copied.
    pub(crate) fn into_patch(mut self, original: &Map<String, Value>, last_seen: Timestamp) -> Option<Patch> {
        if self.cleared {
            if self.cleared_view_equals(original) {
                return None;
            }
            return Some(Patch {
                clear: true,
                set: self.set,
                remove: Vec::new(),
                last_seen,
            });
        }
        self.set
            .retain(|key, value| original.get(key.as_str()) != Some(value));
        self.removed.retain(|key| original.contains_key(key.as_str()));
        self.removed.sort_unstable();
        let patch = Patch {
            clear: false,
            set: self.set,
            remove: self.removed,
            last_seen,
        };
        patch.changes_data().then_some(patch)
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.cleared && self.set.is_empty() && self.removed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use serde_json::json;

    fn original() -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("a".into(), json!(1));
        map.insert("b".into(), json!("two"));
        map
    }

    #[test]
    fn reads_see_writes_and_fall_back() {
        let orig = original();
        let mut delta = Delta::default();
        delta.set("c".into(), json!(3));
        delta.remove("a");
        assert_eq!(delta.get(&orig, "a"), None);
        assert_eq!(delta.get(&orig, "b"), Some(&json!("two")));
        assert_eq!(delta.keys(&orig).collect::<Vec<_>>(), ["b", "c"]);
        delta.clear();
        assert_eq!(delta.get(&orig, "b"), None);
        assert!(delta.keys(&orig).next().is_none());
    }

    #[test]
    fn unchanged_values_write_nothing() {
        let orig = original();
        let mut delta = Delta::default();
        delta.set("a".into(), json!(1));
        delta.remove("missing");
        assert_eq!(delta.patch(&orig, Timestamp::EPOCH), None);
        assert!(!delta.changes(&orig));
        let mut cleared = Delta::default();
        cleared.clear();
        cleared.set("a".into(), json!(1));
        cleared.set("b".into(), json!("two"));
        assert_eq!(cleared.patch(&orig, Timestamp::EPOCH), None);
        assert!(!cleared.changes(&orig));
        cleared.remove("b");
        assert!(cleared.changes(&orig) && cleared.patch(&orig, Timestamp::EPOCH).is_some());
    }

    #[test]
    fn patch_applied_to_original_gives_the_view() {
        let orig = original();
        let mut delta = Delta::default();
        delta.set("a".into(), json!(10));
        delta.remove("b");
        delta.set("c".into(), json!([1]));
        let patch = delta.patch(&orig, Timestamp::from_millis(5)).expect("changed");
        assert_eq!(patch.remove, ["b"]);
        let mut record = Record::new(Timestamp::EPOCH, orig.clone());
        patch.apply_to(&mut record);
        assert_eq!(record.data, delta.view(&orig));
    }
}
