//! How a record maps onto a table row, in PostgreSQL's binary wire format, and how the
//! columns a load returns are decoded.
//!
//! | column | type | holds |
//! |---|---|---|
//! | `data` | `jsonb` | the session data, a JSON object |
//! | `created_at` | `timestamptz` | creation time |
//! | `last_seen` | `timestamptz` | last-seen time |
//!
//! Timestamps are written with millisecond precision (sessionkit's unit) and clamped to
//! 1970..=9999; a stored timestamp with finer precision is truncated to the
//! millisecond. A row whose `data` is not a JSON object, whose timestamps are before
//! 1970 or infinite, or whose columns are NULL, is undecodable: the driver reports it
//! as [`LoadResult::Corrupt`], and the session layer logs it and treats it as missing.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value};
use sessionkit::{LoadResult, Record, Timestamp};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The latest instant written: 9999-12-31T23:59:59.999Z.
pub const MAX_MILLIS: u64 = 253_402_300_799_999;
/// The jsonb binary format version byte.
const JSONB_VERSION: u8 = 1;

/// Why stored columns are not a record. The messages never include stored data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A column is NULL.
    #[error("the stored `{0}` column is NULL")]
    Null(&'static str),
    /// The `data` column is not in jsonb's binary format.
    #[error("the stored data is not jsonb")]
    NotJsonb,
    /// The `data` column is JSON, but not a JSON object.
    #[error("the stored data is not a JSON object")]
    NotAnObject,
    /// The `data` column is not valid JSON.
    #[error("the stored data is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// A timestamp column is not an 8-byte `timestamptz`, or lies outside 1970 to the
    /// end of time (`infinity`).
    #[error("the stored `{0}` column is not a usable timestamp")]
    Timestamp(&'static str),
}

/// A `timestamptz` parameter at millisecond precision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PgTime(i64);

impl PgTime {
    /// `at`, clamped to [`MAX_MILLIS`].
    pub(crate) fn new(at: Timestamp) -> Self {
        let millis = at.as_millis().min(MAX_MILLIS);
        // MAX_MILLIS * 1000 fits in an i64 with room to spare.
        let micros = i64::try_from(millis).unwrap_or(i64::MAX / 2_000) * 1_000;
        PgTime(micros - PG_EPOCH_MICROS)
    }
}

impl ToSql for PgTime {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    to_sql_checked!();
}

/// A column's raw bytes in binary format, decoded by [`decode_row`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::TIMESTAMPTZ
    }
}

/// Decodes the `data`, `created_at` and `last_seen` columns of a row, each as its raw
/// binary-format bytes (`None` for NULL).
///
/// # Errors
/// [`DecodeError`] when the columns are not a record.
pub fn decode_row(
    data: Option<&[u8]>,
    created: Option<&[u8]>,
    seen: Option<&[u8]>,
) -> Result<Record, DecodeError> {
    let data = data.ok_or(DecodeError::Null("data"))?;
    let created = created.ok_or(DecodeError::Null("created_at"))?;
    let seen = seen.ok_or(DecodeError::Null("last_seen"))?;
    let created_at = decode_time(created).ok_or(DecodeError::Timestamp("created_at"))?;
    let last_seen = decode_time(seen).ok_or(DecodeError::Timestamp("last_seen"))?;
    Ok(Record {
        created_at,
        last_seen,
        data: decode_data(data)?,
    })
}

fn decode_data(raw: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let Some((&JSONB_VERSION, text)) = raw.split_first() else {
        return Err(DecodeError::NotJsonb);
    };
    match serde_json::from_slice(text).map_err(DecodeError::Json)? {
        Value::Object(map) => Ok(map),
        _ => Err(DecodeError::NotAnObject),
    }
}

fn decode_time(raw: &[u8]) -> Option<Timestamp> {
    let micros = i64::from_be_bytes(raw.try_into().ok()?);
    let unix_micros = micros.checked_add(PG_EPOCH_MICROS)?;
    let millis = u64::try_from(unix_micros.div_euclid(1_000)).ok()?;
    Some(Timestamp::from_millis(millis))
}

