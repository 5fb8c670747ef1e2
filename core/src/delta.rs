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
    /// `Some(value)`: set; `None`: removed.
    changes: BTreeMap<String, Option<Value>>,
}

impl Delta {
    pub(crate) fn get<'a>(&'a self, original: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
        match self.changes.get(key) {
            Some(change) => change.as_ref(),
            None if self.cleared => None,
            None => original.get(key),
        }
    }

    pub(crate) fn set(&mut self, key: String, value: Value) {
        self.changes.insert(key, Some(value));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.changes.insert(key.to_owned(), None);
    }

    /// Whether this request set or removed `key`.
    pub(crate) fn changes_key(&self, key: &str) -> bool {
        self.changes.contains_key(key)
    }

    /// Whether this request cleared the data.
    pub(crate) fn is_cleared(&self) -> bool {
        self.cleared
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.changes.clear();
    }

    /// Keys present in the current view, sorted.
    pub(crate) fn keys<'a>(&'a self, original: &'a Map<String, Value>) -> impl Iterator<Item = &'a str> {
        let kept = original
            .keys()
            .filter(move |k| !self.cleared && !self.changes.contains_key(k.as_str()));
        let set = self.changes.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k);
        let mut all: Vec<&str> = kept.chain(set).map(String::as_str).collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// The current view as a full map (for creating or sealing a record).
    pub(crate) fn view(&self, original: &Map<String, Value>) -> Map<String, Value> {
        let mut out = if self.cleared {
            Map::new()
        } else {
            original.clone()
        };
        for (key, change) in &self.changes {
            match change {
                Some(value) => {
                    out.insert(key.clone(), value.clone());
                }
                None => {
                    out.remove(key);
                }
            }
        }
        out
    }

    /// Whether the current view differs from `original`, without building the patch.
    pub(crate) fn changes(&self, original: &Map<String, Value>) -> bool {
        if self.cleared {
            !self.cleared_view_equals(original)
        } else {
            self.effective(original).next().is_some()
        }
    }

    /// After `clear`, whether the keys set since equal `original` exactly.
    fn cleared_view_equals(&self, original: &Map<String, Value>) -> bool {
        let mut set = self
            .changes
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        set.clone().count() == original.len() && set.all(|(k, v)| original.get(k) == Some(v))
    }

    /// Without `clear`: the recorded changes that really change `original`.
    fn effective<'a>(
        &'a self,
        original: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a String, Option<&'a Value>)> {
        self.changes.iter().filter_map(move |(key, change)| match change {
            Some(value) if original.get(key) != Some(value) => Some((key, Some(value))),
            None if original.contains_key(key) => Some((key, None)),
            _ => None,
        })
    }

    /// The minimal patch from `original` to the current view, or `None` if the view
    /// equals the original.
    pub(crate) fn patch(&self, original: &Map<String, Value>, last_seen: Timestamp) -> Option<Patch> {
        let mut patch = Patch {
            clear: self.cleared,
            last_seen,
            ..Patch::default()
        };
        if self.cleared {
            if self.cleared_view_equals(original) {
                return None;
            }
            patch.set = self
                .changes
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
                .collect();
            return Some(patch);
        }
        for (key, change) in self.effective(original) {
            match change {
                Some(value) => {
                    patch.set.insert(key.clone(), value.clone());
                }
                None => patch.remove.push(key.clone()),
            }
        }
        patch.changes_data().then_some(patch)
    }

    /// Whether anything at all was recorded (even a no-op), for logging dropped changes.
    pub(crate) fn is_empty(&self) -> bool {
        !self.cleared && self.changes.is_empty()
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
