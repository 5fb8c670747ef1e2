//! One key's atomic read-modify-write: a compare-and-set the store applies only if the
//! key still holds what the request read, so concurrent updates (counters, lists) are
//! never lost.

use serde_json::Value;

use crate::record::Record;
use crate::time::Timestamp;

/// A compare-and-set of one key of a stored session (the session layer's
/// `Session::update`; a driver's `update`).
///
/// It applies only to a live record whose value under `key` equals `expected`
/// (`None`: the key is absent), as JSON values (`1` and `1.0` differ, object key order
/// does not matter). Applying sets the key to `new` (`None`: removes it), moves
/// `last_seen`, and sets the record's expiry, like a patch.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the driver contract: a new part must fail to compile in each driver rather than be ignored"
)]
pub struct KeyUpdate {
    /// The data key.
    pub key: String,
    /// What the key must hold for the update to apply.
    pub expected: Option<Value>,
    /// The new value, or `None` to remove the key.
    pub new: Option<Value>,
    /// The new last-seen time.
    pub last_seen: Timestamp,
}

/// What a [`KeyUpdate`] found.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a compare-and-set applies, conflicts or finds nothing"
)]
pub enum UpdateResult {
    /// The key held the expected value; the update is stored.
    Applied,
    /// The key holds something else (given here, `None` for absent): nothing was
    /// written. The caller computes again from this value and retries.
    Conflict(Option<Value>),
    /// No live record (missing, expired, destroyed, a forward, or undecodable):
    /// nothing was written, and nothing must be created.
    Gone,
}

impl KeyUpdate {
    /// Applies the update to a decoded live record (for drivers that hold records):
    /// [`UpdateResult::Applied`] or [`UpdateResult::Conflict`], never `Gone` (the
    /// caller decides liveness).
    pub fn apply_to(&self, record: &mut Record) -> UpdateResult {
        let current = record.data.get(&self.key);
        if current != self.expected.as_ref() {
            return UpdateResult::Conflict(current.cloned());
        }
        match &self.new {
            Some(value) => {
                record.data.insert(self.key.clone(), value.clone());
            }
            None => {
                record.data.remove(&self.key);
            }
        }
        record.last_seen = self.last_seen;
        UpdateResult::Applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(expected: Option<Value>, new: Option<Value>) -> KeyUpdate {
        KeyUpdate {
            key: "n".to_owned(),
            expected,
            new,
            last_seen: Timestamp::from_millis(9),
        }
    }

    #[test]
    fn applies_only_over_the_expected_value() {
        let mut record = Record::new(Timestamp::from_millis(1), serde_json::Map::new());
        assert_eq!(
            update(Some(json!(0)), Some(json!(1))).apply_to(&mut record),
            UpdateResult::Conflict(None)
        );
        assert_eq!(
            update(None, Some(json!(1))).apply_to(&mut record),
            UpdateResult::Applied
        );
        assert_eq!(record.data["n"], json!(1));
        assert_eq!(record.last_seen, Timestamp::from_millis(9));
        assert_eq!(
            update(None, Some(json!(5))).apply_to(&mut record),
            UpdateResult::Conflict(Some(json!(1)))
        );
        assert_eq!(
            update(Some(json!(1.0)), Some(json!(2))).apply_to(&mut record),
            UpdateResult::Conflict(Some(json!(1))),
            "1 and 1.0 are different JSON"
        );
        assert_eq!(
            update(Some(json!(1)), None).apply_to(&mut record),
            UpdateResult::Applied
        );
        assert!(!record.data.contains_key("n"));
    }
}
