//! Replays the committed fuzz corpus through the fuzz targets' own bodies, so a plain
//! `cargo test` catches regressions the fuzzers once found.

use sessionkit_testkit::fuzz::core_bodies as bodies;
use sessionkit_testkit::replay;

#[test]
fn cookie_header() {
    replay::replay("cookie_header", bodies::cookie_header);
}

#[test]
fn id_cookie() {
    replay::replay("id_cookie", bodies::id_cookie);
}

#[test]
fn sealed_cookie() {
    replay::replay("sealed_cookie", bodies::sealed_cookie);
}

#[test]
fn config() {
    replay::replay("config", bodies::config);
}

#[test]
fn state_machine() {
    replay::replay("state_machine", bodies::state_machine);
}

#[test]
fn cookie_chunks() {
    replay::replay("cookie_chunks", bodies::cookie_chunks);
}
