//! How a record is laid out in a Redis hash, and how a `HGETALL` reply is read back.
//!
//! One hash per session, with three reserved fields and one field per data key:
//!
//! | field | value |
//! |---|---|
//! | `v` | the layout version, `1` |
//! | `created` | creation time, milliseconds since the Unix epoch, in decimal |
//! | `seen` | last-seen time, the same way |
//! | `d:<key>` | the value of data key `<key>`, as JSON text |
//!
//! Data keys are prefixed so that no data key can collide with a reserved field, and so
//! a patch can write and delete single keys with `HSET`/`HDEL`. Anything else in the
//! hash (an unknown field, a bad number, a value that is not JSON, a field name that is
//! not UTF-8) makes the record undecodable: the driver reports it as
//! [`LoadResult::Corrupt`], and the session layer logs
//! it and treats it as missing.
//!
//! # Forwards
//!
//! When an id is renewed ([`Driver::rotate`](sessionkit::Driver::rotate)), the old key
//! holds a *forward* for the grace window instead of a record: a hash with exactly one
//! field,
//!
//! | field | value |
//! |---|---|
//! | `fwd` | the store key the record moved to: its 64 lowercase hex digits (the same namespace) |
//!
//! and the key expires at the end of the grace window. A record never has a `fwd`
//! field (data fields all start with `d:`), so the same `HGETALL` that loads a record
//! tells a forward apart ([`decode_entry`]). A forward holds a store key, never a
//! session id. A hash with a `fwd` field and anything else, or whose `fwd` is not 64
//! lowercase hex digits, is undecodable ([`DecodeError::Forward`]).

use redis::Value as Reply;
use serde_json::{Map, Value};
use sessionkit::{LoadResult, Record, StoreKey, Timestamp};

/// The layout version written into field [`VERSION_FIELD`].
pub const LAYOUT_VERSION: &str = "1";
/// The field holding the layout version.
pub const VERSION_FIELD: &str = "v";
/// The field holding the creation time.
pub const CREATED_FIELD: &str = "created";
/// The field holding the last-seen time.
pub const SEEN_FIELD: &str = "seen";
/// The prefix of every data field.
pub const DATA_PREFIX: &str = "d:";
/// The only field of a forward (see [Forwards](self#forwards)).
pub const FORWARD_FIELD: &str = "fwd";

/// What a session hash holds: a record, or a forward left by a renewal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Entry {
    /// A session record.
    Record(Record),
    /// A forward to the record's new store key, given by its digest (the namespace is
    /// the forward's own).
    Forward([u8; 32]),
}

/// Why a stored hash is not a record. The messages never include stored bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The reply is not a hash (a key of another type, or an unexpected reply shape).
    #[error("the stored value is not a session hash")]
    NotAHash,
    /// A reserved field is missing.
    #[error("the stored hash lacks the `{0}` field")]
    MissingField(&'static str),
    /// A field appears twice in the reply.
    #[error("the stored hash repeats a field")]
    DuplicateField,
    /// A field that is neither reserved nor a data field.
    #[error("the stored hash has an unknown field")]
    UnknownField,
    /// The layout version is not [`LAYOUT_VERSION`].
    #[error("the stored hash has an unsupported layout version")]
    Version,
    /// A timestamp field is not a decimal number of milliseconds.
    #[error("the stored `{0}` field is not a timestamp")]
    Timestamp(&'static str),
    /// A data field name is not UTF-8.
    #[error("a stored data key is not UTF-8")]
    KeyNotUtf8,
    /// A data value is not JSON.
    #[error("a stored data value is not JSON")]
    Json(#[source] serde_json::Error),
    /// A hash with a `fwd` field that is not a forward: it has other fields too, or its
    /// target is not 64 lowercase hex digits.
    #[error("the stored hash is not a valid forward")]
    Forward,
}

/// The hash fields `record` is stored as, in the layout described in the
/// [module documentation](self): the reserved fields first, then one per data key.
pub fn encode_fields(record: &Record) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut fields = Vec::with_capacity(3 + record.data.len());
    fields.push((VERSION_FIELD.into(), LAYOUT_VERSION.into()));
    fields.push((CREATED_FIELD.into(), millis(record.created_at).into_bytes()));
    fields.push((SEEN_FIELD.into(), millis(record.last_seen).into_bytes()));
    for (key, value) in &record.data {
        fields.push((data_field(key), json(value)));
    }
    fields
}

/// The hash field of data key `key`.
pub fn data_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    field.extend_from_slice(DATA_PREFIX.as_bytes());
    field.extend_from_slice(key.as_bytes());
    field
}

