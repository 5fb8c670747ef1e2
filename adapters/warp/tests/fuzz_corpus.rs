//! Replays the committed `warp_requests` fuzz corpus through the fuzz target's body.

#[path = "../../../fuzz/src/warp_bodies.rs"]
#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod bodies;

#[test]
fn warp_requests_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/warp_requests");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        // A fuzzer running beside the tests may replace files as it reduces them.
        let Ok(data) = std::fs::read(&path) else { continue };
        let outcome = std::panic::catch_unwind(|| bodies::warp_requests(&data));
        assert!(outcome.is_ok(), "{} breaks an invariant", path.display());
        count += 1;
    }
    assert!(count > 0, "no corpus");
}
