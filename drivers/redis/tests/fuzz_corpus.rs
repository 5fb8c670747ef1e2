//! Replays the committed corpus of the `redis_record` fuzz target through the decoder
//! the target feeds (`decode_stored`), so a plain `cargo test` catches regressions the
//! fuzzer once found: no input may panic, and the seeds decode as they should.

use std::path::Path;

use sessionkit::LoadResult;
use sessionkit_redis::decode_stored;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/redis_record");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        // A fuzzer running beside the tests may replace files as it reduces them.
        let Ok(data) = std::fs::read(&path) else { continue };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, data));
    }
    files
}

#[test]
fn no_corpus_input_panics() {
    let files = corpus();
    assert!(files.len() > 5, "the corpus is missing");
    for (name, data) in &files {
        let outcome = std::panic::catch_unwind(|| decode_stored(data));
        assert!(outcome.is_ok(), "{name} panics the decoder");
    }
}

#[test]
fn seeds_decode_as_intended() {
    let files = corpus();
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
