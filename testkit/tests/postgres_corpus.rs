//! Replays the committed corpus of the `postgres_record` fuzz target through the target's
//! own body (decoding, and re-encoding what decodes), so a plain `cargo test` catches
//! regressions the fuzzer once found; and checks the seeds decode as intended.

use sessionkit::LoadResult;
use sessionkit_postgres::decode_stored;
use sessionkit_testkit::fuzz::postgres_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn no_corpus_input_breaks_an_invariant() {
    assert!(
        replay::corpus("postgres_record").len() > 5,
        "the corpus is missing"
    );
    replay::replay("postgres_record", bodies::postgres_record);
}

#[test]
fn seeds_decode_as_intended() {
    let files = replay::corpus("postgres_record");
    let seed = |name: &str| -> LoadResult {
        let (_, data) = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("seed {name} is missing"));
        decode_stored(data)
    };
    for found in ["seed-record", "seed-unicode"] {
        assert!(matches!(seed(found), LoadResult::Found(_)), "{found}");
    }
    match seed("seed-record") {
        LoadResult::Found(record) => {
            assert_eq!(record.data["user"], "ada");
            assert_eq!(record.created_at.as_millis(), 1_700_000_000_000);
            assert_eq!(record.last_seen.as_millis(), 1_700_000_000_500);
        }
        other => panic!("{other:?}"),
    }
    for corrupt in [
        "seed-null_data",
        "seed-null_times",
        "seed-infinity",
        "seed-before_1970",
        "seed-not_object",
        "seed-bad_version",
        "seed-short_time",
        "seed-truncated",
    ] {
        assert_eq!(seed(corrupt), LoadResult::Corrupt, "{corrupt}");
    }
}
