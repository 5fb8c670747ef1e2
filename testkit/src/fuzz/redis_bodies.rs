//! Fuzz body for the Redis driver's decoder: arbitrary bytes as if Redis had returned
//! them (a `HGETALL` reply in RESP, or NUL-separated hash fields). It panics only when
//! an invariant breaks; a corrupt or foreign record must come out as `Corrupt` (or
//! `Missing`), never as a panic. `testkit/tests/redis_corpus.rs` replays the
//! committed corpus through it.

use sessionkit::LoadResult;

/// A `HGETALL` reply (RESP) or NUL-separated hash fields into the Redis decoder. What
/// decodes must survive being written back: same timestamps, same keys.
pub fn redis_record(data: &[u8]) {
    if let LoadResult::Found(record) = sessionkit_redis::decode_stored(data) {
        let fields = sessionkit_redis::codec::encode_fields(&record);
        let again = sessionkit_redis::codec::decode_fields(fields).expect("a re-encoded record decodes");
        assert_eq!(again.created_at, record.created_at);
        assert_eq!(again.last_seen, record.last_seen);
        assert!(again.data.keys().eq(record.data.keys()));
    }
}
