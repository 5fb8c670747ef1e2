//! The session record a store keeps, the per-key patch that updates it, and the record's
//! JSON encoding for stores that keep blobs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::id::StoreKey;
use crate::time::Timestamp;

/// The encoding version written by [`Record::encode`].
pub const RECORD_VERSION: u64 = 1;

/// What a store keeps for one session.
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the driver contract: every driver stores every field, so a new field must fail to compile in each driver's codec rather than be dropped silently"
)]
pub struct Record {
    /// When the session was created; the absolute lifetime counts from here.
    pub created_at: Timestamp,
    /// When the session was last written or touched; the idle timeout counts from here.
    pub last_seen: Timestamp,
    /// The data, a JSON object.
    pub data: Map<String, Value>,
}

/// A per-key change to a stored record: what one request changed, nothing more.
///
/// Applying a patch is defined by [`Patch::apply_to`]; every driver must give the same
/// result (atomically per session). Because a patch names only the keys a request
/// changed, two requests that change different keys of one session both survive.
#[derive(Debug, Clone, PartialEq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the driver contract: every driver applies every part of a patch, so a new part must fail to compile in each driver rather than be ignored silently"
)]
pub struct Patch {
    /// Remove every key first (the handler called `clear`).
    pub clear: bool,
    /// Keys to set, with their new values.
    pub set: BTreeMap<String, Value>,
    /// Keys to remove.
    pub remove: Vec<String>,
    /// The new last-seen time.
    pub last_seen: Timestamp,
}

impl Patch {
    /// Applies the patch: clear (if asked), then remove, then set, then move last-seen.
    pub fn apply_to(&self, record: &mut Record) {
        if self.clear {
            record.data.clear();
        }
        for key in &self.remove {
            record.data.remove(key);
        }
        for (key, value) in &self.set {
            // A key already stored keeps its `String`: only the value is copied.
            match record.data.get_mut(key) {
                Some(slot) => slot.clone_from(value),
                None => {
                    record.data.insert(key.clone(), value.clone());
                }
            }
        }
        record.last_seen = self.last_seen;
    }

    /// Whether the patch changes the data (as opposed to only last-seen).
    pub fn changes_data(&self) -> bool {
        self.clear || !self.set.is_empty() || !self.remove.is_empty()
    }
}

/// An id renewal the store carries out in one call ([`Write::Rotate`]): the record
/// under `from` moves to `to` with `patch` applied, and `from` forwards to `to` until
/// `grace_until`, so requests still in flight with the old id reach the moved record.
///
/// A store that can do this atomically applies `patch` to the record as it is stored
/// *now* (so changes other requests made since this one loaded it are kept); one that
/// cannot writes `record` (this request's view) under `to` and deletes `from`.
///
/// [`Write::Rotate`]: crate::Write::Rotate
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the driver contract: a driver carries out every part of a rotation, so a new part must fail to compile in each driver rather than be ignored silently"
)]
pub struct Rotation {
    /// The old key.
    pub from: StoreKey,
    /// The new key.
    pub to: StoreKey,
    /// This request's view of the whole record (for stores that cannot move atomically).
    pub record: Record,
    /// This request's changes, with the new last-seen time.
    pub patch: Patch,
    /// The expiry of the moved record (expired once `now >= expires_at`).
    pub expires_at: Timestamp,
    /// Until when `from` forwards to `to`: the grace window's end, exclusive, like
    /// every expiry (from this instant on, `from` forwards and loads nothing).
    pub grace_until: Timestamp,
}

/// Why stored bytes are not a record.
///
/// A driver that meets one on a load answers [`LoadResult::Corrupt`], never an error;
/// the session layer logs that and treats the session as missing (a new session, under
/// a new id). A patch or touch that meets one writes nothing and answers
/// [`WriteResult::Gone`] (a store that writes without reading the record back may
/// apply the change and answer `Applied`; the record then still loads as `Corrupt`).
/// Either way the request does not fail because of it.
///
/// [`LoadResult::Corrupt`]: crate::LoadResult::Corrupt
/// [`WriteResult::Gone`]: crate::WriteResult::Gone
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not JSON.
    #[error("stored record is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// JSON, but not of the record's shape.
    #[error("stored record has an invalid shape: {0}")]
    Shape(&'static str),
    /// A record written by a newer or unknown encoding.
    #[error("stored record has unsupported version {0}")]
    Version(u64),
}