/// A value as the JSON text stored in its field.
pub(crate) fn json(value: &Value) -> Vec<u8> {
    // `Display` of a JSON value is its compact JSON text and cannot fail.
    value.to_string().into_bytes()
}

/// A timestamp as stored: decimal milliseconds.
pub(crate) fn millis(at: Timestamp) -> String {
    at.as_millis().to_string()
}

/// The value of the [`FORWARD_FIELD`] of a forward to `to`: its digest in lowercase
/// hex.
pub fn forward_value(to: &StoreKey) -> Vec<u8> {
    to.to_hex().into_bytes()
}

/// A digest as 64 lowercase hex digits (store keys in forwards and user indexes,
/// user index keys).
pub(crate) fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The digest written by [`forward_value`] or [`hex`]: exactly 64 lowercase hex
/// digits.
pub(crate) fn parse_digest(value: &[u8]) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if value.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(value.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

/// Decodes the fields of a stored hash: a record or a forward.
///
/// # Errors
/// [`DecodeError`] when the fields are neither a record in the layout of the
/// [module documentation](self) nor a [forward](self#forwards).
pub fn decode_entry_fields<F, V>(fields: impl IntoIterator<Item = (F, V)>) -> Result<Entry, DecodeError>
where
    F: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let fields: Vec<(F, V)> = fields.into_iter().collect();
    let is_forward = |(field, _): &(F, V)| field.as_ref() == FORWARD_FIELD.as_bytes();
    if !fields.iter().any(is_forward) {
        return decode_fields(fields).map(Entry::Record);
    }
    match fields.as_slice() {
        [(_, value)] => parse_digest(value.as_ref())
            .map(Entry::Forward)
            .ok_or(DecodeError::Forward),
        _ => Err(DecodeError::Forward),
    }
}

/// Decodes the fields of a stored hash that holds a record (a forward is an
/// [`UnknownField`](DecodeError::UnknownField) here; see [`decode_entry_fields`]).
///
/// # Errors
/// [`DecodeError`] when the fields are not a record in the layout of the
/// [module documentation](self).
pub fn decode_fields<F, V>(fields: impl IntoIterator<Item = (F, V)>) -> Result<Record, DecodeError>
where
    F: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut version: Option<Vec<u8>> = None;
    let mut created: Option<Vec<u8>> = None;
    let mut seen: Option<Vec<u8>> = None;
    let mut data = Map::new();
    for (field, value) in fields {
        let (field, value) = (field.as_ref(), value.as_ref());
        if let Some(key) = field.strip_prefix(DATA_PREFIX.as_bytes()) {
            let key = std::str::from_utf8(key).map_err(|_| DecodeError::KeyNotUtf8)?;
            let value: Value = serde_json::from_slice(value).map_err(DecodeError::Json)?;
            if data.insert(key.to_owned(), value).is_some() {
                return Err(DecodeError::DuplicateField);
            }
            continue;
        }
        let slot = match field {
            b"v" => &mut version,
            b"created" => &mut created,
            b"seen" => &mut seen,
            _ => return Err(DecodeError::UnknownField),
        };
        if slot.replace(value.to_vec()).is_some() {
            return Err(DecodeError::DuplicateField);
        }
    }
    if version.ok_or(DecodeError::MissingField(VERSION_FIELD))? != LAYOUT_VERSION.as_bytes() {
        return Err(DecodeError::Version);
    }
    let created = created.ok_or(DecodeError::MissingField(CREATED_FIELD))?;
    let seen = seen.ok_or(DecodeError::MissingField(SEEN_FIELD))?;
    Ok(Record {
        created_at: parse_millis(&created).ok_or(DecodeError::Timestamp(CREATED_FIELD))?,
        last_seen: parse_millis(&seen).ok_or(DecodeError::Timestamp(SEEN_FIELD))?,
        data,
    })
}