/// Whether `value` holds the NUL character in a string or an object key, which jsonb
/// cannot store.
pub(crate) fn has_nul(value: &Value) -> bool {
    // An explicit stack: values built in Rust can be nested arbitrarily deep.
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// Maps decoded columns to what a load returns.
pub(crate) fn load_result(decoded: Result<Record, DecodeError>) -> LoadResult {
    match decoded {
        Ok(record) => LoadResult::Found(record),
        Err(_) => LoadResult::Corrupt,
    }
}

/// Decodes raw bytes as if the store had returned them; the entry point of the
/// `postgres_record` fuzz target and of the corpus replay test.
///
/// Framing: byte 0 is a NULL mask (bit 0 `data`, bit 1 `created_at`, bit 2
/// `last_seen`); byte 1 is the length of `created_at`, followed by its bytes; then one
/// length byte and the bytes of `last_seen`; the rest is `data`. Missing bytes read as
/// empty columns.
///
/// **Unstable**: only with the `internal` feature, which is not covered by semver; for
/// the fuzz targets and the corpus replay tests, not for applications.
#[cfg(any(test, feature = "internal"))]
pub fn decode_stored(bytes: &[u8]) -> LoadResult {
    fn take<'a>(bytes: &mut &'a [u8]) -> &'a [u8] {
        let Some((&len, rest)) = bytes.split_first() else {
            return &[];
        };
        let (column, rest) = rest.split_at(usize::from(len).min(rest.len()));
        *bytes = rest;
        column
    }
    let Some((&mask, mut rest)) = bytes.split_first() else {
        return LoadResult::Corrupt;
    };
    let created = take(&mut rest);
    let seen = take(&mut rest);
    let present = |bit: u8| mask & bit == 0;
    let data = present(1).then_some(rest);
    let created = present(2).then_some(created);
    let seen = present(4).then_some(seen);
    load_result(decode_row(data, created, seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn time(at: Timestamp) -> [u8; 8] {
        PgTime::new(at).0.to_be_bytes()
    }

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        for millis in [0, 1, 999, 1_700_000_000_123, MAX_MILLIS] {
            let at = Timestamp::from_millis(millis);
            assert_eq!(decode_time(&time(at)), Some(at));
        }
        assert_eq!(
            decode_time(&time(Timestamp::MAX)),
            Some(Timestamp::from_millis(MAX_MILLIS)),
            "clamped"
        );
        // 2000-01-01 is zero on the wire.
        assert_eq!(PgTime::new(Timestamp::from_millis(946_684_800_000)).0, 0);
        // Microseconds are truncated towards the past.
        assert_eq!(
            decode_time(&1_999i64.to_be_bytes()),
            Some(Timestamp::from_millis(946_684_800_001))
        );
        for bad in [
            &i64::MAX.to_be_bytes()[..],
            &i64::MIN.to_be_bytes(),
            &(-PG_EPOCH_MICROS - 1).to_be_bytes(),
            &[0; 7],
            &[0; 9],
        ] {
            assert_eq!(decode_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rows_decode_and_reject_other_shapes() {
        let created = time(Timestamp::from_millis(10));
        let seen = time(Timestamp::from_millis(20));
        let data = b"\x01{\"a\": [1, {\"b\": null}]}";
        let record = decode_row(Some(data), Some(&created), Some(&seen)).expect("decodes");
        assert_eq!(record.created_at, Timestamp::from_millis(10));
        assert_eq!(record.last_seen, Timestamp::from_millis(20));
        assert_eq!(Value::Object(record.data), json!({"a": [1, {"b": null}]}));
        for bad_data in [
            &b""[..],
            b"{}",
            b"\x02{}",
            b"\x01[]",
            b"\x01\"x\"",
            b"\x01{",
            b"\x01\xff",
        ] {
            assert!(decode_row(Some(bad_data), Some(&created), Some(&seen)).is_err());
        }
        assert!(decode_row(None, Some(&created), Some(&seen)).is_err());
        assert!(decode_row(Some(data), None, Some(&seen)).is_err());
        assert!(decode_row(Some(data), Some(&created), None).is_err());
    }

    #[test]
    fn nul_is_found_anywhere() {
        assert!(!has_nul(&json!({"a": ["b", {"c": "d"}], "e": 1})));
        assert!(has_nul(&json!({"a": ["b", {"c": "d\u{0}"}]})));
        assert!(has_nul(&json!({"a\u{0}": 1})));
        assert!(has_nul(&json!("\u{0}")));
        let mut deep = json!("\u{0}");
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(has_nul(&deep));
        // Dropping a value this deep recurses; leak it instead of overflowing the stack.
        std::mem::forget(deep);
    }

    #[test]
    fn fuzz_framing() {
        assert_eq!(decode_stored(b""), LoadResult::Corrupt);
        let mut input = vec![0u8, 8];
        input.extend(time(Timestamp::from_millis(5)));
        input.push(8);
        input.extend(time(Timestamp::from_millis(6)));
        input.extend(b"\x01{\"k\": \"v\"}");
        match decode_stored(&input) {
            LoadResult::Found(record) => {
                assert_eq!(record.created_at, Timestamp::from_millis(5));
                assert_eq!(record.last_seen, Timestamp::from_millis(6));
                assert_eq!(record.data["k"], "v");
            }
            other => panic!("{other:?}"),
        }
        input[0] = 1;
        assert_eq!(decode_stored(&input), LoadResult::Corrupt, "NULL data");
    }
}