impl Record {
    /// A new record created at `now`.
    pub fn new(now: Timestamp, data: Map<String, Value>) -> Self {
        Record {
            created_at: now,
            last_seen: now,
            data,
        }
    }

    /// Encodes the record as JSON: `{"v":1,"created":ms,"seen":ms,"data":{...}}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"v\":1,\"created\":");
        out.extend_from_slice(self.created_at.as_millis().to_string().as_bytes());
        out.extend_from_slice(b",\"seen\":");
        out.extend_from_slice(self.last_seen.as_millis().to_string().as_bytes());
        out.extend_from_slice(b",\"data\":");
        // Serialising a map of JSON values into a Vec cannot fail: keys are strings and
        // writing to memory has no I/O error.
        serde_json::to_writer(&mut out, &self.data).expect("a JSON map always serialises");
        out.push(b'}');
        out
    }

    /// Decodes what [`Record::encode`] wrote.
    ///
    /// # Errors
    /// [`RecordError`] for anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let value: Value = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        let Value::Object(mut fields) = value else {
            return Err(RecordError::Shape("not an object"));
        };
        let version = fields
            .get("v")
            .and_then(Value::as_u64)
            .ok_or(RecordError::Shape("missing version"))?;
        if version != RECORD_VERSION {
            return Err(RecordError::Version(version));
        }
        let created = fields
            .get("created")
            .and_then(Value::as_u64)
            .ok_or(RecordError::Shape("missing or invalid created"))?;
        let seen = fields
            .get("seen")
            .and_then(Value::as_u64)
            .ok_or(RecordError::Shape("missing or invalid seen"))?;
        let Some(Value::Object(data)) = fields.remove("data") else {
            return Err(RecordError::Shape("missing or invalid data"));
        };
        if fields.len() != 3 {
            return Err(RecordError::Shape("unexpected field"));
        }
        Ok(Record {
            created_at: Timestamp::from_millis(created),
            last_seen: Timestamp::from_millis(seen),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Record {
        let mut data = Map::new();
        data.insert("a".into(), json!(1));
        data.insert("ü".into(), json!({"x": [1, 2, "three"]}));
        Record {
            created_at: Timestamp::from_millis(10),
            last_seen: Timestamp::from_millis(20),
            data,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let rec = record();
        assert_eq!(Record::decode(&rec.encode()).expect("decodes"), rec);
    }

    #[test]
    fn decode_rejects_other_shapes() {
        let cases: &[&[u8]] = &[
            b"",
            b"null",
            b"[]",
            b"{}",
            b"{\"v\":2,\"created\":1,\"seen\":1,\"data\":{}}",
            b"{\"v\":1,\"created\":-1,\"seen\":1,\"data\":{}}",
            b"{\"v\":1,\"created\":1,\"seen\":1,\"data\":[]}",
            b"{\"v\":1,\"created\":1,\"seen\":1}",
            b"{\"v\":1,\"created\":1,\"seen\":1,\"data\":{},\"x\":0}",
            b"\xff\xfe",
        ];
        for case in cases {
            assert!(
                Record::decode(case).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn patch_applies_clear_remove_set_in_order() {
        let mut rec = record();
        let patch = Patch {
            clear: false,
            set: [("b".to_owned(), json!(true))].into_iter().collect(),
            remove: vec!["a".into(), "missing".into()],
            last_seen: Timestamp::from_millis(99),
        };
        patch.apply_to(&mut rec);
        assert_eq!(rec.data.keys().collect::<Vec<_>>(), ["b", "ü"]);
        assert_eq!(rec.last_seen, Timestamp::from_millis(99));
        assert_eq!(rec.created_at, Timestamp::from_millis(10));
        let clear = Patch {
            clear: true,
            last_seen: Timestamp::from_millis(100),
            ..Patch::default()
        };
        assert!(clear.changes_data());
        clear.apply_to(&mut rec);
        assert!(rec.data.is_empty());
    }
}