/// Strict decimal: 1 to 20 ASCII digits that fit in a `u64`.
fn parse_millis(bytes: &[u8]) -> Option<Timestamp> {
    if bytes.is_empty() || bytes.len() > 20 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(Timestamp::from_millis)
}

/// Decodes a `HGETALL` reply (RESP2 array or RESP3 map): `Ok(None)` for an empty reply
/// (no such key), the record or forward, or why the reply is neither.
///
/// # Errors
/// [`DecodeError`] when the reply is neither a record nor a forward.
pub fn decode_entry(reply: &Reply) -> Result<Option<Entry>, DecodeError> {
    let mut reply = reply;
    // RESP3 may wrap a reply in attributes; unwrap a few levels, no more.
    for _ in 0..4 {
        if let Reply::Attribute { data, .. } = reply {
            reply = data;
        }
    }
    match reply {
        Reply::Nil => Ok(None),
        Reply::Array(items) if items.is_empty() => Ok(None),
        Reply::Map(pairs) if pairs.is_empty() => Ok(None),
        Reply::Array(items) => {
            if !items.len().is_multiple_of(2) {
                return Err(DecodeError::NotAHash);
            }
            let pairs = items
                .chunks_exact(2)
                .map(|pair| Ok((bytes_of(&pair[0])?, bytes_of(&pair[1])?)))
                .collect::<Result<Vec<_>, DecodeError>>()?;
            decode_entry_fields(pairs).map(Some)
        }
        Reply::Map(pairs) => {
            let pairs = pairs
                .iter()
                .map(|(field, value)| Ok((bytes_of(field)?, bytes_of(value)?)))
                .collect::<Result<Vec<_>, DecodeError>>()?;
            decode_entry_fields(pairs).map(Some)
        }
        _ => Err(DecodeError::NotAHash),
    }
}

/// Decodes a `HGETALL` reply as [`decode_entry`], keeping only a record: `Ok(None)`
/// for an empty reply (no such key) and for a forward, which is not a record.
///
/// # Errors
/// [`DecodeError`] when the reply is neither a record nor a forward.
pub fn decode_reply(reply: &Reply) -> Result<Option<Record>, DecodeError> {
    Ok(match decode_entry(reply)? {
        Some(Entry::Record(record)) => Some(record),
        Some(Entry::Forward(_)) | None => None,
    })
}

fn bytes_of(reply: &Reply) -> Result<&[u8], DecodeError> {
    match reply {
        Reply::BulkString(bytes) => Ok(bytes),
        Reply::SimpleString(text) => Ok(text.as_bytes()),
        _ => Err(DecodeError::NotAHash),
    }
}

/// Maps a decoded reply to what a load returns: a forward is not a record, so it loads
/// as missing.
pub(crate) fn load_result(decoded: Result<Option<Entry>, DecodeError>) -> LoadResult {
    match decoded {
        Ok(Some(Entry::Record(record))) => LoadResult::Found(record),
        Ok(Some(Entry::Forward(_)) | None) => LoadResult::Missing,
        Err(_) => LoadResult::Corrupt,
    }
}

/// Decodes raw bytes as if the store had returned them; the entry point of the
/// `redis_record` fuzz target and of the corpus replay test.
///
/// Input starting with a RESP type byte (`*`, `%`, `|`, `_`, `$`, `+`, `-`, `:`, ...)
/// is parsed as a RESP reply and decoded like a `HGETALL` reply. Any other input is
/// split on NUL bytes into alternating field names and values and decoded as hash
/// fields, which lets a fuzzer reach the field decoder without building RESP framing.
/// A [forward](self#forwards) decodes as [`LoadResult::Missing`], as `load` reports it.
///
/// **Unstable**: only with the `internal` feature, which is not covered by semver; for
/// the fuzz targets and the corpus replay tests, not for applications.
#[cfg(any(test, feature = "internal"))]
pub fn decode_stored(bytes: &[u8]) -> LoadResult {
    match bytes.first() {
        Some(
            b'*' | b'%' | b'|' | b'_' | b'$' | b'+' | b'-' | b':' | b'~' | b'>' | b'#' | b',' | b'(' | b'!'
            | b'=',
        ) => match redis::parse_redis_value(bytes) {
            Ok(reply) => load_result(decode_entry(&reply)),
            Err(_) => LoadResult::Corrupt,
        },
        _ => {
            let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
            if !parts.len().is_multiple_of(2) {
                return LoadResult::Corrupt;
            }
            let pairs = parts.chunks_exact(2).map(|pair| (pair[0], pair[1]));
            load_result(decode_entry_fields(pairs).map(Some))
        }
    }
}

