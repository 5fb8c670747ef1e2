//! How a record maps onto a table row, in PostgreSQL's binary wire format, and how the
//! columns a load returns are decoded.
//!
//! | column | type | holds |
//! |---|---|---|
//! | `data` | `jsonb` | the session data, a JSON object, its strings [escaped](crate::escape) |
//! | `created_at` | `timestamptz` | creation time |
//! | `last_seen` | `timestamptz` | last-seen time |
//! | `forward_to` | `bytea` | NULL for a record; in a forward, the new store key |
//!
//! A *forward* is the row a renewal ([`Driver::rotate`](sessionkit::Driver::rotate))
//! leaves under the old key for the grace window: `forward_to` holds the 32-byte
//! digest of the store key the record moved to (in the same namespace), `data` is `[]`
//! (which no record has), and `expires_at` is the end of the grace window. Loads,
//! patches and touches never take a forward for a record; a lookup answers it with
//! the new key ([`decode_forward`]). A `forward_to` that is not 32 bytes makes the row
//! undecodable.
//!
//! Timestamps are written with millisecond precision (sessionkit's unit) and clamped to
//! 1970..=9999; a stored timestamp with finer precision is truncated to the
//! millisecond. A row whose `data` is not a JSON object or holds a string that is not a
//! valid escape, whose timestamps are before
//! 1970 or infinite, or whose columns are NULL, is undecodable: the driver reports it
//! as [`LoadResult::Corrupt`], and the session layer logs it and treats it as missing.
//!
//! `jsonb` keeps numbers as `numeric`, which has no negative zero and prints what it
//! read in exponent form (`1e18`) as digits alone (`1000000000000000000`), which
//! `serde_json` would read back as an integer. Floats are therefore written as plain
//! decimals that always have a fraction (`1000000000000000000.0`, `0.000…05`): read
//! back, every number is the same `serde_json::Value` (`-0.0` comes back as `0.0`,
//! which compares equal).

use std::error::Error as StdError;
use std::io;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};
use serde_json::{Map, Value};
use sessionkit::{LoadResult, Record, Timestamp};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::escape;

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
    /// A string or object key of the data is not a form the driver writes: it starts
    /// with the escape marker (U+10FFFD) but is not a valid escape, or holds NUL.
    #[error("the stored data holds a string the driver never writes")]
    Escape,
    /// A timestamp column is not an 8-byte `timestamptz`, or lies outside 1970 to the
    /// end of time (`infinity`).
    #[error("the stored `{0}` column is not a usable timestamp")]
    Timestamp(&'static str),
    /// The `forward_to` column of a forward is not a 32-byte store key digest.
    #[error("the stored `forward_to` column is not a store key")]
    Forward,
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

/// Decodes the `forward_to` column of a forward row (its raw `bytea` bytes): the digest
/// of the store key the record moved to.
///
/// # Errors
/// [`DecodeError::Forward`] when it is not 32 bytes.
pub fn decode_forward(raw: &[u8]) -> Result<[u8; 32], DecodeError> {
    raw.try_into().map_err(|_| DecodeError::Forward)
}

fn decode_data(raw: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let Some((&JSONB_VERSION, text)) = raw.split_first() else {
        return Err(DecodeError::NotJsonb);
    };
    match serde_json::from_slice(text).map_err(DecodeError::Json)? {
        Value::Object(mut map) => {
            escape::unescape_map(&mut map).map_err(|escape::BadEscape| DecodeError::Escape)?;
            Ok(map)
        }
        _ => Err(DecodeError::NotAnObject),
    }
}

/// Compact JSON whose floats are plain decimals with a fraction, which `jsonb`'s
/// `numeric` keeps as floats.
struct PlainFloats;

impl Formatter for PlainFloats {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // `Display` writes the shortest digits that read back as `value`, never in
        // exponent form; `serde_json` writes non-finite floats as `null` itself.
        let digits = value.to_string();
        let fraction = if digits.contains('.') { "" } else { ".0" };
        write!(writer, "{digits}{fraction}")
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// The JSON text of the `data` column for `entries`: strings and keys
/// [escaped](crate::escape), floats as plain decimals. Never holds `\u0000`.
///
/// # Errors
/// None in practice: writing a `Value` to memory cannot fail, but the serializer's
/// signature says it may, and a write is better refused than stored wrong.
pub(crate) fn data_text<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<String, serde_json::Error> {
    let data = Value::Object(escape::escape_map(entries));
    let mut text = Vec::new();
    data.serialize(&mut Serializer::with_formatter(&mut text, PlainFloats))?;
    // The serializer writes UTF-8 only.
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The `data` column as PostgreSQL returns it in binary format (the jsonb version byte,
/// then the JSON text) for a record's data, as the driver writes it; the inverse of
/// the decoding in [`decode_row`] (up to what `jsonb` normalises: key order, `-0.0`).
///
/// **Unstable**: only with the `internal` feature, which is not covered by semver; for
/// the fuzz targets, not for applications.
///
/// # Errors
/// As the serializer, which never fails on a `Value` in practice.
#[cfg(any(test, feature = "internal"))]
pub fn encode_data(data: &Map<String, Value>) -> Result<Vec<u8>, serde_json::Error> {
    let mut raw = vec![JSONB_VERSION];
    raw.extend(data_text(data)?.into_bytes());
    Ok(raw)
}

fn decode_time(raw: &[u8]) -> Option<Timestamp> {
    let micros = i64::from_be_bytes(raw.try_into().ok()?);
    let unix_micros = micros.checked_add(PG_EPOCH_MICROS)?;
    let millis = u64::try_from(unix_micros.div_euclid(1_000)).ok()?;
    Some(Timestamp::from_millis(millis))
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
    fn floats_are_written_as_plain_decimals_and_read_back_equal() {
        let numbers = json!([
            1.797_693_134_862_315_7e308,
            5e-324,
            -0.0,
            0.1,
            1e18,
            -1.5e300,
            1.0,
            u64::MAX,
            i64::MIN
        ]);
        let data: Map<String, Value> = [("n".to_owned(), numbers.clone())].into_iter().collect();
        let raw = encode_data(&data).expect("encodes");
        let text = std::str::from_utf8(&raw[1..]).expect("UTF-8");
        assert!(!text.contains(['e', 'E']), "{text}");
        assert!(text.contains(",1000000000000000000.0,"), "{text}");
        assert!(text.contains("[179769313486231570000"), "{text}");
        assert!(text.contains(",-0.0,0.1,"), "{text}");
        assert!(
            text.contains(",18446744073709551615,-9223372036854775808]"),
            "{text}"
        );
        let back = decode_data(&raw).expect("decodes");
        assert_eq!(back["n"], numbers);
        for (got, sent) in back["n"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(numbers.as_array().into_iter().flatten())
        {
            assert_eq!(got.is_f64(), sent.is_f64(), "{sent}");
        }
    }

    #[test]
    fn forwards_hold_a_32_byte_digest() {
        let digest: [u8; 32] = core::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
        assert_eq!(decode_forward(&digest).expect("a digest"), digest);
        for bad in [&[][..], &[0; 31], &[0; 33], &[0xff; 64]] {
            assert!(
                matches!(decode_forward(bad), Err(DecodeError::Forward)),
                "{bad:?}"
            );
        }
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
