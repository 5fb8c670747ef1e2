//! Reading and replaying a committed fuzz corpus, for the normal test suites: the
//! replay tests run every committed input through the fuzz target's own body.

use std::path::{Path, PathBuf};

/// `fuzz/corpus/<target>`, found above this crate's manifest directory.
///
/// # Panics
/// When no such directory exists above the crate (the corpus is not checked out).
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("fuzz/corpus").join(target))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("no fuzz/corpus/{target} above {}", env!("CARGO_MANIFEST_DIR")))
}

/// Every input of the corpus of `target`, with its file name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
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

/// Runs every input of the corpus of `target` through `body`.
///
/// # Panics
/// When an input makes `body` panic (naming the input), or the corpus is empty.
pub fn replay(target: &str, body: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let files = corpus(target);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for (name, data) in &files {
        let outcome = std::panic::catch_unwind(|| body(data));
        assert!(outcome.is_ok(), "{target}: input {name} breaks an invariant");
    }
}
