//! Replays the committed fuzz corpus through the fuzz targets' own bodies, so a plain
//! `cargo test` catches regressions the fuzzers once found.

#[path = "../../fuzz/src/core_bodies.rs"]
#[allow(dead_code, unreachable_pub, clippy::all, clippy::pedantic)]
mod bodies;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        // A fuzzer running beside the tests may replace files as it reduces them.
        let Ok(data) = std::fs::read(&path) else { continue };
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} breaks an invariant",
            path.display()
        );
        count += 1;
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn cookie_header() {
    replay("cookie_header", bodies::cookie_header);
}

#[test]
fn id_cookie() {
    replay("id_cookie", bodies::id_cookie);
}

#[test]
fn sealed_cookie() {
    replay("sealed_cookie", bodies::sealed_cookie);
}

#[test]
fn config() {
    replay("config", bodies::config);
}

#[test]
fn state_machine() {
    replay("state_machine", bodies::state_machine);
}
