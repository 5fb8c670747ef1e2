//! The core stays sans-IO: no async runtime, no `async fn`, no clock reads and no
//! ambient randomness outside `#[cfg(test)]` code. This test reads the sources.

use std::path::Path;

const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "an async runtime"),
    ("async fn", "async code"),
    ("async move", "async code"),
    (".await", "async code"),
    ("SystemTime::now", "a clock read"),
    ("Instant::now", "a clock read"),
    ("thread_rng", "an ambient RNG"),
    ("rand::rng(", "an ambient RNG"),
    ("OsRng", "an ambient RNG"),
    ("getrandom", "an ambient RNG"),
    ("std::fs", "file I/O"),
    ("std::net", "network I/O"),
    ("std::env", "environment access"),
];

/// The code of a source file outside `#[cfg(test)]` items. Test modules sit at the end
/// of each file, so everything from the first `#[cfg(test)]` on is test code; doc
/// comments are dropped (they show how callers use the crate, clocks included).
fn production_code(source: &str) -> String {
    let cut = source.find("#[cfg(test)]").unwrap_or(source.len());
    source[..cut]
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            !(t.starts_with("//!") || t.starts_with("///") || t.starts_with("//"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn violations(source: &str) -> Vec<&'static str> {
    let code = production_code(source);
    FORBIDDEN
        .iter()
        .filter(|(needle, _)| code.contains(needle))
        .map(|(needle, _)| *needle)
        .collect()
}

#[test]
fn core_sources_are_sans_io() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("readable");
                let found = violations(&source);
                assert!(
                    found.is_empty(),
                    "{} uses {found:?}; the core must stay sans-IO",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} files found: is the path right?");
}

#[test]
fn core_manifest_has_no_async_dependency() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("deps")
        .split("[dev-dependencies]")
        .next()
        .expect("deps");
    for crate_name in [
        "tokio",
        "async-std",
        "futures",
        "smol",
        "hyper",
        "http",
        "getrandom",
        "rand =",
    ] {
        assert!(!deps.contains(crate_name), "core depends on {crate_name}");
    }
}

#[test]
fn the_guard_catches_what_it_should() {
    assert_eq!(
        violations("fn f() { let t = std::time::SystemTime::now(); }"),
        ["SystemTime::now"]
    );
    assert_eq!(violations("pub async fn load() {}"), ["async fn"]);
    assert!(
        violations("fn f() {}\n#[cfg(test)]\nmod tests { fn g() { std::time::Instant::now(); } }").is_empty()
    );
    assert!(violations("/// let now = SystemTime::now();\nfn f() {}").is_empty());
    assert_eq!(violations("use rand_core::OsRng;"), ["OsRng"]);
}