/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag (the text
/// between the first `{` and the next `}`, when not empty) or of the whole key, modulo
/// 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_slots_follow_redis() {
        // The CRC16 check value, and hash tags as Redis reads them.
        // CRC16/XMODEM("123456789") = 0x31c3, below 16384.
        assert_eq!(super::key_slot(b"123456789"), 0x31c3);
        assert_eq!(super::key_slot(b"a{123456789}b"), super::key_slot(b"123456789"));
        // No closing brace, or an empty tag: the whole key is hashed.
        assert_ne!(super::key_slot(b"{a"), super::key_slot(b"a"));
        assert_eq!(super::key_slot(b"a}{b}"), super::key_slot(b"b"));
        assert_ne!(super::key_slot(b"{}{a}"), super::key_slot(b"a"));
        assert_ne!(super::key_slot(b"{}x"), super::key_slot(b"x"));
        assert_eq!(super::key_slot(b"{a}{b}"), super::key_slot(b"a"));
    }

    use super::*;
    use serde_json::json;

    fn record() -> Record {
        let Value::Object(data) = json!({"user": "ada", "": 1, "d:x": [1, {"a": null}], "🔑": 1.5}) else {
            unreachable!()
        };
        Record {
            created_at: Timestamp::from_millis(1_700_000_000_000),
            last_seen: Timestamp::from_millis(u64::MAX),
            data,
        }
    }

    #[test]
    fn fields_round_trip() {
        let rec = record();
        let fields = encode_fields(&rec);
        assert_eq!(fields.len(), 3 + rec.data.len());
        assert_eq!(decode_fields(fields.clone()).expect("decodes"), rec);
        let reversed: Vec<_> = fields.into_iter().rev().collect();
        assert_eq!(decode_fields(reversed).expect("order does not matter"), rec);
    }

    #[test]
    fn replies_round_trip_in_both_protocols() {
        let rec = record();
        let fields = encode_fields(&rec);
        let array = Reply::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [Reply::BulkString(f.clone()), Reply::BulkString(v.clone())])
                .collect(),
        );
        let map = Reply::Map(
            fields
                .iter()
                .map(|(f, v)| (Reply::BulkString(f.clone()), Reply::BulkString(v.clone())))
                .collect(),
        );
        assert_eq!(decode_reply(&array).expect("array"), Some(rec.clone()));
        assert_eq!(decode_reply(&map).expect("map"), Some(rec));
        assert_eq!(decode_reply(&Reply::Array(vec![])).expect("empty"), None);
        assert_eq!(decode_reply(&Reply::Map(vec![])).expect("empty"), None);
    }

    #[test]
    fn everything_else_is_an_error() {
        let ok = |extra: &[(&[u8], &[u8])]| {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
                (b"v".to_vec(), b"1".to_vec()),
                (b"created".to_vec(), b"1".to_vec()),
                (b"seen".to_vec(), b"2".to_vec()),
            ];
            fields.extend(extra.iter().map(|(f, v)| (f.to_vec(), v.to_vec())));
            fields
        };
        assert!(decode_fields(ok(&[])).is_ok());
        let bad: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
            ok(&[(b"x", b"1")]),
            ok(&[(b"d:a", b"not json")]),
            ok(&[(b"d:\xff", b"1")]),
            ok(&[(b"d:a", b"1"), (b"d:a", b"2")]),
            ok(&[(b"v", b"1")]),
            vec![(b"v".to_vec(), b"2".to_vec())],
            ok(&[])[1..].to_vec(),
            ok(&[])[..2].to_vec(),
            vec![
                (b"v".to_vec(), b"1".to_vec()),
                (b"created".to_vec(), b"-1".to_vec()),
                (b"seen".to_vec(), b"2".to_vec()),
            ],
            vec![
                (b"v".to_vec(), b"1".to_vec()),
                (b"created".to_vec(), b"1".to_vec()),
                (b"seen".to_vec(), b"18446744073709551616".to_vec()),
            ],
            vec![
                (b"v".to_vec(), b"1".to_vec()),
                (b"created".to_vec(), b"+1".to_vec()),
                (b"seen".to_vec(), b"2".to_vec()),
            ],
        ];
        for case in bad {
            assert!(decode_fields(case.clone()).is_err(), "{case:?}");
        }
        for reply in [
            Reply::Int(1),
            Reply::Okay,
            Reply::BulkString(b"x".to_vec()),
            Reply::Array(vec![Reply::Int(1), Reply::Int(2)]),
            Reply::Array(vec![Reply::BulkString(b"v".to_vec())]),
        ] {
            assert!(decode_reply(&reply).is_err(), "{reply:?}");
        }
    }

    #[test]
    fn forwards_decode_and_are_never_records() {
        let to = sessionkit::StoreKey::from_digest(sessionkit::core::Namespace::shared(), [0xa5; 32]);
        let value = forward_value(&to);
        assert_eq!(value, "a5".repeat(32).into_bytes());
        let fields = [(FORWARD_FIELD.as_bytes().to_vec(), value.clone())];
        assert_eq!(
            decode_entry_fields(fields.clone()).expect("a forward"),
            Entry::Forward([0xa5; 32])
        );
        assert!(matches!(
            decode_fields(fields.clone()),
            Err(DecodeError::UnknownField)
        ));
        let reply = Reply::Array(vec![
            Reply::BulkString(FORWARD_FIELD.into()),
            Reply::BulkString(value.clone()),
        ]);
        assert_eq!(
            decode_entry(&reply).expect("forward"),
            Some(Entry::Forward([0xa5; 32]))
        );
        assert_eq!(decode_reply(&reply).expect("not a record"), None);
        assert_eq!(load_result(decode_entry(&reply)), LoadResult::Missing);
        let mut framed = b"fwd\x00".to_vec();
        framed.extend_from_slice(&value);
        assert_eq!(decode_stored(&framed), LoadResult::Missing);

        // Records keep decoding as records.
        let rec = record();
        assert_eq!(
            decode_entry_fields(encode_fields(&rec)).expect("a record"),
            Entry::Record(rec)
        );

        let mut upper = value.clone();
        upper.make_ascii_uppercase();
        let bad: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
            vec![(b"fwd".to_vec(), upper)],
            vec![(b"fwd".to_vec(), value[..63].to_vec())],
            vec![(b"fwd".to_vec(), [value.clone(), b"0".to_vec()].concat())],
            vec![(b"fwd".to_vec(), b"g".repeat(64))],
            vec![(b"fwd".to_vec(), "\u{e9}".repeat(32).into_bytes())],
            vec![(b"fwd".to_vec(), value.clone()), (b"fwd".to_vec(), value.clone())],
            vec![(b"fwd".to_vec(), value.clone()), (b"v".to_vec(), b"1".to_vec())],
            [encode_fields(&record()), vec![(b"fwd".to_vec(), value.clone())]].concat(),
        ];
        for case in bad {
            assert!(
                matches!(decode_entry_fields(case.clone()), Err(DecodeError::Forward)),
                "{case:?}"
            );
            let mut framed = Vec::new();
            for (i, (field, value)) in case.iter().enumerate() {
                if i > 0 {
                    framed.push(0);
                }
                framed.extend_from_slice(field);
                framed.push(0);
                framed.extend_from_slice(value);
            }
            assert_eq!(decode_stored(&framed), LoadResult::Corrupt, "{case:?}");
        }
    }

    #[test]
    fn fuzz_entry_point_reads_both_framings() {
        assert_eq!(decode_stored(b""), LoadResult::Corrupt);
        assert_eq!(decode_stored(b"*0\r\n"), LoadResult::Missing);
        assert_eq!(
            decode_stored(b"v\x001\x00created\x005\x00seen\x006\x00d:a\x00[1]"),
            LoadResult::Found(Record {
                created_at: Timestamp::from_millis(5),
                last_seen: Timestamp::from_millis(6),
                data: [("a".to_owned(), json!([1]))].into_iter().collect(),
            })
        );
        assert_eq!(decode_stored(b"*1\r\n$1\r\nv\r\n"), LoadResult::Corrupt);
        assert_eq!(decode_stored(b"*2\r\n"), LoadResult::Corrupt);
    }
}
