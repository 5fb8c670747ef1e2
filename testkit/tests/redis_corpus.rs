//! Replays the committed corpus of the `redis_record` fuzz target through the target's
//! own body (decoding, and re-encoding what decodes), so a plain `cargo test` catches
//! regressions the fuzzer once found; and checks the seeds decode as intended.

use sessionkit::LoadResult;
use sessionkit_redis::decode_stored;
use sessionkit_testkit::fuzz::redis_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn no_corpus_input_breaks_an_invariant() {
    assert!(replay::corpus("redis_record").len() > 5, "the corpus is missing");
    replay::replay("redis_record", bodies::redis_record);
}

#[test]
fn seeds_decode_as_intended() {
    let files = replay::corpus("redis_record");
    let seed = |name: &str| -> LoadResult {
        let (_, data) = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("seed {name} is missing"));
        decode_stored(data)
    };
    for found in [
        "seed-resp2_record",
        "seed-resp3_record",
        "seed-fields_plain",
        "seed-fields_big_numbers",
    ] {
        assert!(matches!(seed(found), LoadResult::Found(_)), "{found}");
    }
    match seed("seed-resp2_record") {
        LoadResult::Found(record) => {
            assert_eq!(record.data["user"], "ada");
            assert_eq!(record.data["ключ"], "значение");
            assert_eq!(record.created_at.as_millis(), 1_700_000_000_000);
        }
        other => panic!("{other:?}"),
    }
    for missing in ["seed-empty_array", "seed-empty_map", "seed-nil"] {
        assert_eq!(seed(missing), LoadResult::Missing, "{missing}");
    }
    for corrupt in [
        "seed-wrongtype",
        "seed-bulk_string",
        "seed-bad_json",
        "seed-unknown_field",
        "seed-bad_version",
        "seed-nested_array",
    ] {
        assert_eq!(seed(corrupt), LoadResult::Corrupt, "{corrupt}");
    }
}
