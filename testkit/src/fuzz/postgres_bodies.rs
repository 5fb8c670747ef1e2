//! Fuzz body for the PostgreSQL driver's decoder: raw binary-format `data`,
//! `created_at` and `last_seen` columns as if PostgreSQL had returned them. It panics
//! only when an invariant breaks; a corrupt or foreign row must come out as `Corrupt`
//! (or `Missing`), never as a panic. `testkit/tests/postgres_corpus.rs` replays
//! the committed corpus through it.

use sessionkit::LoadResult;

/// Raw binary-format `data`, `created_at` and `last_seen` columns into the PostgreSQL
/// decoder. What decodes must decode again from its own JSON text, to the same keys.
pub fn postgres_record(data: &[u8]) {
    if let LoadResult::Found(record) = sessionkit_postgres::decode_stored(data) {
        let mut jsonb = vec![1u8];
        jsonb.extend(
            serde_json::Value::Object(record.data.clone())
                .to_string()
                .into_bytes(),
        );
        let again = sessionkit_postgres::decode_row(
            Some(&jsonb),
            Some(&time(record.created_at)),
            Some(&time(record.last_seen)),
        )
        .expect("a re-encoded row decodes");
        assert_eq!(again.created_at, record.created_at);
        assert_eq!(again.last_seen, record.last_seen);
        assert!(again.data.keys().eq(record.data.keys()));
    }
}

/// A timestamp as PostgreSQL sends a `timestamptz`: microseconds since 2000-01-01.
fn time(at: sessionkit::Timestamp) -> [u8; 8] {
    const PG_EPOCH_MILLIS: i64 = 946_684_800_000;
    // Decoded timestamps come from an i64 of microseconds, so they fit.
    let millis = i64::try_from(at.as_millis()).expect("decoded timestamps fit in i64");
    ((millis - PG_EPOCH_MILLIS) * 1_000).to_be_bytes()
}
